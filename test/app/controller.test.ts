import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_QUEUED_READS } from '../../src/app/controller.js';
import type { KeyCredential } from '../../src/device/oath/session.js';
import { KeytapError } from '../../src/errors.js';
import { BIND_KEYTAP_CODE_HINT } from '../../src/desktop/hotkey/none.js';
import type { Rig } from './fakes.js';
import { FakeDevice, descriptor, flush, rig } from './fakes.js';
import { rejection } from '../support/rejection.js';
import { BANK60, HOTP, TOTP, TOUCH } from './fixtures.js';

const rigs: Rig[] = [];
function setup(...args: Parameters<typeof rig>): Rig {
  const r = rig(...args);
  rigs.push(r);
  return r;
}
afterEach(async () => {
  for (const r of rigs.splice(0)) {
    await r.controller.stop();
    r.config.close();
  }
});

async function withKey(credentials = [TOTP, TOUCH, HOTP], id = 'k1', serial = '1234ABCD'): Promise<Rig & { device: FakeDevice }> {
  const r = setup();
  const device = new FakeDevice(credentials, serial);
  r.devices.set(id, device);
  r.keys.initial.push(descriptor(id));
  await r.controller.start();
  await flush(r);
  return { ...r, device };
}

function codeId(keyId: string, credentialId: string): string {
  return `code:${encodeURIComponent(keyId)}:${encodeURIComponent(credentialId)}`;
}

describe('keys come and go', () => {
  it("a key whose interfaces changed ('changed') is opened through the new descriptor, with its section and no toast unchanged", async () => {
    const r = await withKey();
    const menuBefore = r.tray.last.menu;
    const toastsBefore = r.notifier.titles();
    const overBoth = { ...descriptor('k1'), path: 'k1-and-ccid' };
    r.keys.change(overBoth);
    await flush(r);
    await r.controller.listKeys();
    await flush(r);
    expect(r.openedDescriptors.at(-1)).toBe(overBoth);
    expect(r.tray.last.menu).toEqual(menuBefore);
    expect(r.notifier.titles()).toEqual(toastsBefore);
  });

  it('a key plugged in gets its section at once (no timer in between), with its accounts, and a connect toast', async () => {
    const r = setup();
    await r.controller.start();
    await flush(r);
    expect(r.tray.last.icon).toBe('idle');
    r.devices.set('k1', new FakeDevice([TOTP, TOUCH], 'AB12'));
    // The rig's clock only moves when told: a render that waited for a timer would not come.
    const plugged = r.clock.now();
    r.keys.plug(descriptor('k1'));
    await flush(r);
    const shown = r.tray.renders.findIndex((m) => m.menu.some((n) => n.kind === 'item' && n.label === 'Demo: alice'));
    expect(shown).toBeGreaterThan(0);
    expect(r.tray.renderTimes[shown]).toBe(plugged);
    expect(r.tray.last.icon).toBe('key');
    expect(r.notifier.titles()).toEqual(['Nitrokey 3 (AB12) connected']);
    expect(r.notifier.shown[0]!.notification.body).toBe('2 accounts');
  });

  it('a YubiKey whose SELECT tells no serial (PC/SC) is shown with the serial its Management application tells', async () => {
    const r = setup();
    const yubikey = new FakeDevice([TOTP], undefined);
    yubikey.serialFromManagement = '12345678';
    r.devices.set('k1', yubikey);
    r.keys.initial.push(descriptor('k1', 'YubiKey'));
    await r.controller.start();
    await flush(r);
    expect(r.controller.state.keys).toMatchObject([{ id: 'k1', serial: '12345678', status: 'ready' }]);
    expect(r.notifier.titles()).toEqual(['YubiKey (12345678) connected']);    // Read once while it stays plugged in, not again at every listing; again once plugged in anew.
    await r.controller.listKeys();
    expect(yubikey.serialReads).toBe(1);
    r.keys.unplug(descriptor('k1', 'YubiKey'));
    await flush(r);
    r.keys.plug(descriptor('k1', 'YubiKey'));
    await flush(r);
    expect(r.controller.state.keys).toMatchObject([{ id: 'k1', serial: '12345678', status: 'ready' }]);
    expect(yubikey.serialReads).toBe(2);
  });

  it('a serial that cannot be read does not keep the accounts from the menu; the log says why', async () => {
    const r = setup();
    const yubikey = new FakeDevice([TOTP], undefined);
    yubikey.readSerialError = new KeytapError('PROTOCOL', 'The DEVICE INFO does not parse.');
    r.devices.set('k1', yubikey);
    r.keys.initial.push(descriptor('k1', 'YubiKey'));
    await r.controller.start();
    await flush(r);
    expect(r.controller.state.keys).toMatchObject([{ id: 'k1', serial: undefined, status: 'ready', credentials: [TOTP] }]);
    expect(r.logger.lines.some((l) => l.startsWith('warn') && l.includes('reading the serial of') && l.includes('DEVICE INFO'))).toBe(true);
  });

  it('opens the key per operation and closes it after', async () => {
    const r = await withKey();
    expect(r.device.opens).toBe(1);
    expect(r.device.closes).toBe(1);
    r.tray.onClick!(codeId('k1', TOTP.id));
    await flush(r);
    expect(r.device.opens).toBe(2);
    expect(r.device.closes).toBe(2);
  });

  it('unplugged: the section goes', async () => {
    const r = await withKey();
    r.keys.unplug(descriptor('k1'));
    await flush(r);
    expect(r.controller.state.keys).toEqual([]);
    expect(r.tray.last.icon).toBe('idle');
  });

  it('a key that cannot be opened shows the error, logs what to do, and "Try again" works', async () => {
    const r = setup();
    const device = new FakeDevice([TOTP]);
    device.openError = new KeytapError('PERMISSION_DENIED', 'No permission to open /dev/hidraw3.', { hint: 'Install the udev rules.' });
    r.devices.set('k1', device);
    r.keys.initial.push(descriptor('k1'));
    await r.controller.start();
    await flush(r);
    expect(r.controller.state.keys[0]).toMatchObject({ status: 'error', error: { code: 'PERMISSION_DENIED' } });
    expect(r.tray.last.icon).toBe('error');
    expect(r.logger.lines.some((l) => l.startsWith('error') && l.includes('udev'))).toBe(true);
    device.openError = undefined;
    r.tray.onClick!('retry:k1');
    await flush(r);
    expect(r.controller.state.keys[0]!.status).toBe('ready');
  });

  it('a locked key is shown locked', async () => {
    const r = setup();
    const device = new FakeDevice([TOTP]);
    device.locked = true;
    r.devices.set('k1', device);
    r.keys.initial.push(descriptor('k1'));
    await r.controller.start();
    await flush(r);
    expect(r.controller.state.keys[0]!.status).toBe('locked');
  });
});

describe('a click', () => {
  it('touch account: touch toast, icon touch, then copy and "Code copied" replacing the prompt', async () => {
    const r = await withKey();
    r.notifier.shown = [];
    r.tray.onClick!(codeId('k1', TOUCH.id));
    await flush(r);
    expect(r.tray.last.icon).toBe('touch');
    expect(r.notifier.titles()).toEqual(['Touch your key']);
    expect(r.device.waiting).toBe(1);
    r.device.release();
    await flush(r);
    expect(r.clipboard.copies).toEqual([{ text: '287082', clearAfterSeconds: 20 }]);
    expect(r.notifier.titles()).toEqual(['Touch your key', expect.stringMatching(/^Code copied, valid for \d+ s$/u)]);
    // replaced in place: the second toast names the first one's handle
    expect(r.notifier.shown[1]!.replaces).toEqual(r.notifier.shown[0]!.handle);
    expect(r.tray.last.icon).toBe('key');
    // the code never reaches the log or a toast
    expect(r.logger.lines.join('\n')).not.toContain('287082');
    expect(JSON.stringify(r.notifier.shown)).not.toContain('287082');
  });

  it('clicks while a read is pending start no second read', async () => {
    const r = await withKey();
    r.tray.onClick!(codeId('k1', TOUCH.id));
    await flush(r);
    r.tray.onClick!(codeId('k1', TOUCH.id));
    r.tray.onClick!(codeId('k1', TOTP.id));
    await flush(r);
    expect(r.device.calculations.map((c) => c.id)).toEqual([TOUCH.id]);
    r.device.release();
    await flush(r);
    expect(r.clipboard.copies).toHaveLength(1);
    expect(r.device.calculations).toHaveLength(1);
  });

  it('the clipboard guard gets the configured clear time (0 = never)', async () => {
    const r = await withKey();
    r.config.set('clipboardClearSeconds', 0);
    r.tray.onClick!(codeId('k1', TOTP.id));
    await flush(r);
    expect(r.clipboard.copies).toEqual([{ text: '287082', clearAfterSeconds: 0 }]);
  });

  it('reads the next period with < 5 s left (time passed to calculate)', async () => {
    const r = await withKey();
    const start = Math.floor(r.clock.nowMs / 30_000) * 30_000;
    r.clock.nowMs = start + 25_100;
    r.tray.onClick!(codeId('k1', TOTP.id));
    await flush(r);
    expect(r.device.calculations[0]!.time).toBeCloseTo((start + 30_000) / 1000, 6);
    r.clock.nowMs = start + 65_000; // 5 s left in the next period
    r.tray.onClick!(codeId('k1', TOTP.id));
    await flush(r);
    expect(r.device.calculations[1]!.time).toBe((start + 65_000) / 1000);
  });

  it('touch timeout: the read is aborted, a toast says what to do, the next click works', async () => {
    const r = await withKey();
    r.tray.onClick!(codeId('k1', TOUCH.id));
    await flush(r);
    r.clock.advance(30_000);
    await flush(r);
    expect(r.device.waiting).toBe(0);
    expect(r.notifier.titles().at(-1)).toBe('No touch within 30 s; GitHub:alice was not read.');
    expect(r.tray.last.icon).toBe('error');
    expect(r.device.closes).toBe(r.device.opens);
    r.tray.onClick!(codeId('k1', TOTP.id));
    await flush(r);
    expect(r.clipboard.copies).toHaveLength(1);
  });

  it('unplug during touch: the read is cancelled with a toast and the app goes on', async () => {
    const r = await withKey();
    r.tray.onClick!(codeId('k1', TOUCH.id));
    await flush(r);
    r.devices.delete('k1');
    r.keys.unplug(descriptor('k1'));
    await flush(r);
    expect(r.device.waiting).toBe(0);
    expect(r.notifier.titles().at(-1)).toBe('Nitrokey 3 was removed while reading GitHub:alice.');
    expect(r.controller.state.pending).toBeUndefined();
    expect(r.clipboard.copies).toEqual([]);
    // plugged in again, it works
    r.devices.set('k1', r.device);
    r.keys.plug(descriptor('k1'));
    await flush(r);
    r.tray.onClick!(codeId('k1', TOTP.id));
    await flush(r);
    expect(r.clipboard.copies).toHaveLength(1);
  });

  it.each([
    ['BUSY', new KeytapError('BUSY', 'busy'), 'Nitrokey 3 is busy with another program.'],
    ['PERMISSION_DENIED', new KeytapError('PERMISSION_DENIED', 'denied'), 'No permission to open Nitrokey 3.'],
    ['a plain Error (a bug)', new Error('boom'), 'Unexpected error: boom'],
    ['a thrown string', 'weird', 'Unexpected error: weird'],
  ])('errors never escape: %s becomes a toast and a log line', async (_name, error, title) => {
    const r = await withKey();
    r.device.calculateError = error;
    r.tray.onClick!(codeId('k1', TOTP.id));
    await flush(r);
    expect(r.notifier.titles().at(-1)).toBe(title);
    expect(r.logger.lines.length).toBeGreaterThan(0);
    expect(r.controller.state.pending).toBeUndefined();
  });

  it('a failing clipboard, tray render or notifier is logged, never thrown', async () => {
    const r = await withKey();
    r.clipboard.fail = new KeytapError('UNSUPPORTED', 'No clipboard tool.', { hint: 'Install xsel.' });
    r.tray.failRender = true;
    r.tray.onClick!(codeId('k1', TOTP.id));
    await flush(r);
    expect(r.notifier.titles().at(-1)).toBe('Could not copy the code of Demo: alice');
    expect(r.logger.lines.some((l) => l.includes('updating the tray failed'))).toBe(true);
    r.notifier.fail = true;
    r.tray.onClick!(codeId('k1', TOTP.id));
    await flush(r);
    expect(r.logger.lines.some((l) => l.includes('showing a notification failed'))).toBe(true);
  });

  it('garbage ids and clicks on keys that are gone do nothing harmful', async () => {
    const r = await withKey();
    for (const id of ['', 'nope', 'code:zz:yy', 'retry:zz', 'default:x', 'code:%%:x']) r.tray.onClick!(id);
    await flush(r);
    expect(r.device.calculations).toEqual([]);
  });

  it('Cancel in the menu aborts the pending read', async () => {
    const r = await withKey();
    r.tray.onClick!(codeId('k1', TOUCH.id));
    await flush(r);
    r.tray.onClick!('cancel');
    await flush(r);
    expect(r.device.waiting).toBe(0);
    expect(r.notifier.titles().at(-1)).toBe('Reading GitHub:alice was cancelled.');
  });
});

describe('the global shortcut', () => {
  it('is registered with the configured accelerator and reads the only account', async () => {
    const r = await withKey([TOTP]);
    expect(r.shortcut.registered).toBe('Ctrl+Alt+K');
    r.shortcut.onPress!();
    await flush(r);
    expect(r.clipboard.copies).toHaveLength(1);
  });

  it('with several accounts and no default, says to choose one; with a default, reads it', async () => {
    const r = await withKey();
    r.shortcut.onPress!();
    await flush(r);
    expect(r.notifier.titles().at(-1)).toBe('3 accounts: which one should the shortcut read?');
    r.tray.onClick!('default:1234ABCD:VPN%3Aalice');
    expect(r.config.current.defaultAccount).toEqual({ keyId: '1234ABCD', credentialId: 'VPN:alice' });
    r.shortcut.onPress!();
    await flush(r);
    expect(r.device.calculations.map((c) => c.id)).toEqual(['VPN:alice']);
  });

  it('a default account whose key is away gets a toast', async () => {
    const r = await withKey([TOTP]);
    r.config.set('defaultAccount', { keyId: 'OTHER', credentialId: 'X:y' });
    r.shortcut.onPress!();
    await flush(r);
    expect(r.notifier.titles().at(-1)).toBe('The default account X:y is not on a connected key.');
  });

  it('when it cannot be registered: one toast explaining how to bind "keytap code", and the menu says so', async () => {
    const r = setup();
    r.shortcut.fail = new KeytapError('UNSUPPORTED', 'Wayland without the GlobalShortcuts portal.', { hint: BIND_KEYTAP_CODE_HINT });
    await r.controller.start();
    await flush(r);
    const toasts = r.notifier.shown.filter((s) => s.notification.title.startsWith('Shortcut'));
    expect(toasts).toHaveLength(1);
    // The hint once: the toast used to say it twice in other words.
    expect(toasts[0]!.notification.body).toBe(BIND_KEYTAP_CODE_HINT);
    expect(r.controller.state.shortcut).toBe('unavailable');
    expect(JSON.stringify(r.tray.last.menu)).toContain('bind \\"keytap code\\"');
  });

  it("where the desktop binds it: the toast has the desktop's lines for both shortcuts, once, also after the settings are saved again", async () => {
    const r = setup();
    r.shortcut.fail = new KeytapError('UNSUPPORTED', 'The desktop portal has no GlobalShortcuts interface.', { hint: BIND_KEYTAP_CODE_HINT });
    r.shortcut.binding = { desktop: 'sway', where: '~/.config/sway/config', lines: ['bindsym Ctrl+Mod1+k exec keytap code'], commands: [{ accelerator: 'Ctrl+Alt+K', command: 'keytap code' }] };
    await r.controller.start();
    await flush(r);
    expect(r.shortcut.bindingAsked).toEqual([
      [
        { accelerator: 'Ctrl+Alt+K', args: ['code'] },
        { accelerator: 'Ctrl+Alt+Shift+K', args: ['code', '--type'] },
      ],
    ]);
    r.config.set('typeShortcut', 'Ctrl+Alt+Shift+J');
    await flush(r);
    const toasts = r.notifier.shown.filter((s) => s.notification.title.startsWith('Shortcut'));
    expect(toasts.map((t) => t.notification.body)).toEqual(['Add to ~/.config/sway/config (sway), then reload it:\nbindsym Ctrl+Mod1+k exec keytap code']);
    expect(r.logger.lines.filter((line) => line.includes('is not available'))).toHaveLength(1);
  });

  it('a changed shortcut in the settings is registered again', async () => {
    const r = await withKey();
    r.config.set('shortcut', 'Ctrl+Shift+O');
    await flush(r);
    expect(r.shortcut.registered).toBe('Ctrl+Shift+O');
  });
});

describe('menu settings', () => {
  it('toggles write the config and re-render', async () => {
    const r = await withKey();
    r.tray.onClick!('toggle:showCodeInNotification');
    r.tray.onClick!('toggle:notifyOnConnect');
    await flush(r);
    expect(r.config.current).toMatchObject({ showCodeInNotification: true, notifyOnConnect: false });
    expect(JSON.stringify(r.tray.last.menu)).toContain('"id":"toggle:showCodeInNotification","label":"Show code in notification","toggle":"checkmark","checked":true');
  });

  it('with "show code" on, the copied toast shows it', async () => {
    const r = await withKey();
    r.tray.onClick!('toggle:showCodeInNotification');
    r.tray.onClick!(codeId('k1', TOTP.id));
    await flush(r);
    expect(r.notifier.shown.at(-1)!.notification.body).toContain('Code: 287 082');
  });

  it('with notifications off, nothing is shown', async () => {
    const r = await withKey();
    r.notifier.shown = [];
    r.tray.onClick!('toggle:notifications');
    r.tray.onClick!(codeId('k1', TOUCH.id));
    await flush(r);
    r.device.release();
    await flush(r);
    expect(r.notifier.shown).toEqual([]);
    expect(r.clipboard.copies).toHaveLength(1);
  });

  it('Start at login enables autostart with the command, and off again', async () => {
    const r = await withKey();
    expect(r.controller.state.autostart).toBe(false);
    r.tray.onClick!('toggle:autostart');
    await flush(r);
    expect(r.autostart.command).toEqual(['node', 'keytap.cjs', 'tray']);
    expect(r.controller.state.autostart).toBe(true);
    r.tray.onClick!('toggle:autostart');
    await flush(r);
    expect(r.controller.state.autostart).toBe(false);
  });

  it('Settings opens the config file; About shows a toast; Quit resolves quitRequested', async () => {
    const opened: string[] = [];
    const r = setup({ openPath: (p) => (opened.push(p), Promise.resolve()) });
    await r.controller.start();
    r.tray.onClick!('settings');
    r.tray.onClick!('about');
    await flush(r);
    expect(opened).toEqual([r.config.path]);
    expect(r.notifier.titles().at(-1)).toBe('keytap 9.9.9');
    let quit = false;
    void r.controller.quitRequested.then(() => (quit = true));
    r.tray.onClick!('quit');
    await flush(r);
    expect(quit).toBe(true);
  });

  it('a failing "Settings" opener gives a toast with the path', async () => {
    const r = setup({ openPath: () => Promise.reject(new Error('no xdg-open')) });
    await r.controller.start();
    r.tray.onClick!('settings');
    await flush(r);
    expect(r.notifier.shown.at(-1)!.notification.body).toContain(r.config.path);
  });
});

describe('the tray host and startup', () => {
  it('a tray that cannot start is logged and toasted; keytap goes on', async () => {
    const r = setup();
    r.tray.failStart = true;
    r.devices.set('k1', new FakeDevice([TOTP]));
    r.keys.initial.push(descriptor('k1'));
    await r.controller.start();
    await flush(r);
    expect(r.notifier.titles()).toContain('keytap has no tray icon');
    expect(r.controller.state.keys[0]!.status).toBe('ready');
  });

  it('no host: logged once; host back: rendered again', async () => {
    const r = await withKey();
    const before = r.tray.renders.length;
    r.tray.onStatus!('no-host');
    r.tray.onStatus!('no-host');
    await flush(r);
    expect(r.logger.lines.filter((l) => l.includes('no tray host'))).toHaveLength(1);
    r.tray.onStatus!('shown');
    await flush(r);
    expect(r.tray.renders.length).toBeGreaterThan(before);
  });

  it('stop clears the clipboard (if still ours), cancels a pending read, and stops the tray', async () => {
    const r = await withKey();
    r.tray.onClick!(codeId('k1', TOUCH.id));
    await flush(r);
    await r.controller.stop();
    expect(r.device.waiting).toBe(0);
    expect(r.clipboard.stopped).toBe(true);
    expect(r.tray.stopped).toBe(true);
    expect(r.shortcut.registered).toBeUndefined();
  });
});

describe('IPC requests', () => {
  it('requestCode runs the same flow (touch callback, copy, toast) and answers with the code', async () => {
    const r = await withKey();
    const touches: string[] = [];
    const answer = r.controller.requestCode('GitHub', { onTouch: (id) => touches.push(id) });
    await flush(r);
    expect(touches).toEqual(['GitHub:alice']);
    r.device.release();
    await expect(answer).resolves.toMatchObject({ id: 'GitHub:alice', code: '287082' });
    await flush(r);
    expect(r.clipboard.copies).toHaveLength(1);
    expect(r.notifier.titles()).toContain('Touch your key');
  });

  it('requestCode: no key, no match, ambiguous, busy, and the caller going away', async () => {
    const none = setup();
    await none.controller.start();
    await expect(none.controller.requestCode(undefined)).rejects.toMatchObject({ code: 'NO_KEY' });
    const r = await withKey();
    await expect(r.controller.requestCode('nothing')).rejects.toMatchObject({ code: 'NO_MATCH' });
    await expect(r.controller.requestCode(undefined)).rejects.toMatchObject({ code: 'AMBIGUOUS' });
    const abort = new AbortController();
    const first = r.controller.requestCode('GitHub', { signal: abort.signal });
    await flush(r);
    abort.abort();
    await expect(first).rejects.toMatchObject({ code: 'CANCELLED' });
    await flush(r);
    expect(r.device.waiting).toBe(0);
  });

  it('requestCode matches across several keys', async () => {
    const r = await withKey([TOTP]);
    r.devices.set('k2', new FakeDevice([HOTP], 'FFFF0000'));
    r.keys.plug(descriptor('k2', 'virtual key b.json'));
    await flush(r);
    await expect(r.controller.requestCode('VPN')).resolves.toMatchObject({ id: 'VPN:alice', code: '755224' });
  });

  it('requestCode: the same account on a key and its backup is read from the first key, or from the default account\'s key', async () => {
    const r = await withKey([TOTP, HOTP]);
    const backup = new FakeDevice([HOTP], 'FFFF0000');
    r.devices.set('k2', backup);
    r.keys.plug(descriptor('k2', 'Nitrokey 3'));
    await flush(r);
    await expect(r.controller.requestCode('VPN')).resolves.toMatchObject({ id: 'VPN:alice' });
    expect(r.device.calculations.map((c) => c.id)).toEqual(['VPN:alice']);
    expect(backup.calculations).toEqual([]);
    // The default account's key wins (its serial in any case), even for another account of it.
    r.config.set('defaultAccount', { keyId: 'ffff0000', credentialId: 'Other:x' });
    await flush(r);
    await expect(r.controller.requestCode('VPN:alice')).resolves.toMatchObject({ id: 'VPN:alice' });
    expect(backup.calculations.map((c) => c.id)).toEqual(['VPN:alice']);
    expect(r.device.calculations).toHaveLength(1);
  });

  it('requestCode: different accounts on different keys matching the query name the keys', async () => {
    const r = await withKey([TOTP]);
    r.devices.set('k2', new FakeDevice([BANK60], 'FFFF0000'));
    r.keys.plug(descriptor('k2', 'YubiKey 5'));
    await flush(r);
    const error = await rejection(r.controller.requestCode('alice'));
    expect(error.code).toBe('AMBIGUOUS');
    expect(error.message).toBe('2 accounts match "alice": Demo:alice (on Nitrokey 3 1234ABCD), 60/Bank:alice (on YubiKey 5 FFFF0000).');
    expect(error.detail).toEqual({
      kind: 'ambiguous-keys',
      keys: [
        { name: 'Nitrokey 3', device: '1234ABCD' },
        { name: 'YubiKey 5', device: 'FFFF0000' },
      ],
    });
  });

  it('listKeys re-reads the accounts (an account added meanwhile shows up in the menu too)', async () => {
    const r = await withKey([TOTP]);
    r.device.credentials = [TOTP, HOTP];
    const keys = await r.controller.listKeys();
    expect(keys).toMatchObject([{ id: 'k1', name: 'Nitrokey 3', serial: '1234ABCD', status: 'ready', credentials: [TOTP, HOTP] }]);
    await flush(r);
    expect(JSON.stringify(r.tray.last.menu)).toContain('VPN: alice (HOTP)');
    // quiet: no second "connected" toast
    expect(r.notifier.titles().filter((t) => t.endsWith('connected'))).toHaveLength(1);
  });
});

describe('IPC requests at the same time', () => {
  const many = (n: number): KeyCredential[] => Array.from({ length: n }, (_, i) => ({ ...TOTP, id: `Acct${i}:x`, issuer: `Acct${i}`, account: 'x' }));

  it('requests for the account being read share that read: one touch, one copy, the same code for all', async () => {
    const r = await withKey();
    const touches: string[] = [];
    const first = r.controller.requestCode('GitHub', { onTouch: (id) => touches.push(`first ${id}`) });
    await flush(r);
    const more = [1, 2, 3, 4].map((n) => r.controller.requestCode('GitHub:alice', { onTouch: (id) => touches.push(`${n} ${id}`) }));
    await flush(r);
    // The ones that joined a read waiting for its touch hear of it at once.
    expect(touches.sort()).toEqual(['1 GitHub:alice', '2 GitHub:alice', '3 GitHub:alice', '4 GitHub:alice', 'first GitHub:alice']);
    expect(r.device.calculations).toHaveLength(1);
    r.device.release();
    const answers = await Promise.all([first, ...more]);
    expect(new Set(answers.map((a) => `${a.id} ${a.code}`))).toEqual(new Set(['GitHub:alice 287082']));
    await flush(r);
    expect(r.device.calculations).toHaveLength(1);
    expect(r.clipboard.copies).toHaveLength(1);
  });

  it('a request for another account waits its turn, then is read', async () => {
    const r = await withKey();
    const touchy = r.controller.requestCode('GitHub');
    await flush(r);
    const other = r.controller.requestCode('Demo');
    await flush(r);
    expect(r.device.calculations.map((c) => c.id)).toEqual(['GitHub:alice']);
    r.device.release();
    await expect(touchy).resolves.toMatchObject({ id: 'GitHub:alice' });
    await expect(other).resolves.toMatchObject({ id: 'Demo:alice', code: '287082' });
    expect(r.device.calculations.map((c) => c.id)).toEqual(['GitHub:alice', 'Demo:alice']);
  });

  it(`the queue holds ${MAX_QUEUED_READS} accounts; beyond that a clear BUSY; callers of a queued account share its read`, async () => {
    const r = await withKey(many(MAX_QUEUED_READS + 3));
    r.device.holdTouch = true;
    const inFlight = r.controller.requestCode('Acct0:x');
    await flush(r);
    const queued = Array.from({ length: MAX_QUEUED_READS }, (_, i) => r.controller.requestCode(`Acct${i + 1}:x`));
    const sharing = r.controller.requestCode(`Acct1:x`);
    await flush(r);
    const overflow = r.controller.requestCode(`Acct${MAX_QUEUED_READS + 1}:x`);
    await expect(overflow).rejects.toMatchObject({
      code: 'BUSY',
      message: `${MAX_QUEUED_READS} other reads are waiting for the key already; Acct${MAX_QUEUED_READS + 1}:x was not read.`,
      hint: 'Try again once they are done.',
    });
    for (let i = 0; i <= MAX_QUEUED_READS; i++) {
      await until(() => r.device.waiting === 1);
      r.device.release();
      await flush(r);
    }
    const answers = await Promise.all([inFlight, ...queued, sharing]);
    expect(answers.map((a) => a.id)).toEqual(['Acct0:x', ...Array.from({ length: MAX_QUEUED_READS }, (_, i) => `Acct${i + 1}:x`), 'Acct1:x']);
    expect(r.device.calculations).toHaveLength(MAX_QUEUED_READS + 1);
  });

  it('one caller of a shared read going away does not end it; the last one does; a queued caller going away leaves the queue', async () => {
    const r = await withKey();
    const a = new AbortController();
    const b = new AbortController();
    const first = r.controller.requestCode('GitHub', { signal: a.signal });
    await flush(r);
    const second = r.controller.requestCode('GitHub', { signal: b.signal });
    const c = new AbortController();
    const queued = r.controller.requestCode('Demo', { signal: c.signal });
    await flush(r);
    a.abort();
    await expect(first).rejects.toMatchObject({ code: 'CANCELLED' });
    await flush(r);
    expect(r.device.waiting).toBe(1);
    c.abort();
    await expect(queued).rejects.toMatchObject({ code: 'CANCELLED' });
    b.abort();
    await expect(second).rejects.toMatchObject({ code: 'CANCELLED' });
    await flush(r);
    expect(r.device.waiting).toBe(0);
    expect(r.device.calculations.map((x) => x.id)).toEqual(['GitHub:alice']);
    expect(r.controller.state.pending).toBeUndefined();
  });
});

async function until(condition: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('"Type the code"', () => {
  it('registers the type shortcut with the first one; pressing it types the default account\'s code, with a "Code typed" toast and no copy', async () => {
    const r = await withKey([TOTP]);
    expect(r.shortcut.also.map((b) => [b.id, b.accelerator])).toEqual([['keytap-type', 'Ctrl+Alt+Shift+K']]);
    r.shortcut.also[0]!.onPress();
    await flush(r);
    expect(r.typist.typed).toEqual(['287082']);
    expect(r.clipboard.copies).toEqual([]);
    expect(r.notifier.titles().at(-1)).toMatch(/^Code typed, valid for \d+ s$/u);
    expect(r.logger.lines.join('\n')).not.toContain('287082');
    // The first shortcut still copies.
    r.shortcut.onPress!();
    await flush(r);
    expect(r.clipboard.copies.map((c) => c.text)).toEqual(['287082']);
    expect(r.typist.typed).toHaveLength(1);
  });

  it('the menu checkmark makes every read type; "both" types, then copies', async () => {
    const r = await withKey([TOTP]);
    r.tray.onClick!('type-code');
    expect(r.config.current.deliver).toBe('type');
    r.tray.onClick!(codeId('k1', TOTP.id));
    await flush(r);
    expect(r.typist.typed).toEqual(['287082']);
    expect(r.clipboard.copies).toEqual([]);
    r.config.set('deliver', 'both');
    r.tray.onClick!(codeId('k1', TOTP.id));
    await flush(r);
    expect(r.typist.typed).toHaveLength(2);
    expect(r.clipboard.copies).toHaveLength(1);
    expect(r.notifier.titles().at(-1)).toMatch(/^Code typed and copied, valid for \d+ s$/u);
    r.tray.onClick!('type-code');
    expect(r.config.current.deliver).toBe('copy');
  });

  it('per account: "Type the code of…" sets that account alone, keyed by the serial; back to everyone\'s choice removes the entry', async () => {
    const r = await withKey([TOTP, HOTP]);
    r.tray.onClick!('type-for:1234ABCD:VPN%3Aalice');
    expect(r.config.current.deliverFor).toEqual([{ keyId: '1234ABCD', credentialId: 'VPN:alice', deliver: 'type' }]);
    r.tray.onClick!(codeId('k1', HOTP.id));
    await flush(r);
    r.tray.onClick!(codeId('k1', TOTP.id));
    await flush(r);
    expect(r.typist.typed).toEqual(['755224']);
    expect(r.clipboard.copies.map((c) => c.text)).toEqual(['287082']);
    r.tray.onClick!('type-for:1234ABCD:VPN%3Aalice');
    expect(r.config.current.deliverFor).toEqual([]);
  });

  it('per account: turning it off removes an entry keyed by the key\'s id too; turning it back on under a file-set "both" keeps "both"', async () => {
    const r = await withKey([TOTP, HOTP]);
    r.config.set('deliverFor', [{ keyId: 'k1', credentialId: 'VPN:alice', deliver: 'type' }]);
    r.tray.onClick!('type-for:1234ABCD:VPN%3Aalice');
    expect(r.config.current.deliverFor).toEqual([]);
    r.tray.onClick!(codeId('k1', HOTP.id));
    await flush(r);
    expect(r.typist.typed).toEqual([]);

    r.config.set('deliver', 'both');
    r.tray.onClick!('type-for:1234ABCD:VPN%3Aalice');
    expect(r.config.current.deliverFor).toEqual([{ keyId: '1234ABCD', credentialId: 'VPN:alice', deliver: 'copy' }]);
    r.tray.onClick!('type-for:1234ABCD:VPN%3Aalice');
    expect(r.config.current.deliverFor).toEqual([]);
    expect(r.config.current.deliver).toBe('both');
  });

  it('typing that fails falls back to copying and says why the first time, briefly after that', async () => {
    const r = await withKey([TOTP]);
    r.config.set('deliver', 'type');
    r.typist.fail = new KeytapError('UNSUPPORTED', 'Nothing here can type the code: wtype is not installed.', { hint: 'On sway install wtype.' });
    r.tray.onClick!(codeId('k1', TOTP.id));
    await flush(r);
    expect(r.clipboard.copies.map((c) => c.text)).toEqual(['287082']);
    const first = r.notifier.shown.at(-1)!.notification;
    expect(first.title).toMatch(/^Code copied, not typed, valid for \d+ s$/u);
    expect(first.body).toContain('wtype is not installed');
    expect(first.body).toContain('On sway install wtype.');
    r.tray.onClick!(codeId('k1', TOTP.id));
    await flush(r);
    const second = r.notifier.shown.at(-1)!.notification;
    expect(second.title).toMatch(/^Code copied, not typed/u);
    expect(second.body).not.toContain('wtype is not installed');
    expect(r.logger.lines.filter((l) => l.includes('typing the code of Demo:alice failed'))).toHaveLength(2);
  });

  it('IPC: deliver "type" types and answers typed; a failure answers why, with the code copied', async () => {
    const r = await withKey([TOTP]);
    const typed = await r.controller.requestCode('Demo', { deliver: 'type' });
    expect(typed).toMatchObject({ code: '287082', typed: true, copied: false });
    expect(r.typist.typed).toEqual(['287082']);
    // Without deliver, keytap code copies as it always did, whatever the tray's setting.
    r.config.set('deliver', 'type');
    expect(await r.controller.requestCode('Demo')).toMatchObject({ typed: false, copied: true });
    r.typist.fail = new KeytapError('PERMISSION_DENIED', 'Typing was not allowed in the desktop dialog.');
    const refused = await r.controller.requestCode('Demo', { deliver: 'type' });
    expect(refused).toMatchObject({ typed: false, copied: true, typeError: { code: 'PERMISSION_DENIED', message: 'Typing was not allowed in the desktop dialog.' } });
  });

  it('Cancel while the code is being typed stops the typist, and nothing is copied instead', async () => {
    const r = await withKey([TOTP]);
    r.config.set('deliver', 'type');
    r.typist.hang = true;
    r.tray.onClick!(codeId('k1', TOTP.id));
    await until(() => r.typist.signals.length === 1);
    expect(r.controller.state.pending).toMatchObject({ phase: 'copying' });
    r.tray.onClick!('cancel');
    await flush(r);
    expect(r.typist.signals[0]?.aborted).toBe(true);
    expect(r.controller.state.pending).toBeUndefined();
    expect(r.clipboard.copies).toEqual([]);
    expect(r.notifier.titles().at(-1)).toMatch(/cancelled/u);
  });

  it('quitting while the code is being typed aborts it; no fallback copy after the clipboard stopped', async () => {
    const r = await withKey([TOTP]);
    r.config.set('deliver', 'type');
    r.typist.hang = true;
    r.tray.onClick!(codeId('k1', TOTP.id));
    await until(() => r.typist.signals.length === 1);
    await r.controller.stop();
    expect(r.typist.signals[0]?.aborted).toBe(true);
    expect(r.clipboard.copies).toEqual([]);
  });

  it('a type shortcut the backend refuses leaves the first shortcut working, with a log line', async () => {
    const r = setup();
    r.shortcut.failAlso = 'Ctrl+Alt+Shift+K';
    await r.controller.start();
    expect(r.shortcut.registered).toBe('Ctrl+Alt+K');
    expect(r.shortcut.also).toEqual([]);
    expect(r.controller.state.shortcut).toBe('registered');
    expect(r.logger.lines.join('\n')).toMatch(/warn the type shortcut Ctrl\+Alt\+Shift\+K is not available/u);
    // The menu does not promise a shortcut that is not there.
    await flush(r);
    expect(JSON.stringify(r.tray.renders.at(-1))).toContain('Type the code');
    expect(JSON.stringify(r.tray.renders.at(-1))).not.toContain('always types');
  });
});

describe('"Type the code": a type shortcut equal to the first one', () => {
  it('is refused (USAGE, one log line); the first shortcut keeps working and still copies', async () => {
    const r = setup();
    r.config.set('typeShortcut', 'alt+ctrl+k');
    await r.controller.start();
    expect(r.shortcut.registered).toBe('Ctrl+Alt+K');
    expect(r.shortcut.also).toEqual([]);
    expect(r.controller.state.shortcut).toBe('registered');
    expect(r.logger.lines.filter((l) => /the type shortcut alt\+ctrl\+k is not available.*same keys as shortcut/u.test(l))).toHaveLength(1);
  });
});

describe('"Type the code": a refused registration', () => {
  it('a refusal that is not about the type shortcut\'s spelling is not asked again (the portal would show its dialog twice)', async () => {
    const r = rig();
    let calls = 0;
    const original = r.shortcut.register.bind(r.shortcut);
    r.shortcut.register = (...args) => {
      calls++;
      return args[2]?.length ? Promise.reject(new KeytapError('CANCELLED', 'The global shortcut was not confirmed in the desktop dialog.')) : original(...args);
    };
    await r.controller.start();
    expect(calls).toBe(1);
    expect(r.controller.state.shortcut).toBe('unavailable');
    await r.controller.stop();
    r.config.close();
  });
});

describe('readAccount (keytap pick through the tray)', () => {
  it("reads as a click does: the account's own delivery (typed), the tray's otherwise", async () => {
    const r = await withKey([TOTP, HOTP]);
    r.config.set('deliverFor', [{ keyId: '1234ABCD', credentialId: TOTP.id, deliver: 'type' }]);
    expect(await r.controller.readAccount('k1', TOTP.id)).toMatchObject({ code: '287082', typed: true, copied: false });
    expect(r.typist.typed).toEqual(['287082']);
    expect(await r.controller.readAccount('k1', HOTP.id)).toMatchObject({ typed: false, copied: true });
    await r.controller.stop();
    r.config.close();
  });

  it('a key still loading is "not ready yet", not "holds no account"', async () => {
    const r = setup();
    const device = new FakeDevice([TOTP], '1234ABCD');
    const session = device.session.bind(device);
    let listed: (() => void) | undefined;
    device.session = () => ({ ...session(), list: () => new Promise((resolve) => (listed = () => resolve([{ ...TOTP }]))) });
    r.devices.set('k1', device);
    r.keys.initial.push(descriptor('k1'));
    await r.controller.start();
    for (let i = 0; i < 50 && !listed; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(r.controller.state.keys[0]?.status).toBe('loading');
    try {
      await expect(r.controller.readAccount('k1', TOTP.id)).rejects.toMatchObject({ code: 'BUSY', message: expect.stringMatching(/is not ready yet/u) as unknown });
    } finally {
      listed!();
    }
    await flush(r);
    await r.controller.stop();
    r.config.close();
  });
});

describe('Recent, kept across restarts', () => {
  it('a click that copied saves the list; the next controller starts with it, and readAccount (keytap pick) reads one exact account', async () => {
    const { recentStore } = await import('../../src/app/recent-store.js');
    const { tempDir } = await import('../support/cli.js');
    const folder = tempDir();
    const first = setup({ recent: recentStore(folder) });
    first.devices.set('k1', new FakeDevice([TOTP, HOTP], '1234ABCD'));
    first.keys.initial.push(descriptor('k1'));
    await first.controller.start();
    await flush(first);
    first.controller.handleClick(codeId('k1', HOTP.id));
    await flush(first);
    expect(first.clipboard.copies).toHaveLength(1);
    const answer = await first.controller.readAccount('k1', TOTP.id);
    expect(answer.id).toBe(TOTP.id);
    await flush(first);
    expect(JSON.parse(readFileSync(join(folder, 'recent.json'), 'utf8'))).toEqual({ recent: [{ keyId: '1234ABCD', credentialId: TOTP.id }, { keyId: '1234ABCD', credentialId: HOTP.id }] });
    await expect(first.controller.readAccount('k1', 'Nope:x')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(first.controller.readAccount('k9', TOTP.id)).rejects.toMatchObject({ code: 'NO_KEY' });

    const second = setup({ recent: recentStore(folder) });
    await second.controller.start();
    await flush(second);
    const menu = second.tray.last.menu;
    expect(menu.slice(0, 3).map((n) => (n.kind === 'item' ? [n.label, n.enabled] : '---'))).toEqual([
      ['Recent', false],
      ['Demo: alice (key not connected)', false],
      ['VPN: alice (key not connected)', false],
    ]);
  });
});
