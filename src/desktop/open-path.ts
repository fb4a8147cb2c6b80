/** Opens a file with the desktop's default application ("Settings" in the tray menu). */
import { spawn } from 'node:child_process';
import { KeytapError } from '../errors.js';

export function openPath(path: string): Promise<void> {
  const [command, args] =
    process.platform === 'darwin' ? ['open', [path]] : process.platform === 'win32' ? ['cmd', ['/c', 'start', '""', path]] : ['xdg-open', [path]];
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { detached: true, stdio: 'ignore', windowsHide: true });
    child.once('error', (error) => reject(new KeytapError('UNSUPPORTED', `${command} failed: ${error.message}`)));
    child.once('spawn', () => {
      child.unref();
      resolve();
    });
  });
}
