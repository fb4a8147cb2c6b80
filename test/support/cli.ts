/**
 * Runs keytap as a user would, and computes reference codes with oathtool.
 *
 * The program under test is a parameter: by default the built bundle through bin/keytap.cjs, or,
 * when $KEYTAP_UNDER_TEST names a file, that executable (the single executable from
 * `npm run dist`; vitest.config.ts runs the CLI stack and tray tests both ways).
 */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const KEYTAP = join(import.meta.dirname, '..', '..', 'bin', 'keytap.cjs');

/** The executable under test, or undefined for the bundle run by this Node. */
export const KEYTAP_UNDER_TEST: string | undefined = process.env.KEYTAP_UNDER_TEST ? resolve(process.env.KEYTAP_UNDER_TEST) : undefined;

/** The command line that runs keytap with `args`. */
export function keytapCommand(args: readonly string[] = []): { command: string; args: string[] } {
  return KEYTAP_UNDER_TEST ? { command: KEYTAP_UNDER_TEST, args: [...args] } : { command: process.execPath, args: [KEYTAP, ...args] };
}

/** Starts keytap with `args`; `options.env` is added to this process's environment. */
export function spawnKeytap(args: readonly string[], options: SpawnOptions & { env?: NodeJS.ProcessEnv } = {}): ChildProcess {
  const { command, args: argv } = keytapCommand(args);
  return spawn(command, argv, { ...options, env: { ...process.env, ...options.env } });
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** The whole environment of the program (default: this process's). */
  env?: NodeJS.ProcessEnv;
  input?: string;
  timeoutMs?: number;
  /** The working folder (default: this process's). */
  cwd?: string;
}

/** Runs a program to its end with its output captured; standard input is `input` or empty. */
export function runProgram(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: options.env ?? process.env, cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'], timeout: options.timeoutMs ?? 30_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });
}

/** Runs keytap (the program under test) with `args`; `options.env` is added to this process's environment. */
export function runKeytap(args: string[], options: RunOptions = {}): Promise<RunResult> {
  const { command, args: argv } = keytapCommand(args);
  return runProgram(command, argv, { ...options, env: { ...process.env, ...options.env } });
}

export function tempDir(prefix = 'keytap-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface OathtoolParams {
  hexSecret: string;
  type: 'TOTP' | 'HOTP';
  algorithm?: 'SHA1' | 'SHA256' | 'SHA512';
  digits?: number;
  period?: number;
  /** Seconds since the epoch (TOTP). */
  time?: number;
  counter?: number;
}

/** The code oathtool computes: the independent reference. */
export function oathtool(p: OathtoolParams): Promise<string> {
  const args = [`--digits=${p.digits ?? 6}`];
  if (p.type === 'TOTP') {
    args.push(`--totp=${(p.algorithm ?? 'SHA1').toLowerCase()}`, `--time-step-size=${p.period ?? 30}s`, `--now=@${p.time}`);
  } else {
    args.push('--hotp', `--counter=${p.counter ?? 0}`);
  }
  args.push(p.hexSecret);
  return new Promise((resolve, reject) => {
    execFile('oathtool', args, (error, stdout) => (error ? reject(new Error(`oathtool failed: ${error.message}`)) : resolve(stdout.trim())));
  });
}

/** Ends every virtual key served in the runtime folder `env` names (what a test left running), so no process outlives the suite. */
export async function stopServedKeys(env: NodeJS.ProcessEnv): Promise<void> {
  const status = await runKeytap(['virtual', 'status', '--json'], { env });
  for (const key of JSON.parse(status.stdout || '[]') as Array<{ pid: number }>) {
    try {
      process.kill(key.pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
}
