import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CONFIG_SCHEMA, ConfigStore, DEFAULT_CONFIG, configDir } from '../../src/app/config.js';
import { tempDir } from '../support/cli.js';

const stores: ConfigStore[] = [];
function open(dir: string, watch = false): ConfigStore {
  const store = ConfigStore.open({ dir, watch });
  stores.push(store);
  return store;
}
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
});

describe('settings file', () => {
  it('is created with the defaults, mode 0600, in a 0700 folder', () => {
    const dir = join(tempDir(), 'keytap');
    const store = open(dir);
    expect(store.problem).toBeUndefined();
    expect(store.path).toBe(join(dir, 'config.json'));
    expect(store.current).toEqual(DEFAULT_CONFIG);
    expect(JSON.parse(readFileSync(store.path, 'utf8'))).toEqual(DEFAULT_CONFIG);
    if (process.platform !== 'win32') {
      expect(statSync(store.path).mode & 0o777).toBe(0o600);
      expect(statSync(dir).mode & 0o777).toBe(0o700);
    }
  });

  it('defaults: Ctrl+Alt+K, Ctrl+Alt+Shift+K types, codes copied, clear after 20 s, toasts on, connect toasts on, code hidden, no default account, touch 30 s', () => {
    expect(DEFAULT_CONFIG).toEqual({
      shortcut: 'Ctrl+Alt+K',
      typeShortcut: 'Ctrl+Alt+Shift+K',
      deliver: 'copy',
      deliverFor: [],
      clipboardClearSeconds: 20,
      notifications: true,
      notifyOnConnect: true,
      showCodeInNotification: false,
      defaultAccount: null,
      touchTimeoutSeconds: 30,
      windowRules: [],
    });
    expect(Object.keys(CONFIG_SCHEMA).sort()).toEqual(Object.keys(DEFAULT_CONFIG).sort());
  });

  it('set saves, keeps mode 0600, and tells listeners', () => {
    const dir = tempDir();
    const store = open(dir);
    const seen: unknown[] = [];
    store.onChange((now, before) => seen.push([now.clipboardClearSeconds, before.clipboardClearSeconds]));
    store.set('clipboardClearSeconds', 0);
    store.set('defaultAccount', { keyId: '1234ABCD', credentialId: 'GitHub:alice' });
    expect(seen).toEqual([
      [0, 20],
      [0, 0],
    ]);
    const again = open(dir);
    expect(again.current).toMatchObject({ clipboardClearSeconds: 0, defaultAccount: { keyId: '1234ABCD', credentialId: 'GitHub:alice' } });
    if (process.platform !== 'win32') expect(statSync(store.path).mode & 0o777).toBe(0o600);
  });

  it('keeps the typing choices, and hands out copies of the per-account list', () => {
    const dir = tempDir();
    const deliverFor = [{ keyId: '1234ABCD', credentialId: 'GitHub:alice', deliver: 'both' }];
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ deliver: 'type', deliverFor, typeShortcut: 'Ctrl+Alt+T' }));
    const store = open(dir);
    expect(store.problem).toBeUndefined();
    expect(store.current).toMatchObject({ deliver: 'type', deliverFor, typeShortcut: 'Ctrl+Alt+T' });
    store.current.deliverFor.push({ keyId: 'x', credentialId: 'y', deliver: 'copy' });
    expect(store.current.deliverFor).toEqual(deliverFor);
  });

  it('a hand-written file gets its mode tightened and missing keys filled in', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ touchTimeoutSeconds: 60 }), { mode: 0o644 });
    const store = open(dir);
    expect(store.current).toEqual({ ...DEFAULT_CONFIG, touchTimeoutSeconds: 60 });
    if (process.platform !== 'win32') expect(statSync(store.path).mode & 0o777).toBe(0o600);
  });

  it.each([
    ['not JSON', '{ "shortcut": '],
    ['a wrong type', JSON.stringify({ notifications: 'yes' })],
    ['out of range', JSON.stringify({ clipboardClearSeconds: -1 })],
    ['a bad default account', JSON.stringify({ defaultAccount: { keyId: 'x' } })],
    ['a touch timeout too short', JSON.stringify({ touchTimeoutSeconds: 1 })],
    ['an unknown deliver choice', JSON.stringify({ deliver: 'paste' })],
    ['a per-account choice without its account', JSON.stringify({ deliverFor: [{ keyId: 'x', deliver: 'type' }] })],
    ['an empty type shortcut', JSON.stringify({ typeShortcut: '' })],
  ])('a broken file (%s) names the file, runs with defaults, and is left alone', (_what, text) => {
    const dir = tempDir();
    const path = join(dir, 'config.json');
    writeFileSync(path, text);
    const store = open(dir);
    expect(store.problem?.code).toBe('BAD_INPUT');
    expect(store.problem?.message).toContain(path);
    expect(store.problem?.message).toContain('default settings');
    expect(store.current).toEqual(DEFAULT_CONFIG);
    // changes from the menu stay in memory; the user's file is theirs to fix
    store.set('notifications', false);
    expect(store.current.notifications).toBe(false);
    expect(readFileSync(path, 'utf8')).toBe(text);
  });

  it.each([
    ['a window rule without its account', { windowRules: [{ title: 'GitHub' }] }, "`windowRules/0` must have required property 'credentialId'"],
    ['a window rule with no condition', { windowRules: [{ credentialId: 'GitHub:alice' }] }, "`windowRules/0` must have required property 'title'; `windowRules/0` must have required property 'titlePattern'; `windowRules/0` must have required property 'app'"],
    ['a window rule whose pattern is no regular expression', { windowRules: [{ credentialId: 'GitHub:alice', titlePattern: 'Sign in (' }] }, '`windowRules/0/titlePattern` must match format "regex"'],
    ['a window rule with an unknown field', { windowRules: [{ credentialId: 'GitHub:alice', window: 'GitHub' }] }, '`windowRules/0` must NOT have additional properties'],
    ['window rules that are not a list', { windowRules: { credentialId: 'GitHub:alice', app: 'firefox' } }, '`windowRules` must be array'],
  ])('a broken window rule (%s): the message names the field; defaults run, the file is left alone', (_what, value, named) => {
    const dir = tempDir();
    const path = join(dir, 'config.json');
    const text = JSON.stringify(value);
    writeFileSync(path, text);
    const store = open(dir);
    expect(store.problem?.code).toBe('BAD_INPUT');
    expect(store.problem?.message).toContain(path);
    expect(store.problem?.message).toContain(named);
    expect(store.current.windowRules).toEqual([]);
    expect(readFileSync(path, 'utf8')).toBe(text);
  });

  it('window rules are kept as written, and set saves them', () => {
    const dir = tempDir();
    const rules = [
      { credentialId: 'GitHub:alice', title: 'GitHub' },
      { keyId: '1234ABCD', credentialId: 'Microsoft:work', titlePattern: '^Microsoft Teams', app: 'teams' },
    ];
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ windowRules: rules }));
    const store = open(dir);
    expect(store.problem).toBeUndefined();
    expect(store.current.windowRules).toEqual(rules);
    store.set('windowRules', [...rules, { credentialId: 'VPN:bob', app: 'vpn-client' }]);
    expect(open(dir).current.windowRules).toEqual([...rules, { credentialId: 'VPN:bob', app: 'vpn-client' }]);
  });

  it('picks the file up again once it is fixed (reload, and the folder watch)', async () => {
    const dir = tempDir();
    const path = join(dir, 'config.json');
    writeFileSync(path, '{');
    const store = open(dir, true);
    const problems: (string | undefined)[] = [];
    store.onProblemChange((p) => problems.push(p?.code));
    expect(store.problem).toBeDefined();
    writeFileSync(path, JSON.stringify({ shortcut: 'Ctrl+Shift+O' }));
    await waitFor(() => store.current.shortcut === 'Ctrl+Shift+O');
    expect(store.problem).toBeUndefined();
    expect(problems).toEqual([undefined]);
    // and breaks again
    writeFileSync(path, JSON.stringify({ shortcut: '' }));
    store.reload();
    expect(store.problem?.message).toContain('shortcut');
    expect(store.current).toEqual(DEFAULT_CONFIG);
  });

  it('configDir honours KEYTAP_CONFIG_DIR and the OS convention', () => {
    const before = process.env.KEYTAP_CONFIG_DIR;
    try {
      process.env.KEYTAP_CONFIG_DIR = '/x/y';
      expect(configDir()).toBe('/x/y');
      delete process.env.KEYTAP_CONFIG_DIR;
      if (process.platform === 'linux') expect(configDir()).toMatch(/keytap$/u);
    } finally {
      if (before === undefined) delete process.env.KEYTAP_CONFIG_DIR;
      else process.env.KEYTAP_CONFIG_DIR = before;
    }
  });
});

async function waitFor(condition: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
