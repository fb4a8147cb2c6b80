// Which desktop finder `keytap pick` uses for a session (src/desktop/picker.ts).
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { findDesktopFinder, finderArgs, runDesktopFinder } from '../../src/desktop/picker.js';
import { tempDir } from '../support/cli.js';

function binWith(...names: string[]): string {
  const bin = join(tempDir(), 'bin');
  mkdirSync(bin);
  for (const name of names) {
    writeFileSync(join(bin, name), '#!/bin/sh\n');
    chmodSync(join(bin, name), 0o755);
  }
  return bin;
}

describe.runIf(process.platform !== 'win32')('the desktop finder for this session', () => {
  it('X11: rofi before dmenu; fuzzel and wofi are Wayland-only', () => {
    expect(findDesktopFinder({ PATH: binWith('rofi', 'dmenu', 'fuzzel'), DISPLAY: ':0' })).toBe('rofi');
    expect(findDesktopFinder({ PATH: binWith('dmenu', 'fuzzel', 'wofi'), DISPLAY: ':0' })).toBe('dmenu');
    expect(findDesktopFinder({ PATH: binWith('fuzzel', 'wofi'), DISPLAY: ':0' })).toBeUndefined();
  });

  it('Wayland: rofi, then fuzzel, then wofi; dmenu needs X11', () => {
    expect(findDesktopFinder({ PATH: binWith('fuzzel', 'wofi', 'dmenu'), WAYLAND_DISPLAY: 'wayland-0' })).toBe('fuzzel');
    expect(findDesktopFinder({ PATH: binWith('wofi', 'dmenu'), WAYLAND_DISPLAY: 'wayland-0' })).toBe('wofi');
    expect(findDesktopFinder({ PATH: binWith('dmenu'), WAYLAND_DISPLAY: 'wayland-0' })).toBeUndefined();
  });

  it('no display: none; a file that is not executable is not a finder', () => {
    expect(findDesktopFinder({ PATH: binWith('rofi', 'dmenu') })).toBeUndefined();
    const bin = binWith();
    writeFileSync(join(bin, 'dmenu'), 'not a program');
    expect(findDesktopFinder({ PATH: bin, DISPLAY: ':0' })).toBeUndefined();
  });

  it('each is started in its dmenu mode', () => {
    expect(finderArgs('rofi', 'keytap')).toEqual(['-dmenu', '-i', '-p', 'keytap']);
    expect(finderArgs('fuzzel', 'keytap')).toEqual(['--dmenu', '--prompt', 'keytap> ']);
    expect(finderArgs('wofi', 'keytap')).toEqual(['--dmenu', '--insensitive', '--prompt', 'keytap']);
    expect(finderArgs('dmenu', 'keytap')).toEqual(['-i', '-l', '15', '-p', 'keytap']);
  });
});

/** A finder (named rofi) that ignores SIGTERM, SIGHUP and SIGINT and starts a child that does too; it writes "its-pid child-pid" to `pids`. */
function stubbornFinder(pids: string): string {
  const bin = join(tempDir(), 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'rofi'), `#!/bin/sh\ntrap '' TERM HUP INT\nsleep 30 &\necho "$$ $!" > "${pids}.tmp"\nmv "${pids}.tmp" "${pids}"\nwait\n`);
  chmodSync(join(bin, 'rofi'), 0o755);
  return bin;
}

/** Whether the process is still there (a zombie waiting for its parent to reap it counts as gone). */
function alive(pid: number): boolean {
  try {
    return !/^\S+ \(.*\) Z/u.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

async function pidsOnceWritten(pids: string): Promise<number[]> {
  while (!existsSync(pids)) await new Promise((r) => setTimeout(r, 20));
  return readFileSync(pids, 'utf8').trim().split(' ').map(Number);
}

async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 50));
  return !alive(pid);
}

describe.runIf(process.platform === 'linux')('a finder that will not end', () => {
  const path = process.env.PATH;
  afterEach(() => {
    process.env.PATH = path;
  });

  it('an abort ends it and what it started (SIGTERM, then SIGKILL): the promise settles as "Interrupted.", no process left', async () => {
    const pids = join(tempDir(), 'pids');
    process.env.PATH = `${stubbornFinder(pids)}:${path ?? ''}`;
    const abort = new AbortController();
    const chosen = runDesktopFinder('rofi', ['a', 'b'], 'keytap', abort.signal);
    const [finder, child] = await pidsOnceWritten(pids);
    abort.abort();
    await expect(chosen).rejects.toMatchObject({ code: 'CANCELLED', message: 'Interrupted.' });
    expect([await gone(finder!), await gone(child!)]).toEqual([true, true]);
  });

  it('it is killed when this process exits while it runs', async () => {
    const pids = join(tempDir(), 'pids');
    const env = { ...process.env, PATH: `${stubbornFinder(pids)}:${path ?? ''}` };
    const parent = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'picker-exit-child.ts'), pids], { env, stdio: 'inherit' });
    const exited = new Promise((resolve) => parent.once('exit', resolve));
    const [finder, child] = await pidsOnceWritten(pids);
    expect(await exited).toBe(0);
    expect([await gone(finder!), await gone(child!)]).toEqual([true, true]);
  });
});
