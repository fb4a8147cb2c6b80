// Discovery lists Feitian/HyperFIDO HOTP keys by USB id on their FIDO interface, as keys of the
// 'feitian' dialect, and the udev rules let the user open them.
import { describe, expect, it } from 'vitest';
import { hidInterfaces } from '../../src/device/discovery/enumerate.js';
import { udevRules } from '../../src/device/discovery/known-keys.js';
import { apduFramingFor } from '../../src/device/open.js';

const fido = { usagePage: 0xf1d0, usage: 1, interface: 1 };

describe('Feitian HOTP keys in discovery', () => {
  it('2CCF:0854 on the FIDO usage page is a feitian key by USB id; 096E:0854 (defined by hyperhotp, never matched), other usage pages and unknown PIDs are not', () => {
    const keys = hidInterfaces([
      { vendorId: 0x2ccf, productId: 0x0854, path: '/dev/hidraw4', ...fido },
      { vendorId: 0x2ccf, productId: 0x0854, path: '/dev/hidraw5', usagePage: 0x0001, usage: 6, interface: 0 },
      { vendorId: 0x096e, productId: 0x0854, path: '/dev/hidraw6', ...fido },
      { vendorId: 0x2ccf, productId: 0x9999, path: '/dev/hidraw7', ...fido },
    ]);
    expect(keys.map((k) => [k.path, k.name, k.dialect])).toEqual([
      ['/dev/hidraw4', 'HyperFIDO HOTP key', 'feitian'],
    ]);
    expect(apduFramingFor('feitian')).toBe('msg');
    expect(apduFramingFor('nitrokey3')).toBe('vendor-secrets');
  });

  it('the udev rules cover 2CCF:0854; no rule of its own for 096E:0854 until a real key shows that id', () => {
    expect(udevRules()).toContain('ATTRS{idVendor}=="2ccf", ATTRS{idProduct}=="0854", TAG+="uaccess"');
    expect(udevRules()).not.toContain('ATTRS{idVendor}=="096e"');
  });
});
