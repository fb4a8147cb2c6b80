/**
 * A throwaway desktop for the platform tests: Xvfb on a free display, a private session bus
 * (test/support/private-bus.ts),
 * and, on request, dunst as the notification server.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { startPrivateBus } from '../support/private-bus.js';
import type { PrivateBus } from '../support/private-bus.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The first of `tools` that is not on PATH, or undefined when all are. */
export function missingTool(...tools: string[]): string | undefined {
  for (const tool of tools) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return tool;
    }
  }
  return undefined;
}

export function skipMessage(tool: string | undefined, packageName: string): string {
  return tool ? `skipped: ${tool} is not installed (Debian package ${packageName})` : '';
}

export function run(command: string, args: string[], env: NodeJS.ProcessEnv, input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(command, args, { env, timeout: 10_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
    // A command that exits without reading its input (xsel -ob) makes this write fail with EPIPE;
    // without a listener that error would crash the test process.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(input ?? '');
  });
}

export class Desktop {
  readonly dir = mkdtempSync(join(tmpdir(), 'keytap-desktop-'));
  env: NodeJS.ProcessEnv = {};
  private xvfb: ChildProcess | undefined;
  private bus: PrivateBus | undefined;
  private dunst: ChildProcess | undefined;

  /** Starts Xvfb with one screen of `screen` (WIDTHxHEIGHTxDEPTH). */
  async startX(screen = '640x480x24', extraArgs: readonly string[] = []): Promise<void> {
    const xvfb = spawn('Xvfb', ['-displayfd', '3', '-screen', '0', screen, '-nolisten', 'tcp', ...extraArgs], {
      stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
    });
    this.xvfb = xvfb;
    const display = await new Promise<string>((resolve, reject) => {
      let text = '';
      const fd = xvfb.stdio[3] as NodeJS.ReadableStream;
      fd.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        if (text.includes('\n')) resolve(`:${text.trim()}`);
      });
      xvfb.once('exit', (code) => reject(new Error(`Xvfb exited (${code})`)));
      setTimeout(() => reject(new Error('Xvfb did not start')), 10_000).unref();
    });
    this.env = { ...this.env, DISPLAY: display };
  }

  startBus(): void {
    this.bus = startPrivateBus(`unix:dir=${this.dir}`);
    this.env = { ...this.env, DBUS_SESSION_BUS_ADDRESS: this.bus.address };
  }

  /** Starts dunst and waits until it owns org.freedesktop.Notifications. */
  async startDunst(): Promise<void> {
    const config = join(this.dir, 'dunstrc');
    writeFileSync(config, '[global]\n    history_length = 50\n');
    this.dunst = spawn('dunst', ['-conf', config], { env: { ...process.env, ...this.env }, stdio: 'ignore' });
    await this.waitFor(async () => (await run('dunstctl', ['count', 'displayed'], this.processEnv())).code === 0);
  }

  async stopDunst(): Promise<void> {
    const dunst = this.dunst;
    this.dunst = undefined;
    if (!dunst || dunst.exitCode !== null) return;
    const exited = new Promise((resolve) => dunst.once('exit', resolve));
    dunst.kill('SIGTERM');
    await exited;
  }

  processEnv(): NodeJS.ProcessEnv {
    return { ...process.env, ...this.env };
  }

  async waitFor(predicate: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (await predicate()) return;
      if (Date.now() > deadline) throw new Error('timed out waiting for the desktop');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async stop(): Promise<void> {
    await this.stopDunst();
    this.bus?.stop();
    this.xvfb?.kill('SIGTERM');
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface DunstEntry {
  id: number;
  summary: string;
  body: string;
  appname: string;
  iconPath: string;
  /** What dunst made of expire_timeout (0: stays until closed). */
  timeout: number;
}

/** Moves what dunst shows into its history and reads the history back (newest first). */
export async function dunstHistory(env: NodeJS.ProcessEnv): Promise<DunstEntry[]> {
  await run('dunstctl', ['close-all'], env);
  const { stdout } = await run('dunstctl', ['history'], env);
  const parsed = JSON.parse(stdout) as { data: Record<string, { data: unknown }>[][] };
  return (parsed.data[0] ?? []).map((entry) => ({
    id: Number(entry.id?.data),
    summary: String(entry.summary?.data),
    body: String(entry.body?.data),
    appname: String(entry.appname?.data),
    iconPath: String(entry.icon_path?.data),
    timeout: Number(entry.timeout?.data),
  }));
}

export async function dunstDisplayed(env: NodeJS.ProcessEnv): Promise<number> {
  const { stdout } = await run('dunstctl', ['count', 'displayed'], env);
  return Number(stdout.trim());
}
