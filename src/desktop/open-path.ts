/** Opens a file with the desktop's default application ("Settings" in the tray menu). */
import { spawn } from 'node:child_process';
import { KeytapError } from '../errors.js';

export interface OpenPathOptions {
  /** The opener and its arguments before the path (default: xdg-open, open, or cmd /c start). */
  opener?: readonly [string, readonly string[]] | undefined;
  /** How long to wait for the opener's verdict; one still running by then has started an application. */
  verdictMs?: number | undefined;
}

/**
 * Resolves once the opener started an application, rejects when it cannot: xdg-open and open exit
 * non-zero when no application takes the file, which is the case a user would otherwise never see.
 */
export function openPath(path: string, options: OpenPathOptions = {}): Promise<void> {
  const [command, before] =
    options.opener ?? (process.platform === 'darwin' ? ['open', []] : process.platform === 'win32' ? ['cmd', ['/c', 'start', '""']] : ['xdg-open', []]);
  return new Promise((resolve, reject) => {
    const child = spawn(command, [...before, path], { detached: true, stdio: 'ignore', windowsHide: true });
    const timer = setTimeout(() => {
      child.unref();
      resolve();
    }, options.verdictMs ?? 5_000);
    timer.unref();
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new KeytapError('UNSUPPORTED', `${command} could not be started: ${error.message}.`));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new KeytapError('UNSUPPORTED', `No application opened ${path} (${command} exited with ${code ?? 'a signal'}).`));
    });
  });
}
