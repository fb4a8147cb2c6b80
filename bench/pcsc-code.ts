/**
 * `keytap code` over PC/SC against ykman on the same card (issue 8): a private pcscd with vsmartcard's
 * vpcd, the virtual key inserted into it as a card (`keytap virtual start FILE --vpcd`), then whole
 * processes, interleaved round by round so that drift of the machine hits every command alike:
 * - `node -e 0`: what starting Node costs at all;
 * - `node bin/keytap.cjs code QUERY --device pcsc:READER` (the CLI bundle, as a user runs it);
 * - `ykman --reader READER oath accounts code -s QUERY` (4.0.9, Debian's python3).
 * Medians and ratios are printed; nothing is asserted. Twice: with Debian's vpcd as it is, where
 * every message between vpcd and the card waits ~43 ms for a delayed ACK (test/pcsc/pcscd.ts says
 * why), and, where this machine can make one, in a network namespace whose loopback ACKs at once, so
 * that the figures show the clients rather than that wait.
 *
 * Run: npm run bench -- pcsc-code   (needs pcscd, vsmartcard-vpcd and yubikey-manager; .ci/run installs them)
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { VPCD_READER, findExecutable, pcscMissing, quickAckAvailable, startPcscd } from '../test/pcsc/pcscd.js';
import { artifactPath } from '../test/support/dist.js';
import { summarize } from './stats.js';

const ROOT = join(import.meta.dirname, '..');
const KEYTAP = join(ROOT, 'bin', 'keytap.cjs');
const ACCOUNT = 'Demo:alice@example.com';
const ROUNDS = 15;

interface Command {
  label: string;
  file: string;
  args: string[];
}

export async function benchPcscCode(): Promise<void> {
  const missing = pcscMissing();
  const ykman = findExecutable('ykman');
  if (missing || !ykman) {
    console.log(`skipped: ${missing ?? 'ykman not installed (apt-get install yubikey-manager)'}`);
    return;
  }
  await measure(ykman, false);
  if (quickAckAvailable()) await measure(ykman, true);
  else console.log('(no network namespace with a quickack loopback here: run as root with unshare and ip for the second set of figures)');
}

async function measure(ykman: string, quickAck: boolean): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'keytap-bench-pcsc-'));
  const pcscd = await startPcscd(dir, { quickAck });
  const env = { ...process.env, NODE_OPTIONS: '', KEYTAP_RUNTIME_DIR: join(dir, 'run'), PCSCLITE_CSOCK_NAME: pcscd.socket };
  const keyFile = join(dir, 'pcsc-key.json');
  try {
    // The card connects to vpcd: from inside pcscd's network namespace when there is one.
    execFileSync(...pcscd.inNamespace(process.execPath, [KEYTAP, 'virtual', 'start', keyFile, '--demo', '--touch', 'auto', '--vpcd', `127.0.0.1:${pcscd.vpcdPort}`]), { env, stdio: 'ignore' });
    const commands: Command[] = [
      { label: 'node -e 0', file: process.execPath, args: ['-e', '0'] },
      { label: 'keytap code (PC/SC)', file: process.execPath, args: [KEYTAP, 'code', ACCOUNT, '--device', `pcsc:${VPCD_READER}`] },
      { label: 'ykman oath accounts code -s', file: ykman, args: ['--reader', VPCD_READER, 'oath', 'accounts', 'code', '-s', ACCOUNT] },
    ];
    // The Linux single executable too, when `npm run dist` has made it.
    const executable = artifactPath('linux-x64');
    if (existsSync(executable)) commands.push({ label: 'keytap code (PC/SC), executable', file: executable, args: ['code', ACCOUNT, '--device', `pcsc:${VPCD_READER}`] });
    // The card shows up in pcscd within its polling interval; the first successful round is a warm-up.
    await untilSucceeds(() => run(commands[1]!, env), 15_000);
    for (const command of commands) await run(command, env);

    const samples = new Map<string, number[]>(commands.map((c) => [c.label, []]));
    const outputs = new Map<string, Set<string>>(commands.map((c) => [c.label, new Set()]));
    for (let round = 0; round < ROUNDS; round++) {
      for (const command of commands) {
        const result = await run(command, env);
        samples.get(command.label)!.push(result.ms);
        if (result.stdout.trim()) outputs.get(command.label)!.add(result.stdout.trim());
      }
    }
    const median = (label: string): number => summarize(samples.get(label)!).median;
    const node = median('node -e 0');
    const keytap = median('keytap code (PC/SC)');
    const ykmanMs = median('ykman oath accounts code -s');
    console.log(`${quickAck ? 'vpcd without the delayed-ACK wait (own network namespace, loopback quickack)' : 'vpcd as Debian 12 ships it (each vpcd message waits ~43 ms)'}; whole process, median of ${ROUNDS} interleaved runs each, same card:`);
    for (const command of commands) {
      const s = summarize(samples.get(command.label)!);
      console.log(`  ${command.label.padEnd(34)} median ${s.median.toFixed(0).padStart(5)} ms   min ${s.min.toFixed(0).padStart(5)} ms   max ${s.max.toFixed(0).padStart(5)} ms`);
    }
    console.log(`  ykman / keytap: ${(ykmanMs / keytap).toFixed(2)}× (goal ≥ 3×)`);
    console.log(`  keytap / node -e 0: ${(keytap / node).toFixed(2)}× (goal ≤ 2×)`);
    if (samples.has('keytap code (PC/SC), executable')) {
      const fromExecutable = median('keytap code (PC/SC), executable');
      console.log(`  executable: ykman / keytap ${(ykmanMs / fromExecutable).toFixed(2)}×, keytap / node -e 0 ${(fromExecutable / node).toFixed(2)}×`);
    }
    // A sanity line: both clients read codes from the same card (a TOTP code may change between runs).
    console.log(`  codes seen: keytap ${[...outputs.get('keytap code (PC/SC)')!].join(' ')}; ykman ${[...outputs.get('ykman oath accounts code -s')!].map((line) => line.split(/\s+/u).pop()).join(' ')}`);
  } finally {
    try {
      execFileSync(process.execPath, [KEYTAP, 'virtual', 'stop', keyFile], { env, stdio: 'ignore' });
    } catch {
      // already gone
    }
    await pcscd.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function run(command: Command, env: NodeJS.ProcessEnv): Promise<{ ms: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command.file, command.args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const elapsed = performance.now() - started;
      if (code !== 0) reject(new Error(`${command.label} exited ${code}: ${stderr}`));
      else resolve({ ms: elapsed, stdout });
    });
  });
}

async function untilSucceeds(attempt: () => Promise<unknown>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await attempt();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
