import { describe, expect, it } from 'vitest';
import { explainForTray } from '../../src/app/explain.js';
import { explainForCli } from '../../src/cli/explain.js';
import type { KeyInterface } from '../../src/device/discovery/enumerate.js';
import { keyOver, keyOverOnly, mergeInterfaces, preferredOrder } from '../../src/device/discovery/interfaces.js';
import type { ReachPlatform } from '../../src/device/discovery/interfaces.js';
import type { ApduTransport } from '../../src/device/transport/types.js';
import { KeytapError } from '../../src/errors.js';

/** A transport that only says which interface produced it. */
function transportOf(id: string): ApduTransport {
  return { id } as unknown as ApduTransport;
}

interface FakeInterface extends KeyInterface {
  opened: string[];
}

function iface(kind: 'hid' | 'pcsc' | 'virtual', id: string, extra: Partial<KeyInterface> & { fails?: Error; log?: string[] } = {}): FakeInterface {
  const log = extra.log ?? [];
  const { fails, log: _log, ...rest } = extra;
  return {
    kind,
    id,
    name: kind === 'pcsc' ? `reader ${id}` : `Nitrokey 3 ${id}`,
    path: `/path/${id}`,
    opened: log,
    ...rest,
    open: () => {
      log.push(id);
      return fails === undefined ? Promise.resolve(transportOf(id)) : Promise.reject(fails);
    },
  };
}

const linux: ReachPlatform = { platform: 'linux', isElevated: () => Promise.resolve(false) };
const windows = (elevated: boolean): ReachPlatform => ({ platform: 'win32', isElevated: () => Promise.resolve(elevated) });
const denied = (): KeytapError => new KeytapError('PERMISSION_DENIED', 'Access denied to the HID device.');

describe('mergeInterfaces', () => {
  it('merges one HID and one CCID interface with the same identity, keeping the HID name and serial', () => {
    const hid = iface('hid', 'hid-1', { serial: 'AABBCCDD', vendorId: 0x20a0, productId: 0x42b2 });
    const ccid = iface('pcsc', 'pcsc:Reader 0');
    const keys = mergeInterfaces([ccid, hid], new Map([[hid, 'serial:AABBCCDD'], [ccid, 'serial:AABBCCDD']]), linux);
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatchObject({ id: 'hid-1', kind: 'hid', name: 'Nitrokey 3 hid-1', serial: 'AABBCCDD', vendorId: 0x20a0, identity: 'serial:AABBCCDD' });
    expect(keys[0]!.interfaces.map((k) => k.id)).toEqual(['hid-1', 'pcsc:Reader 0']);
  });

  it('keeps keys with different identities apart', () => {
    const hid = iface('hid', 'hid-1');
    const ccid = iface('pcsc', 'pcsc:Reader 0');
    const keys = mergeInterfaces([hid, ccid], new Map([[hid, 'serial:01'], [ccid, 'serial:02']]), linux);
    expect(keys.map((k) => k.interfaces.map((i) => i.id))).toEqual([['hid-1'], ['pcsc:Reader 0']]);
  });

  it('keeps interfaces without an identity apart', () => {
    const hid = iface('hid', 'hid-1');
    const ccid = iface('pcsc', 'pcsc:Reader 0');
    const keys = mergeInterfaces([hid, ccid], new Map(), linux);
    expect(keys.map((k) => k.id)).toEqual(['hid-1', 'pcsc:Reader 0']);
    expect(keys.every((k) => k.interfaces.length === 1 && k.identity === undefined)).toBe(true);
  });

  it('does not merge two HID interfaces telling one identity (copies of one state)', () => {
    const a = iface('virtual', 'virtual:a');
    const b = iface('virtual', 'virtual:b');
    const keys = mergeInterfaces([a, b], new Map([[a, 'device-id:x'], [b, 'device-id:x']]), linux);
    expect(keys.map((k) => k.id)).toEqual(['virtual:a', 'virtual:b']);
  });

  it('does not merge when a third interface tells the same identity', () => {
    const a = iface('virtual', 'virtual:a');
    const b = iface('virtual', 'virtual:b');
    const c = iface('pcsc', 'pcsc:R');
    const ids = new Map([[a, 'i'], [b, 'i'], [c, 'i']]);
    expect(mergeInterfaces([a, b, c], ids, linux)).toHaveLength(3);
  });
});

describe('preferredOrder and keyOver', () => {
  it('puts HID (and a virtual socket) first on linux and CCID first on win32, keeping a source order otherwise', () => {
    const list = [iface('pcsc', 'p1'), iface('virtual', 'v'), iface('pcsc', 'p2'), iface('hid', 'h')];
    expect(preferredOrder(list, 'linux').map((k) => k.id)).toEqual(['v', 'h', 'p1', 'p2']);
    expect(preferredOrder(list, 'darwin').map((k) => k.id)).toEqual(['v', 'h', 'p1', 'p2']);
    expect(preferredOrder(list, 'win32').map((k) => k.id)).toEqual(['p1', 'p2', 'v', 'h']);
  });

  it('takes id, kind and path from the preferred interface but the name from the HID side', () => {
    const hid = iface('hid', 'hid-1');
    const ccid = iface('pcsc', 'pcsc:R');
    const onWindows = keyOver([hid, ccid], windows(false), 'serial:1');
    expect(onWindows).toMatchObject({ id: 'pcsc:R', kind: 'pcsc', path: '/path/pcsc:R', name: 'Nitrokey 3 hid-1' });
    expect(onWindows.interfaces.map((k) => k.id)).toEqual(['pcsc:R', 'hid-1']);
    expect(keyOver([hid, ccid], linux, 'serial:1')).toMatchObject({ id: 'hid-1', kind: 'hid', path: '/path/hid-1' });
  });

  it('opens the preferred interface first and falls back to the next when it throws', async () => {
    const log: string[] = [];
    const hid = iface('hid', 'hid-1', { log });
    const ccid = iface('pcsc', 'pcsc:R', { log, fails: new KeytapError('KEY_REMOVED', 'reader gone') });
    expect(await keyOver([hid, ccid], linux).open()).toEqual(transportOf('hid-1'));
    expect(log).toEqual(['hid-1']);
    log.length = 0;
    expect(await keyOver([hid, ccid], windows(false)).open()).toEqual(transportOf('hid-1'));
    expect(log).toEqual(['pcsc:R', 'hid-1']);
  });

  it('throws the first error when no interface opens (not win32)', async () => {
    const first = new KeytapError('KEY_REMOVED', 'first');
    const key = keyOver([iface('hid', 'h', { fails: first }), iface('pcsc', 'p', { fails: new KeytapError('KEY_REMOVED', 'second') })], linux);
    await expect(key.open()).rejects.toBe(first);
  });

  it('does not fall back after a CANCELLED open', async () => {
    const log: string[] = [];
    const cancelled = new KeytapError('CANCELLED', 'cancelled');
    const key = keyOver([iface('hid', 'h', { log, fails: cancelled }), iface('pcsc', 'p', { log })], linux);
    await expect(key.open()).rejects.toBe(cancelled);
    expect(log).toEqual(['h']);
  });

  it('does not fall back once the signal is aborted', async () => {
    const log: string[] = [];
    const controller = new AbortController();
    const aborted = new Error('aborted');
    const hid: KeyInterface = { ...iface('hid', 'h'), open: () => { log.push('h'); controller.abort(); return Promise.reject(aborted); } };
    const key = keyOver([hid, iface('pcsc', 'p', { log })], linux);
    await expect(key.open(controller.signal)).rejects.toBe(aborted);
    expect(log).toEqual(['h']);
  });

  it('keyOverOnly keeps the key id and name and opens only that interface', async () => {
    const log: string[] = [];
    const key = keyOver([iface('hid', 'h', { log, serial: 'S' }), iface('pcsc', 'p', { log })], linux, 'serial:S');
    const ccidOnly = keyOverOnly(key, 'ccid', linux)!;
    expect(ccidOnly).toMatchObject({ id: 'h', name: 'Nitrokey 3 h', serial: 'S', identity: 'serial:S', kind: 'pcsc', path: '/path/p' });
    expect(ccidOnly.interfaces.map((k) => k.id)).toEqual(['p']);
    await ccidOnly.open();
    expect(log).toEqual(['p']);
    expect(keyOverOnly(keyOver([iface('hid', 'h')], linux), 'ccid', linux)).toBeUndefined();
  });
});

describe('the Windows HID elevation message', () => {
  it('tells a non-elevated process to elevate or use CCID when HID is denied and CCID fails', async () => {
    const hidError = denied();
    const key = keyOver([iface('hid', 'h', { fails: hidError }), iface('pcsc', 'p', { fails: new KeytapError('KEY_REMOVED', 'no card') })], windows(false));
    const error = await key.open().then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(KeytapError);
    const keytapError = error as KeytapError;
    expect(keytapError.code).toBe('PERMISSION_DENIED');
    expect(keytapError.detail).toEqual({ kind: 'hid-needs-elevation', keyName: 'Nitrokey 3 h', smartCard: true });
    expect(keytapError.cause).toBe(hidError);
    expect(explainForCli(keytapError).hint).toMatch(/Administrator.*SCardSvr/su);
    expect(explainForTray(keytapError).hint).toMatch(/Smart Card service.*Administrator/su);
  });

  it('a HID-only Nitrokey still names the smart-card way out', async () => {
    const key = keyOver([iface('hid', 'h', { fails: denied() })], windows(false));
    await expect(key.open()).rejects.toMatchObject({ code: 'PERMISSION_DENIED', detail: { kind: 'hid-needs-elevation', smartCard: true } });
  });

  it('a Feitian HID-only key gets smartCard false and words that only name Administrator', async () => {
    const key = keyOver([iface('hid', 'f', { fails: denied(), dialect: 'feitian' })], windows(false));
    const error = (await key.open().then(() => undefined, (e: unknown) => e)) as KeytapError;
    expect(error.detail).toEqual({ kind: 'hid-needs-elevation', keyName: 'Nitrokey 3 f', smartCard: false });
    expect(error.message).not.toMatch(/smart-card/u);
    expect(explainForCli(error).hint).toMatch(/Administrator/u);
    expect(explainForCli(error).hint).not.toMatch(/SCardSvr/u);
    expect(explainForTray(error).hint).toMatch(/Administrator/u);
    expect(explainForTray(error).hint).not.toMatch(/Smart Card/u);
  });

  it('an elevated process gets the original error', async () => {
    const hidError = denied();
    const key = keyOver([iface('hid', 'h', { fails: hidError })], windows(true));
    await expect(key.open()).rejects.toBe(hidError);
  });

  it('outside Windows a denied HID open stays the original error', async () => {
    const hidError = denied();
    await expect(keyOver([iface('hid', 'h', { fails: hidError })], linux).open()).rejects.toBe(hidError);
  });
});
