/**
 * Figures for reading codes (issue 2):
 * 1. in-process: OathSession → CTAPHID client → 64-byte reports → virtual key, 1,000 CALCULATEs;
 * 2. whole process: `keytap code --virtual FILE`, median of 10 runs, and its peak RSS.
 *
 * Run: npm run bench -- code-read
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { openOathSession } from '../src/device/open.js';
import { virtualFileKey } from '../src/emulator/virtual-file.js';
import { ms, summarize } from './stats.js';

const ROOT = join(import.meta.dirname, '..');

export async function benchCodeRead(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'keytap-bench-'));
  try {
    for (const dialect of ['yubikey', 'nitrokey3'] as const) {
      const key = await openOathSession(virtualFileKey({ file: join(dir, `${dialect}.json`), dialect, demo: true }));
      const credential = (await key.session.list()).find((c) => c.id === 'Demo:alice@example.com')!;
      for (let i = 0; i < 50; i++) await key.session.calculate(credential); // warm-up
      const samples: number[] = [];
      for (let i = 0; i < 1000; i++) {
        const started = performance.now();
        await key.session.calculate(credential);
        samples.push(performance.now() - started);
      }
      await key.close();
      const s = summarize(samples);
      console.log(`in-process code read (${dialect}), 1,000 reads: median ${ms(s.median)}, p99 ${ms(s.p99)}, max ${ms(s.max)}   (target: median ≤ 2 ms)`);
    }

    const file = join(dir, 'cli.json');
    await runCli(['code', 'Demo', '--virtual', file, '--demo']); // creates the file
    const times: number[] = [];
    const rss: number[] = [];
    for (let i = 0; i < 10; i++) {
      const result = await runCli(['code', 'Demo', '--virtual', file]);
      times.push(result.ms);
      rss.push(result.maxRssKb);
    }
    const t = summarize(times);
    const r = summarize(rss);
    console.log(`keytap code --virtual FILE, whole process, 10 runs: median ${ms(t.median)}, max ${ms(t.max)}   (target: median ≤ 200 ms)`);
    console.log(`keytap code --virtual FILE, peak RSS: median ${(r.median / 1024).toFixed(1)} MB, max ${(r.max / 1024).toFixed(1)} MB`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function runCli(args: string[]): Promise<{ ms: number; maxRssKb: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, ['-r', join(ROOT, 'bench', 'report-rss.cjs'), join(ROOT, 'bin', 'keytap.cjs'), ...args], {
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    let rss = '';
    let stderr = '';
    child.stdio[3]!.on('data', (d: Buffer) => (rss += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const elapsed = performance.now() - started;
      if (code !== 0) reject(new Error(`keytap ${args.join(' ')} exited ${code}: ${stderr}`));
      else resolve({ ms: elapsed, maxRssKb: Number.parseInt(rss, 10) });
    });
  });
}
