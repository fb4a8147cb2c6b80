/**
 * Stack: the real host client (transport/ctaphid.ts) over the virtual key's device side, through
 * an in-process link and through the socket server. Only the 64-byte boundary is shared.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isKeytapError } from '../../src/errors.js';
import { CtapHidApduTransport } from '../../src/device/transport/ctaphid.js';
import type { HidLink } from '../../src/device/transport/types.js';
import { virtualKeyId } from '../../src/emulator/registry.js';
import { serveVirtualKey } from '../../src/emulator/server.js';
import { SocketHidLink } from '../../src/device/transport/socket-link.js';
import { TouchButton } from '../../src/emulator/touch.js';
import type { Dialect } from '../../src/device/oath/dialect.js';
import { VirtualKey } from '../../src/emulator/virtual-key.js';
import { INS_TOUCH, OATH_SELECT, StubApplet, randomBytes } from './helpers.js';

const TOUCH_APDU = Uint8Array.of(0x00, INS_TOUCH, 0x00, 0x01);
const cleanups: Array<() => Promise<void>> = [];
let runtime: string;
const savedRuntimeDir = process.env.KEYTAP_RUNTIME_DIR;

beforeAll(async () => {
  runtime = await mkdtemp(join(tmpdir(), 'keytap-stack-'));
  process.env.KEYTAP_RUNTIME_DIR = runtime;
});
afterAll(async () => {
  if (savedRuntimeDir === undefined) delete process.env.KEYTAP_RUNTIME_DIR;
  else process.env.KEYTAP_RUNTIME_DIR = savedRuntimeDir;
  await rm(runtime, { recursive: true, force: true });
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function stubKey(dialect: Dialect, applet = new StubApplet()): VirtualKey {
  const key = new VirtualKey({ dialect, applet, button: new TouchButton({ mode: 'manual' }, 10_000) });
  cleanups.push(() => key.close());
  return key;
}

async function transportOn(link: HidLink): Promise<CtapHidApduTransport> {
  const transport = await CtapHidApduTransport.open(link);
  cleanups.push(() => transport.close().catch(() => undefined));
  return transport;
}

describe.each(['in-process', 'socket'] as const)('host client over the virtual key (%s link)', (via) => {
  async function open(dialect: Dialect, applet = new StubApplet()) {
    const key = stubKey(dialect, applet);
    let link: HidLink;
    if (via === 'in-process') {
      link = key.openLink();
    } else {
      const file = join(runtime, `${dialect}-${Math.random()}.json`);
      const server = await serveVirtualKey(key, { id: virtualKeyId(file), file, dialect });
      cleanups.push(() => server.close());
      link = await SocketHidLink.connect(server.socketPath);
    }
    return { key, applet, transport: await transportOn(link) };
  }

  it('opens a channel, pings the maximum, and reads SW-first answers', async () => {
    const { transport } = await open('yubikey');
    expect(transport.channel.info).toEqual({ protocolVersion: 2, deviceVersion: [5, 4, 3], capabilities: 1 });
    const data = randomBytes(7609);
    expect(await transport.channel.ping(data)).toEqual(data);
    const { sw, data: select } = await transport.transmit(OATH_SELECT);
    expect(sw).toBe(0x9000);
    expect([...select]).toEqual([0x79, 0x03, 0x05, 0x04, 0x03]);
  });

  it('yubikey dialect: KEEPALIVE UPNEEDED reaches onTouchNeeded before the touch', async () => {
    const { key, transport } = await open('yubikey');
    let touchNeeded = 0;
    const answer = transport.transmit(TOUCH_APDU, {
      onTouchNeeded: () => {
        touchNeeded++;
        void key.touch();
      },
    });
    expect((await answer).sw).toBe(0x9000);
    expect(touchNeeded).toBe(1);
  });

  it('nitrokey3 dialect: no keepalive, the answer comes after the touch', async () => {
    const { key, transport, applet } = await open('nitrokey3');
    let touchNeeded = 0;
    const answer = transport.transmit(TOUCH_APDU, { onTouchNeeded: () => touchNeeded++ });
    await expect.poll(() => applet.contexts.length).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 150));
    await key.touch();
    expect((await answer).sw).toBe(0x9000);
    expect(touchNeeded).toBe(0);
  });

  it.each(['yubikey', 'nitrokey3'] as const)('aborting sends CANCEL, which ends the touch wait (%s); the channel works afterwards', async (dialect) => {
    const { transport, applet } = await open(dialect);
    const controller = new AbortController();
    const answer = transport.transmit(TOUCH_APDU, { signal: controller.signal });
    await expect.poll(() => applet.contexts.length).toBe(1);
    controller.abort();
    await expect(answer).rejects.toSatisfy((e: unknown) => isKeytapError(e, 'CANCELLED'));
    await expect.poll(() => applet.contexts[0]!.signal.aborted).toBe(true);
    const { sw } = await transport.transmit(OATH_SELECT);
    expect(sw).toBe(0x9000);
  });

  it('unplugging during a touch wait fails the call with KEY_REMOVED', async () => {
    const { key, transport, applet } = await open('nitrokey3');
    const answer = transport.transmit(TOUCH_APDU);
    const check = expect(answer).rejects.toSatisfy((e: unknown) => isKeytapError(e, 'KEY_REMOVED'));
    await expect.poll(() => applet.contexts.length).toBe(1);
    await key.close();
    await check;
  });
});
