// node-notifier on Windows and macOS, with node-notifier replaced by a recorder (no SnoreToast or
// terminal-notifier here): the options each platform gets, replace-in-place, close, failures.
import { describe, expect, it } from 'vitest';

import type { KeytapError } from '../../src/errors.js';
import { NodeNotifierNotifier, snoreToastInstallArgs, startMenuShortcutPath } from '../../src/notify/node-notifier.js';

function recorder(fail = false) {
  const calls: { backend: string; options: Record<string, unknown> }[] = [];
  const make = (backend: string) =>
    class {
      notify(options: Record<string, unknown>, callback: (error: Error | null, response: unknown) => void) {
        calls.push({ backend, options });
        queueMicrotask(() => callback(fail ? new Error('boom') : null, 'ok'));
      }
    };
  return { calls, module: { WindowsToaster: make('WindowsToaster'), NotificationCenter: make('NotificationCenter') } };
}

describe('node-notifier adapter', () => {
  it('Windows: SnoreToast with AppUserModelID "keytap", shortcut ensured once, replace = close + show', async () => {
    const { calls, module } = recorder();
    let shortcuts = 0;
    const notifier = new NodeNotifierNotifier({
      platform: 'win32',
      load: () => Promise.resolve(module),
      ensureShortcut: () => {
        shortcuts++;
        return Promise.resolve();
      },
    });
    const touch = await notifier.show({ title: 'keytap', body: 'Touch your key' });
    await notifier.show({ title: 'keytap', body: 'Code copied' }, touch);
    expect(shortcuts).toBe(1);
    expect(calls.map((c) => c.backend)).toEqual(['WindowsToaster', 'WindowsToaster', 'WindowsToaster']);
    expect(calls[0]?.options).toMatchObject({ appID: 'keytap', title: 'keytap', message: 'Touch your key', id: 1 });
    expect(calls[1]?.options).toEqual({ close: 1, appID: 'keytap' });
    expect(calls[2]?.options).toMatchObject({ appID: 'keytap', message: 'Code copied', id: 2 });
  });

  it('macOS: terminal-notifier groups replace in place; close removes the group', async () => {
    const { calls, module } = recorder();
    const notifier = new NodeNotifierNotifier({ platform: 'darwin', load: () => Promise.resolve(module) });
    const touch = await notifier.show({ title: 'keytap', body: 'Touch your key' });
    const copied = await notifier.show({ title: 'keytap', body: 'Code copied' }, touch);
    expect(copied.id).toBe(touch.id);
    await notifier.close(copied);
    expect(calls.map((c) => c.backend)).toEqual(['NotificationCenter', 'NotificationCenter', 'NotificationCenter']);
    expect(calls[1]?.options.group).toBe(calls[0]?.options.group);
    expect(calls[2]?.options).toEqual({ remove: touch.id });
  });

  it('a failing backend gives inert handles and one report, never a rejection', async () => {
    const { module } = recorder(true);
    const errors: KeytapError[] = [];
    const notifier = new NodeNotifierNotifier({ platform: 'darwin', load: () => Promise.resolve(module), onError: (e) => errors.push(e) });
    const a = await notifier.show({ title: 'keytap', body: 'one' });
    await notifier.show({ title: 'keytap', body: 'two' }, a);
    expect(a.id).toBe('');
    expect(errors).toHaveLength(1);
  });

  it('node-notifier that cannot be loaded is reported, not thrown', async () => {
    const errors: KeytapError[] = [];
    const notifier = new NodeNotifierNotifier({ platform: 'darwin', load: () => Promise.reject(new Error('missing')), onError: (e) => errors.push(e) });
    expect((await notifier.show({ title: 'keytap', body: 'one' })).id).toBe('');
    expect(errors[0]?.message).toMatch(/could not be loaded/);
  });

  it('the Start-menu shortcut: where it goes and the SnoreToast installer argv', () => {
    expect(startMenuShortcutPath({ APPDATA: 'C:\\Users\\a\\AppData\\Roaming' })).toMatch(/Start Menu[\\/]Programs[\\/]keytap\.lnk$/);
    expect(startMenuShortcutPath({})).toBeUndefined();
    expect(snoreToastInstallArgs('C:\\keytap\\keytap.exe')).toEqual(['-install', 'keytap', 'C:\\keytap\\keytap.exe', 'keytap']);
  });
});
