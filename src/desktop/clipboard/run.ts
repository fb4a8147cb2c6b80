/**
 * Runs a clipboard tool. The text goes in on stdin and comes out on stdout, never on the command
 * line, where every user of the machine could read it in the process list.
 */
import { spawn } from 'node:child_process';

export interface RunOptions {
  /** Written to stdin, then stdin is closed. */
  input?: string | undefined;
  /**
   * Tools that keep serving the clipboard (xsel, xclip, wl-copy) fork a child that inherits our
   * pipes, so "all pipes closed" would wait for the next copy. For those, wait for the exit of the
   * process we started and give the child no pipes to hold: stdout and stderr go nowhere.
   */
  detaches?: boolean | undefined;
  timeoutMs?: number | undefined;
  env?: NodeJS.ProcessEnv | undefined;
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Rejects only when the command cannot be started (ENOENT …); a non-zero exit resolves. */
export type CommandRunner = (command: string, args: readonly string[], options?: RunOptions) => Promise<RunResult>;

export const runCommand: CommandRunner = (command, args, options = {}) =>
  new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      stdio: ['pipe', options.detaches ? 'ignore' : 'pipe', options.detaches ? 'ignore' : 'pipe'],
      env: options.env ?? process.env,
      windowsHide: true,
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 5_000);
    timer.unref();
    let settled = false;
    const finish = (code: number | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    };
    child.once('error', (error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(error);
    });
    child.once(options.detaches ? 'exit' : 'close', (code: number | null) => finish(code));
    // A tool that exits without reading stdin makes our write fail with EPIPE; its exit code says
    // what happened, so the stream error is not worth an exception.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(options.input ?? '');
  });

/** Whether `command` is on PATH (without running it). */
export async function commandExists(command: string, run: CommandRunner = runCommand): Promise<boolean> {
  if (process.platform === 'win32') return true;
  try {
    const result = await run('sh', ['-c', 'command -v "$0" >/dev/null', command]);
    return result.code === 0;
  } catch {
    return false;
  }
}
