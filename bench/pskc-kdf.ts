/**
 * Figures for PSKC key derivation (issue 9 item 5): how long reading a one-token passphrase file
 * takes at python-pskc's and keytap's default iteration count, at the cap keytap derives without
 * consent (PSKC_MAX_ITERATIONS), and how long the refusals take — the 2 KB file with
 * IterationCount 10,000,000 and KeyLength 64 that used to derive for 14–20 s, and the same count
 * with a fitting KeyLength, refused for the count. Each figure is the median of a few reads.
 *
 * Run: npm run bench -- pskc-kdf   (export: benchPskcKdf)
 */
import { performance } from 'node:perf_hooks';
import type { SeedReadOptions } from '../src/seeds/index.js';
import { PSKC_DEFAULT_ITERATIONS, PSKC_MAX_ITERATIONS, pskcFormat } from '../src/seeds/index.js';

const TOKEN = { serial: 'KT00000001', secret: Buffer.from('12345678901234567890'), type: 'HOTP' as const, algorithm: 'SHA1' as const, digits: 6, period: 30, counter: 0 };

function file(iterations: number): Buffer {
  return pskcFormat.write([TOKEN], { pskc: { kind: 'passphrase', passphrase: 'bench', iterations: Math.min(iterations, PSKC_MAX_ITERATIONS) } });
}

function withCount(bytes: Buffer, iterations: number, keyLength = 16): Buffer {
  return Buffer.from(
    bytes
      .toString('utf8')
      .replace(/<IterationCount>\d+<\/IterationCount>/u, `<IterationCount>${iterations}</IterationCount>`)
      .replace('<KeyLength>16</KeyLength>', `<KeyLength>${keyLength}</KeyLength>`),
  );
}

function medianMs(bytes: Buffer, options: SeedReadOptions, runs: number): { ms: number; outcome: string } {
  const times: number[] = [];
  let outcome = 'read';
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    try {
      pskcFormat.read(bytes, options);
    } catch (error) {
      outcome = `refused: ${(error as Error).message.replace(/^.*?: /u, '').slice(0, 70)}`;
    }
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return { ms: times[Math.floor(times.length / 2)]!, outcome };
}

export async function benchPskcKdf(): Promise<void> {
  const base = file(PSKC_DEFAULT_ITERATIONS);
  const cases: [string, Buffer, SeedReadOptions, number][] = [
    [`${PSKC_DEFAULT_ITERATIONS} iterations (the default)`, base, { passphrase: 'bench' }, 5],
    [`${PSKC_MAX_ITERATIONS} iterations (the cap), wrong passphrase`, withCount(base, PSKC_MAX_ITERATIONS), { passphrase: 'wrong' }, 3],
    ['10000000 iterations, KeyLength 64', withCount(base, 10_000_000, 64), { passphrase: 'bench' }, 5],
    ['10000000 iterations, KeyLength 16', withCount(base, 10_000_000), { passphrase: 'bench' }, 5],
    ['10000000 iterations, KeyLength 16, --allow-slow-kdf', withCount(base, 10_000_000), { passphrase: 'bench', allowSlowKdf: true }, 1],
  ];
  console.log('PSKC passphrase file, one token: median read time');
  for (const [label, bytes, options, runs] of cases) {
    const { ms, outcome } = medianMs(bytes, options, runs);
    console.log(`  ${label.padEnd(56)} ${ms.toFixed(1).padStart(9)} ms  ${outcome}`);
  }
  await Promise.resolve();
}
