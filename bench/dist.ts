/**
 * Figures for the shipped artifacts (issue 8, "Figures"), from what `npm run dist` left in dist/:
 * 1. the size of each artifact;
 * 2. `keytap code --virtual FILE`, whole process, interleaved in one run so machine load hits all
 *    alike: `node -e 0` (this machine's Node, and the executable's own Node 22), the Linux
 *    executable's first run (an empty cache folder each time: extraction and compile cache
 *    creation), its warm run, and `node bin/keytap.cjs` (the bundle, from a checkout); medians
 *    and ratios to `node -e 0`;
 * 3. the same for `keytap --version` (start-up alone, no key).
 *
 * Prints only; asserts nothing. Run: npm run dist && npm run bench -- dist
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { runtimeBinaryPath } from '../build/dist.mjs';
import { DIST, ROOT, artifactPath } from '../test/support/dist.js';
import { summarize } from './stats.js';

const ROUNDS = 15;

interface Contender {
  name: string;
  command: string;
  args: string[];
  /** Run before each timed run, untimed (e.g. empty the cache). */
  before?: () => void;
  env?: NodeJS.ProcessEnv;
}

function time(contender: Contender): number {
  contender.before?.();
  const started = performance.now();
  const result = spawnSync(contender.command, contender.args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...contender.env } });
  const elapsed = performance.now() - started;
  if (result.status !== 0) throw new Error(`${contender.name} exited ${result.status}: ${result.stderr.toString()}`);
  return elapsed;
}

function race(contenders: Contender[]): Map<string, number> {
  const samples = new Map<string, number[]>(contenders.map((c) => [c.name, []]));
  for (const contender of contenders) time(contender); // warm the page cache
  for (let round = 0; round < ROUNDS; round++) for (const contender of contenders) samples.get(contender.name)!.push(time(contender));
  return new Map([...samples].map(([name, values]) => [name, summarize(values).median]));
}

function report(title: string, medians: Map<string, number>, baseline: string): void {
  const base = medians.get(baseline)!;
  console.log(`${title} (median of ${ROUNDS}, interleaved; ratio to ${baseline}):`);
  for (const [name, median] of medians) console.log(`  ${name.padEnd(46)} ${median.toFixed(1).padStart(7)} ms   ${(median / base).toFixed(2)}×`);
}

export function benchDist(): Promise<void> {
  const executable = artifactPath('linux-x64');
  if (!existsSync(executable)) {
    console.log('dist: skipped, run npm run dist first');
    return Promise.resolve();
  }
  console.log('1. artifact sizes:');
  for (const file of readdirSync(DIST).filter((name) => name.startsWith('keytap')).sort()) {
    const path = join(DIST, file);
    if (statSync(path).isFile()) console.log(`  ${file.padEnd(36)} ${(statSync(path).size / 1e6).toFixed(1).padStart(6)} MB`);
  }

  const dir = mkdtempSync(join(tmpdir(), 'keytap-bench-dist-'));
  try {
    const keyFile = join(dir, 'key.json');
    const warmCache = join(dir, 'warm-cache');
    const coldCache = join(dir, 'cold-cache');
    const made = spawnSync(executable, ['code', 'Demo', '--virtual', keyFile, '--demo'], { env: { ...process.env, XDG_CACHE_HOME: warmCache } });
    if (made.status !== 0) throw new Error(`making the virtual key failed: ${made.stderr.toString()}`);
    const node22 = existsSync(runtimeBinaryPath('linux-x64')) ? runtimeBinaryPath('linux-x64') : undefined;
    const nodes: Contender[] = [
      { name: `node -e 0 (this machine's Node ${process.version})`, command: process.execPath, args: ['-e', '0'] },
      ...(node22 ? [{ name: 'node -e 0 (the executable\'s Node 22)', command: node22, args: ['-e', '0'] }] : []),
    ];
    const program = (args: string[]): Contender[] => [
      ...nodes,
      { name: 'executable, first run (empty cache)', command: executable, args, env: { XDG_CACHE_HOME: coldCache }, before: () => rmSync(coldCache, { recursive: true, force: true }) },
      { name: 'executable, warm run', command: executable, args, env: { XDG_CACHE_HOME: warmCache } },
      { name: 'node bin/keytap.cjs (the bundle)', command: process.execPath, args: [join(ROOT, 'bin', 'keytap.cjs'), ...args] },
    ];
    report('2. keytap code Demo --virtual FILE, whole process', race(program(['code', 'Demo', '--virtual', keyFile])), nodes[0]!.name);
    report('3. keytap --version, whole process', race(program(['--version'])), nodes[0]!.name);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return Promise.resolve();
}
