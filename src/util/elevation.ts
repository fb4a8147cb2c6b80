/**
 * Whether this process runs elevated on Windows (as Administrator). Windows opens FIDO HID devices
 * only for elevated processes (Windows 10 1903 and later), so the answer decides what keytap tells
 * a user whose key it cannot open. `net session` succeeds only for an elevated process, on every
 * Windows since XP, and needs nothing installed; it is asked once per process. Elsewhere: false.
 */
import { execFile } from 'node:child_process';

let answer: Promise<boolean> | undefined;

export function isElevated(platform: NodeJS.Platform = process.platform): Promise<boolean> {
  if (platform !== 'win32') return Promise.resolve(false);
  answer ??= new Promise((resolve) => {
    execFile('net', ['session'], { windowsHide: true, timeout: 5_000 }, (error) => resolve(error === null));
  });
  return answer;
}
