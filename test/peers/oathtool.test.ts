// Differential test: our HOTP/TOTP against oathtool (oath-toolkit), an independent implementation,
// over random secrets, times, counters, digits, hashes and periods. The cases come from a seeded
// PRNG; a failure prints the seed, and KEYTAP_OTP_SEED=<seed> replays exactly those cases.
import { spawn } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { HashAlgorithm } from '../../src/otp/index.js';
import { hotp, totp } from '../../src/otp/index.js';

const OATHTOOL = '/usr/bin/oathtool';
const SEED = process.env.KEYTAP_OTP_SEED === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(process.env.KEYTAP_OTP_SEED);
/** Each oathtool call prints the codes for WINDOW + 1 consecutive steps/counters. */
const WINDOW = 3;
/** Shells running oathtool calls side by side: one per core of the 2-core CI machine. */
const SHELLS = 2;

interface Case {
  /** `hotp-any` is HOTP with any hash: oathtool's --hotp is SHA-1 only, so it runs as TOTP with a 1 s step at time = counter. */
  mode: 'totp' | 'hotp' | 'hotp-any';
  secret: Uint8Array;
  algorithm: HashAlgorithm;
  digits: number;
  period: number;
  /** TOTP time in seconds, or the HOTP counter. */
  moving: bigint;
}

const secret = fc.uint8Array({ minLength: 1, maxLength: 64 });
const algorithm = fc.constantFrom<HashAlgorithm>('SHA1', 'SHA256', 'SHA512');
const digits = fc.constantFrom(6, 7, 8);
// Times: today's range, around the 32-bit rollovers, and far future (T ≥ 2^32 needs t ≥ 2^32·period).
const time = fc.oneof(
  fc.bigInt({ min: 0n, max: 2n ** 31n }),
  fc.bigInt({ min: 2n ** 32n - 1000n, max: 2n ** 32n + 1000n }),
  fc.bigInt({ min: 0n, max: 2n ** 48n }),
);
const totpCase = fc.record({
  mode: fc.constant('totp' as const),
  secret,
  algorithm,
  digits,
  period: fc.integer({ min: 15, max: 120 }),
  moving: time,
});
const hotpCase = fc.record({
  mode: fc.constant('hotp' as const),
  secret,
  algorithm: fc.constant<HashAlgorithm>('SHA1'),
  digits,
  period: fc.constant(30),
  moving: fc.oneof(fc.bigInt({ min: 0n, max: 1000n }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n - BigInt(WINDOW) })),
});
const hotpAnyHashCase = fc.record({
  mode: fc.constant('hotp-any' as const),
  secret,
  algorithm,
  digits,
  period: fc.constant(1),
  moving: fc.bigInt({ min: 0n, max: 2n ** 48n }),
});

function oathtoolArgs(c: Case): string[] {
  const key = Buffer.from(c.secret).toString('hex');
  const common = ['-d', String(c.digits), '-w', String(WINDOW)];
  if (c.mode === 'hotp') return ['--hotp', '-c', c.moving.toString(), ...common, key];
  return [`--totp=${c.algorithm.toLowerCase()}`, '-s', `${c.period}s`, '-N', `@${c.moving}`, ...common, key];
}

function ourCodes(c: Case): string[] {
  const codes: string[] = [];
  for (let i = 0; i <= WINDOW; i++) {
    if (c.mode === 'totp') codes.push(totp(c.secret, Number(c.moving) + i * c.period, c.period, c.digits, c.algorithm));
    else codes.push(hotp(c.secret, c.moving + BigInt(i), c.digits, c.algorithm));
  }
  return codes;
}

/**
 * Runs the oathtool calls for some cases from one shell reading its script on stdin: exec from a
 * shell costs a fraction of a spawn from Node, which dominated the run time.
 */
function oathtoolBatch(cases: readonly Case[]): Promise<string[][]> {
  const script = cases.map((c, i) => `echo '#${i}'; ${OATHTOOL} ${oathtoolArgs(c).join(' ')} || echo FAILED`).join('\n');
  return new Promise((resolve, reject) => {
    const shell = spawn('/bin/sh', ['-s'], { stdio: ['pipe', 'pipe', 'inherit'] });
    let output = '';
    shell.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    shell.on('error', reject);
    shell.on('close', (status) => {
      if (status !== 0) return reject(new Error(`sh exited with ${status}`));
      // "#<i>" starts each case's block; the codes follow one per line.
      const blocks = output.split(/^#\d+\n/mu).slice(1).map((block) => block.trim().split('\n'));
      resolve(blocks);
    });
    shell.stdin.end(script + '\n');
  });
}

describe('HOTP/TOTP against oathtool', () => {
  it(`agrees on 1,000 random configurations × ${WINDOW + 1} steps (seed ${SEED})`, async () => {
    const cases: Case[] = [
      ...fc.sample(totpCase, { seed: SEED, numRuns: 600 }),
      ...fc.sample(hotpCase, { seed: SEED + 1, numRuns: 250 }),
      ...fc.sample(hotpAnyHashCase, { seed: SEED + 2, numRuns: 150 }),
    ];
    expect(cases).toHaveLength(1000);
    // Make sure the interesting regions were drawn, not just hoped for.
    expect(cases.some((c) => c.mode === 'totp' && c.moving / BigInt(c.period) >= 2n ** 32n)).toBe(true);
    expect(cases.some((c) => c.mode === 'hotp' && c.moving >= 2n ** 32n)).toBe(true);

    const shares = Array.from({ length: SHELLS }, (_, k) => cases.filter((_c, i) => i % SHELLS === k));
    const answers = await Promise.all(shares.map(oathtoolBatch));
    const theirs = cases.map((_c, i) => answers[i % SHELLS]![Math.floor(i / SHELLS)]!);
    const mismatches = cases.flatMap((c, i) => {
      const ours = ourCodes(c);
      return ours.join() === theirs[i]!.join()
        ? []
        : [{ ...c, secret: Buffer.from(c.secret).toString('hex'), moving: c.moving.toString(), ours, oathtool: theirs[i] }];
    });
    expect(mismatches.slice(0, 5), `seed ${SEED}: replay with KEYTAP_OTP_SEED=${SEED}`).toEqual([]);
    // A parsing slip on our side must not pass as agreement.
    expect(theirs.every((codes, i) => codes.length === WINDOW + 1 && codes.every((code) => new RegExp(`^\\d{${cases[i]!.digits}}$`, 'u').test(code)))).toBe(true);
  });
});
