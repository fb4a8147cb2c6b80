// Base32 and hex for secrets: RFC 4648 §10 vectors, the tolerant reading users need, and a
// comparison with Python's base64 module on random bytes.
import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isKeytapError } from '../../src/errors.js';
import { base32Decode, base32Encode, hexDecode, hexEncode, parseSecret } from '../../src/otp/index.js';

const bytes = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'latin1'));
const hex = (data: Uint8Array): string => Buffer.from(data).toString('hex');

/** Expects BAD_INPUT whose message and hint do not repeat the input. */
function expectBadInput(action: () => unknown, input: string): void {
  let thrown: unknown;
  try {
    action();
  } catch (error) {
    thrown = error;
  }
  expect(isKeytapError(thrown, 'BAD_INPUT'), `expected BAD_INPUT for ${JSON.stringify(input)}, got ${String(thrown)}`).toBe(true);
  const { message, hint } = thrown as { message: string; hint?: string };
  const core = input.replace(/^hex:/iu, '').trim();
  if (core.length >= 4) {
    expect(message).not.toContain(core);
    expect(hint ?? '').not.toContain(core);
  }
}

// RFC 4648 §10.
const RFC4648_BASE32: readonly [string, string][] = [
  ['', ''],
  ['f', 'MY======'],
  ['fo', 'MZXQ===='],
  ['foo', 'MZXW6==='],
  ['foob', 'MZXW6YQ='],
  ['fooba', 'MZXW6YTB'],
  ['foobar', 'MZXW6YTBOI======'],
];

describe('Base32', () => {
  it.each(RFC4648_BASE32)('RFC 4648: %j ↔ %s', (plain, encoded) => {
    expect(base32Encode(bytes(plain))).toBe(encoded.replace(/=+$/u, ''));
    expect(hex(base32Decode(encoded))).toBe(hex(bytes(plain)));
    expect(hex(base32Decode(encoded.replace(/=+$/u, '')))).toBe(hex(bytes(plain)));
    expect(hex(base32Decode(encoded.toLowerCase()))).toBe(hex(bytes(plain)));
  });

  it('decodes the docs/seed-formats.md §4.1 example', () => {
    expect(hex(base32Decode('JBSWY3DPEHPK3PXP'))).toBe('48656c6c6f21deadbeef');
    expect(base32Encode(Buffer.from('48656c6c6f21deadbeef', 'hex'))).toBe('JBSWY3DPEHPK3PXP');
  });

  it('decodes the RFC 4226/6238 seeds (docs/seed-formats.md §5)', () => {
    expect(Buffer.from(base32Decode('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ')).toString('latin1')).toBe('12345678901234567890');
    expect(Buffer.from(base32Decode('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA')).toString('latin1')).toBe(
      '12345678901234567890123456789012',
    );
    expect(base32Encode(bytes('12345678901234567890123456789012'))).toBe('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA');
  });

  it.each([
    'jbswy3dpehpk3pxp',
    'JbSwY3dPeHpK3pXp',
    'JBSW Y3DP EHPK 3PXP',
    'jbsw-y3dp-ehpk-3pxp',
    '  JBSWY3DPEHPK3PXP\n',
    'JBSWY3DP\tEHPK3PXP',
    'JBSWY3DPEHPK3PXP======',
    'JBSWY3DPEHPK3PXP = =',
  ])('reads %j tolerantly', (text) => {
    expect(hex(base32Decode(text))).toBe('48656c6c6f21deadbeef');
  });

  it.each([
    'JBSWY3DPEHPK3PX0', // 0 is not Base32
    'JBSWY3DPEHPK3PX1',
    'JBSWY3DPEHPK3PX8',
    'JBSWY3DP!HPK3PXP',
    'MZ=XW6YQ', // padding in the middle
    'JBSWY3DPEHPK3Pß', // "ß".toUpperCase() is "SS": 16 valid characters, which must not sneak through
    'JBSWY3DPEHPK3PXı', // "ı".toUpperCase() is "I"
    'JBSWY3DPEHPK3PXſ', // "ſ".toUpperCase() is "S"
    'JBSWY3DPEHPK3PX😀',
  ])('rejects %j with BAD_INPUT', (text) => {
    expectBadInput(() => base32Decode(text), text);
  });

  it('names the position of the bad character in the text as given', () => {
    expect(() => base32Decode('jbsw y3dp 0hpk')).toThrow(/character 11 /u);
  });

  it.each(['M', 'MZX', 'MZXW6Y', 'JBSWY3DPE', 'MZXW6YTBO', 'MZXW6YTBOI=Q'])('rejects the impossible length of %j', (text) => {
    expectBadInput(() => base32Decode(text), text);
  });

  it.each([
    ['MY', 1],
    ['MZXQ', 2],
    ['MZXW6', 3],
    ['MZXW6YQ', 4],
    ['MZXW6YTB', 5],
  ])('accepts the possible length of %j (%i bytes)', (text, length) => {
    expect(base32Decode(text)).toHaveLength(length);
  });

  it('round-trips any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (data) => {
        const text = base32Encode(data);
        expect(text).toMatch(/^[A-Z2-7]*$/u);
        expect(hex(base32Decode(text))).toBe(hex(data));
        expect(hex(base32Decode(text.toLowerCase()))).toBe(hex(data));
      }),
      { seed: 4648, numRuns: 500 },
    );
  });

  it("agrees with Python's base64.b32encode/b32decode", () => {
    const samples = fc.sample(fc.uint8Array({ maxLength: 80 }), { seed: 3548, numRuns: 300 }).map(hex);
    const python = `
import base64, json, sys
print(json.dumps([base64.b32encode(bytes.fromhex(h)).decode() for h in json.load(sys.stdin)]))
`;
    const theirs = JSON.parse(execFileSync('/usr/bin/python3', ['-c', python], { input: JSON.stringify(samples) }).toString()) as string[];
    samples.forEach((sample, i) => {
      const padded = theirs[i]!;
      expect(base32Encode(Buffer.from(sample, 'hex'))).toBe(padded.replace(/=+$/u, ''));
      expect(hex(base32Decode(padded))).toBe(sample);
    });
  });
});

describe('hex', () => {
  it('encodes lower case and decodes RFC 4648 §10 base16', () => {
    expect(hexEncode(bytes('foobar'))).toBe('666f6f626172');
    expect(hex(hexDecode('666F6F626172'))).toBe('666f6f626172');
    expect(hexEncode(new Uint8Array())).toBe('');
  });

  it('encodes a view into a larger buffer correctly', () => {
    const backing = Uint8Array.of(0xaa, 0x01, 0x02, 0xbb);
    expect(hexEncode(backing.subarray(1, 3))).toBe('0102');
  });

  it.each(['0x666f6f', '0X666F6F', '66 6f 6f', '66:6f:6f', ' 0x666f6f ', '666f\n6f'])('reads %j', (text) => {
    expect(hex(hexDecode(text))).toBe('666f6f');
  });

  it.each(['666', '66x6', 'zz', '0x0x66', '66-6f'])('rejects %j with BAD_INPUT', (text) => {
    expectBadInput(() => hexDecode(text), text);
  });
});

describe('parseSecret', () => {
  it('reads hex: secrets as hex, anything else as Base32', () => {
    expect(Buffer.from(parseSecret('hex:3132333435363738393031323334353637383930')).toString('latin1')).toBe('12345678901234567890');
    expect(hex(parseSecret('HEX:deadbeef'))).toBe('deadbeef');
    expect(hex(parseSecret('hex: de ad be ef'))).toBe('deadbeef');
    expect(Buffer.from(parseSecret('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ')).toString('latin1')).toBe('12345678901234567890');
    // Without the prefix, hex digits are read as Base32 where they can be.
    expect(hex(parseSecret('DEADBEEF'))).toBe(hex(base32Decode('DEADBEEF')));
  });

  it.each(['', '   ', '====', 'hex:', 'hex:  '])('rejects the empty secret %j', (text) => {
    expectBadInput(() => parseSecret(text), text);
  });

  it.each(['hex:xyz1', 'hex:abc', '3132333435363738', 'JBSWY3DPEHPK3PX0'])('rejects %j without repeating it', (text) => {
    expectBadInput(() => parseSecret(text), text);
  });
});
