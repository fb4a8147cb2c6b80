/**
 * Figure for the programmer (issue 4): batch programming on the virtual key with the touch after
 * 0 ms, per key, without the human — from the watcher's `added` to "verified and ledger done"
 * (and, for information, to "seed files written"). Each key is a real `keytap virtual start`
 * process plugged in and out, seen by the same KeyWatcher and runBatch as `keytap program --batch`.
 *
 * Run: npm run bench -- program
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openOathSession } from '../src/device/open.js';
import { KeyWatcher } from '../src/device/discovery/watcher.js';
import { runBatch } from '../src/provision/batch.js';
import { ProvisionRun } from '../src/provision/run.js';
import { DEFAULT_PARAMETERS, buildToken, generateSecret } from '../src/provision/token.js';
import { seedFormat } from '../src/seeds/index.js';
import { ms, summarize } from './stats.js';

const ROOT = join(import.meta.dirname, '..');
const KEYS = 25;

export async function benchProgram(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'keytap-bench-program-'));
  const previousRuntime = process.env.KEYTAP_RUNTIME_DIR;
  process.env.KEYTAP_RUNTIME_DIR = join(dir, 'runtime');
  const env = { ...process.env };
  const done: number[] = [];
  const exported: number[] = [];
  // The times come from the seams production code has anyway: the watcher's `added`, the run's
  // afterStep ('after-ledger-done') and the batch's `result` report (after the seed files).
  let addedAt = 0;
  let doneAt = 0;
  const run = await ProvisionRun.start({
    outDir: join(dir, 'out'),
    formats: [seedFormat('pskc'), seedFormat('entra')],
    afterStep: (step) => {
      if (step === 'after-ledger-done') doneAt = performance.now();
    },
  });
  try {
    const stop = new AbortController();
    const abort = new AbortController();
    // The "human": plugs the next key in when asked, and pulls it when asked.
    let chores = Promise.resolve();
    const chore = (work: () => Promise<void>): void => {
      chores = chores.then(work).catch((error: unknown) => {
        console.error(error);
        stop.abort();
      });
    };
    let plugged = 0;
    const source = new KeyWatcher({ hid: false, pcsc: false });
    source.on('added', () => (addedAt = performance.now()));
    await runBatch({
      source,
      run,
      open: (descriptor, signal) => openOathSession(descriptor, signal),
      nextToken: () => buildToken({ ...DEFAULT_PARAMETERS, upn: 'bench@contoso.com' }, generateSecret('SHA1'), run.serials.next()),
      stop: stop.signal,
      abort: abort.signal,
      count: KEYS,
      report: (event) => {
        if (event.kind === 'insert') {
          const file = join(dir, `key-${++plugged}.json`);
          chore(() => keytap(['virtual', 'start', file, '--touch', 'auto', '--touch-delay', '0'], env));
        } else if (event.kind === 'remove') {
          chore(() => keytap(['virtual', 'stop', event.key.virtual!.file], env));
        } else if (event.kind === 'result' && event.result.outcome.status === 'programmed') {
          done.push(doneAt - addedAt);
          exported.push(performance.now() - addedAt);
        } else if (event.kind === 'result') {
          console.error(`key ${event.number}: ${event.result.outcome.status}`);
        }
      },
    });
    await chores;
    for (let i = 1; i <= plugged; i++) await keytap(['virtual', 'stop', join(dir, `key-${i}.json`)], env).catch(() => undefined);
  } finally {
    await run.close();
    if (previousRuntime === undefined) delete process.env.KEYTAP_RUNTIME_DIR;
    else process.env.KEYTAP_RUNTIME_DIR = previousRuntime;
    rmSync(dir, { recursive: true, force: true });
  }
  const d = summarize(done);
  const e = summarize(exported);
  console.log(`batch programming, virtual key, touch after 0 ms, ${done.length} keys, "added" → verified and ledger done: median ${ms(d.median)}, max ${ms(d.max)}   (target: median ≤ 300 ms)`);
  console.log(`  … → seed files (PSKC + Entra CSV) rewritten from the ledger: median ${ms(e.median)}, max ${ms(e.max)}`);
}

function keytap(args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'keytap.cjs'), ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`keytap ${args.join(' ')} failed: ${stderr}`))));
  });
}
