/** Runs the built CLI as a user would, and computes reference codes with oathtool. */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const KEYTAP = join(import.meta.dirname, '..', '..', 'bin', 'keytap.cjs');

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runKeytap(args: string[], options: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [KEYTAP, ...args], {
      env: { ...process.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: options.timeoutMs ?? 30_000,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });
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
