// HOTP/TOTP against the published vectors (RFC 4226 App. D, RFC 6238 App. B, docs/seed-formats.md §5,
// docs/protocols.md §1.10), and counters ≥ 2^32 against Python's hmac module computed at test time.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { HashAlgorithm } from '../../src/otp/index.js';
import {
  counterBytes,
  dynamicTruncate,
  formatCode,
  hotp,
  maskTruncated,
  timeStep,
  totp,
  validityWindow,
} from '../../src/otp/index.js';

const ascii = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'ascii'));
const SEED_SHA1 = ascii('12345678901234567890');
const SEED_SHA256 = ascii('12345678901234567890123456789012');
const SEED_SHA512 = ascii('1234567890123456789012345678901234567890123456789012345678901234');
const SEEDS: Record<HashAlgorithm, Uint8Array> = { SHA1: SEED_SHA1, SHA256: SEED_SHA256, SHA512: SEED_SHA512 };

// RFC 4226 Appendix D: count, HMAC-SHA-1, truncated (decimal), HOTP.
const RFC4226: readonly [number, string, number, string][] = [
  [0, 'cc93cf18508d94934c64b65d8ba7667fb7cde4b0', 1284755224, '755224'],
  [1, '75a48a19d4cbe100644e8ac1397eea747a2d33ab', 1094287082, '287082'],
  [2, '0bacb7fa082fef30782211938bc1c5e70416ff44', 137359152, '359152'],
  [3, '66c28227d03a2d5529262ff016a1e6ef76557ece', 1726969429, '969429'],
  [4, 'a904c900a64b35909874b33e61c5938a8e15ed1c', 1640338314, '338314'],
  [5, 'a37e783d7b7233c083d4f62926c7a25f238d0316', 868254676, '254676'],
  [6, 'bc9cd28561042c83f219324d3c607256c03272ae', 1918287922, '287922'],
  [7, 'a4fb960c0bc06e1eabb804e5b397cdc4b45596fa', 82162583, '162583'],
  [8, '1b3c89f65e6c9e883012052823443f048b4332db', 673399871, '399871'],
  [9, '1637409809a679dc698207310c8c7fc07290d9e5', 645520489, '520489'],
];

// RFC 6238 Appendix B: time, TOTP (8 digits, 30 s), hash; each hash with its own seed.
const RFC6238: readonly [number, string, HashAlgorithm][] = [
  [59, '94287082', 'SHA1'],
  [59, '46119246', 'SHA256'],
  [59, '90693936', 'SHA512'],
  [1111111109, '07081804', 'SHA1'],
  [1111111109, '68084774', 'SHA256'],
  [1111111109, '25091201', 'SHA512'],
  [1111111111, '14050471', 'SHA1'],
  [1111111111, '67062674', 'SHA256'],
  [1111111111, '99943326', 'SHA512'],
  [1234567890, '89005924', 'SHA1'],
  [1234567890, '91819424', 'SHA256'],
  [1234567890, '93441116', 'SHA512'],
  [2000000000, '69279037', 'SHA1'],
  [2000000000, '90698825', 'SHA256'],
  [2000000000, '38618901', 'SHA512'],
  [20000000000, '65353130', 'SHA1'],
  [20000000000, '77737706', 'SHA256'],
  [20000000000, '47863826', 'SHA512'],
];

// docs/seed-formats.md §5.2, extra table (SHA-1 seed): t, 30 s/6 digits, 60 s/6 digits, 60 s/8 digits.
const EXTRA: readonly [number, string, string, string][] = [
  [59, '287082', '755224', '84755224'],
  [1111111109, '081804', '360094', '19360094'],
  [1234567890, '005924', '713351', '55713351'],
  [2000000000, '279037', '864010', '76864010'],
];

describe('RFC 4226 Appendix D', () => {
  it.each(RFC4226)('count %i: truncation of the published HMAC and the HOTP value', (count, mac, truncated, code) => {
    expect(dynamicTruncate(Buffer.from(mac, 'hex'))).toBe(truncated);
    expect(hotp(SEED_SHA1, count)).toBe(code);
    expect(hotp(SEED_SHA1, BigInt(count))).toBe(code);
  });
});

describe('RFC 6238 Appendix B', () => {
  it.each(RFC6238)('t=%i → %s (%s)', (time, code, algorithm) => {
    expect(totp(SEEDS[algorithm], time, 30, 8, algorithm)).toBe(code);
  });

  it('needs the per-hash seeds: the 20-byte seed does not give the SHA256/SHA512 rows', () => {
    expect(totp(SEED_SHA1, 59, 30, 8, 'SHA256')).not.toBe('46119246');
    expect(totp(SEED_SHA1, 59, 30, 8, 'SHA512')).not.toBe('90693936');
  });

  it('builds the published T values as 8 big-endian bytes', () => {
    expect(counterBytes(timeStep(1111111109)).toString('hex')).toBe('00000000023523ec');
    expect(counterBytes(timeStep(20000000000)).toString('hex')).toBe('0000000027bc86aa');
  });
});

describe('docs/seed-formats.md §5.2 extra table (6 digits, 60 s)', () => {
  it.each(EXTRA)('t=%i', (time, at30s6, at60s6, at60s8) => {
    expect(totp(SEED_SHA1, time, 30, 6)).toBe(at30s6);
    expect(totp(SEED_SHA1, time, 60, 6)).toBe(at60s6);
    expect(totp(SEED_SHA1, time, 60, 8, 'SHA1')).toBe(at60s8);
  });
});

describe('counters beyond 32 bits', () => {
  it('puts the high word in the first four bytes', () => {
    expect(counterBytes(2 ** 32).toString('hex')).toBe('0000000100000000');
    expect(counterBytes(0xffffffffffffffffn).toString('hex')).toBe('ffffffffffffffff');
    expect(counterBytes(0x0123456789abcdefn).toString('hex')).toBe('0123456789abcdef');
    expect(() => counterBytes(-1)).toThrow(RangeError);
    expect(() => counterBytes(2n ** 64n)).toThrow(RangeError);
  });

  // Expected values come from Python's hmac module, an implementation independent of ours.
  const cases: { counter: bigint; algorithm: HashAlgorithm }[] = [];
  for (const counter of [2n ** 32n, 2n ** 32n + 1n, 2n ** 33n + 12345n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n]) {
    for (const algorithm of ['SHA1', 'SHA256', 'SHA512'] as const) cases.push({ counter, algorithm });
  }
  const python = `
import hashlib, hmac, json, struct, sys
out = []
for c in json.load(sys.stdin):
    mac = hmac.new(bytes.fromhex(c['key']), struct.pack('>Q', int(c['counter'])), getattr(hashlib, c['hash'])).digest()
    o = mac[-1] & 15
    out.append(str((struct.unpack('>I', mac[o:o + 4])[0] & 0x7fffffff) % 10 ** 8).zfill(8))
print(json.dumps(out))
`;
  const input = cases.map(({ counter, algorithm }) => ({
    key: Buffer.from(SEEDS[algorithm]).toString('hex'),
    counter: counter.toString(),
    hash: algorithm.toLowerCase(),
  }));
  const expected = JSON.parse(execFileSync('/usr/bin/python3', ['-c', python], { input: JSON.stringify(input) }).toString()) as string[];

  it.each(cases.map((c, i) => ({ ...c, code: expected[i]! })))('HOTP $algorithm counter $counter', ({ counter, algorithm, code }) => {
    expect(code).toMatch(/^\d{8}$/u);
    expect(hotp(SEEDS[algorithm], counter, 8, algorithm)).toBe(code);
  });

  it('the TOTP step for a time ≥ 2^32 periods gets the high word too', () => {
    const time = 2 ** 32 * 30 + 59; // T = 2^32 + 1
    expect(timeStep(time)).toBe(2 ** 32 + 1);
    const fromPython = expected[cases.findIndex((c) => c.counter === 2n ** 32n + 1n && c.algorithm === 'SHA1')]!;
    expect(totp(SEED_SHA1, time, 30, 8)).toBe(fromPython);
    // Dropping the high word would give the RFC's T = 1 code instead.
    expect(fromPython).not.toBe('94287082');
  });
});

describe('maskTruncated (docs/protocols.md §1.10)', () => {
  it('masks the top bit a YubiKey leaves set', () => {
    expect(maskTruncated(Uint8Array.of(0xcc, 0x93, 0xcf, 0x18))).toBe(1284755224);
    expect(formatCode(maskTruncated(Uint8Array.of(0xcc, 0x93, 0xcf, 0x18)), 6)).toBe('755224');
    expect(formatCode(maskTruncated(Uint8Array.of(0xc1, 0x39, 0x7e, 0xea)), 6)).toBe('287082');
  });

  it('gives the same value when the key already cleared the bit (Nitrokey 3)', () => {
    expect(maskTruncated(Uint8Array.of(0x4c, 0x93, 0xcf, 0x18))).toBe(1284755224);
    expect(maskTruncated(Uint8Array.of(0xff, 0xff, 0xff, 0xff))).toBe(0x7fffffff);
  });

  it('accepts exactly four bytes', () => {
    expect(() => maskTruncated(Uint8Array.of(1, 2, 3))).toThrow(RangeError);
    expect(() => maskTruncated(Uint8Array.of(1, 2, 3, 4, 5))).toThrow(RangeError);
  });
});

describe('formatCode, timeStep and validityWindow', () => {
  it('left-pads with zeros to the number of digits', () => {
    expect(formatCode(1284755224, 6)).toBe('755224');
    expect(formatCode(1107081804, 8)).toBe('07081804');
    expect(formatCode(1107081804, 7)).toBe('7081804');
    expect(formatCode(5, 6)).toBe('000005');
  });

  it('counts steps from the epoch and gives [validFrom, validTo)', () => {
    expect(timeStep(59)).toBe(1);
    expect(timeStep(60)).toBe(2);
    expect(timeStep(59, 60)).toBe(0);
    expect(validityWindow(59)).toEqual({ validFrom: 30, validTo: 60 });
    expect(validityWindow(1111111109, 60)).toEqual({ validFrom: 1111111080, validTo: 1111111140 });
  });

  it('uses the same code for the whole window', () => {
    expect(totp(SEED_SHA1, 30, 30, 8)).toBe('94287082');
    expect(totp(SEED_SHA1, 59.999, 30, 8)).toBe('94287082');
    expect(totp(SEED_SHA1, 60, 30, 8)).not.toBe('94287082');
  });
});
