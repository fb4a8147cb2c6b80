// The tray menu with many accounts (grouped by issuer) and the "Recent" section (issue 11 part 4).
import { describe, expect, it } from 'vitest';
import { GROUP_ABOVE, RECENT_MAX, buildTrayModel, parseMenuId } from '../../src/app/menu-model.js';
import type { KeyCredential } from '../../src/app/../device/oath/session.js';
import { reduce } from '../../src/app/state.js';
import type { AppState } from '../../src/app/state.js';
import type { MenuItem, MenuNode } from '../../src/tray/model.js';
import { CONFIG, SETTINGS, TOTP, added, loaded, readyState, run } from './fixtures.js';

const NOW = 1_700_000_000;

function account(issuer: string | undefined, name: string): KeyCredential {
  return { id: issuer ? `${issuer}:${name}` : name, issuer, account: name, type: 'TOTP', algorithm: 'SHA1', period: 30, digits: 6, touch: false };
}

const labels = (nodes: MenuNode[]): string[] => nodes.map((n) => (n.kind === 'item' ? n.label : '---'));
const byId = (nodes: MenuNode[], id: string): MenuItem => {
  const flat = (ns: MenuNode[]): MenuNode[] => ns.flatMap((n) => [n, ...(n.kind === 'item' && n.children ? flat(n.children) : [])]);
  const found = flat(nodes).find((n) => n.id === id);
  if (!found || found.kind !== 'item') throw new Error(`no ${id}`);
  return found;
};

describe('many accounts on a key', () => {
  it('issuers grouped ignoring case, named as first spelled, sorted ignoring case; "Other" last even against a lower-case issuer', () => {
    const creds = [
      ...Array.from({ length: 5 }, (_, i) => account('GitHub', `g${i}`)),
      ...Array.from({ length: 4 }, (_, i) => account('github', `h${i}`)),
      account('GITHUB', 'loud'),
      account(undefined, 'loner'),
      ...Array.from({ length: 3 }, (_, i) => account('amazon', `a${i}`)),
      ...Array.from({ length: 2 }, (_, i) => account('Bank', `b${i}`)),
      account('other', 'lower'),
      account('zoo', 'z'),
    ];
    const menu = buildTrayModel(readyState(creds), CONFIG).menu;
    const groups = menu.filter((n): n is MenuItem => n.kind === 'item' && n.id.startsWith('issuer:'));
    expect(labels(groups)).toEqual(['amazon (3)', 'Bank (2)', 'GitHub (10)', 'other (1)', 'zoo (1)', 'Other (1)']);
    expect(labels(groups[2]!.children!)).toEqual([...[0, 1, 2, 3, 4].map((i) => `GitHub: g${i}`), ...[0, 1, 2, 3].map((i) => `github: h${i}`), 'GITHUB: loud']);
    expect(new Set(groups.map((g) => g.id)).size).toBe(groups.length);
  });

  it(`up to ${GROUP_ABOVE}: one flat list, as before`, () => {
    const creds = Array.from({ length: GROUP_ABOVE }, (_, i) => account(`Svc${i % 3}`, `u${i}`));
    const menu = buildTrayModel(readyState(creds), CONFIG).menu;
    expect(menu.filter((n) => n.id.startsWith('code:'))).toHaveLength(GROUP_ABOVE);
    expect(menu.some((n) => n.id.startsWith('issuer:'))).toBe(false);
  });

  it(`more than ${GROUP_ABOVE}: submenus by issuer (sorted, "Other" last), the items keep their ids`, () => {
    const creds = [
      ...Array.from({ length: 8 }, (_, i) => account('Work', `w${i}`)),
      ...Array.from({ length: 6 }, (_, i) => account('bank', `b${i}`)),
      account(undefined, 'loner'),
      account(undefined, 'second'),
      account('Zed', 'z'),
    ];
    const menu = buildTrayModel(readyState(creds), CONFIG).menu;
    const groups = menu.filter((n): n is MenuItem => n.kind === 'item' && n.id.startsWith('issuer:'));
    expect(labels(groups)).toEqual(['bank (6)', 'Work (8)', 'Zed (1)', 'Other (2)']);
    expect(menu.some((n) => n.id.startsWith('code:'))).toBe(false);
    expect(labels(groups[3]!.children!)).toEqual(['loner', 'second']);
    expect(labels(groups[1]!.children!)[0]).toBe('Work: w0');
    const id = groups[0]!.children![0]!.id;
    expect(id).toBe('code:k1:bank%3Ab0');
    expect(parseMenuId(id)).toEqual({ type: 'read', keyId: 'k1', credentialId: 'bank:b0' });
    expect(parseMenuId(groups[0]!.id)).toBeUndefined(); // a submenu is not an action
  });
});

function readOnce(state: AppState, credentialId: string, requestId: number, now = NOW): AppState {
  return run(
    [
      { type: 'read-requested', requestId, keyId: 'k1', credentialId, source: 'menu', now },
      { type: 'read-succeeded', requestId, code: { code: '123456', digits: 6, validFrom: now, validTo: now + 30 }, now },
      { type: 'copy-finished', requestId, now },
    ],
    SETTINGS,
    state,
  ).state;
}

describe('Recent', () => {
  const creds = Array.from({ length: 7 }, (_, i) => account('Svc', `a${i}`));

  it('empty at first: no section', () => {
    expect(buildTrayModel(readyState(creds), CONFIG).menu.some((n) => n.id === 'recent')).toBe(false);
  });

  it(`each read that reached the clipboard goes first; no duplicates; at most ${RECENT_MAX}; the state says to save it`, () => {
    let state = readyState(creds);
    for (const [i, n] of [0, 1, 2, 1, 3, 4, 5].entries()) state = readOnce(state, `Svc:a${n}`, i + 1);
    expect(state.recent).toEqual(['a5', 'a4', 'a3', 'a1', 'a2'].slice(0, RECENT_MAX).map((n) => ({ keyId: '1234ABCD', credentialId: `Svc:${n}` })));
    const menu = buildTrayModel(state, CONFIG).menu;
    expect(labels(menu.slice(0, RECENT_MAX + 2))).toEqual(['Recent', ...['a5', 'a4', 'a3', 'a1', 'a2'].slice(0, RECENT_MAX).map((n) => `Svc: ${n}`), '---']);
    expect(parseMenuId(menu[1]!.id)).toEqual({ type: 'read', keyId: 'k1', credentialId: 'Svc:a5' });
  });

  it('a successful copy emits save-recent; a failed read does not change the list', () => {
    const state = readyState(creds);
    const copied = run(
      [
        { type: 'read-requested', requestId: 1, keyId: 'k1', credentialId: 'Svc:a0', source: 'menu', now: NOW },
        { type: 'read-succeeded', requestId: 1, code: { code: '123456', digits: 6, validFrom: NOW, validTo: NOW + 30 }, now: NOW },
        { type: 'copy-finished', requestId: 1, now: NOW },
      ],
      SETTINGS,
      state,
    );
    expect(copied.last).toContainEqual({ type: 'save-recent', recent: [{ keyId: '1234ABCD', credentialId: 'Svc:a0' }] });
    const failed = run(
      [
        { type: 'read-requested', requestId: 2, keyId: 'k1', credentialId: 'Svc:a1', source: 'menu', now: NOW },
        { type: 'read-failed', requestId: 2, error: { code: 'TOUCH_TIMEOUT', message: 'x' }, now: NOW },
      ],
      SETTINGS,
      copied.state,
    );
    expect(failed.state.recent).toEqual([{ keyId: '1234ABCD', credentialId: 'Svc:a0' }]);
    expect(failed.effects.some((e) => e.type === 'save-recent')).toBe(false);
  });

  it('kept by the key\'s serial where it has one; loaded at start; one whose key is away is shown disabled', () => {
    const state = reduce(readyState([TOTP], 'k1'), { type: 'recent-loaded', recent: [{ keyId: 'OTHERSERIAL', credentialId: 'Gone:bob' }, { keyId: '1234ABCD', credentialId: TOTP.id }] }, SETTINGS).state;
    const menu = buildTrayModel(state, CONFIG).menu;
    expect(labels(menu.slice(0, 3))).toEqual(['Recent', 'Gone: bob (key not connected)', 'Demo: alice']);
    expect(byId(menu, menu[1]!.id).enabled).toBe(false);
    expect(parseMenuId(menu[2]!.id)).toEqual({ type: 'read', keyId: 'k1', credentialId: TOTP.id });
  });

  it('says what is true of an entry that cannot be read: its key locked, loading, unreadable; an account the key no longer holds is left out', () => {
    const recent = [
      { keyId: 'LOCKEDSERIAL', credentialId: 'Locked:l' },
      { keyId: 'LOADINGSERIAL', credentialId: 'Loading:m' },
      { keyId: 'BROKENSERIAL', credentialId: 'Broken:b' },
      { keyId: '1234ABCD', credentialId: 'Deleted:gone' },
      { keyId: '1234ABCD', credentialId: TOTP.id },
    ];
    const keys = run([
      added('k1'),
      loaded('k1', [TOTP], '1234ABCD'),
      { type: 'key-added', key: { id: 'k2', name: 'YubiKey 5', kind: 'hid', serial: 'LOCKEDSERIAL' } },
      { type: 'key-loaded', keyId: 'k2', locked: true, credentials: [] },
      { type: 'key-added', key: { id: 'k3', name: 'YubiKey 5', kind: 'hid', serial: 'LOADINGSERIAL' } },
      { type: 'key-added', key: { id: 'k4', name: 'YubiKey 5', kind: 'hid', serial: 'BROKENSERIAL' } },
      { type: 'key-failed', keyId: 'k4', error: { code: 'DEVICE_ERROR', message: 'x' } },
      { type: 'recent-loaded', recent },
    ]).state;
    const menu = buildTrayModel(keys, CONFIG).menu;
    const section = menu.slice(0, menu.findIndex((n) => n.id === 'sep:recent'));
    expect(labels(section)).toEqual(['Recent', 'Locked: l (locked)', 'Loading: m (loading)', 'Broken: b (cannot read the key)', 'Demo: alice, on Nitrokey 3 (1234ABCD)']);
    expect(section.slice(1, 4).every((n) => n.kind === 'item' && n.enabled === false)).toBe(true);
  });

  it('a key still loading whose serial is not known yet may hold the entry: "(loading)", not "(key not connected)"', () => {
    const state = run([added('k1'), { type: 'recent-loaded', recent: [{ keyId: '1234ABCD', credentialId: TOTP.id }] }]).state;
    expect(labels(buildTrayModel(state, CONFIG).menu).slice(0, 2)).toEqual(['Recent', 'Demo: alice (loading)']);
  });

  it('every entry gone from its key: no section at all', () => {
    const state = reduce(readyState([TOTP]), { type: 'recent-loaded', recent: [{ keyId: '1234ABCD', credentialId: 'Deleted:gone' }] }, SETTINGS).state;
    expect(buildTrayModel(state, CONFIG).menu.some((n) => n.id === 'recent' || n.id === 'sep:recent')).toBe(false);
  });

  it('one entry per account: one recorded under the discovery id moves to the serial once the key says it, duplicates merge, and the list is saved', () => {
    // An older keytap (or a key whose serial came later) recorded the account under the key's discovery id too.
    const recent = [
      { keyId: 'k1', credentialId: TOTP.id },
      { keyId: '1234ABCD', credentialId: TOTP.id },
      { keyId: 'k1', credentialId: 'Svc:a1' },
    ];
    const loadedFirst = run([{ type: 'recent-loaded', recent }, added('k1'), loaded('k1', [TOTP, account('Svc', 'a1')], '1234ABCD')]);
    const expected = [
      { keyId: '1234ABCD', credentialId: TOTP.id },
      { keyId: '1234ABCD', credentialId: 'Svc:a1' },
    ];
    expect(loadedFirst.state.recent).toEqual(expected);
    expect(loadedFirst.effects).toContainEqual({ type: 'save-recent', recent: expected });
    expect(labels(buildTrayModel(loadedFirst.state, CONFIG).menu).slice(0, 4)).toEqual(['Recent', 'Demo: alice', 'Svc: a1', '---']);
    // The key was there before the list was loaded: the same list.
    const keyFirst = run([added('k1'), loaded('k1', [TOTP, account('Svc', 'a1')], '1234ABCD'), { type: 'recent-loaded', recent }]);
    expect(keyFirst.state.recent).toEqual(expected);
    // A read of it again keeps it once, under the serial.
    expect(readOnce(loadedFirst.state, TOTP.id, 1).recent).toEqual(expected);
  });

  it('a read whose key went away before it finished records the key by its serial, not its discovery id', () => {
    const state = run(
      [
        { type: 'read-requested', requestId: 1, keyId: 'k1', credentialId: TOTP.id, source: 'menu', now: NOW },
        { type: 'read-succeeded', requestId: 1, code: { code: '123456', digits: 6, validFrom: NOW, validTo: NOW + 30 }, now: NOW },
        { type: 'key-removed', keyId: 'k1', now: NOW },
        { type: 'copy-finished', requestId: 1, now: NOW },
      ],
      SETTINGS,
      readyState([TOTP]),
    ).state;
    expect(state.recent).toEqual([{ keyId: '1234ABCD', credentialId: TOTP.id }]);
  });
});
