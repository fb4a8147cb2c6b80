// "Unknown keys that answer one of the known protocols are then used with it" (issue 12): a FIDO
// HID device whose USB id keytap does not know, but whose vendor id is Nitrokey's (asked OATH over
// 0x70) or Feitian's/Hypersecu's (asked the Feitian HOTP application), is asked until it gives a
// definite answer, all such devices at once within one budget, and is then listed and opened as such a key.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { forgetUnknownFidoDevices, onUnknownFidoChange, unknownFidoKeys } from '../../src/device/discovery/enumerate.js';
import type { HidDeviceInfo } from '../../src/device/discovery/hid-devices.js';
import { openAnyKey, openOathSession } from '../../src/device/open.js';
import { CtapHidCommand, parsePacket } from '../../src/device/transport/ctaphid-frames.js';
import type { HidLink } from '../../src/device/transport/types.js';
import type { KeyDialect } from '../../src/device/key-dialect.js';
import { VirtualKey } from '../../src/emulator/virtual-key.js';
import { tempDir } from '../support/cli.js';
import { FakeLink, message, scriptedKey } from '../transport/fake-link.js';

const dir = tempDir('keytap-unknown-fido-');
const keys: VirtualKey[] = [];
afterAll(async () => {
  for (const key of keys) await key.close();
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => forgetUnknownFidoDevices());

const fido = { usagePage: 0xf1d0, usage: 1, interface: 1 };

async function virtualKey(dialect: KeyDialect, name: string): Promise<VirtualKey> {
  const key = await VirtualKey.open({ file: join(dir, `${name}.json`), dialect, touch: { mode: 'auto', delayMs: 0 } });
  keys.push(key);
  return key;
}

describe('unknown FIDO devices in discovery', () => {
  it('one answering OATH over 0x70 is listed as a Nitrokey-3-dialect key and opens as one; one answering the Feitian application as a Feitian key; a silent one and known or non-FIDO devices are not; other vendors are not even opened', async () => {
    const oath = await virtualKey('nitrokey3', 'oath');
    const feitian = await virtualKey('feitian', 'feitian');
    const opened: string[] = [];
    const sent = new Map<string, number[]>();
    const links: Record<string, () => HidLink> = {
      '/dev/hidraw10': () => oath.openLink(),
      '/dev/hidraw11': () => feitian.openLink(),
      '/dev/hidraw12': () => new FakeLink(),
      '/dev/hidraw16': () => oath.openLink(),
    };
    const open = (path: string): Promise<HidLink> => {
      opened.push(path);
      const link = links[path]!();
      // What discovery sends: the CTAPHID commands of the requests, per path.
      const write = link.write.bind(link);
      link.write = (report) => {
        const packet = parsePacket(report);
        if (packet.kind === 'init') sent.set(path, [...(sent.get(path) ?? []), packet.cmd]);
        return write(report);
      };
      return Promise.resolve(link);
    };
    const devices: HidDeviceInfo[] = [
      { vendorId: 0x20a0, productId: 0x4300, path: '/dev/hidraw10', product: 'Open Key', ...fido },
      { vendorId: 0x096e, productId: 0x0854, path: '/dev/hidraw11', ...fido }, // no known key since hyperhotp never matches it: asked
      { vendorId: 0x20a0, productId: 0x4301, path: '/dev/hidraw12', ...fido },
      // pid.codes: Solo 1 debug builds take 0x70 for CTAPHID_PROBE, so discovery sends it nothing, though it would answer.
      { vendorId: 0x1209, productId: 0x5070, path: '/dev/hidraw16', ...fido },
      { vendorId: 0x20a0, productId: 0x42b2, path: '/dev/hidraw13', ...fido }, // a known Nitrokey 3: hidInterfaces' business
      { vendorId: 0x1050, productId: 0x0407, path: '/dev/hidraw14', ...fido }, // a known YubiKey: no OATH over HID
      { vendorId: 0x1209, productId: 0x0004, path: '/dev/hidraw15', usagePage: 0x0001, usage: 6, interface: 0 },
    ];
    const found = await unknownFidoKeys(devices, open);
    expect(found.map((k) => [k.path, k.name, k.dialect, k.kind])).toEqual([
      ['/dev/hidraw10', 'Open Key (20a0:4300)', 'nitrokey3', 'hid'],
      ['/dev/hidraw11', 'FIDO key 096e:0854', 'feitian', 'hid'],
    ]);
    expect(opened.sort()).toEqual(['/dev/hidraw10', '/dev/hidraw11', '/dev/hidraw12']);
    // Only INIT and the question of the vendor (0x70 to Nitrokey's id; MSG for SELECT and CHECK to
    // Feitian's): no U2F, no CBOR, nothing that writes.
    expect(sent.get('/dev/hidraw10')).toEqual([CtapHidCommand.INIT, CtapHidCommand.VENDOR_SECRETS]);
    expect(sent.get('/dev/hidraw11')).toEqual([CtapHidCommand.INIT, CtapHidCommand.MSG, CtapHidCommand.MSG]);
    expect(sent.get('/dev/hidraw12')).toEqual([CtapHidCommand.INIT]);

    // … and used with it: an OATH session on the one, the Feitian session on the other.
    const session = await openOathSession(found[0]!);
    try {
      expect(session.session.dialect).toBe('nitrokey3');
      expect(await session.session.list()).toEqual([]);
    } finally {
      await session.close();
    }
    const hotp = await openAnyKey(found[1]!);
    try {
      expect(hotp.kind).toBe('feitian');
    } finally {
      await hotp.key.close();
    }
  });

  it('asks each device once per plug: not again at the next rescan, again after it left the listing', async () => {
    const oath = await virtualKey('nitrokey3', 'replug');
    let opens = 0;
    const open = (): Promise<HidLink> => {
      opens++;
      return Promise.resolve(oath.openLink());
    };
    const device: HidDeviceInfo = { vendorId: 0x20a0, productId: 0x4310, path: '/dev/hidraw20', ...fido };
    expect((await unknownFidoKeys([device], open)).length).toBe(1);
    expect((await unknownFidoKeys([device], open)).length).toBe(1);
    expect(opens).toBe(1);
    expect(await unknownFidoKeys([], open)).toEqual([]); // unplugged
    expect((await unknownFidoKeys([device], open)).length).toBe(1);
    expect(opens).toBe(2);
  });

  it('a device that cannot be opened or does not answer is left out, not an error, and asked again after a backoff (a browser may hold it); one that says no is not asked again', async () => {
    const oath = await virtualKey('nitrokey3', 'later');
    const notOath = await virtualKey('feitian', 'refuses-0x70');
    let clock = 0;
    const now = (): number => clock;
    const opens = new Map<string, number>();
    let openable = false;
    const open = (path: string): Promise<HidLink> => {
      opens.set(path, (opens.get(path) ?? 0) + 1);
      if (path === '/dev/hidraw22') return Promise.resolve(notOath.openLink());
      return openable ? Promise.resolve(oath.openLink()) : Promise.reject(new Error('EBUSY'));
    };
    const busy: HidDeviceInfo = { vendorId: 0x20a0, productId: 0x4311, path: '/dev/hidraw21', ...fido };
    const refuses: HidDeviceInfo = { vendorId: 0x20a0, productId: 0x4312, path: '/dev/hidraw22', ...fido };
    expect(await unknownFidoKeys([busy, refuses], open, { now })).toEqual([]);
    clock = 1_000; // within the backoff: not asked again
    openable = true;
    expect(await unknownFidoKeys([busy, refuses], open, { now })).toEqual([]);
    expect(Object.fromEntries(opens)).toEqual({ '/dev/hidraw21': 1, '/dev/hidraw22': 1 });
    clock = 60_000; // after it: the busy one is asked again and now answers; the one that refused 0x70 stays refused
    expect((await unknownFidoKeys([busy, refuses], open, { now })).map((k) => k.path)).toEqual(['/dev/hidraw21']);
    expect(Object.fromEntries(opens)).toEqual({ '/dev/hidraw21': 2, '/dev/hidraw22': 1 });
  });

  it('a Feitian-vendor device is a Feitian key only when CHECK ends in 90 00: SELECT 9000 then CHECK 6D00 is not one', async () => {
    let opens = 0;
    const open = (): Promise<HidLink> => {
      opens++;
      // SELECT answers 90 00, CHECK 6D 00 (a short answer that would read as "not programmed").
      let msgs = 0;
      const { link } = scriptedKey((request) => message(request.cid, request.cmd, msgs++ === 0 ? [0x90, 0x00] : [0x6d, 0x00]));
      return Promise.resolve(link);
    };
    const device: HidDeviceInfo = { vendorId: 0x096e, productId: 0x0880, path: '/dev/hidraw23', ...fido };
    expect(await unknownFidoKeys([device], open, { now: () => 0 })).toEqual([]);
    expect(await unknownFidoKeys([device], open, { now: () => 1e9 })).toEqual([]);
    expect(opens).toBe(1); // a definite no
  });

  it('all devices are asked at once, and one that takes longer than the budget does not hold up the listing: it is used at the next one', async () => {
    const oath = await virtualKey('nitrokey3', 'fast');
    const slow = await virtualKey('nitrokey3', 'slow');
    let letSlowOpen!: () => void;
    const slowOpened = new Promise<void>((resolve) => (letSlowOpen = resolve));
    const opened: string[] = [];
    const open = async (path: string): Promise<HidLink> => {
      opened.push(path);
      if (path === '/dev/hidraw30') await slowOpened;
      return (path === '/dev/hidraw30' ? slow : oath).openLink();
    };
    const devices: HidDeviceInfo[] = [
      { vendorId: 0x20a0, productId: 0x4320, path: '/dev/hidraw30', ...fido },
      { vendorId: 0x20a0, productId: 0x4321, path: '/dev/hidraw31', ...fido },
    ];
    // The first device's open never returns during this listing; the second is listed all the same.
    expect((await unknownFidoKeys(devices, open, { budgetMs: 200 })).map((k) => k.path)).toEqual(['/dev/hidraw31']);
    expect(opened).toEqual(['/dev/hidraw30', '/dev/hidraw31']);
    // Its late answer is announced (the tray's watcher rescans on it) …
    const announced = new Promise<void>((resolve) => {
      const unsubscribe = onUnknownFidoChange(() => {
        unsubscribe();
        resolve();
      });
    });
    letSlowOpen();
    await announced;
    // … and the next listing has it at once.
    expect((await unknownFidoKeys(devices, open, { budgetMs: 0 })).map((k) => k.path)).toEqual(['/dev/hidraw30', '/dev/hidraw31']);
    expect(opened).toEqual(['/dev/hidraw30', '/dev/hidraw31']); // the identification left running was used, not a new one
  });
});
