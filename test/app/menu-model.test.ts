import { describe, expect, it } from 'vitest';
import { accountLabel } from '../../src/app/account-label.js';
import { buildTrayModel, iconFor, parseMenuId, tooltipFor } from '../../src/app/menu-model.js';
import type { AppState } from '../../src/app/state.js';
import { INITIAL_STATE } from '../../src/app/state.js';
import type { MenuItem, MenuNode } from '../../src/tray/model.js';
import { BANK60, CONFIG, HOTP, TOTP, TOUCH, added, loaded, readyState, run } from './fixtures.js';

const NOW = 1_700_000_000;

function flat(nodes: MenuNode[]): MenuNode[] {
  return nodes.flatMap((n) => [n, ...(n.kind === 'item' && n.children ? flat(n.children) : [])]);
}

function item(nodes: MenuNode[], id: string): MenuItem {
  const found = flat(nodes).find((n) => n.id === id);
  if (!found || found.kind !== 'item') throw new Error(`no item ${id} in ${flat(nodes).map((n) => n.id).join(' ')}`);
  return found;
}

function labels(nodes: MenuNode[]): string[] {
  return nodes.map((n) => (n.kind === 'item' ? n.label : '---'));
}

function pendingState(credentialId: string): AppState {
  return run([{ type: 'read-requested', requestId: 1, keyId: 'k1', credentialId, source: 'menu', now: NOW }], undefined, readyState()).state;
}

describe('the menu in every state', () => {
  it('no key: a disabled hint, then the fixed items; icon idle', () => {
    const model = buildTrayModel(INITIAL_STATE, CONFIG);
    expect(model.icon).toBe('idle');
    expect(model.tooltip).toBe('keytap: no key');
    expect(labels(model.menu)).toEqual([
      'No key: plug one in',
      '---',
      'Default account for the shortcut (Ctrl+Alt+K)',
      'Type the code',
      'Show code in notification',
      'Notifications',
      'Notify when a key is connected',
      'Start at login',
      '---',
      'Settings…',
      'About keytap',
      'Quit',
    ]);
    expect(item(model.menu, 'no-key').enabled).toBe(false);
  });

  it('loading key: its header and "Reading accounts…"', () => {
    const model = buildTrayModel(run([added('/dev/hidraw3')]).state, CONFIG);
    expect(labels(model.menu).slice(0, 3)).toEqual(['Nitrokey 3', 'Reading accounts…', '---']);
    expect(item(model.menu, 'key:%2Fdev%2Fhidraw3').enabled).toBe(false);
    expect(model.icon).toBe('key');
  });

  it('ready key: header "name (serial)", accounts with touch/HOTP markers, clickable', () => {
    const model = buildTrayModel(readyState(), CONFIG);
    expect(labels(model.menu).slice(0, 6)).toEqual(['Nitrokey 3 (1234ABCD)', 'Demo: alice', 'GitHub: alice (touch)', 'VPN: alice (HOTP)', 'Add account from QR code on screen…', '---']);
    const github = item(model.menu, 'code:k1:GitHub%3Aalice');
    expect(github.enabled).toBe(true);
    expect(parseMenuId(github.id)).toEqual({ type: 'read', keyId: 'k1', credentialId: 'GitHub:alice' });
    expect(model.icon).toBe('key');
    expect(model.tooltip).toBe('keytap: Nitrokey 3, 3 accounts');
  });

  it('markers combine, and words render everywhere', () => {
    expect(accountLabel({ id: 'X', account: 'X', type: 'HOTP', period: 30, touch: true })).toBe('X (HOTP, touch)');
    expect(accountLabel({ id: 'X', account: 'X', type: 'TOTP', period: 30, touch: undefined })).toBe('X');
  });

  it('names as "Issuer: account", a period other than 30 s as a marker, never the stored name', () => {
    expect(accountLabel(BANK60)).toBe('Bank: alice (60 s)');
    expect(accountLabel({ ...BANK60, touch: true })).toBe('Bank: alice (60 s, touch)');
    expect(accountLabel({ id: 'alice', account: 'alice', type: 'TOTP', period: 30 })).toBe('alice');
    const model = buildTrayModel(readyState([BANK60]), CONFIG);
    expect(labels(model.menu).slice(0, 2)).toEqual(['Nitrokey 3 (1234ABCD)', 'Bank: alice (60 s)']);
    expect(labels(item(model.menu, 'default').children!)).toContain('Bank: alice (60 s)');
    // Pending: the Cancel item and the tooltip name it the same way.
    const pending = run([{ type: 'read-requested', requestId: 1, keyId: 'k1', credentialId: BANK60.id, source: 'menu', now: NOW }], undefined, readyState([BANK60])).state;
    expect(item(buildTrayModel(pending, CONFIG).menu, 'cancel').label).toBe('Cancel reading Bank: alice (60 s)');
    expect(tooltipFor(pending)).toBe('keytap: reading Bank: alice (60 s)…');
  });

  it('serials in one case, whatever case the key reports', () => {
    const state = run([added('k1'), loaded('k1', [TOTP], '0a0b0c0d')]).state;
    expect(labels(buildTrayModel(state, CONFIG).menu)[0]).toBe('Nitrokey 3 (0A0B0C0D)');
  });

  it("a virtual key's header names the model it answers like", () => {
    const state = run([
      { type: 'key-added', key: { id: 'virtual:a', name: 'virtual key demo-key.json', kind: 'virtual', dialect: 'yubikey' } },
      { type: 'key-added', key: { id: 'virtual:b', name: 'virtual key nk.json', kind: 'virtual', dialect: 'nitrokey3' } },
      loaded('virtual:a', [TOTP], '1a2b3c4d'),
      loaded('virtual:b', [HOTP]),
    ]).state;
    const headers = labels(buildTrayModel(state, CONFIG).menu).filter((l) => l.startsWith('Virtual'));
    expect(headers).toEqual(['Virtual YubiKey 5 (1A2B3C4D)', 'Virtual Nitrokey 3']);
  });

  it('ready key without accounts says how to add one', () => {
    const model = buildTrayModel(readyState([]), CONFIG);
    expect(labels(model.menu)[1]).toBe('No accounts: add one with "keytap add"');
  });

  it('locked key: "Unlock…", which parses back to an unlock of that key', () => {
    const state = run([added('k1'), { type: 'key-loaded', keyId: 'k1', locked: true, credentials: [] }]).state;
    const model = buildTrayModel(state, CONFIG);
    expect(labels(model.menu).slice(0, 3)).toEqual(['Nitrokey 3', 'Locked with a password', 'Unlock…']);
    expect(item(model.menu, 'unlock:k1').enabled).not.toBe(false);
    expect(parseMenuId('unlock:k1')).toEqual({ type: 'unlock', keyId: 'k1' });
    expect(model.tooltip).toBe('keytap: Nitrokey 3, locked');
  });

  it('an unlocked key held in memory offers "Remember on this computer" where there is a keyring; a remembered one "Forget on this computer"', () => {
    const held = run([added('k1'), { type: 'key-loaded', keyId: 'k1', locked: false, credentials: [TOTP], secret: 'held', canRemember: true }]).state;
    expect(labels(buildTrayModel(held, CONFIG).menu)).toContain('Remember on this computer');
    expect(labels(buildTrayModel(held, CONFIG).menu)).not.toContain('Forget on this computer');
    expect(parseMenuId('remember:k1')).toEqual({ type: 'remember', keyId: 'k1' });
    const noKeyring = run([added('k1'), { type: 'key-loaded', keyId: 'k1', locked: false, credentials: [TOTP], secret: 'held', canRemember: false }]).state;
    expect(labels(buildTrayModel(noKeyring, CONFIG).menu)).not.toContain('Remember on this computer');
    const remembered = run([added('k1'), { type: 'key-loaded', keyId: 'k1', locked: false, credentials: [TOTP], secret: 'held', canRemember: true }, { type: 'secret-changed', keyId: 'k1', secret: 'remembered' }]).state;
    const menu = labels(buildTrayModel(remembered, CONFIG).menu);
    expect(menu).toContain('Forget on this computer');
    expect(menu).not.toContain('Remember on this computer');
    expect(parseMenuId('forget:k1')).toEqual({ type: 'forget', keyId: 'k1' });
    // A key that never was locked offers neither.
    const plain = run([added('k1'), { type: 'key-loaded', keyId: 'k1', locked: false, credentials: [TOTP] }]).state;
    expect(labels(buildTrayModel(plain, CONFIG).menu).filter((l) => /on this computer/u.test(l))).toEqual([]);
  });

  it('key in error: message, hint, "Try again"; icon error', () => {
    const state = run([added('k1'), { type: 'key-failed', keyId: 'k1', error: { code: 'PERMISSION_DENIED', message: 'No access to /dev/hidraw3.', hint: 'Install the udev rules.' } }]).state;
    const model = buildTrayModel(state, CONFIG);
    expect(labels(model.menu).slice(0, 4)).toEqual(['Nitrokey 3', 'Cannot read: No access to /dev/hidraw3.', 'Install the udev rules.', 'Try again']);
    expect(parseMenuId('retry:k1')).toEqual({ type: 'retry', keyId: 'k1' });
    expect(model.icon).toBe('error');
    expect(model.tooltip).toBe('keytap: Nitrokey 3: No access to /dev/hidraw3.');
  });

  it('touch pending: the account says so, others are disabled, a Cancel item; icon touch', () => {
    const model = buildTrayModel(pendingState(TOUCH.id), CONFIG);
    expect(model.icon).toBe('touch');
    expect(model.tooltip).toBe('keytap: touch your key (GitHub: alice)');
    expect(item(model.menu, 'code:k1:GitHub%3Aalice').label).toBe('GitHub: alice (touch): touch your key…');
    expect(item(model.menu, 'code:k1:Demo%3Aalice').enabled).toBe(false);
    expect(item(model.menu, 'cancel').label).toBe('Cancel reading GitHub: alice');
    expect(parseMenuId('cancel')).toEqual({ type: 'cancel' });
  });

  it('reading (no touch yet): icon key, "reading…"', () => {
    const model = buildTrayModel(pendingState(TOTP.id), CONFIG);
    expect(model.icon).toBe('key');
    expect(item(model.menu, 'code:k1:Demo%3Aalice').label).toBe('Demo: alice: reading…');
    expect(model.tooltip).toBe('keytap: reading Demo: alice…');
  });

  it('after a failed read: icon error and the reason in the tooltip, until the next read', () => {
    const state = run([{ type: 'touch-timed-out', requestId: 1, now: NOW + 30 }], undefined, pendingState(TOUCH.id)).state;
    expect(iconFor(state)).toBe('error');
    expect(tooltipFor(state)).toContain('No touch within 30 s');
    const next = run([{ type: 'read-requested', requestId: 2, keyId: 'k1', credentialId: TOTP.id, source: 'menu', now: NOW }], undefined, state).state;
    expect(iconFor(next)).toBe('key');
  });

  it('two keys: a section each, in order, with separators', () => {
    const state = run([added('k1'), added('virtual:vk-1', 'virtual key b.json', 'virtual'), loaded('k1', [TOTP], 'AAAA0001'), loaded('virtual:vk-1', [HOTP], 'BBBB0002')]).state;
    const model = buildTrayModel(state, CONFIG);
    expect(labels(model.menu).slice(0, 8)).toEqual([
      'Nitrokey 3 (AAAA0001)',
      'Demo: alice',
      'Add account from QR code on screen…',
      '---',
      'virtual key b.json (BBBB0002)',
      'VPN: alice (HOTP)',
      'Add account from QR code on screen…',
      '---',
    ]);
    expect(item(model.menu, 'code:virtual%3Avk-1:VPN%3Aalice')).toBeTruthy();
    // the default-account submenu names the key when there are several
    const defaults = item(model.menu, 'default').children!;
    expect(labels(defaults)).toEqual(['The only account (when there is just one)', 'Demo: alice, on Nitrokey 3 (AAAA0001)', 'VPN: alice (HOTP), on virtual key b.json (BBBB0002)']);
  });
});

describe('settings in the menu', () => {
  it('default account: radio items keyed by serial, "auto" checked by default', () => {
    const model = buildTrayModel(readyState(), CONFIG);
    const defaults = item(model.menu, 'default').children!;
    expect(defaults.map((n) => (n.kind === 'item' ? [n.id, n.toggle, n.checked] : []))).toEqual([
      ['default:auto', 'radio', true],
      ['default:1234ABCD:Demo%3Aalice', 'radio', false],
      ['default:1234ABCD:GitHub%3Aalice', 'radio', false],
      ['default:1234ABCD:VPN%3Aalice', 'radio', false],
    ]);
    expect(parseMenuId('default:auto')).toEqual({ type: 'default-account', account: null });
    expect(parseMenuId('default:1234ABCD:GitHub%3Aalice')).toEqual({ type: 'default-account', account: { keyId: '1234ABCD', credentialId: 'GitHub:alice' } });
  });

  it('the chosen default is checked; when its key is away it stays visible, disabled', () => {
    const chosen = { ...CONFIG, defaultAccount: { keyId: '1234ABCD', credentialId: 'GitHub:alice' } };
    const here = item(buildTrayModel(readyState(), chosen).menu, 'default:1234ABCD:GitHub%3Aalice');
    expect(here.checked).toBe(true);
    const away = item(buildTrayModel(INITIAL_STATE, chosen).menu, 'default:1234ABCD:GitHub%3Aalice');
    expect(away).toMatchObject({ checked: true, enabled: false, label: 'GitHub: alice (key not connected)' });
    expect(item(buildTrayModel(INITIAL_STATE, chosen).menu, 'default:auto').checked).toBe(false);
  });

  it('toggles reflect the config; "Show code" is greyed with toasts off; autostart greyed while unknown', () => {
    const model = buildTrayModel(INITIAL_STATE, { ...CONFIG, notifications: false, showCodeInNotification: true });
    expect(item(model.menu, 'toggle:notifications')).toMatchObject({ toggle: 'checkmark', checked: false, enabled: true });
    expect(item(model.menu, 'toggle:showCodeInNotification')).toMatchObject({ checked: true, enabled: false });
    expect(item(model.menu, 'toggle:autostart')).toMatchObject({ checked: false, enabled: false });
    const known = run([{ type: 'autostart-changed', enabled: true }]).state;
    expect(item(buildTrayModel(known, CONFIG).menu, 'toggle:autostart')).toMatchObject({ checked: true, enabled: true });
    for (const setting of ['showCodeInNotification', 'notifications', 'notifyOnConnect', 'autostart']) {
      expect(parseMenuId(`toggle:${setting}`)).toEqual({ type: 'toggle', setting });
    }
  });

  it('an unavailable shortcut says to bind "keytap code"', () => {
    const state = run([{ type: 'shortcut-changed', status: 'unavailable' }]).state;
    expect(item(buildTrayModel(state, CONFIG).menu, 'default').label).toBe('Default account for the shortcut (shortcut unavailable: bind "keytap code")');
  });

  it('Settings, About, Quit parse; unknown and malformed ids do not', () => {
    expect(parseMenuId('settings')).toEqual({ type: 'settings' });
    expect(parseMenuId('about')).toEqual({ type: 'about' });
    expect(parseMenuId('quit')).toEqual({ type: 'quit' });
    for (const bad of ['', 'nope', 'code:k1', 'code::x', 'retry:', 'toggle:shortcut', 'default:a', 'key:k1', 'code:%E0%A4%A:x']) {
      expect(parseMenuId(bad), bad).toBeUndefined();
    }
  });
});

describe('stable ids', () => {
  it('ids do not depend on order or state, and are unique', () => {
    const a = buildTrayModel(readyState([TOTP, TOUCH, HOTP]), CONFIG);
    const b = buildTrayModel(readyState([HOTP, TOTP, TOUCH]), CONFIG);
    const ids = (m: typeof a) => flat(m.menu).map((n) => n.id);
    expect(new Set(ids(a))).toEqual(new Set(ids(b)));
    expect(new Set(ids(a)).size).toBe(ids(a).length);
    const pending = buildTrayModel(pendingState(TOUCH.id), CONFIG);
    expect(ids(pending).filter((id) => id.startsWith('code:'))).toEqual(ids(a).filter((id) => id.startsWith('code:')));
  });

  it('key ids and account ids with ":" and "/" round-trip', () => {
    const odd = { ...TOTP, id: '60/Weird:name:with/colons' };
    const state = readyState([odd], '\\\\?\\hid#vid_20a0:pid');
    const code = flat(buildTrayModel(state, CONFIG).menu).find((n) => n.id.startsWith('code:'))!;
    expect(parseMenuId(code.id)).toEqual({ type: 'read', keyId: '\\\\?\\hid#vid_20a0:pid', credentialId: '60/Weird:name:with/colons' });
  });
});

describe('"Type the code" in the menu', () => {
  it('a global checkmark, and per account one under "Type the code of…" (its own choice, or everyone\'s)', () => {
    const state = readyState([TOTP, HOTP]);
    const off = buildTrayModel(state, CONFIG).menu;
    expect(item(off, 'type-code')).toMatchObject({ label: 'Type the code', toggle: 'checkmark', checked: false });
    const perAccount = item(off, 'type-for');
    expect(perAccount.label).toBe('Type the code of…');
    expect(perAccount.children?.map((c) => [c.kind === 'item' ? c.label : '', c.kind === 'item' ? c.checked : undefined])).toEqual([
      ['Demo: alice', false],
      ['VPN: alice (HOTP)', false],
    ]);
    const config = { ...CONFIG, deliver: 'both' as const, deliverFor: [{ keyId: '1234ABCD', credentialId: HOTP.id, deliver: 'copy' as const }] };
    const on = buildTrayModel({ ...state, shortcut: 'registered' }, config).menu;
    expect(item(on, 'type-code')).toMatchObject({ label: 'Type the code and copy it (Ctrl+Alt+Shift+K always types)', checked: true });
    expect(item(on, 'type-for').children?.map((c) => (c.kind === 'item' ? c.checked : undefined))).toEqual([true, false]);
  });

  it('no accounts: no per-account submenu; the ids parse back', () => {
    expect(() => item(buildTrayModel(INITIAL_STATE, CONFIG).menu, 'type-for')).toThrow();
    expect(parseMenuId('type-code')).toEqual({ type: 'type-code' });
    expect(parseMenuId('type-for:1234ABCD:VPN%3Aalice')).toEqual({ type: 'type-code-for', account: { keyId: '1234ABCD', credentialId: 'VPN:alice' } });
    expect(parseMenuId('type-for:1234ABCD')).toBeUndefined();
    expect(parseMenuId('type-code:x')).toBeUndefined();
  });
});

describe('"Use for this window…" in the menu', () => {
  it('only once a shortcut press saw a window: one item per account, the application named, never the title', () => {
    const state = readyState([TOTP, HOTP]);
    expect(() => item(buildTrayModel(state, CONFIG).menu, 'window-rule')).toThrow();
    const menu = buildTrayModel(state, CONFIG, { app: 'firefox' }).menu;
    const use = item(menu, 'window-rule');
    expect(use.label).toBe('Use for this window (firefox, focused at the last shortcut)…');
    expect(use.children?.map((c) => [c.id, c.kind === 'item' ? c.label : ''])).toEqual([
      ['window-rule:1234ABCD:Demo%3Aalice', 'Demo: alice'],
      ['window-rule:1234ABCD:VPN%3Aalice', 'VPN: alice (HOTP)'],
    ]);
    // It comes right after the default account's submenu, the other choice the shortcut makes.
    const ids = menu.map((n) => n.id);
    expect(ids.indexOf('window-rule')).toBe(ids.indexOf('default') + 1);
    expect(item(buildTrayModel(state, CONFIG, {}).menu, 'window-rule').label).toBe('Use for this window (focused at the last shortcut)…');
  });

  it('no accounts: no item; the ids parse back', () => {
    expect(() => item(buildTrayModel(INITIAL_STATE, CONFIG, { app: 'firefox' }).menu, 'window-rule')).toThrow();
    expect(parseMenuId('window-rule:1234ABCD:VPN%3Aalice')).toEqual({ type: 'window-rule', account: { keyId: '1234ABCD', credentialId: 'VPN:alice' } });
    expect(parseMenuId('window-rule:1234ABCD')).toBeUndefined();
    expect(parseMenuId('window-rule')).toBeUndefined();
  });
});
