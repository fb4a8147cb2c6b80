import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { enumerateKeys, hidInterfaces } from '../../src/device/discovery/enumerate.js';
import { KNOWN_KEYS, findKnownKey, linuxPermissionHint, packagedUdevRules, udevRules } from '../../src/device/discovery/known-keys.js';
import type { HidDeviceInfo } from '../../src/device/discovery/hid-devices.js';
import { announceLive, closeLiveAnnouncements } from './live-announce.js';

const device = (extra: Partial<HidDeviceInfo>): HidDeviceInfo => ({
  vendorId: 0x20a0,
  productId: 0x42b2,
  path: '/dev/hidraw3',
  interface: 1,
  usagePage: 0xf1d0,
  usage: 1,
  product: 'Nitrokey 3',
  ...extra,
});

describe('known keys', () => {
  it('knows the Nitrokey 3 as OATH over HID and YubiKeys as OATH over CCID only', () => {
    expect(findKnownKey(0x20a0, 0x42b2)).toMatchObject({ name: 'Nitrokey 3', oathOverHid: true, dialect: 'nitrokey3' });
    expect(findKnownKey(0x1050, 0x0407)).toMatchObject({ oathOverHid: false, oathOverCcid: true });
    expect(findKnownKey(0x20a0, 0x42b3)).toBeUndefined(); // Safetech SafeKey, not an NK3 (docs/protocols.md §2.1)
    expect(findKnownKey(0x20a0, 0x42f3)).toBeUndefined(); // Nitrokey Passkey: FIDO only
    expect(new Set(KNOWN_KEYS.map((k) => `${k.vendorId}:${k.productId}`)).size).toBe(KNOWN_KEYS.length);
  });

  it('writes udev rules with uaccess for the Nitrokey 3 and for FIDO keys', () => {
    const rules = udevRules();
    expect(rules).toContain('KERNEL=="hidraw*", SUBSYSTEM=="hidraw", ATTRS{idVendor}=="20a0", ATTRS{idProduct}=="42b2", TAG+="uaccess"');
    expect(rules).toContain('ENV{ID_SECURITY_TOKEN}=="1", TAG+="uaccess"');
    expect(rules).toContain('udevadm control --reload-rules && sudo udevadm trigger');
    expect(rules).not.toContain('1050'); // YubiKey OATH is not reached over HID
  });

  it('the package\'s rules are the same rules, with a header that says where the file came from', () => {
    const rulesOnly = (text: string) => text.split('\n').filter((line) => line !== '' && !line.startsWith('#'));
    const packaged = packagedUdevRules();
    expect(rulesOnly(packaged)).toEqual(rulesOnly(udevRules()));
    expect(rulesOnly(packaged)).toContain('KERNEL=="hidraw*", SUBSYSTEM=="hidraw", ATTRS{idVendor}=="20a0", ATTRS{idProduct}=="42b2", TAG+="uaccess"');
    expect(packaged).toContain('# Installed by the keytap package. To change it, copy it to /etc/udev/rules.d/70-keytap.rules');
    expect(packaged).not.toContain('Save as');
    expect(packaged.endsWith('TAG+="uaccess"\n')).toBe(true);
  });

  it('the permission hint covers a packaged keytap as well as one without the package', () => {
    const hint = linuxPermissionHint();
    expect(hint).toContain('its udev rule is /usr/lib/udev/rules.d/70-keytap.rules already: plug the key in again');
    expect(hint).toContain('Otherwise install a udev rule');
    expect(hint).toContain('Put these lines in /etc/udev/rules.d/70-keytap.rules');
  });
});

describe('hidInterfaces', () => {
  it('keeps FIDO interfaces of OATH-over-HID keys, once per path', () => {
    const keys = hidInterfaces([
      device({}),
      device({}), // listed once per collection on some systems
      device({ path: '/dev/hidraw2', usagePage: 0xff00 }), // another interface of the same key
      device({ path: '/dev/hidraw4', vendorId: 0x1050, productId: 0x0407 }), // YubiKey: CCID only
      device({ path: '/dev/hidraw5', productId: 0x42f3 }), // Nitrokey Passkey
      device({ path: undefined }),
      device({ path: '/dev/hidraw7', serialNumber: '' }),
      device({ path: '/dev/hidraw8', serialNumber: 'ABC' }),
    ]);
    expect(keys.map((k) => k.path)).toEqual(['/dev/hidraw3', '/dev/hidraw7', '/dev/hidraw8']);
    expect(keys[0]).toMatchObject({ id: '/dev/hidraw3', kind: 'hid', name: 'Nitrokey 3', vendorId: 0x20a0, productId: 0x42b2, dialect: 'nitrokey3' });
    expect(keys[1]!.usbSerial).toBeUndefined();
    expect(keys[2]!.usbSerial).toBe('ABC');
  });
});

describe('enumerateKeys', () => {
  it('lists running virtual keys without loading node-hid when HID is off', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keytap-enum-'));
    const previous = process.env.KEYTAP_RUNTIME_DIR;
    process.env.KEYTAP_RUNTIME_DIR = dir;
    try {
      await announceLive({ id: 'vk-e', file: '/x/demo.json', socket: join(dir, 'vk-e.sock'), pid: process.pid, dialect: 'yubikey', startedAt: 'now' });
      const keys = await enumerateKeys({ hid: false });
      expect(keys.map((k) => [k.id, k.name, k.kind])).toEqual([['virtual:vk-e', 'virtual key demo.json', 'virtual']]);
      const cache = createRequire(import.meta.url).cache;
      expect(Object.keys(cache).some((path) => path.includes(`${join('node_modules', 'node-hid')}`))).toBe(false);
    } finally {
      await closeLiveAnnouncements();
      if (previous === undefined) delete process.env.KEYTAP_RUNTIME_DIR;
      else process.env.KEYTAP_RUNTIME_DIR = previous;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('lists HID keys through node-hid (none on a machine without keys)', async () => {
    const errors: unknown[] = [];
    const keys = await enumerateKeys({ virtual: false, onError: (error) => errors.push(error) });
    // On CI there is no key; what matters is that the real node-hid path runs and answers.
    expect(Array.isArray(keys)).toBe(true);
    expect(errors).toEqual([]);
  });
});
