/**
 * The desktop's own fuzzy finders in their dmenu mode, for `keytap pick`: the choices go in on
 * stdin, one a line, and the chosen line comes out on stdout; exit 1 is "cancelled" (Esc) in all
 * four. Which one is there for this session: rofi and dmenu draw on X11 (DISPLAY; rofi's Wayland
 * forks on WAYLAND_DISPLAY too), fuzzel and wofi on Wayland only.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { KeytapError } from '../errors.js';

export const DESKTOP_FINDERS = ['rofi', 'fuzzel', 'wofi', 'dmenu'] as const;
export type DesktopFinder = (typeof DESKTOP_FINDERS)[number];

/** The arguments for the dmenu mode, case-insensitive where the finder can be told. */
export function finderArgs(finder: DesktopFinder, prompt: string): string[] {
  switch (finder) {
    case 'rofi':
      return ['-dmenu', '-i', '-p', prompt];
    case 'fuzzel':
      return ['--dmenu', '--prompt', `${prompt}> `];
    case 'wofi':
      return ['--dmenu', '--insensitive', '--prompt', prompt];
    case 'dmenu':
      return ['-i', '-l', '15', '-p', prompt];
  }
}

/** Whether the finder can draw in this session. */
export function finderFitsSession(finder: DesktopFinder, env: NodeJS.ProcessEnv): boolean {
  const x11 = Boolean(env.DISPLAY);
  const wayland = Boolean(env.WAYLAND_DISPLAY);
  switch (finder) {
    case 'rofi':
      return x11 || wayland;
    case 'dmenu':
      return x11;
    case 'fuzzel':
    case 'wofi':
      return wayland;
  }
}

/** The path of `command` on PATH, if it is an executable file there. */
export function onPath(command: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const path = join(dir, command);
    try {
      if (!statSync(path).isFile()) continue;
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The first desktop finder that is installed and can draw in this session. */
export function findDesktopFinder(env: NodeJS.ProcessEnv = process.env): DesktopFinder | undefined {
  return DESKTOP_FINDERS.find((finder) => finderFitsSession(finder, env) && onPath(finder, env) !== undefined);
}

/** How long a finder has to end after SIGTERM before it (and what it started) is killed outright. */
export const FINDER_KILL_GRACE_MS = 1_000;

/**
 * Runs the finder over `lines` and resolves with the chosen line as it printed it (no newline).
 * Rejects with CANCELLED when it exits 1 (Esc) or prints nothing, with UNSUPPORTED when it is not
 * installed, and with DEVICE_ERROR naming its exit code and last words when it fails otherwise.
 * Ctrl+C (`signal`) ends it: SIGTERM, then SIGKILL after FINDER_KILL_GRACE_MS, to its whole
 * process group (it runs in its own), since a wrapper script's child that outlived it would keep
 * its stdout open and the answer would never come. It is killed too when this process exits.
 */
export function runDesktopFinder(finder: DesktopFinder, lines: readonly string[], prompt: string, signal?: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    // Its own process group (a GUI finder needs no terminal), so one kill reaches what it started.
    const ownGroup = process.platform !== 'win32';
    const child = spawn(finder, finderArgs(finder, prompt), { stdio: ['pipe', 'pipe', 'pipe'], detached: ownGroup });
    let stdout = '';
    let stderr = '';
    let forceKill: NodeJS.Timeout | undefined;
    const kill = (how: NodeJS.Signals): void => {
      try {
        if (ownGroup && child.pid !== undefined) process.kill(-child.pid, how);
        else child.kill(how);
      } catch {
        // already gone
      }
    };
    const onExit = (): void => kill('SIGKILL');
    process.on('exit', onExit);
    const settled = (): void => {
      signal?.removeEventListener('abort', onAbort);
      process.off('exit', onExit);
      clearTimeout(forceKill);
    };
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-2000)));
    const onAbort = (): void => {
      kill('SIGTERM');
      forceKill = setTimeout(() => kill('SIGKILL'), FINDER_KILL_GRACE_MS);
    };
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    child.once('error', (error: NodeJS.ErrnoException) => {
      settled();
      reject(
        error.code === 'ENOENT'
          ? new KeytapError('UNSUPPORTED', `${finder} is not installed (it is not on PATH).`)
          : new KeytapError('DEVICE_ERROR', `${finder} could not be started: ${error.message}`),
      );
    });
    child.once('close', (code, killedBy) => {
      settled();
      const chosen = stdout.split('\n')[0]!.replace(/\r$/u, '');
      if (signal?.aborted) return reject(new KeytapError('CANCELLED', 'Interrupted.'));
      if (code === 0 && chosen !== '') return resolve(chosen);
      if (code === 0 || code === 1) return reject(new KeytapError('CANCELLED', 'Cancelled.'));
      const said = stderr.trim().split('\n').pop();
      reject(new KeytapError('DEVICE_ERROR', `${finder} failed (${killedBy ? `ended by ${killedBy}` : `exit code ${code}`})${said ? `: ${said}` : '.'}`));
    });
    child.stdin.on('error', () => undefined); // a finder that exits before reading all: its exit code says why
    child.stdin.end(lines.map((l) => `${l}\n`).join(''));
  });
}

/** The finder for this session as the tray uses it (the same finders and prompt as `keytap pick`); undefined when none is installed. */
export function desktopAccountFinder(env: NodeJS.ProcessEnv = process.env): { name: string; choose(lines: readonly string[], signal: AbortSignal): Promise<string> } | undefined {
  const finder = findDesktopFinder(env);
  if (!finder) return undefined;
  return { name: finder, choose: (lines, signal) => runDesktopFinder(finder, lines, 'keytap', signal) };
}
