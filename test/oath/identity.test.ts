import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { Tag } from '../../src/device/oath/constants.js';
import { oathDeviceId, oathIdentity } from '../../src/device/oath/identity.js';

/** yubikit's device id computed by Python's hashlib, independently of our code. */
function pythonDeviceId(salt: Uint8Array): string {
  const script = 'import sys, hashlib, base64; s = bytes.fromhex(sys.argv[1]); print(base64.b64encode(hashlib.sha256(s).digest()[:16]).decode().rstrip("="))';
  return execFileSync('python3', ['-c', script, Buffer.from(salt).toString('hex')], { encoding: 'utf8' }).trim();
}

const SALT = Uint8Array.from([0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0]);

describe('oathDeviceId', () => {
  it('matches yubikit (Base64 of SHA-256(salt)[:16], unpadded) computed by Python', () => {
    const expected = pythonDeviceId(SALT);
    expect(expected).toMatch(/^[A-Za-z0-9+/]{22}$/u);
    expect(oathDeviceId(SALT)).toBe(expected);
    const other = Uint8Array.from({ length: 8 }, (_, i) => 255 - i);
    expect(oathDeviceId(other)).toBe(pythonDeviceId(other));
  });
});

describe('oathIdentity', () => {
  it('prefers the serial (tag 8F) as upper-case hex over the salt', () => {
    const tlvs = [
      { tag: Tag.NAME, value: SALT },
      { tag: Tag.SERIAL, value: Uint8Array.from([0xa1, 0xb2, 0x0c, 0x04]) },
    ];
    expect(oathIdentity(tlvs)).toBe('serial:A1B20C04');
  });

  it('falls back to the device id of the salt (tag 71)', () => {
    expect(oathIdentity([{ tag: Tag.NAME, value: SALT }])).toBe(`device-id:${pythonDeviceId(SALT)}`);
  });

  it('tells nothing for an answer with neither, or with empty values', () => {
    expect(oathIdentity([])).toBeUndefined();
    expect(oathIdentity([{ tag: Tag.SERIAL, value: new Uint8Array() }, { tag: Tag.NAME, value: new Uint8Array() }])).toBeUndefined();
  });
});
