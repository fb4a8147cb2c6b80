/**
 * VirtualKey and its in-process HID links: the 64-byte boundary the client code talks to.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isKeytapError } from '../../src/errors.js';
import { CtapHidError, parsePacket } from '../../src/device/transport/ctaphid-frames.js';
import { TouchButton } from '../../src/emulator/touch.js';
import { VirtualKey } from '../../src/emulator/virtual-key.js';
import { BROADCAST_CID, CtapHidCommand, INS_TOUCH, OATH_SELECT, StubApplet, initChannel, readMessage, sleep, writeMessage } from './helpers.js';

const keys: VirtualKey[] = [];
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keytap-vk-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
afterEach(async () => {
  for (const key of keys.splice(0)) await key.close();
});

function stubKey(touch: ConstructorParameters<typeof TouchButton>[0] = { mode: 'manual' }, applet = new StubApplet()): VirtualKey {
  const key = new VirtualKey({ dialect: 'nitrokey3', applet, button: new TouchButton(touch, 10_000), serial: '0badcafe' });
  keys.push(key);
  return key;
}

describe('VirtualKey links', () => {
  it('every link sees every input report, as hidraw readers do', async () => {
    const key = stubKey();
    const a = key.openLink();
    const b = key.openLink();
    expect(a.reportSize).toBe(64);
    const cid = await initChannel(a);
    // B did not ask, but sees A's INIT answer on the broadcast CID.
    const seen = await b.read(100);
    expect(seen && parsePacket(seen).cid).toBe(BROADCAST_CID);
    await writeMessage(a, cid, CtapHidCommand.PING, Uint8Array.of(1, 2, 3));
    expect([...(await readMessage(a, cid)).payload]).toEqual([1, 2, 3]);
    expect([...(await readMessage(b, cid)).payload]).toEqual([1, 2, 3]);
  });

  it('read resolves undefined on timeout', async () => {
    const link = stubKey().openLink();
    const started = performance.now();
    expect(await link.read(30)).toBeUndefined();
    expect(performance.now() - started).toBeGreaterThanOrEqual(25);
  });

  it('rejects a pending read with KEY_REMOVED on unplug, and later reads and writes too', async () => {
    const key = stubKey();
    const link = key.openLink();
    const pending = link.read(5000);
    await sleep(10);
    await key.close();
    await expect(pending).rejects.toSatisfy((e: unknown) => isKeytapError(e, 'KEY_REMOVED'));
    await expect(link.read(10)).rejects.toSatisfy((e: unknown) => isKeytapError(e, 'KEY_REMOVED'));
    await expect(link.write(new Uint8Array(64))).rejects.toSatisfy((e: unknown) => isKeytapError(e, 'KEY_REMOVED'));
    expect(() => key.openLink()).toThrow(/unplugged/);
  });

  it('unplugging cancels the pending applet request', async () => {
    const applet = new StubApplet();
    const key = stubKey({ mode: 'manual' }, applet);
    const link = key.openLink();
    const cid = await initChannel(link);
    await writeMessage(link, cid, CtapHidCommand.VENDOR_SECRETS, Uint8Array.of(0x00, INS_TOUCH, 0x00, 0x01));
    await expect.poll(() => applet.contexts.length).toBe(1);
    const pending = link.read(5000);
    await key.close();
    expect(applet.contexts[0]!.signal.aborted).toBe(true);
    await expect(pending).rejects.toSatisfy((e: unknown) => isKeytapError(e, 'KEY_REMOVED'));
  });

  it('rejects with CANCELLED when the signal fires, and the link stays usable', async () => {
    const link = stubKey().openLink();
    const controller = new AbortController();
    const pending = link.read(5000, controller.signal);
    controller.abort();
    await expect(pending).rejects.toSatisfy((e: unknown) => isKeytapError(e, 'CANCELLED'));
    await expect(link.read(10, AbortSignal.abort())).rejects.toSatisfy((e: unknown) => isKeytapError(e, 'CANCELLED'));
    const cid = await initChannel(link);
    expect(cid).toBeGreaterThan(0);
  });

  it('refuses writes of the wrong size, and a closed link fails with CANCELLED without affecting others', async () => {
    const key = stubKey();
    const a = key.openLink();
    const b = key.openLink();
    await expect(a.write(new Uint8Array(65))).rejects.toThrow(RangeError);
    const pending = a.read(5000);
    await a.close();
    await expect(pending).rejects.toSatisfy((e: unknown) => isKeytapError(e, 'CANCELLED'));
    await expect(a.write(new Uint8Array(64))).rejects.toSatisfy((e: unknown) => isKeytapError(e, 'CANCELLED'));
    expect(await initChannel(b)).toBeGreaterThan(0);
  });

  it('frees the channels of a link when it closes: their next use is INVALID_CHANNEL (issue 9 item 9)', async () => {
    const key = stubKey();
    const a = key.openLink();
    const b = key.openLink();
    const mine = [await initChannel(a), await initChannel(a)];
    const theirs = await initChannel(b);
    await a.close();
    for (const cid of mine) {
      await writeMessage(b, cid, CtapHidCommand.PING, Uint8Array.of(1));
      expect(await readMessage(b, cid)).toEqual({ cmd: CtapHidCommand.ERROR, payload: Uint8Array.of(CtapHidError.INVALID_CHANNEL) });
    }
    await writeMessage(b, theirs, CtapHidCommand.PING, Uint8Array.of(2));
    expect(await readMessage(b, theirs)).toEqual({ cmd: CtapHidCommand.PING, payload: Uint8Array.of(2) });
  });

  it('bounds the channels one link keeps: after 1,000 INITs its first channel is reused, another link\'s is not (issue 9 item 9)', async () => {
    const key = stubKey();
    const flood = key.openLink();
    const bystander = key.openLink();
    const kept = await initChannel(bystander);
    const first = await initChannel(flood);
    for (let i = 0; i < 1_000; i++) await initChannel(flood);
    await writeMessage(flood, first, CtapHidCommand.PING, Uint8Array.of(3));
    expect(await readMessage(flood, first)).toEqual({ cmd: CtapHidCommand.ERROR, payload: Uint8Array.of(CtapHidError.INVALID_CHANNEL) });
    await writeMessage(bystander, kept, CtapHidCommand.PING, Uint8Array.of(4));
    expect(await readMessage(bystander, kept)).toEqual({ cmd: CtapHidCommand.PING, payload: Uint8Array.of(4) });
  });

  it('touch() presses the button and setTouchPolicy() changes it', async () => {
    const key = stubKey();
    const link = key.openLink();
    const cid = await initChannel(link);
    await writeMessage(link, cid, CtapHidCommand.VENDOR_SECRETS, Uint8Array.of(0x00, INS_TOUCH, 0x00, 0x01));
    expect(await link.read(100)).toBeUndefined(); // nitrokey3: silence while it waits
    await key.touch();
    expect([...(await readMessage(link, cid)).payload]).toEqual([0x90, 0x00]);
    key.setTouchPolicy({ mode: 'auto', delayMs: 0 });
    expect(key.touchPolicy).toEqual({ mode: 'auto', delayMs: 0 });
    await writeMessage(link, cid, CtapHidCommand.VENDOR_SECRETS, Uint8Array.of(0x00, INS_TOUCH, 0x00, 0x01));
    expect([...(await readMessage(link, cid)).payload]).toEqual([0x90, 0x00]);
  });
});

describe('VirtualKey.open', () => {
  it.each(['yubikey', 'nitrokey3'] as const)('composes store, OATH applet, button and CTAPHID device (%s)', async (dialect) => {
    const key = await VirtualKey.open({ file: join(dir, `${dialect}.json`), dialect, demo: true });
    keys.push(key);
    expect(key.dialect).toBe(dialect);
    // The same four bytes, written as each kind of key writes its serial: a YubiKey's in decimal, a Nitrokey 3's in hex.
    const bytes = Buffer.from((JSON.parse(readFileSync(join(dir, `${dialect}.json`), 'utf8')) as { serial: string }).serial, 'hex');
    expect(key.serial).toBe(dialect === 'yubikey' ? String(bytes.readUInt32BE(0)) : bytes.toString('hex').toUpperCase());
    expect(key.touchPolicy).toEqual({ mode: 'auto', delayMs: 0 });
    const link = key.openLink();
    const cid = await initChannel(link);
    await writeMessage(link, cid, CtapHidCommand.VENDOR_SECRETS, OATH_SELECT);
    const { cmd, payload } = await readMessage(link, cid);
    expect(cmd).toBe(CtapHidCommand.VENDOR_SECRETS);
    expect([...payload.subarray(0, 2)]).toEqual([0x90, 0x00]); // SW first
    expect(payload[2]).toBe(0x79); // then the version TLV
  });
});
