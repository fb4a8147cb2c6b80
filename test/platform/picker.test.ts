// Which desktop finder `keytap pick` uses for a session (src/desktop/picker.ts).
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findDesktopFinder, finderArgs } from '../../src/desktop/picker.js';
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
