/**
 * Driving `keytap program --batch` as a user would: the programmer as a child process whose
 * prompts we wait for, and virtual keys plugged in and out with `keytap virtual start|stop`, in a
 * private runtime directory.
 */
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { prepareKey } from '../../src/device/oath/session.js';
import type { LedgerEntry } from '../../src/provision/ledger.js';
import { KEYTAP, runKeytap, tempDir } from '../support/cli.js';
import type { RunResult } from '../support/cli.js';
import { GraphStandin } from '../support/graph-standin.js';

export class Programmer {
  readonly child: ChildProcessWithoutNullStreams;
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private waiters: Array<() => void> = [];

  /** `entry`: the node arguments that start keytap (the bundle by default). */
  constructor(args: string[], env: NodeJS.ProcessEnv, entry: string[] = [KEYTAP]) {
    this.child = spawn(process.execPath, [...entry, ...args], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdin.end();
    const wake = (): void => {
      for (const w of this.waiters.splice(0)) w();
    };
    this.child.stdout.on('data', (d: Buffer) => {
      this.stdout += d.toString();
      wake();
    });
    this.child.stderr.on('data', (d: Buffer) => {
      this.stderr += d.toString();
      wake();
    });
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => {
      wake();
      resolve({ code, signal });
    }));
  }

  /** Waits until stderr+stdout has `pattern` at least `times` times. */
  async waitFor(pattern: RegExp, times = 1, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const global = new RegExp(pattern.source, `${pattern.flags.replace('g', '')}g`);
    while ((`${this.stderr}\n${this.stdout}`.match(global) ?? []).length < times) {
      if (this.child.exitCode !== null || this.child.signalCode !== null) throw new Error(`programmer exited while waiting for ${pattern}:\n${this.stderr}\n${this.stdout}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern} ×${times}:\n${this.stderr}\n${this.stdout}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 200);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}

export class VirtualKeys {
  readonly runtime = tempDir('keytap-rt-');
  readonly dir = tempDir('keytap-keys-');
  private readonly running = new Set<string>();

  get env(): NodeJS.ProcessEnv {
    return { KEYTAP_RUNTIME_DIR: this.runtime };
  }

  file(name: string): string {
    return join(this.dir, `${name}.json`);
  }

  async keytap(args: string[], input?: string): Promise<RunResult> {
    return runKeytap(args, { env: this.env, ...(input === undefined ? {} : { input }) });
  }

  async plug(name: string, extra: string[] = ['--touch', 'auto', '--touch-delay', '0']): Promise<void> {
    const result = await this.keytap(['virtual', 'start', this.file(name), ...extra]);
    if (result.code !== 0) throw new Error(`virtual start failed: ${result.stderr}`);
    this.running.add(name);
  }

  async unplug(name: string): Promise<void> {
    const result = await this.keytap(['virtual', 'stop', this.file(name)]);
    if (result.code !== 0) throw new Error(`virtual stop failed: ${result.stderr}`);
    this.running.delete(name);
  }

  async unplugAll(): Promise<void> {
    for (const name of [...this.running]) await this.unplug(name).catch(() => undefined);
  }

  /** The HMAC keys a virtual key's store holds, by credential id (hex). */
  stored(name: string): Map<string, string> {
    const store = JSON.parse(readFileSync(this.file(name), 'utf8')) as { credentials: Array<{ id: string; key: string }> };
    return new Map(store.credentials.map((c) => [c.id, c.key]));
  }
}

/** The ledger entry whose seed is the one a key stores (the key holds the host-prepared HMAC key). */
export function entryForStoredKey(entries: readonly LedgerEntry[], storedKeyHex: string): LedgerEntry | undefined {
  return entries.find((e) => Buffer.from(prepareKey(e.token.secret, e.token.algorithm)).toString('hex') === storedKeyHex);
}

/**
 * Virtual keys and a Graph stand-in for each test that calls `create()`, unplugged and stopped
 * after it. Call once at a test file's top level.
 */
export function keysWithGraphPerTest(): { create(): { keys: VirtualKeys; standin: GraphStandin } } {
  let made: { keys: VirtualKeys; standin: GraphStandin } | undefined;
  afterEach(async () => {
    await made?.keys.unplugAll();
    await made?.standin.stop();
    made = undefined;
  });
  return { create: () => (made = { keys: new VirtualKeys(), standin: new GraphStandin() }) };
}

/** Plugs in key `name` when the batch asks for key `number`, and takes it out when the batch says to. */
export async function serveKey(programmer: Programmer, keys: VirtualKeys, name: string, number: number): Promise<void> {
  await programmer.waitFor(new RegExp(`Insert key ${number} `, 'u'));
  await keys.plug(name);
  await programmer.waitFor(new RegExp(`Remove virtual key ${name}\\.json`, 'u'));
  await keys.unplug(name);
}
