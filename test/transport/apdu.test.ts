// decodeApdu is the inverse of encodeApdu, and refuses lengths that do not add up (the emulator
// answers those 6700; the trace falls back to showing the header).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeApdu, encodeApdu } from '../../src/device/transport/types.js';

const byte = fc.integer({ min: 0, max: 255 });

describe('decodeApdu', () => {
  it('gives back what encodeApdu encoded, short and extended', () => {
    fc.assert(
      fc.property(byte, byte, byte, byte, fc.uint8Array({ maxLength: 600 }), (cla, ins, p1, p2, data) => {
        const decoded = decodeApdu(encodeApdu(cla, ins, p1, p2, data));
        expect(decoded).toMatchObject({ cla, ins, p1, p2, lc: data.length === 0 ? undefined : data.length, le: undefined });
        expect(Array.from(decoded!.data)).toEqual(Array.from(data));
      }),
    );
  });

  it('reads Le in every case that has one', () => {
    expect(decodeApdu(Uint8Array.of(0, 0xa5, 0, 0, 0))).toMatchObject({ lc: undefined, le: 0 });
    expect(decodeApdu(Uint8Array.of(0, 0x01, 0, 0, 2, 0xaa, 0xbb, 0x10))).toMatchObject({ lc: 2, le: 0x10 });
    expect(decodeApdu(Uint8Array.of(0, 0xa5, 0, 0, 0, 0x01, 0x00))).toMatchObject({ lc: undefined, le: 256 });
    expect(decodeApdu(Uint8Array.of(0, 0x01, 0, 0, 0, 0, 1, 0xaa, 0x00, 0x20))).toMatchObject({ lc: 1, le: 0x20 });
  });

  it('refuses lengths that do not add up', () => {
    expect(decodeApdu(Uint8Array.of(0, 0xa1, 0))).toBeUndefined();
    expect(decodeApdu(Uint8Array.of(0, 0x01, 0, 0, 5, 0x71, 0x01))).toBeUndefined();
    expect(decodeApdu(Uint8Array.of(0, 0x01, 0, 0, 0, 0))).toBeUndefined();
    expect(decodeApdu(Uint8Array.of(0, 0x01, 0, 0, 0, 0, 0, 0xaa))).toBeUndefined();
  });
});
