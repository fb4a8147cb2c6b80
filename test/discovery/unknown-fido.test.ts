// "Unknown keys that answer one of the known protocols are then used with it" (issue 12): a FIDO
// HID device whose USB id keytap does not know is asked once per plug whether it answers OATH over
// 0x70 or the Feitian HOTP application, and is then listed and opened as such a key.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { forgetUnknownFidoDevices, unknownFidoKeys } from '../../src/device/discovery/enumerate.js';
import type { HidDeviceInfo } from '../../src/device/discovery/hid-devices.js';
import { openAnyKey, openOathSession } from '../../src/device/open.js';
import { CtapHidCommand, parsePacket } from '../../src/device/transport/ctaphid-frames.js';
import type { HidLink } from '../../src/device/transport/types.js';
import type { KeyDialect } from '../../src/device/key-dialect.js';
import { VirtualKey } from '../../src/emulator/virtual-key.js';
import { tempDir } from '../support/cli.js';
import { FakeLink } from '../transport/fake-link.js';

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
  it('one answering OATH over 0x70 is listed as a Nitrokey-3-dialect key and opens as one; one answering the Feitian application as a Feitian key; a silent one and known or non-FIDO devices are not', async () => {
    const oath = await virtualKey('nitrokey3', 'oath');
    const feitian = await virtualKey('feitian', 'feitian');
    const opened: string[] = [];
    const sent = new Map<string, number[]>();
    const links: Record<string, () => HidLink> = {
      '/dev/hidraw10': () => oath.openLink(),
      '/dev/hidraw11': () => feitian.openLink(),
      '/dev/hidraw12': () => new FakeLink(),
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
      { vendorId: 0x1209, productId: 0x0001, path: '/dev/hidraw10', product: 'Open Key', ...fido },
      { vendorId: 0x1209, productId: 0x0002, path: '/dev/hidraw11', ...fido },
      { vendorId: 0x1209, productId: 0x0003, path: '/dev/hidraw12', ...fido },
      { vendorId: 0x20a0, productId: 0x42b2, path: '/dev/hidraw13', ...fido }, // a known Nitrokey 3: hidDescriptors' business
      { vendorId: 0x1050, productId: 0x0407, path: '/dev/hidraw14', ...fido }, // a known YubiKey: no OATH over HID
      { vendorId: 0x1209, productId: 0x0004, path: '/dev/hidraw15', usagePage: 0x0001, usage: 6, interface: 0 },
    ];
    const found = await unknownFidoKeys(devices, open);
    expect(found.map((k) => [k.path, k.name, k.dialect, k.kind])).toEqual([
      ['/dev/hidraw10', 'Open Key (1209:0001)', 'nitrokey3', 'hid'],
      ['/dev/hidraw11', 'FIDO key 1209:0002', 'feitian', 'hid'],
    ]);
    expect(opened.sort()).toEqual(['/dev/hidraw10', '/dev/hidraw11', '/dev/hidraw12']);
    // Only INIT and the SELECTs (0x70; MSG for SELECT and CHECK): no U2F, no CBOR, nothing that writes.
    expect(sent.get('/dev/hidraw10')).toEqual([CtapHidCommand.INIT, CtapHidCommand.VENDOR_SECRETS]);
    expect(sent.get('/dev/hidraw11')).toEqual([CtapHidCommand.INIT, CtapHidCommand.VENDOR_SECRETS, CtapHidCommand.MSG, CtapHidCommand.MSG]);
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
    const device: HidDeviceInfo = { vendorId: 0x1209, productId: 0x0010, path: '/dev/hidraw20', ...fido };
    expect((await unknownFidoKeys([device], open)).length).toBe(1);
    expect((await unknownFidoKeys([device], open)).length).toBe(1);
    expect(opens).toBe(1);
    expect(await unknownFidoKeys([], open)).toEqual([]); // unplugged
    expect((await unknownFidoKeys([device], open)).length).toBe(1);
    expect(opens).toBe(2);
  });

  it('a device that cannot be opened is left out, not an error', async () => {
    const device: HidDeviceInfo = { vendorId: 0x1209, productId: 0x0011, path: '/dev/hidraw21', ...fido };
    expect(await unknownFidoKeys([device], () => Promise.reject(new Error('EACCES')))).toEqual([]);
  });
});
