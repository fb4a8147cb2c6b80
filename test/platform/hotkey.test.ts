// Accelerator parsing, the uiohook matcher (pure), the uiohook backend with a fake hook, on a real
// X server (Xvfb + xdotool key presses), and backend selection.
import { spawn } from 'node:child_process';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { parseAccelerator, formatAccelerator, toXdgTrigger, createGlobalShortcut } from '../../src/desktop/hotkey/index.js';
import { NoneShortcut } from '../../src/desktop/hotkey/none.js';
import { AcceleratorMatcher, UiohookShortcut } from '../../src/desktop/hotkey/uiohook.js';
import type { Hook, KeyEvent } from '../../src/desktop/hotkey/uiohook.js';
import type { KeytapError } from '../../src/errors.js';
import { Desktop, missingTool, run, skipMessage } from './desktop.js';

const KEYS = { K: 37, F1: 59, Equal: 13, NumpadAdd: 78, Enter: 28, NumpadEnter: 3612, ArrowUp: 57416, Numpad5: 76, Space: 57 };

describe('parseAccelerator', () => {
  it.each([
    ['Ctrl+Alt+K', 'linux', { ctrl: true, alt: true, shift: false, meta: false }, 'K'],
    ['ctrl+alt+k', 'linux', { ctrl: true, alt: true, shift: false, meta: false }, 'K'],
    ['CommandOrControl+Shift+F1', 'linux', { ctrl: true, alt: false, shift: true, meta: false }, 'F1'],
    ['CommandOrControl+Shift+F1', 'darwin', { ctrl: false, alt: false, shift: true, meta: true }, 'F1'],
    ['CmdOrCtrl+Option+5', 'darwin', { ctrl: false, alt: true, shift: false, meta: true }, '5'],
    ['Super+Space', 'linux', { ctrl: false, alt: false, shift: false, meta: true }, 'Space'],
    ['Control + Alt + Return', 'linux', { ctrl: true, alt: true, shift: false, meta: false }, 'Enter'],
    ['Ctrl++', 'linux', { ctrl: true, alt: false, shift: false, meta: false }, 'Plus'],
    ['Ctrl+Alt+Num5', 'linux', { ctrl: true, alt: true, shift: false, meta: false }, 'Num5'],
    ['F13', 'linux', { ctrl: false, alt: false, shift: false, meta: false }, 'F13'],
    ['Alt+Up', 'win32', { ctrl: false, alt: true, shift: false, meta: false }, 'Up'],
  ] as const)('%s on %s', (text, platform, modifiers, key) => {
    expect(parseAccelerator(text, platform)).toEqual({ modifiers, key });
  });

  it.each(['', 'K', 'Shift+K', 'Ctrl+', 'Ctrl+Alt', 'Ctrl+K+L', 'Ctrl+Foo', 'Hyper+K', 'Ctrl+F25', 'Ctrl++Alt'])('rejects %j as USAGE with a hint', (text) => {
    let error: KeytapError | undefined;
    try {
      parseAccelerator(text, 'linux');
    } catch (e) {
      error = e as KeytapError;
    }
    expect(error?.code).toBe('USAGE');
    expect(error?.hint).toMatch(/Ctrl\+Alt\+K/);
  });

  it('formats canonically and renders XDG shortcut triggers', () => {
    expect(formatAccelerator(parseAccelerator('alt+ctrl+k', 'linux'))).toBe('Ctrl+Alt+K');
    expect(toXdgTrigger(parseAccelerator('Ctrl+Alt+K', 'linux'))).toBe('CTRL+ALT+k');
    expect(toXdgTrigger(parseAccelerator('Super+Shift+F1', 'linux'))).toBe('SHIFT+LOGO+F1');
    expect(toXdgTrigger(parseAccelerator('Ctrl+Alt+Space', 'linux'))).toBe('CTRL+ALT+space');
    expect(toXdgTrigger(parseAccelerator('Ctrl+Alt+Num5', 'linux'))).toBe('CTRL+ALT+KP_5');
  });
});

const down = (keycode: number, mods: Partial<KeyEvent> = {}): KeyEvent => ({ keycode, ctrlKey: false, altKey: false, shiftKey: false, metaKey: false, ...mods });

describe('AcceleratorMatcher', () => {
  it('fires on the key with exactly the modifiers, once per press (auto-repeat ignored)', () => {
    const matcher = new AcceleratorMatcher(parseAccelerator('Ctrl+Alt+K', 'linux'), KEYS);
    expect(matcher.keydown(down(37, { ctrlKey: true }))).toBe(false);
    expect(matcher.keydown(down(37, { ctrlKey: true, altKey: true, shiftKey: true }))).toBe(false);
    expect(matcher.keydown(down(38, { ctrlKey: true, altKey: true }))).toBe(false);
    expect(matcher.keydown(down(37, { ctrlKey: true, altKey: true }))).toBe(true);
    expect(matcher.keydown(down(37, { ctrlKey: true, altKey: true }))).toBe(false); // repeat
    matcher.keyup(down(37));
    expect(matcher.keydown(down(37, { ctrlKey: true, altKey: true }))).toBe(true);
  });

  it('aliases: Enter is either Enter key, Plus is = or keypad +', () => {
    const enter = new AcceleratorMatcher(parseAccelerator('Ctrl+Enter', 'linux'), KEYS);
    expect(enter.keydown(down(3612, { ctrlKey: true }))).toBe(true);
    const plus = new AcceleratorMatcher(parseAccelerator('Ctrl+Plus', 'linux'), KEYS);
    expect(plus.keydown(down(78, { ctrlKey: true }))).toBe(true);
  });
});

class FakeHook implements Hook {
  listeners = new Map<string, ((event: KeyEvent) => void)[]>();
  started = 0;
  stopped = 0;
  failStart = false;
  on(event: string, listener: (event: KeyEvent) => void) {
    this.listeners.set(event, [...(this.listeners.get(event) ?? []), listener]);
    return this;
  }
  removeAllListeners(event?: string) {
    if (event) this.listeners.delete(event);
    else this.listeners.clear();
    return this;
  }
  start() {
    if (this.failStart) throw new Error('hook failed');
    this.started++;
  }
  stop() {
    this.stopped++;
  }
  emit(event: string, payload: KeyEvent) {
    for (const listener of this.listeners.get(event) ?? []) listener(payload);
  }
}

describe('UiohookShortcut with a fake hook', () => {
  const x11 = { DISPLAY: ':0' };

  it('calls onPress on the accelerator; unregister stops the hook and the listeners', async () => {
    const hook = new FakeHook();
    const shortcut = new UiohookShortcut({ platform: 'linux', env: x11, load: () => Promise.resolve({ hook, keys: KEYS }) });
    let presses = 0;
    await shortcut.register('Ctrl+Alt+K', () => presses++);
    hook.emit('keydown', down(37, { ctrlKey: true, altKey: true }));
    hook.emit('keyup', down(37, { ctrlKey: true, altKey: true }));
    hook.emit('keydown', down(37, { ctrlKey: true }));
    expect(presses).toBe(1);
    await shortcut.unregister();
    expect(hook.stopped).toBe(1);
    hook.emit('keydown', down(37, { ctrlKey: true, altKey: true }));
    expect(presses).toBe(1);
  });

  it('a second shortcut on the same hook: each press calls its own handler, once', async () => {
    const hook = new FakeHook();
    const shortcut = new UiohookShortcut({ platform: 'linux', env: x11, load: () => Promise.resolve({ hook, keys: KEYS }) });
    const pressed: string[] = [];
    await shortcut.register('Ctrl+Alt+K', () => pressed.push('copy'), [{ id: 'keytap-type', accelerator: 'Ctrl+Alt+Shift+K', description: 'type', onPress: () => pressed.push('type') }]);
    hook.emit('keydown', down(37, { ctrlKey: true, altKey: true, shiftKey: true }));
    hook.emit('keyup', down(37, { ctrlKey: true, altKey: true, shiftKey: true }));
    hook.emit('keydown', down(37, { ctrlKey: true, altKey: true }));
    expect(pressed).toEqual(['type', 'copy']);
    expect(hook.started).toBe(1);
    await shortcut.unregister();
    hook.emit('keydown', down(37, { ctrlKey: true, altKey: true, shiftKey: true }));
    expect(pressed).toHaveLength(2);
  });

  it('a throwing onPress does not escape into the hook', async () => {
    const hook = new FakeHook();
    const shortcut = new UiohookShortcut({ platform: 'win32', load: () => Promise.resolve({ hook, keys: KEYS }) });
    let presses = 0;
    await shortcut.register('Ctrl+Alt+K', () => {
      presses++;
      throw new Error('app bug');
    });
    expect(() => hook.emit('keydown', down(37, { ctrlKey: true, altKey: true }))).not.toThrow();
    expect(presses).toBe(1); // onPress did run (and throw)
    await shortcut.unregister();
  });

  it.each([
    ['a Wayland session', { WAYLAND_DISPLAY: 'wayland-0', DISPLAY: ':0' }],
    ['no display', {}],
  ])('rejects UNSUPPORTED with the `keytap code` hint in %s, without loading the addon', async (_name, env) => {
    let loaded = false;
    const shortcut = new UiohookShortcut({
      platform: 'linux',
      env,
      load: () => {
        loaded = true;
        return Promise.resolve({ hook: new FakeHook(), keys: KEYS });
      },
    });
    await expect(shortcut.register('Ctrl+Alt+K', () => undefined)).rejects.toMatchObject({ code: 'UNSUPPORTED', hint: expect.stringMatching(/keytap code/) });
    expect(loaded).toBe(false);
  });

  it('a failing probe (hook hangs or crashes in the child) is UNSUPPORTED; macOS hints at Accessibility', async () => {
    const shortcut = new UiohookShortcut({ platform: 'darwin', probe: () => Promise.reject(new Error('The keyboard hook did not start')) });
    await expect(shortcut.register('Cmd+Alt+K', () => undefined)).rejects.toMatchObject({ code: 'UNSUPPORTED', hint: expect.stringMatching(/Accessibility/) });
  });

  it('a hook whose start() throws is UNSUPPORTED', async () => {
    const hook = new FakeHook();
    hook.failStart = true;
    const shortcut = new UiohookShortcut({ platform: 'win32', load: () => Promise.resolve({ hook, keys: KEYS }) });
    await expect(shortcut.register('Ctrl+Alt+K', () => undefined)).rejects.toMatchObject({ code: 'UNSUPPORTED' });
  });
});

describe('createGlobalShortcut', () => {
  it('picks by platform and session', async () => {
    expect(createGlobalShortcut({ platform: 'win32', env: {} }).name).toBe('uiohook');
    expect(createGlobalShortcut({ platform: 'darwin', env: {} }).name).toBe('uiohook');
    expect(createGlobalShortcut({ platform: 'linux', env: { DISPLAY: ':0' } }).name).toBe('uiohook');
    expect(createGlobalShortcut({ platform: 'linux', env: { WAYLAND_DISPLAY: 'wayland-0', DBUS_SESSION_BUS_ADDRESS: 'unix:path=/x' } }).name).toBe('xdg-desktop-portal');
    expect(createGlobalShortcut({ platform: 'linux', env: { XDG_SESSION_TYPE: 'wayland', DISPLAY: ':0', DBUS_SESSION_BUS_ADDRESS: 'unix:path=/x' } }).name).toBe('xdg-desktop-portal');
    const none = createGlobalShortcut({ platform: 'linux', env: {} });
    expect(none).toBeInstanceOf(NoneShortcut);
    await expect(none.register('Ctrl+Alt+K', () => undefined)).rejects.toMatchObject({
      code: 'UNSUPPORTED',
      hint: "Bind `keytap code` to a key in your desktop's keyboard settings.",
    });
  });
});

const missing = missingTool('Xvfb', 'xdotool');

describe.skipIf(missing !== undefined)(`uiohook-napi on a real X server ${skipMessage(missing, 'xvfb, xdotool')}`, () => {
  const desktop = new Desktop();
  beforeAll(() => desktop.startX());
  afterAll(() => desktop.stop());

  it('a synthetic Ctrl+Alt+K (XTest) reaches onPress; Ctrl+K does not', async () => {
    const env = desktop.processEnv();
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'uiohook-child.ts'), 'Ctrl+Alt+K'], { env, stdio: ['pipe', 'pipe', 'inherit'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      await desktop.waitFor(() => output.includes('ready') || output.includes('error'), 15_000);
      expect(output).toBe('ready\n');
      await new Promise((resolve) => setTimeout(resolve, 300));
      await run('xdotool', ['key', 'ctrl+k'], env);
      await run('xdotool', ['key', 'ctrl+alt+k'], env);
      await desktop.waitFor(() => output.includes('press'), 5_000);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(output.match(/press/g)).toHaveLength(1);
    } finally {
      child.stdin.end();
      await exited;
    }
  });

  it('an unreachable display is UNSUPPORTED (the probe child, not this process, finds out)', async () => {
    const shortcut = new UiohookShortcut({ platform: 'linux', env: { ...process.env, DISPLAY: ':987' } });
    await expect(shortcut.register('Ctrl+Alt+K', () => undefined)).rejects.toMatchObject({ code: 'UNSUPPORTED' });
  }, 15_000);
});
