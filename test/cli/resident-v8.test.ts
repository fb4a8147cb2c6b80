// The resident process's V8 settings (src/cli/resident-v8.ts) are set at run time, and V8 ignores
// some flags once it is running: these tests prove the ones that matter take effect, in this Node
// (the tray run from source) and in the Node inside the single executable (build/runtimes.json).
import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../support/cli.js';
import { embeddedNode } from '../support/dist.js';

const ROOT = join(import.meta.dirname, '..', '..');
const MODULE_URL = pathToFileURL(join(ROOT, 'src', 'cli', 'resident-v8.ts')).href;

/** Bits of %GetOptimizationStatus (V8's runtime-test.cc, the same in V8 11 and 12). */
const OPTIMIZED = 1 << 4;
const LAZY = 1 << 18; // not compiled: no bytecode (never compiled, or flushed)

// A function hot enough for Turbofan, and one that runs once and then sits while the heap goes
// through mark-compacts, as start-up code does in the idle tray. Prints both functions' status.
const PROBE = `
if (process.env.TUNE) (await import(process.env.TUNE)).tuneV8ForResident();
function hot(x) { let s = 0; for (let i = 0; i < 1000; i++) s += (x * i) % 7; return s; }
function startupOnly() { let s = 0; for (let i = 0; i < 10; i++) s += i; return s; }
startupOnly();
for (let i = 0; i < 20000; i++) hot(i);
const hotStatus = %GetOptimizationStatus(hot);
let garbage = [];
for (let round = 0; round < 12; round++) {
  await new Promise((resolve) => setTimeout(resolve, 5));
  for (let i = 0; i < 200; i++) garbage.push(new Array(10000).fill(i));
  garbage = [];
}
console.log(JSON.stringify({ hot: hotStatus, startupOnly: %GetOptimizationStatus(startupOnly) }));
`;

const dir = tempDir('keytap-resident-v8-');
const probe = join(dir, 'probe.mjs');
writeFileSync(probe, PROBE);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface ProbeResult {
  hot: number;
  startupOnly: number;
  stderr: string;
}

function status(node: string, loaderArgs: string[], tuned: boolean): ProbeResult {
  const env = { ...process.env, TUNE: tuned ? MODULE_URL : '' };
  const run = spawnSync(node, [...loaderArgs, '--allow-natives-syntax', probe], { env, encoding: 'utf8', timeout: 30_000 });
  if (run.status !== 0) throw new Error(`the probe exited ${run.status}: ${run.stderr}`);
  return { ...(JSON.parse(run.stdout.trim().split('\n').pop()!) as { hot: number; startupOnly: number }), stderr: run.stderr };
}

describe.runIf(process.platform === 'linux' && process.arch === 'x64')('the resident process\'s V8 flags, set at run time', () => {
  const runtimes: [string, () => { node: string; loaderArgs: string[] }][] = [
    [`this Node (${process.version}, the tray from source)`, () => ({ node: process.execPath, loaderArgs: ['--import', 'tsx'] })],
    // Node 22 strips the module's types itself.
    ['the Node inside the single executable', () => ({ node: embeddedNode(), loaderArgs: [] })],
  ];

  for (const [name, runtime] of runtimes) {
    it(`${name}: no Turbofan, and start-up bytecode is flushed at the next GCs`, () => {
      const { node, loaderArgs } = runtime();
      const plain = status(node, loaderArgs, false);
      // Without the flags the probe sees what they prevent: the hot function optimized, the
      // start-up one still compiled.
      expect(plain.hot & OPTIMIZED, 'optimized without the flags').toBe(OPTIMIZED);
      expect(plain.startupOnly & LAZY, 'kept without the flags').toBe(0);

      const tuned = status(node, loaderArgs, true);
      // V8 ignores a flag it does not know (--no-sparkplug, the regexp ones) with this message.
      expect(tuned.stderr).not.toMatch(/unrecognized flag/u);
      expect(tuned.hot & OPTIMIZED, 'optimized with --no-opt').toBe(0);
      expect(tuned.startupOnly & LAZY, 'flushed with --bytecode-old-age=1').toBe(LAZY);
    }, 60_000);
  }
});
