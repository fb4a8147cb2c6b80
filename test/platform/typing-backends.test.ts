// The typing backends that need no display: wtype/ydotool through stand-in programs on PATH
// (the code goes in on stdin, never on the command line), the first-working chain, and keyTap
// with a recording hook (modifiers up first).
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { KeytapError } from '../../src/errors.js';
import { WtypeTypist, YdotoolTypist } from '../../src/desktop/typing/command.js';
import { FirstWorkingTypist, NoneTypist, createTypist } from '../../src/desktop/typing/index.js';
import { resetUiohookLoader } from '../../src/desktop/uiohook-loader.js';
import { UiohookTypist } from '../../src/desktop/typing/uiohook.js';
import type { Typist } from '../../src/desktop/platform.js';
import { tempDir } from '../support/cli.js';

function standIn(dir: string, name: string, exitCode = 0, stderr = ''): NodeJS.ProcessEnv {
  const log = join(dir, `${name}.log`);
  writeFileSync(join(dir, name), `#!/bin/sh\nprintf '%s\\n' "$*" > '${log}.args'\ncat > '${log}.stdin'\n${stderr ? `echo '${stderr}' >&2\n` : ''}exit ${exitCode}\n`);
  chmodSync(join(dir, name), 0o755);
  return { ...process.env, PATH: `${dir}${delimiter}${process.env.PATH ?? ''}` };
}

describe.skipIf(process.platform === 'win32')('wtype and ydotool', () => {
  it('wtype gets the code on stdin, not in its arguments', async () => {
    const dir = tempDir('keytap-wtype-');
    const env = standIn(dir, 'wtype');
    await new WtypeTypist({ env }).type('734921');
    expect(readFileSync(join(dir, 'wtype.log.stdin'), 'utf8')).toBe('734921');
    expect(readFileSync(join(dir, 'wtype.log.args'), 'utf8')).toBe('-\n');
  });

  it('ydotool: type --file - with the code on stdin', async () => {
    const dir = tempDir('keytap-ydotool-');
    const env = standIn(dir, 'ydotool');
    await new YdotoolTypist({ env, releaseWaitMs: 0 }).type('0815');
    expect(readFileSync(join(dir, 'ydotool.log.stdin'), 'utf8')).toBe('0815');
    expect(readFileSync(join(dir, 'ydotool.log.args'), 'utf8')).toBe('type --file -\n');
  });

  it('a missing program and a failing one are UNSUPPORTED with its words, never the code', async () => {
    const dir = tempDir('keytap-wtype-');
    await expect(new WtypeTypist({ env: { PATH: dir } }).type('111111')).rejects.toMatchObject({ code: 'UNSUPPORTED', message: expect.stringMatching(/wtype is not installed/) });
    const env = standIn(dir, 'wtype', 1, 'Compositor does not support the virtual keyboard protocol');
    const error = (await new WtypeTypist({ env }).type('222222').then(() => undefined, (e: unknown) => e as KeytapError))!;
    expect(error).toMatchObject({ code: 'UNSUPPORTED', message: expect.stringMatching(/virtual keyboard protocol/) });
    expect(`${error.message} ${error.hint ?? ''}`).not.toContain('222222');
  });
});

describe('the first working typist', () => {
  const typist = (name: string, outcome: 'ok' | 'unsupported' | 'denied', typed: string[]): Typist => ({
    name,
    type(text: string) {
      if (outcome === 'unsupported') return Promise.reject(new KeytapError('UNSUPPORTED', `${name} cannot.`));
      if (outcome === 'denied') return Promise.reject(new KeytapError('PERMISSION_DENIED', `${name} was refused.`));
      typed.push(`${name}:${text}`);
      return Promise.resolve();
    },
  });

  it('passes over UNSUPPORTED backends and keeps the one that typed', async () => {
    const typed: string[] = [];
    const chain = new FirstWorkingTypist([typist('portal', 'unsupported', typed), typist('wtype', 'ok', typed)]);
    await chain.type('123');
    expect(typed).toEqual(['wtype:123']);
    expect(chain.name).toBe('wtype');
  });

  it('a refusal that is not UNSUPPORTED is the answer; all UNSUPPORTED names each reason', async () => {
    const typed: string[] = [];
    await expect(new FirstWorkingTypist([typist('portal', 'denied', typed), typist('wtype', 'ok', typed)]).type('1')).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    expect(typed).toEqual([]);
    await expect(new FirstWorkingTypist([typist('portal', 'unsupported', typed), typist('wtype', 'unsupported', typed)]).type('1')).rejects.toMatchObject({
      code: 'UNSUPPORTED',
      message: expect.stringMatching(/portal cannot\. wtype cannot\./),
    });
  });

  it('picks the backend by session', () => {
    expect(createTypist({ platform: 'linux', env: { DISPLAY: ':5' } }).name).toBe('XTEST');
    expect(createTypist({ platform: 'linux', env: { WAYLAND_DISPLAY: 'wayland-0', DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent' } }).name).toBe('RemoteDesktop portal, then wtype, then ydotool');
    expect(createTypist({ platform: 'linux', env: { WAYLAND_DISPLAY: 'wayland-0' } }).name).toBe('wtype, then ydotool');
    expect(createTypist({ platform: 'win32', env: {} }).name).toBe('SendInput');
    expect(createTypist({ platform: 'darwin', env: {} }).name).toBe('CGEvent');
    expect(createTypist({ platform: 'linux', env: {} })).toBeInstanceOf(NoneTypist);
  });
});

describe('keyTap (Windows, macOS)', () => {
  const KEYS = { 0: 11, 1: 2, 4: 5, 9: 10, A: 30, Ctrl: 29, CtrlRight: 3613, Alt: 56, AltRight: 3640, Shift: 42, ShiftRight: 54, Meta: 3675, MetaRight: 3676 };

  it('sends key-ups for every modifier, then taps the digit keys', async () => {
    const events: string[] = [];
    const hook = { keyTap: (key: number, mods: number[] = []) => events.push(`tap ${key}${mods.length ? ` +${mods.join('+')}` : ''}`), keyToggle: (key: number, how: string) => events.push(`${how} ${key}`) };
    await new UiohookTypist({ platform: 'win32', load: () => Promise.resolve({ hook, keys: KEYS }) }).type('1490');
    expect(events).toEqual(['up 29', 'up 3613', 'up 56', 'up 3640', 'up 42', 'up 54', 'up 3675', 'up 3676', 'tap 2', 'tap 5', 'tap 10', 'tap 11']);
  });

  it('waits releaseWaitMs before the key-ups, so a still-held Ctrl does not auto-repeat over them', async () => {
    const events: { what: string; at: number }[] = [];
    const hook = { keyTap: () => events.push({ what: 'tap', at: Date.now() }), keyToggle: () => events.push({ what: 'up', at: Date.now() }) };
    const started = Date.now();
    await new UiohookTypist({ platform: 'win32', releaseWaitMs: 250, load: () => Promise.resolve({ hook, keys: KEYS }) }).type('1');
    expect(events[0]!.what).toBe('up');
    expect(events[0]!.at - started).toBeGreaterThanOrEqual(240);
  });

  it('loads uiohook through the shared loader, whose crash-guard probe failing means nothing is loaded or typed', async () => {
    resetUiohookLoader();
    try {
      await expect(new UiohookTypist({ platform: 'win32', releaseWaitMs: 0, probe: () => Promise.reject(new Error('The keyboard hook did not start.')) }).type('1')).rejects.toMatchObject({
        code: 'UNSUPPORTED',
        message: expect.stringMatching(/keyboard hook did not start/u),
      });
    } finally {
      resetUiohookLoader();
    }
  });

  it('macOS without the Accessibility permission: PERMISSION_DENIED naming the setting, nothing sent', async () => {
    const events: string[] = [];
    const hook = { keyTap: () => events.push('tap'), keyToggle: () => events.push('toggle') };
    await expect(new UiohookTypist({ platform: 'darwin', trusted: () => Promise.resolve(false), load: () => Promise.resolve({ hook, keys: KEYS }) }).type('1')).rejects.toMatchObject({
      code: 'PERMISSION_DENIED',
      hint: expect.stringMatching(/Accessibility/),
    });
    expect(events).toEqual([]);
  });
});
