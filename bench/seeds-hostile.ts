/**
 * Figures for seed files made to be slow or big (issue 9, items 4 and 6): how long each reader
 * takes to refuse a secret field of 64 K, 128 K and 1 M "=" and one more character; a start tag
 * with 50,000 attributes; 20,000 namespace prefixes in scope of 20,000 elements; and, each in its
 * own process so that the peak RSS (getrusage maxrss) is that input's alone, a line of commas and
 * a file of empty lines just under the 32 MiB limit, a file of that size whose only bad UTF-8 byte
 * is at its end, and one just over the limit.
 *
 * Run: npm run bench -- seeds-hostile   (export: benchSeedsHostile)
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import type { SeedFormatName } from '../src/seeds/index.js';
import { MAX_SEED_FILE_BYTES, SEED_FORMAT_NAMES, seedFormat } from '../src/seeds/index.js';
import { HOSTILE_PADDING, hostileAttributes, hostileNamespaces } from '../test/seeds/hostile-inputs.js';

/** ms to read `text` with `format` (refusals are the expected outcome), and the first words said. */
function timeRead(format: SeedFormatName, bytes: Uint8Array): { ms: number; said: string } {
  const started = performance.now();
  let said = 'read';
  try {
    seedFormat(format).read(bytes);
  } catch (error) {
    said = (error instanceof Error ? error.message : String(error)).replace(/\s+/gu, ' ').slice(0, 70);
  }
  return { ms: performance.now() - started, said };
}

const LIMIT_LESS_A_LINE = MAX_SEED_FILE_BYTES - 64;

/** The inputs measured in a process of their own: a name, the format, and how to make the bytes. */
const BIG: { label: string; format: SeedFormatName; bytes: () => Buffer }[] = [
  ...(['entra', 'hexcsv', 'privacyidea', 'otpauth'] as const).map((format) => ({
    label: `${format}: one line of commas, 32 MiB`,
    format,
    bytes: () => Buffer.alloc(LIMIT_LESS_A_LINE, ','),
  })),
  { label: 'entra: empty lines, 32 MiB', format: 'entra', bytes: () => Buffer.alloc(LIMIT_LESS_A_LINE, '\n') },
  { label: 'hexcsv: "A,B" lines, 32 MiB', format: 'hexcsv', bytes: () => Buffer.from('A,B\n'.repeat(LIMIT_LESS_A_LINE / 4)) },
  {
    label: 'entra: 32 MiB, bad UTF-8 at the end',
    format: 'entra',
    bytes: () => Buffer.concat([Buffer.from('x\n'.repeat(LIMIT_LESS_A_LINE / 2)), Buffer.from([0xff])]),
  },
  { label: 'graph: [{},{},…], 32 MiB', format: 'graph', bytes: () => Buffer.from(`[${'{},'.repeat(LIMIT_LESS_A_LINE / 3 - 1)}{}]`) },
  { label: 'pskc: <a/><a/>… in the root, 32 MiB', format: 'pskc', bytes: () => Buffer.from(`<KeyContainer>${'<a/>'.repeat(LIMIT_LESS_A_LINE / 4 - 8)}</KeyContainer>`) },
  { label: 'pskc: 32 MiB + 1 byte', format: 'pskc', bytes: () => Buffer.alloc(MAX_SEED_FILE_BYTES + 1, ' ') },
];

function runBigChild(index: number): { ms: number; said: string; rssMb: number } {
  const big = BIG[index]!;
  const bytes = big.bytes();
  const { ms, said } = timeRead(big.format, bytes);
  return { ms, said, rssMb: (process.resourceUsage().maxRSS * 1024) / 2 ** 20 };
}

export function benchSeedsHostile(): Promise<void> {
  console.log('secret field of N "=" and one "X" (ms to refuse):');
  console.log(`format         ${['64K', '128K', '1M'].map((n) => n.padStart(9)).join('')}   message`);
  for (const format of SEED_FORMAT_NAMES) {
    const figures = [65_536, 131_072, 1_048_576].map((n) => timeRead(format, Buffer.from(HOSTILE_PADDING[format](n))));
    console.log(`${format.padEnd(14)} ${figures.map((f) => `${f.ms.toFixed(1)}`.padStart(9)).join('')}   ${figures[2]!.said}`);
  }
  for (const [label, text] of [
    ['50,000 attributes on KeyContainer', hostileAttributes(50_000)],
    ['20,000 prefixes, 20,000 more elements', hostileNamespaces(20_000)],
  ] as const) {
    const { ms, said } = timeRead('pskc', Buffer.from(text));
    console.log(`pskc, ${label}: ${ms.toFixed(1)} ms (${said})`);
  }
  console.log('\nbig inputs, each in its own process (peak RSS of the whole process, Node included):');
  const self = fileURLToPath(import.meta.url);
  for (let i = 0; i < BIG.length; i++) {
    const child = spawnSync(process.execPath, ['--import', 'tsx', self, '--hostile-child', String(i)], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
    if (child.status !== 0) {
      console.log(`${BIG[i]!.label}: failed (exit ${child.status ?? child.signal}): ${child.stderr.split('\n').slice(0, 3).join(' ')}`);
      continue;
    }
    const r = JSON.parse(child.stdout.trim().split('\n').pop()!) as { ms: number; said: string; rssMb: number };
    console.log(`${BIG[i]!.label.padEnd(40)} ${`${r.ms.toFixed(0)} ms`.padStart(9)} ${`${r.rssMb.toFixed(0)} MB`.padStart(8)}   ${r.said}`);
  }
  return Promise.resolve();
}

if (process.argv[2] === '--hostile-child') {
  console.log(JSON.stringify(runBigChild(Number(process.argv[3]))));
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await benchSeedsHostile();
}
