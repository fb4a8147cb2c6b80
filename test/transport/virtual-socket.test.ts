/**
 * The CTAPHID client against a virtual key served on a local socket (what `keytap virtual start`
 * runs), found through discovery the way the tray and the CLI find it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enumerateKeys } from '../../src/device/discovery/enumerate.js';
import { KeyWatcher } from '../../src/device/discovery/watcher.js';
import { CtapHidApduTransport } from '../../src/device/transport/ctaphid.js';
import { virtualKeyId } from '../../src/emulator/registry.js';
import { serveVirtualKey } from '../../src/emulator/server.js';
import { TouchButton } from '../../src/emulator/touch.js';
import { VirtualKey } from '../../src/emulator/virtual-key.js';
import { KeytapError } from '../../src/errors.js';
import { INS_TOUCH, OATH_SELECT, StubApplet } from '../emulator/helpers.js';

let runtime: string;
const previousRuntime = process.env.KEYTAP_RUNTIME_DIR;
beforeAll(async () => {
  runtime = await mkdtemp(join(tmpdir(), 'keytap-sock-'));
  process.env.KEYTAP_RUNTIME_DIR = runtime;
});
afterAll(async () => {
  if (previousRuntime === undefined) delete process.env.KEYTAP_RUNTIME_DIR;
  else process.env.KEYTAP_RUNTIME_DIR = previousRuntime;
  await rm(runtime, { recursive: true, force: true });
});

async function serve(key: VirtualKey, file: string) {
  return serveVirtualKey(key, { id: virtualKeyId(file), file, dialect: key.dialect, serial: key.serial });
}

describe('CTAPHID client ↔ VirtualKey over the socket link', () => {
  it('is found by discovery, echoes PINGs of 0, 57, 58, 1000 and 7609 bytes, and SELECTs over 0x70', async () => {
    const file = join(runtime, 'served.json');
    const key = await VirtualKey.open({ file, dialect: 'yubikey' });
    const server = await serve(key, file);
    try {
      const keys = await enumerateKeys({ hid: false });
      const descriptor = keys.find((k) => k.id === `virtual:${virtualKeyId(file)}`)!;
      expect(descriptor).toMatchObject({ kind: 'virtual', name: 'virtual key served.json', dialect: 'yubikey' });

      // A served virtual key opens as CTAPHID over the socket link.
      const transport = await descriptor.open();
      expect(transport).toBeInstanceOf(CtapHidApduTransport);
      expect(transport.description).toBe(descriptor.name);
      const channel = (transport as CtapHidApduTransport).channel;
      for (const size of [0, 57, 58, 1000, 7609]) {
        const data = Uint8Array.from({ length: size }, (_, i) => (i * 13 + 1) & 0xff);
        expect(await channel.ping(data)).toEqual(data);
      }
      const response = await transport.transmit(OATH_SELECT);
      expect(response.sw).toBe(0x9000);
      expect(response.data[0]).toBe(0x79);
      await transport.close();
    } finally {
      await server.close();
      await key.close();
    }
  });

  it('reports the key added and removed to a watcher, and KEY_REMOVED to a call in flight when it stops', async () => {
    const file = join(runtime, 'stub.json');
    const key = new VirtualKey({ dialect: 'yubikey', applet: new StubApplet(), button: new TouchButton({ mode: 'manual' }, 15_000), file });
    const watcher = new KeyWatcher({ hid: false });
    const events: string[] = [];
    watcher.on('added', (k) => events.push(`+${k.id}`));
    watcher.on('removed', (k) => events.push(`-${k.id}`));
    await watcher.start();
    const id = `virtual:${virtualKeyId(file)}`;
    try {
      const started = Date.now();
      const server = await serve(key, file);
      while (events.length === 0 && Date.now() - started < 2_000) await new Promise((r) => setTimeout(r, 5));
      expect(events).toEqual([`+${id}`]);
      expect(Date.now() - started).toBeLessThan(300);

      const transport = await watcher.keys[0]!.open();
      let touchAsked = false;
      // Observed at once: it rejects while server.close() is awaited below.
      const pending = transport.transmit(Uint8Array.of(0, INS_TOUCH, 0, 1), { onTouchNeeded: () => (touchAsked = true) }).catch((e: unknown) => e);
      await new Promise((r) => setTimeout(r, 100));
      expect(touchAsked).toBe(true);
      await server.close();
      const error = await pending;
      expect(error).toBeInstanceOf(KeytapError);
      expect((error as KeytapError).code).toBe('KEY_REMOVED');
      expect((error as KeytapError).message).toBe('The key was removed during an OATH request.');

      const removedBy = Date.now();
      while (events.length < 2 && Date.now() - removedBy < 2_000) await new Promise((r) => setTimeout(r, 5));
      expect(events).toEqual([`+${id}`, `-${id}`]);
    } finally {
      await watcher.stop();
      await key.close();
    }
  });
});
