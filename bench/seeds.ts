/**
 * Figures for seed files (issue 4): 10,000 tokens written to and read from each format — write
 * time, read time, and peak memory. Each format runs in its own child process so that the peak
 * RSS (getrusage maxrss) belongs to that format alone; the heap figure is the heap growth from
 * before the write to its largest value sampled after the write and after the read.
 *
 * Run: npm run bench -- seeds   (export: benchSeeds)
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import type { SeedReadOptions, SeedToken, SeedWriteOptions } from '../src/seeds/index.js';
import { seedFormat } from '../src/seeds/index.js';

const COUNT = 10_000;
const PSK = Buffer.alloc(16, 0x42);

interface Case {
  label: string;
  format: string;
  type: 'TOTP' | 'HOTP';
  write?: SeedWriteOptions;
  read?: SeedReadOptions;
}

const CASES: Case[] = [
  { label: 'entra', format: 'entra', type: 'TOTP' },
  { label: 'pskc (plain)', format: 'pskc', type: 'TOTP' },
  { label: 'pskc (PSK, AES-128-CBC + HMAC)', format: 'pskc', type: 'TOTP', write: { pskc: { kind: 'psk', key: PSK } }, read: { key: PSK } },
  { label: 'pskc (passphrase, PBKDF2 100k)', format: 'pskc', type: 'TOTP', write: { pskc: { kind: 'passphrase', passphrase: 'bench' } }, read: { passphrase: 'bench' } },
  { label: 'dualshield', format: 'dualshield', type: 'TOTP' },
  { label: 'hexcsv', format: 'hexcsv', type: 'HOTP' },
  { label: 'privacyidea', format: 'privacyidea', type: 'TOTP' },
  { label: 'otpauth', format: 'otpauth', type: 'TOTP' },
  { label: 'graph', format: 'graph', type: 'TOTP' },
];

function tokens(type: 'TOTP' | 'HOTP'): SeedToken[] {
  return Array.from({ length: COUNT }, (_, i) => ({
    serial: `KT${String(i).padStart(8, '0')}`,
    secret: randomBytes(20),
    type,
    algorithm: 'SHA1',
    digits: 6,
    period: 30,
    counter: 0,
    upn: `user${i}@contoso.com`,
    issuer: 'Contoso',
    account: `user${i}@contoso.com`,
    manufacturer: 'Nitrokey',
    model: 'Nitrokey 3',
  }));
}

interface ChildResult {
  label: string;
  bytes: number;
  writeMs: number;
  readMs: number;
  heapMb: number;
  rssMb: number;
}

function runChild(index: number): ChildResult {
  const c = CASES[index]!;
  const format = seedFormat(c.format);
  const list = tokens(c.type);
  global.gc?.();
  const baseRss = process.memoryUsage().rss;
  const baseHeap = process.memoryUsage().heapUsed;
  let peakHeap = baseHeap;
  const started = performance.now();
  const bytes = format.write(list, c.write);
  const writeMs = performance.now() - started;
  peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
  const readStarted = performance.now();
  const read = format.read(bytes, c.read);
  const readMs = performance.now() - readStarted;
  peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
  if (read.length !== COUNT) throw new Error(`${c.label}: read ${read.length} tokens`);
  const maxRss = process.resourceUsage().maxRSS * 1024;
  return { label: c.label, bytes: bytes.length, writeMs, readMs, heapMb: (peakHeap - baseHeap) / 2 ** 20, rssMb: Math.max(0, maxRss - baseRss) / 2 ** 20 };
}

export function benchSeeds(): Promise<void> {
  const self = fileURLToPath(import.meta.url);
  console.log(`seed files, ${COUNT.toLocaleString('en')} tokens per format (each in its own process):`);
  console.log('format                          file size   write      read       heap Δ     peak RSS Δ');
  for (let i = 0; i < CASES.length; i++) {
    const child = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', self, '--seeds-child', String(i)], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
    if (child.status !== 0) {
      console.log(`${CASES[i]!.label}: failed: ${child.stderr.split('\n').slice(0, 3).join(' ')}`);
      continue;
    }
    const r = JSON.parse(child.stdout.trim().split('\n').pop()!) as ChildResult;
    console.log(
      `${r.label.padEnd(31)} ${`${(r.bytes / 2 ** 20).toFixed(2)} MB`.padStart(9)}   ${`${r.writeMs.toFixed(0)} ms`.padStart(8)}   ${`${r.readMs.toFixed(0)} ms`.padStart(8)}   ${`${r.heapMb.toFixed(1)} MB`.padStart(8)}   ${`${r.rssMb.toFixed(1)} MB`.padStart(8)}`,
    );
  }
  return Promise.resolve();
}

if (process.argv[2] === '--seeds-child') {
  console.log(JSON.stringify(runChild(Number(process.argv[3]))));
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await benchSeeds();
}
