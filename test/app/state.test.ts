import { describe, expect, it } from 'vitest';
import type { AppEvent, Effect } from '../../src/app/state.js';
import { iconFor, tooltipFor } from '../../src/app/menu-model.js';
import { INITIAL_STATE, NEXT_PERIOD_THRESHOLD_SECONDS, accountKeyRef, explainReadError, groupCode, readTime, reduce } from '../../src/app/state.js';
import { BANK60, HOTP, SETTINGS, TOTP, TOUCH, added, loaded, readyState, run } from './fixtures.js';

const NOW = 1_700_000_010; // 10 s into a 30 s period (1_700_000_010 % 30 = 0 + 10)

function types(effects: Effect[]): string[] {
  return effects.map((e) => e.type);
}

function toasts(effects: Effect[]): string[] {
  return effects.flatMap((e) => (e.type === 'notify' ? [e.notification.title] : []));
}

function read(requestId: number, credentialId = TOTP.id, keyId = 'k1', now = NOW): AppEvent {
  return { type: 'read-requested', requestId, keyId, credentialId, source: 'menu', now };
}

describe('keys', () => {
  it('a key added is loading and asks to be listed; loaded, it is ready with a connect toast', () => {
    const a = reduce(INITIAL_STATE, added('k1'), SETTINGS);
    expect(a.state.keys).toEqual([{ id: 'k1', name: 'Nitrokey 3', kind: 'hid', serial: undefined, status: 'loading', credentials: [] }]);
    expect(a.effects).toEqual([{ type: 'load', keyId: 'k1' }, { type: 'log', level: 'info', message: 'key added: Nitrokey 3 (k1)' }]);
    const b = reduce(a.state, loaded('k1', [TOTP, TOUCH], '1234ABCD'), SETTINGS);
    expect(b.state.keys[0]).toMatchObject({ status: 'ready', serial: '1234ABCD', credentials: [TOTP, TOUCH] });
    expect(toasts(b.effects)).toEqual(['Nitrokey 3 (1234ABCD) connected']);
    expect(b.effects.find((e) => e.type === 'notify')).toMatchObject({ type: 'notify', slot: 'key', notification: { body: '2 accounts' } });
  });

  it('the connect toast can be turned off, and all toasts with it', () => {
    expect(toasts(run([added('k1'), loaded('k1', [TOTP])], { ...SETTINGS, notifyOnConnect: false }).effects)).toEqual([]);
    expect(toasts(run([added('k1'), loaded('k1', [TOTP])], { ...SETTINGS, notifications: false }).effects)).toEqual([]);
    expect(run([added('k1'), loaded('k1', [TOTP])]).effects.find((e) => e.type === 'notify')).toMatchObject({ notification: { body: '1 account' } });
  });

  it('a quiet re-list (IPC refresh) of a ready key gives no second connect toast', () => {
    const state = readyState();
    const t = reduce(state, { type: 'key-loaded', keyId: 'k1', locked: false, credentials: [TOTP], quiet: true }, SETTINGS);
    expect(t.effects).toEqual([]);
    expect(t.state.keys[0]!.credentials).toEqual([TOTP]);
  });

  it('a locked key says what to do and lists nothing', () => {
    const { state, effects } = run([added('k1'), { type: 'key-loaded', keyId: 'k1', locked: true, credentials: [] }]);
    expect(state.keys[0]).toMatchObject({ status: 'locked', error: { code: 'AUTH_REQUIRED' } });
    expect(state.keys[0]!.error!.hint).toBe('Choose "Unlock…" under the key in the menu to give its password.');
    expect(toasts(effects)).toEqual(['Nitrokey 3 is locked']);
    // Listed again, still locked and quietly: no second toast.
    expect(toasts(reduce(state, { type: 'key-loaded', keyId: 'k1', locked: true, credentials: [], quiet: true }, SETTINGS).effects)).toEqual([]);
  });

  it('unlocking: a cancelled prompt shows nothing; a failure and a wrong remembered key are toasts; remembering marks the key', () => {
    const locked = run([added('k1'), { type: 'key-loaded', keyId: 'k1', locked: true, credentials: [] }]).state;
    expect(reduce(locked, { type: 'unlock-failed', keyId: 'k1', error: { code: 'CANCELLED', message: 'The question was cancelled.' } }, SETTINGS).effects).toEqual([]);
    const wrong = reduce(locked, { type: 'unlock-failed', keyId: 'k1', error: { code: 'WRONG_PASSWORD', message: 'The password is wrong.', hint: 'Check the password.' } }, SETTINGS);
    expect(toasts(wrong.effects)).toEqual(['Nitrokey 3 was not unlocked: The password is wrong.']);
    const forgotten = reduce(locked, { type: 'remembered-wrong', keyId: 'k1' }, SETTINGS);
    expect(forgotten.effects.find((e) => e.type === 'notify')).toMatchObject({ slot: 'app', notification: { title: 'The password remembered for Nitrokey 3 was wrong and is forgotten' } });
    const ready = reduce(locked, { type: 'key-loaded', keyId: 'k1', locked: false, credentials: [TOTP], secret: 'held', canRemember: true }, SETTINGS).state;
    expect(ready.keys[0]).toMatchObject({ status: 'ready', secret: 'held', canRemember: true });
    expect(reduce(ready, { type: 'secret-changed', keyId: 'k1', secret: 'remembered' }, SETTINGS).state.keys[0]!.secret).toBe('remembered');
    const failed = reduce(ready, { type: 'secret-changed', keyId: 'k1', secret: 'held', error: { code: 'UNSUPPORTED', message: 'The keyring of this computer cannot be used: no D-Bus.' } }, SETTINGS);
    expect(toasts(failed.effects)).toEqual(['The keyring of this computer cannot be used: no D-Bus.']);
    expect(failed.state.keys[0]!.secret).toBe('held');
  });

  it('a key that fails to load shows the error, and retry lists it again', () => {
    const failed = run([added('k1'), { type: 'key-failed', keyId: 'k1', error: { code: 'PERMISSION_DENIED', message: 'No access to /dev/hidraw3.', hint: 'Install the udev rules.' } }]);
    expect(failed.state.keys[0]).toMatchObject({ status: 'error', error: { code: 'PERMISSION_DENIED' } });
    expect(failed.effects.some((e) => e.type === 'log' && e.level === 'error' && e.message.includes('udev'))).toBe(true);
    const retried = reduce(failed.state, { type: 'key-retry', keyId: 'k1' }, SETTINGS);
    expect(retried.state.keys[0]).toMatchObject({ status: 'loading', error: undefined });
    expect(retried.effects).toEqual([{ type: 'load', keyId: 'k1' }]);
    // retry on a key already loading does nothing
    expect(reduce(retried.state, { type: 'key-retry', keyId: 'k1' }, SETTINGS).effects).toEqual([]);
  });

  it('events for a key that is gone are ignored', () => {
    expect(reduce(INITIAL_STATE, loaded('nope', [TOTP]), SETTINGS)).toEqual({ state: INITIAL_STATE, effects: [] });
    expect(reduce(INITIAL_STATE, { type: 'key-failed', keyId: 'nope', error: { code: 'BUSY', message: 'x' } }, SETTINGS).effects).toEqual([]);
    expect(reduce(INITIAL_STATE, { type: 'key-removed', keyId: 'nope', now: NOW }, SETTINGS).effects).toEqual([]);
  });

  it('two keys each keep their own section; removing one leaves the other', () => {
    const { state } = run([added('k1'), added('k2', 'virtual key b.json', 'virtual'), loaded('k2', [HOTP]), loaded('k1', [TOTP])]);
    expect(state.keys.map((k) => [k.id, k.status, k.credentials.length])).toEqual([
      ['k1', 'ready', 1],
      ['k2', 'ready', 1],
    ]);
    const after = reduce(state, { type: 'key-removed', keyId: 'k1', now: NOW }, SETTINGS);
    expect(after.state.keys.map((k) => k.id)).toEqual(['k2']);
    expect(after.effects).toEqual([{ type: 'log', level: 'info', message: 'key removed: Nitrokey 3' }]);
  });

  it('the same id added again (a restarted virtual key) replaces its entry', () => {
    const { state } = run([added('k1'), loaded('k1', [TOTP]), added('k1')]);
    expect(state.keys).toHaveLength(1);
    expect(state.keys[0]!.status).toBe('loading');
  });

  it('accountKeyRef prefers the serial', () => {
    expect(accountKeyRef({ id: '/dev/hidraw3', serial: 'AB' })).toBe('AB');
    expect(accountKeyRef({ id: '/dev/hidraw3' })).toBe('/dev/hidraw3');
  });
});

describe('reading a code', () => {
  it('click on a no-touch TOTP: read, then done + copy, then the copied toast', () => {
    const state = readyState();
    const a = reduce(state, read(1), SETTINGS);
    expect(a.state.pending).toMatchObject({ requestId: 1, keyId: 'k1', credentialId: TOTP.id, phase: 'reading', time: NOW });
    expect(a.effects).toEqual([{ type: 'read', requestId: 1, keyId: 'k1', credential: TOTP, time: NOW }]);

    const code = { code: '123456', digits: 6, validFrom: 1_700_000_010 - 10, validTo: 1_700_000_010 + 20 };
    const b = reduce(a.state, { type: 'read-succeeded', requestId: 1, code, now: NOW + 0.2 }, SETTINGS);
    expect(b.state.pending?.phase).toBe('copying');
    expect(b.effects).toEqual([
      { type: 'done', requestId: 1, result: { ok: true, credentialId: TOTP.id, code } },
      { type: 'copy', requestId: 1, text: '123456', clearAfterSeconds: 20 },
    ]);
    // The code is in effects only, never in the state.
    expect(JSON.stringify(b.state)).not.toContain('123456');

    const c = reduce(b.state, { type: 'copy-finished', requestId: 1, now: NOW + 0.3 }, SETTINGS);
    expect(c.state.pending).toBeUndefined();
    expect(c.state.last).toMatchObject({ ok: true, credentialId: TOTP.id });
    expect(types(c.effects)).toEqual(['notify', 'log', 'save-recent', 'delivered']);
    expect(c.effects[0]).toMatchObject({ type: 'notify', slot: 'read', notification: { title: 'Code copied, valid for 19 s' } });
    const body = (c.effects[0] as Extract<Effect, { type: 'notify' }>).notification.body;
    expect(body).toContain('The clipboard is cleared in 20 s.');
    expect(body).not.toContain('123');
  });

  it('toasts name the account and the key as the menu does: "Bank: alice (60 s) on Virtual YubiKey 5", not the stored name or the file', () => {
    const virtualKey: AppEvent = { type: 'key-added', key: { id: 'v1', name: 'virtual key demo-key.json', kind: 'virtual', dialect: 'yubikey' } };
    const from = run([virtualKey, loaded('v1', [BANK60, { ...TOUCH, id: 'GitHub:alice' }])]).state;
    const touch = reduce(from, read(1, 'GitHub:alice', 'v1'), SETTINGS);
    expect(touch.effects).toContainEqual(expect.objectContaining({ notification: expect.objectContaining({ title: 'Touch your key', body: 'GitHub: alice on Virtual YubiKey 5' }) }));
    const code = { code: '12345678', digits: 8, validFrom: NOW - 10, validTo: NOW + 50 };
    const copied = run([read(2, BANK60.id, 'v1'), { type: 'read-succeeded', requestId: 2, code, now: NOW }, { type: 'copy-finished', requestId: 2, now: NOW }], SETTINGS, from);
    const toast = copied.effects.find((e) => e.type === 'notify') as Extract<Effect, { type: 'notify' }>;
    expect(toast.notification.body.split('\n')[0]).toBe('Bank: alice (60 s) on Virtual YubiKey 5');
    // The log keeps the stored name and the key's own name: they are what a bug report needs.
    expect(copied.effects).toContainEqual(expect.objectContaining({ type: 'log', message: expect.stringContaining('60/Bank:alice (virtual key demo-key.json)') }));
  });

  it('shows the code in the toast only when turned on', () => {
    const on = { ...SETTINGS, showCodeInNotification: true };
    const code = { code: '123456', digits: 6, validFrom: NOW - 10, validTo: NOW + 20 };
    const { effects } = run([read(1), { type: 'read-succeeded', requestId: 1, code, now: NOW }, { type: 'copy-finished', requestId: 1, now: NOW, code: '123456' }], on, readyState());
    const toast = effects.find((e) => e.type === 'notify') as Extract<Effect, { type: 'notify' }>;
    expect(toast.notification.body).toContain('Code: 123 456');
    // …and a code passed along with the setting off is still not shown
    const off = run([read(1), { type: 'read-succeeded', requestId: 1, code, now: NOW }, { type: 'copy-finished', requestId: 1, now: NOW, code: '123456' }], SETTINGS, readyState());
    expect(JSON.stringify(off.effects.filter((e) => e.type === 'notify'))).not.toContain('123');
  });

  it('a touch credential prompts at once, with the touch timer; touch-needed later does not prompt twice', () => {
    const a = reduce(readyState(), read(1, TOUCH.id), SETTINGS);
    expect(a.state.pending?.phase).toBe('touch');
    expect(types(a.effects)).toEqual(['read', 'notify', 'touch-timer']);
    expect(a.effects[1]).toMatchObject({ notification: { title: 'Touch your key', body: 'GitHub: alice on Nitrokey 3', urgency: 'normal', sticky: true, icon: 'touch' } });
    expect(a.effects[2]).toEqual({ type: 'touch-timer', requestId: 1, ms: 30_000 });
    expect(reduce(a.state, { type: 'touch-needed', requestId: 1 }, SETTINGS).effects).toEqual([]);
  });

  it('a credential that turns out to need touch (HOTP) prompts on touch-needed', () => {
    const a = reduce(readyState(), read(1, HOTP.id), SETTINGS);
    expect(types(a.effects)).toEqual(['read']);
    const b = reduce(a.state, { type: 'touch-needed', requestId: 1 }, SETTINGS);
    expect(b.state.pending?.phase).toBe('touch');
    expect(types(b.effects)).toEqual(['notify', 'touch-timer']);
  });

  it('HOTP has no validity window: "Code copied"', () => {
    const code = { code: '755224', digits: 6 };
    const { effects } = run([read(1, HOTP.id), { type: 'read-succeeded', requestId: 1, code, now: NOW }, { type: 'copy-finished', requestId: 1, now: NOW }], SETTINGS, readyState());
    expect(toasts(effects)).toEqual(['Code copied']);
  });

  it('with the clear time 0 the toast does not promise a clear', () => {
    const code = { code: '755224', digits: 6 };
    const settings = { ...SETTINGS, clipboardClearSeconds: 0 };
    const { effects } = run([read(1, HOTP.id), { type: 'read-succeeded', requestId: 1, code, now: NOW }, { type: 'copy-finished', requestId: 1, now: NOW }], settings, readyState());
    expect(effects.find((e) => e.type === 'copy')).toMatchObject({ clearAfterSeconds: 0 });
    expect(JSON.stringify(effects)).not.toContain('cleared');
  });

  it('a second click while a read is pending starts no second read', () => {
    const a = reduce(readyState(), read(1, TOUCH.id), SETTINGS);
    for (const second of [read(2, TOUCH.id), read(3, TOTP.id)]) {
      const b = reduce(a.state, second, SETTINGS);
      expect(b.state).toBe(a.state);
      expect(types(b.effects)).toEqual(['done']);
      expect(b.effects[0]).toMatchObject({ result: { ok: false, error: { code: 'BUSY', hint: 'Touch your key to finish that one first.' } } });
    }
    // also while copying
    const copying = reduce(a.state, { type: 'read-succeeded', requestId: 1, code: { code: '1', digits: 6 }, now: NOW }, SETTINGS).state;
    expect(types(reduce(copying, read(4), SETTINGS).effects)).toEqual(['done']);
  });

  it('unplug during touch cancels the read with a toast', () => {
    const a = reduce(readyState(), read(1, TOUCH.id), SETTINGS);
    const b = reduce(a.state, { type: 'key-removed', keyId: 'k1', now: NOW + 3 }, SETTINGS);
    expect(b.state.keys).toEqual([]);
    expect(b.state.pending).toBeUndefined();
    expect(types(b.effects)).toEqual(['cancel', 'done', 'notify', 'log', 'log']);
    expect(b.effects[0]).toMatchObject({ type: 'cancel', requestId: 1, reason: { code: 'KEY_REMOVED' } });
    expect(toasts(b.effects)).toEqual(['Nitrokey 3 was removed while reading GitHub:alice.']);
    // the read then fails with KEY_REMOVED (or CANCELLED): ignored, no second toast
    expect(reduce(b.state, { type: 'read-failed', requestId: 1, error: { code: 'KEY_REMOVED', message: 'gone' }, now: NOW + 3 }, SETTINGS).effects).toEqual([]);
  });

  it('the link failing first (KEY_REMOVED) gives the same toast, and the later removal none', () => {
    const a = reduce(readyState(), read(1, TOUCH.id), SETTINGS);
    const b = reduce(a.state, { type: 'read-failed', requestId: 1, error: { code: 'KEY_REMOVED', message: 'The key went away.' }, now: NOW }, SETTINGS);
    expect(toasts(b.effects)).toEqual(['Nitrokey 3 was removed while reading GitHub:alice.']);
    expect(types(b.effects)).not.toContain('cancel');
    expect(reduce(b.state, { type: 'key-removed', keyId: 'k1', now: NOW }, SETTINGS).effects).toEqual([{ type: 'log', level: 'info', message: 'key removed: Nitrokey 3 (1234ABCD)' }]);
  });

  it('unplugging another key leaves the pending read alone', () => {
    const { state } = run([added('k2'), loaded('k2', [HOTP]), read(1, TOUCH.id)], SETTINGS, readyState());
    const b = reduce(state, { type: 'key-removed', keyId: 'k2', now: NOW }, SETTINGS);
    expect(b.state.pending?.requestId).toBe(1);
    expect(b.effects).toEqual([{ type: 'log', level: 'info', message: 'key removed: Nitrokey 3' }]);
  });

  it('touch timeout: cancels, toasts, answers, and the late touch-needed / result is ignored', () => {
    const a = reduce(readyState(), read(1, TOUCH.id), SETTINGS);
    const b = reduce(a.state, { type: 'touch-timed-out', requestId: 1, now: NOW + 30 }, SETTINGS);
    expect(types(b.effects)).toEqual(['cancel', 'done', 'notify', 'log']);
    expect(b.effects[1]).toMatchObject({ result: { ok: false, error: { code: 'TOUCH_TIMEOUT' } } });
    expect(toasts(b.effects)).toEqual(['No touch within 30 s; GitHub:alice was not read.']);
    expect(b.state.last).toMatchObject({ ok: false, error: { code: 'TOUCH_TIMEOUT' } });
    expect(reduce(b.state, { type: 'read-succeeded', requestId: 1, code: { code: '1', digits: 6 }, now: NOW }, SETTINGS).effects).toEqual([]);
    // a timer for a read that is in 'reading' (not touch) does nothing
    const c = reduce(readyState(), read(2, TOTP.id), SETTINGS);
    expect(reduce(c.state, { type: 'touch-timed-out', requestId: 2, now: NOW }, SETTINGS).effects).toEqual([]);
  });

  it('the key timing out the touch itself gives a toast that says what to do', () => {
    const a = reduce(readyState(), read(1, TOUCH.id), SETTINGS);
    const b = reduce(a.state, { type: 'read-failed', requestId: 1, error: { code: 'TOUCH_TIMEOUT', message: 'x' }, now: NOW }, SETTINGS);
    expect(toasts(b.effects)).toEqual(['No touch in time; GitHub:alice was not read.']);
  });

  it('cancel from the menu ends the read with an answer', () => {
    const a = reduce(readyState(), read(1, TOUCH.id), SETTINGS);
    const b = reduce(a.state, { type: 'read-cancelled', requestId: 1, reason: { code: 'CANCELLED', message: 'Reading GitHub:alice was cancelled.' }, now: NOW }, SETTINGS);
    expect(types(b.effects)).toEqual(['cancel', 'done', 'notify', 'log']);
    expect(b.effects.find((e) => e.type === 'log')).toMatchObject({ level: 'info' });
  });

  it('a copy that fails becomes an error toast, not "Code copied"', () => {
    const { state, effects } = run(
      [read(1), { type: 'read-succeeded', requestId: 1, code: { code: '1', digits: 6, validTo: NOW + 20 }, now: NOW }, { type: 'copy-finished', requestId: 1, now: NOW, error: { code: 'UNSUPPORTED', message: 'xsel is missing.', hint: 'Install xsel.' } }],
      SETTINGS,
      readyState(),
    );
    expect(toasts(effects)).toEqual(['Could not copy the code of Demo: alice']);
    expect(state.last).toMatchObject({ ok: false, error: { code: 'UNSUPPORTED' } });
  });

  it('clicks on a key or account that is not there answer with an error and a toast', () => {
    const state = readyState();
    const gone = reduce(state, read(1, TOTP.id, 'nope'), SETTINGS);
    expect(gone.effects[0]).toMatchObject({ type: 'done', result: { ok: false, error: { code: 'NO_KEY' } } });
    const missing = reduce(state, read(1, 'Deleted:bob'), SETTINGS);
    expect(missing.effects[0]).toMatchObject({ result: { ok: false, error: { code: 'NOT_FOUND' } } });
    expect(types(missing.effects)).toContain('load'); // re-list to show what is on the key now
    const loading = reduce(run([added('k9')]).state, read(1, TOTP.id, 'k9'), SETTINGS);
    expect(loading.effects[0]).toMatchObject({ result: { ok: false, error: { code: 'NO_KEY', message: 'Nitrokey 3 is not ready yet.' } } });
  });

  it('a deleted account (NOT_FOUND from the key) re-lists the key', () => {
    const { effects } = run([read(1), { type: 'read-failed', requestId: 1, error: { code: 'NOT_FOUND', message: 'No such account.' }, now: NOW }], SETTINGS, readyState());
    expect(effects.at(-1)).toEqual({ type: 'load', keyId: 'k1' });
  });

  it('errors per code say what to do', () => {
    const cases = ['BUSY', 'PERMISSION_DENIED', 'TIMEOUT', 'AUTH_REQUIRED', 'CANCELLED', 'PROTOCOL'] as const;
    for (const code of cases) {
      const e = explainReadError({ code, message: 'raw' }, 'Nitrokey 3', 'X:y', SETTINGS);
      expect(e.code).toBe(code);
      if (code !== 'PROTOCOL' && code !== 'CANCELLED') expect(e.hint).toBeTruthy();
    }
    expect(explainReadError({ code: 'BUSY', message: 'raw' }, 'Nitrokey 3', 'X:y', SETTINGS).message).toBe('Nitrokey 3 is busy with another program.');
  });

  it('results for a request that is not the pending one are ignored', () => {
    const a = reduce(readyState(), read(5), SETTINGS);
    for (const event of [
      { type: 'read-succeeded', requestId: 4, code: { code: '1', digits: 6 }, now: NOW },
      { type: 'read-failed', requestId: 4, error: { code: 'BUSY', message: 'x' }, now: NOW },
      { type: 'copy-finished', requestId: 5, now: NOW },
      { type: 'touch-needed', requestId: 4 },
      { type: 'read-cancelled', requestId: 4, reason: { code: 'CANCELLED', message: 'x' }, now: NOW },
    ] as AppEvent[]) {
      expect(reduce(a.state, event, SETTINGS)).toEqual({ state: a.state, effects: [] });
    }
  });

  it('with toasts off the flow is the same, without notify effects', () => {
    const off = { ...SETTINGS, notifications: false };
    const { effects } = run([read(1, TOUCH.id), { type: 'touch-timed-out', requestId: 1, now: NOW }], off, readyState());
    expect(types(effects)).toEqual(['read', 'touch-timer', 'cancel', 'done', 'log']);
  });
});

describe('the next-period rule', () => {
  const base = 1_700_000_010 - (1_700_000_010 % 30); // start of a period

  it('reads this period with 5 s or more left, the next one with less', () => {
    expect(NEXT_PERIOD_THRESHOLD_SECONDS).toBe(5);
    expect(readTime(TOTP, base + 25)).toBe(base + 25); // exactly 5 s left
    expect(readTime(TOTP, base + 25.1)).toBeCloseTo(base + 30, 9); // 4.9 s left
    expect(readTime(TOTP, base)).toBe(base); // a fresh period: 30 s left
    expect(readTime(TOTP, base + 29.999)).toBeCloseTo(base + 30, 9);
  });

  it('uses the credential period (60 s) and leaves HOTP alone', () => {
    const base60 = base - (base % 60);
    expect(readTime(BANK60, base60 + 55)).toBe(base60 + 55);
    expect(readTime(BANK60, base60 + 55.1)).toBeCloseTo(base60 + 60, 9);
    expect(readTime(HOTP, base + 29)).toBe(base + 29);
  });

  it('the read effect carries that time, and the toast counts from the next period', () => {
    const a = reduce(readyState(), read(1, TOTP.id, 'k1', base + 25.1), SETTINGS);
    const time = (a.effects[0] as Extract<Effect, { type: 'read' }>).time;
    expect(time).toBeCloseTo(base + 30, 9);
    const b = reduce(readyState(), read(1, TOTP.id, 'k1', base + 25), SETTINGS);
    expect((b.effects[0] as Extract<Effect, { type: 'read' }>).time).toBe(base + 25);
    const { effects } = run(
      [{ type: 'read-succeeded', requestId: 1, code: { code: '1', digits: 6, validFrom: base + 30, validTo: base + 60 }, now: base + 25.2 }, { type: 'copy-finished', requestId: 1, now: base + 25.2 }],
      SETTINGS,
      a.state,
    );
    expect(toasts(effects)).toEqual(['Code copied, valid for 34 s']);
  });
});

describe('platform facts', () => {
  it('autostart, shortcut and tray host are kept for the menu', () => {
    const { state } = run([
      { type: 'autostart-changed', enabled: true },
      { type: 'shortcut-changed', status: 'unavailable' },
      { type: 'tray-host', status: 'no-host' },
    ]);
    expect(state).toMatchObject({ autostart: true, shortcut: 'unavailable', trayHost: 'no-host' });
  });

  it('groupCode groups 6 and 8 digits for reading aloud', () => {
    expect(groupCode('123456')).toBe('123 456');
    expect(groupCode('12345678')).toBe('1234 5678');
    expect(groupCode('1234567')).toBe('1234567');
  });
});

describe('the toasts that do not come from a key', () => {
  const OFF = { ...SETTINGS, notifications: false };
  const ERROR = { code: 'UNSUPPORTED', message: 'Wayland without the GlobalShortcuts portal.', hint: 'This desktop offers no global shortcuts to programs.' } as const;

  function notices(effects: Effect[]): { slot: string | undefined; title: string; body: string }[] {
    return effects.flatMap((e) => (e.type === 'notify' ? [{ slot: e.slot, title: e.notification.title, body: e.notification.body }] : []));
  }
  function logs(effects: Effect[]): string[] {
    return effects.flatMap((e) => (e.type === 'log' ? [`${e.level} ${e.message}`] : []));
  }

  it('the shortcut reads the only account, or says why it cannot', () => {
    const one = reduce(readyState([TOTP]), { type: 'shortcut-pressed', requestId: 7, now: NOW }, SETTINGS);
    expect(one.effects[0]).toMatchObject({ type: 'read', requestId: 7, keyId: 'k1', credential: { id: TOTP.id } });
    expect(one.state.pending).toMatchObject({ requestId: 7, source: 'shortcut' });

    const several = reduce(readyState(), { type: 'shortcut-pressed', requestId: 8, now: NOW }, SETTINGS);
    expect(several.state.pending).toBeUndefined();
    expect(notices(several.effects)).toEqual([
      { slot: 'read', title: '3 accounts: which one should the shortcut read?', body: 'Choose one under "Default account for the shortcut" in the keytap menu.' },
    ]);

    const none = reduce(INITIAL_STATE, { type: 'shortcut-pressed', requestId: 9, now: NOW }, SETTINGS);
    expect(toasts(none.effects)).toEqual(['No key is connected.']);
    const empty = reduce(readyState([]), { type: 'shortcut-pressed', requestId: 9, now: NOW }, SETTINGS);
    expect(toasts(empty.effects)).toEqual(['No account to read.']);
    expect(reduce(readyState(), { type: 'shortcut-pressed', requestId: 9, now: NOW }, OFF).effects).toEqual([]);
  });

  it('the shortcut reads the default account by serial or id, and says so when its key is away', () => {
    const bySerial = reduce(readyState(), { type: 'shortcut-pressed', requestId: 1, defaultAccount: { keyId: '1234ABCD', credentialId: HOTP.id }, now: NOW }, SETTINGS);
    expect(bySerial.effects[0]).toMatchObject({ type: 'read', credential: { id: HOTP.id } });
    const byId = reduce(readyState(), { type: 'shortcut-pressed', requestId: 1, defaultAccount: { keyId: 'k1', credentialId: TOTP.id }, now: NOW }, SETTINGS);
    expect(byId.effects[0]).toMatchObject({ type: 'read', credential: { id: TOTP.id } });
    const away = reduce(readyState(), { type: 'shortcut-pressed', requestId: 1, defaultAccount: { keyId: 'OTHER', credentialId: 'X:y' }, now: NOW }, SETTINGS);
    expect(away.state.pending).toBeUndefined();
    expect(toasts(away.effects)).toEqual(['The default account X:y is not on a connected key.']);
  });

  it('a shortcut that cannot be registered: a warning and one toast with the hint, said once', () => {
    const failed = reduce(INITIAL_STATE, { type: 'shortcut-changed', status: 'unavailable', accelerator: 'Ctrl+Alt+K', backend: 'portal', error: ERROR }, SETTINGS);
    expect(failed.state.shortcut).toBe('unavailable');
    expect(notices(failed.effects)).toEqual([{ slot: 'app', title: 'Shortcut Ctrl+Alt+K is not available here', body: 'This desktop offers no global shortcuts to programs.' }]);
    expect(logs(failed.effects)).toEqual([`warn the global shortcut Ctrl+Alt+K is not available (portal): ${ERROR.message} ${ERROR.hint}`]);
    const noHint = reduce(INITIAL_STATE, { type: 'shortcut-changed', status: 'unavailable', accelerator: 'Ctrl+Alt+K', error: { code: 'UNSUPPORTED', message: 'No portal.' } }, SETTINGS);
    expect(notices(noHint.effects).map((n) => n.body)).toEqual(['Bind the command "keytap code" to a key in your desktop\'s keyboard settings: it asks this keytap for the code.']);
    const registered = reduce(INITIAL_STATE, { type: 'shortcut-changed', status: 'registered', accelerator: 'Ctrl+Alt+K', backend: 'portal' }, SETTINGS);
    expect(registered.effects).toEqual([{ type: 'log', level: 'info', message: 'global shortcut Ctrl+Alt+K registered (portal)' }]);
  });

  it("where the desktop binds shortcuts itself: its lines instead of the hint, once per run; another shortcut is said again", () => {
    const sway = { desktop: 'sway', where: '~/.config/sway/config', lines: ['bindsym Ctrl+Mod1+k exec /usr/bin/keytap code', 'bindsym Ctrl+Mod1+Shift+k exec /usr/bin/keytap code --type'], commands: [{ accelerator: 'Ctrl+Alt+K', command: '/usr/bin/keytap code' }, { accelerator: 'Ctrl+Alt+Shift+K', command: '/usr/bin/keytap code --type' }] };
    const event = { type: 'shortcut-changed', status: 'unavailable', accelerator: 'Ctrl+Alt+K', backend: 'xdg-desktop-portal', error: ERROR, binding: sway } as const;
    const first = reduce(INITIAL_STATE, event, SETTINGS);
    const body = 'Add to ~/.config/sway/config (sway), then reload it:\nbindsym Ctrl+Mod1+k exec /usr/bin/keytap code\nbindsym Ctrl+Mod1+Shift+k exec /usr/bin/keytap code --type';
    expect(notices(first.effects)).toEqual([{ slot: 'app', title: 'Shortcut Ctrl+Alt+K is not available here', body }]);
    expect(logs(first.effects)).toEqual([
      `warn the global shortcut Ctrl+Alt+K is not available (xdg-desktop-portal): ${ERROR.message} Add to ~/.config/sway/config (sway), then reload it: bindsym Ctrl+Mod1+k exec /usr/bin/keytap code; bindsym Ctrl+Mod1+Shift+k exec /usr/bin/keytap code --type`,
    ]);
    const again = reduce(first.state, event, SETTINGS);
    expect(again.effects).toEqual([]);
    expect(again.state.shortcut).toBe('unavailable');
    const other = { ...sway, lines: ['bindsym Mod4+F5 exec /usr/bin/keytap code'] };
    const changed = reduce(again.state, { ...event, accelerator: 'Super+F5', binding: other }, SETTINGS);
    expect(notices(changed.effects).map((n) => n.body)).toEqual(['Add to ~/.config/sway/config (sway), then reload it:\nbindsym Mod4+F5 exec /usr/bin/keytap code']);

    const registered = reduce(changed.state, { type: 'shortcut-changed', status: 'registered', accelerator: 'Super+F5', backend: 'xdg-desktop-portal' }, SETTINGS);
    expect(notices(reduce(registered.state, { ...event, accelerator: 'Super+F5', binding: other }, SETTINGS).effects)).toHaveLength(1);

    const gnome = { desktop: 'GNOME', where: 'Settings → Keyboard → View and Customize Shortcuts → Custom Shortcuts', lines: [], commands: [{ accelerator: 'Ctrl+Alt+K', command: 'keytap code' }, { accelerator: 'Ctrl+Alt+Shift+K', command: 'keytap code --type' }] };
    const onGnome = reduce(INITIAL_STATE, { ...event, binding: gnome }, SETTINGS);
    expect(notices(onGnome.effects).map((n) => n.body)).toEqual([
      'Add custom shortcuts in Settings → Keyboard → View and Customize Shortcuts → Custom Shortcuts (GNOME):\nCtrl+Alt+K: keytap code\nCtrl+Alt+Shift+K: keytap code --type',
    ]);
  });

  it('no tray host: one warning and, the first time only, a toast; the host back is logged', () => {
    const first = reduce(INITIAL_STATE, { type: 'tray-host', status: 'no-host', backend: 'sni' }, SETTINGS);
    expect(toasts(first.effects)).toEqual(['No system tray found']);
    expect(logs(first.effects)).toHaveLength(1);
    expect(logs(first.effects)[0]).toMatch(/^warn no tray host \(sni\)/u);
    expect(reduce(first.state, { type: 'tray-host', status: 'no-host', backend: 'sni' }, SETTINGS).effects).toEqual([]);
    const back = reduce(first.state, { type: 'tray-host', status: 'shown', backend: 'sni' }, SETTINGS);
    expect(back.effects).toEqual([{ type: 'log', level: 'info', message: 'the tray host is back; the icon is shown again' }]);
    const lostAgain = reduce(back.state, { type: 'tray-host', status: 'no-host', backend: 'sni' }, SETTINGS);
    expect(toasts(lostAgain.effects)).toEqual([]);
    expect(logs(lostAgain.effects)).toHaveLength(1);
  });

  it('a tray that cannot start, autostart failing, the settings file not opening, About', () => {
    const tray = reduce(INITIAL_STATE, { type: 'tray-failed', backend: 'sni', error: { code: 'UNSUPPORTED', message: 'No tray here.', hint: 'Install a tray.' } }, SETTINGS);
    expect(notices(tray.effects)).toEqual([{ slot: 'app', title: 'keytap has no tray icon', body: 'No tray here.\nInstall a tray.\nkeytap keeps running: bind "keytap code" to a shortcut.' }]);
    expect(logs(tray.effects)[0]).toMatch(/^error the tray could not start \(sni\): No tray here\. Install a tray\./u);

    const autostart = reduce(INITIAL_STATE, { type: 'autostart-failed', backend: 'xdg', error: { code: 'BAD_INPUT', message: 'Read-only folder.' } }, SETTINGS);
    expect(notices(autostart.effects)).toEqual([{ slot: 'app', title: 'Could not change "Start at login"', body: 'Read-only folder.' }]);

    const open = reduce(INITIAL_STATE, { type: 'settings-open-failed', path: '/cfg/config.json', error: { code: 'UNSUPPORTED', message: 'xdg-open failed' } }, SETTINGS);
    expect(notices(open.effects)).toEqual([{ slot: 'app', title: 'Could not open the settings file', body: 'xdg-open failed\nOpen /cfg/config.json in a text editor.' }]);
    expect(logs(open.effects)).toEqual(['warn opening /cfg/config.json failed: xdg-open failed']);

    const about = reduce(INITIAL_STATE, { type: 'about-requested', version: '1.2.3', settingsPath: '/cfg/config.json' }, SETTINGS);
    expect(notices(about.effects)).toEqual([
      { slot: 'app', title: 'keytap 1.2.3', body: 'Reads OATH codes from USB security keys into the clipboard.\nSettings: /cfg/config.json\nRun "keytap doctor" if something does not work.' },
    ]);
    expect(toasts(reduce(INITIAL_STATE, { type: 'about-requested', settingsPath: '/c' }, SETTINGS).effects)).toEqual(['keytap']);
  });

  it('with toasts off these are only logged; an invalid settings file is shown anyway, in no slot', () => {
    const events: AppEvent[] = [
      { type: 'tray-failed', backend: 'sni', error: { code: 'UNSUPPORTED', message: 'No tray here.' } },
      { type: 'tray-host', status: 'no-host' },
      { type: 'shortcut-changed', status: 'unavailable', accelerator: 'Ctrl+Alt+K', error: ERROR },
      { type: 'autostart-failed', backend: 'xdg', error: { code: 'BAD_INPUT', message: 'Read-only folder.' } },
      { type: 'settings-open-failed', path: '/c', error: { code: 'UNSUPPORTED', message: 'x' } },
      { type: 'about-requested', settingsPath: '/c' },
    ];
    const { effects } = run(events, OFF);
    expect(toasts(effects)).toEqual([]);
    expect(logs(effects)).toHaveLength(5);

    const problem = reduce(INITIAL_STATE, { type: 'config-problem', error: { code: 'BAD_INPUT', message: '/c/config.json is not valid JSON.', hint: 'Fix it or delete it.' } }, OFF);
    expect(notices(problem.effects)).toEqual([{ slot: undefined, title: 'keytap: settings file invalid', body: '/c/config.json is not valid JSON.\nFix it or delete it.' }]);
    expect(logs(problem.effects)).toEqual(['error /c/config.json is not valid JSON. Fix it or delete it.']);
  });
});

describe('the tray tells states apart (issue 9, item 22)', () => {
  function logs(effects: Effect[]): string[] {
    return effects.flatMap((e) => (e.type === 'log' ? [`${e.level} ${e.message}`] : []));
  }
  function notifications(effects: Effect[]): Extract<Effect, { type: 'notify' }>['notification'][] {
    return effects.flatMap((e) => (e.type === 'notify' ? [e.notification] : []));
  }

  it('"Touch your key" is a normal prompt that stays until it is answered, not an error', () => {
    const prompt = notifications(reduce(readyState(), read(1, TOUCH.id), SETTINGS).effects)[0]!;
    expect(prompt).toMatchObject({ title: 'Touch your key', urgency: 'normal', sticky: true, icon: 'touch' });
    expect(prompt.timeoutMs).toBeUndefined();
    // The same when the touch is asked for only later (HOTP).
    const later = reduce(reduce(readyState(), read(1, HOTP.id), SETTINGS).state, { type: 'touch-needed', requestId: 1 }, SETTINGS);
    expect(notifications(later.effects)[0]).toMatchObject({ urgency: 'normal', sticky: true, icon: 'touch' });
  });

  it('every toast carries the icon of its state', () => {
    const connected = run([added('k1'), loaded('k1', [TOTP], 'AB12')]);
    expect(notifications(connected.effects)[0]?.icon).toBe('key');
    const failedKey = run([added('k1'), { type: 'key-failed', keyId: 'k1', error: { code: 'PERMISSION_DENIED', message: 'No access.' } }]);
    expect(notifications(failedKey.effects)[0]?.icon).toBe('error');
    const a = reduce(readyState(), read(1), SETTINGS);
    const code = { code: '123456', digits: 6, validFrom: NOW - 10, validTo: NOW + 20 };
    const b = reduce(a.state, { type: 'read-succeeded', requestId: 1, code, now: NOW }, SETTINGS);
    const copied = reduce(b.state, { type: 'copy-finished', requestId: 1, now: NOW }, SETTINGS);
    expect(notifications(copied.effects)[0]?.icon).toBe('key');
    const timedOut = reduce(reduce(readyState(), read(1, TOUCH.id), SETTINGS).state, { type: 'touch-timed-out', requestId: 1, now: NOW + 30 }, SETTINGS);
    expect(notifications(timedOut.effects)[0]).toMatchObject({ icon: 'error' });
    const open = reduce(INITIAL_STATE, { type: 'settings-open-failed', path: '/cfg/config.json', error: { code: 'UNSUPPORTED', message: 'No application opens JSON files.' } }, SETTINGS);
    expect(notifications(open.effects)[0]).toMatchObject({ icon: 'error' });
  });

  it('a deliberate Cancel is not an error: no error badge, no error tooltip, a calm toast', () => {
    const pending = reduce(readyState(), read(1, TOUCH.id), SETTINGS).state;
    const cancelled = reduce(pending, { type: 'read-cancelled', requestId: 1, reason: { code: 'CANCELLED', message: 'Reading GitHub:alice was cancelled.' }, now: NOW }, SETTINGS);
    expect(iconFor(cancelled.state)).toBe('key');
    expect(tooltipFor(cancelled.state)).toBe('keytap: Nitrokey 3, 3 accounts');
    expect(notifications(cancelled.effects)[0]).toMatchObject({ title: 'Reading GitHub:alice was cancelled.', icon: 'key', urgency: 'low' });
    // A real failure still shows the badge.
    const timedOut = reduce(pending, { type: 'touch-timed-out', requestId: 1, now: NOW + 30 }, SETTINGS);
    expect(iconFor(timedOut.state)).toBe('error');
  });

  it('without a session bus: one line that says what is missing, no GNOME advice, nothing again', () => {
    const reason = 'no session bus (DBUS_SESSION_BUS_ADDRESS is not set)';
    const first = reduce(INITIAL_STATE, { type: 'tray-host', status: 'no-bus', backend: 'StatusNotifierItem', reason }, SETTINGS);
    expect(logs(first.effects)).toHaveLength(1);
    expect(logs(first.effects)[0]).toMatch(/^warn no session bus \(DBUS_SESSION_BUS_ADDRESS is not set\): /u);
    expect(logs(first.effects)[0]).toContain('no tray icon and no toasts');
    expect(logs(first.effects)[0]).not.toMatch(/GNOME|AppIndicator/u);
    expect(first.effects.filter((e) => e.type === 'notify')).toEqual([]);
    expect(reduce(first.state, { type: 'tray-host', status: 'no-bus', backend: 'StatusNotifierItem', reason }, SETTINGS).effects).toEqual([]);
  });

  it('logs the events the README promises: key added and removed, code copied (never the code)', () => {
    const addedKey = run([added('k1'), loaded('k1', [TOTP], 'AB12')]);
    expect(logs(addedKey.effects)).toEqual(['info key added: Nitrokey 3 (k1)', 'info Nitrokey 3 (AB12): 1 account']);
    const a = reduce(addedKey.state, read(1), SETTINGS);
    const code = { code: '123456', digits: 6, validFrom: NOW - 10, validTo: NOW + 20 };
    const b = reduce(a.state, { type: 'read-succeeded', requestId: 1, code, now: NOW }, SETTINGS);
    const copied = reduce(b.state, { type: 'copy-finished', requestId: 1, now: NOW }, SETTINGS);
    expect(logs(copied.effects)).toEqual(['info copied the code of Demo:alice (Nitrokey 3) to the clipboard, valid for 20 s; clearing it in 20 s']);
    expect(JSON.stringify(copied.effects)).not.toContain('123456');
    const removed = reduce(copied.state, { type: 'key-removed', keyId: 'k1', now: NOW }, SETTINGS);
    expect(logs(removed.effects)).toEqual(['info key removed: Nitrokey 3 (AB12)']);
  });
});

describe('typing the code', () => {
  const code = { code: '654321', digits: 6, validFrom: NOW - 10, validTo: NOW + 20 };
  const typing = { ...SETTINGS, deliver: 'type' as const };

  it('type: a type effect instead of the copy; "Code typed"; the code never in the state', () => {
    const a = run([read(1), { type: 'read-succeeded', requestId: 1, code, now: NOW }], typing, readyState());
    expect(a.last.at(-1)).toEqual({ type: 'type', requestId: 1, text: '654321' });
    expect(a.effects.some((e) => e.type === 'copy')).toBe(false);
    expect(JSON.stringify(a.state)).not.toContain('654321');
    const b = reduce(a.state, { type: 'type-finished', requestId: 1, now: NOW + 1, code: '654321' }, typing);
    expect(b.state.pending).toBeUndefined();
    expect(b.effects).toContainEqual(expect.objectContaining({ type: 'notify', notification: expect.objectContaining({ title: 'Code typed, valid for 19 s' }) }));
    expect(b.effects.at(-1)).toEqual({ type: 'delivered', requestId: 1, copied: false, typed: true });
    expect(JSON.stringify(b.state)).not.toContain('654321');
    // A typed code is a use of the account as much as a copied one: it heads "Recent".
    expect(b.state.recent?.[0]?.credentialId).toBe(a.state.keys[0]!.credentials[0]!.id);
    expect(b.effects.filter((e) => e.type === 'save-recent')).toHaveLength(1);
  });

  it('a per-account choice beats the global one; the caller\'s beats both', () => {
    const own = { ...SETTINGS, deliverFor: [{ keyId: '1234ABCD', credentialId: TOTP.id, deliver: 'both' as const }] };
    expect(reduce(readyState(), read(1), own).state.pending?.deliver).toBe('both');
    expect(reduce(readyState(), read(1, TOUCH.id), own).state.pending?.deliver).toBe('copy');
    expect(reduce(readyState(), { ...(read(1) as Extract<AppEvent, { type: 'read-requested' }>), deliver: 'copy' }, own).state.pending?.deliver).toBe('copy');
  });

  it('typing that fails: the copy follows, and the copied toast says why', () => {
    const error = { code: 'UNSUPPORTED' as const, message: 'Nothing here can type the code.', hint: 'Paste it.' };
    const a = run([read(1), { type: 'read-succeeded', requestId: 1, code, now: NOW }, { type: 'type-finished', requestId: 1, now: NOW, error, code: '654321' }], typing, readyState());
    expect(a.last).toContainEqual({ type: 'copy', requestId: 1, text: '654321', clearAfterSeconds: 20 });
    const b = reduce(a.state, { type: 'copy-finished', requestId: 1, now: NOW }, typing);
    const toast = b.effects.find((e) => e.type === 'notify') as Extract<Effect, { type: 'notify' }>;
    expect(toast.notification.title).toBe('Code copied, not typed, valid for 20 s');
    expect(toast.notification.body).toContain('Nothing here can type the code.');
    expect(b.effects.at(-1)).toMatchObject({ type: 'delivered', copied: true, typed: false, typeError: error });
    expect(b.state.typingProblem).toBe(error.message);
  });
});

describe('a touch for a listing', () => {
  it('key-touch-needed shows "Touch your key" in the key slot; the listing that follows closes it', () => {
    const first = run([added('k1')], SETTINGS);
    const touch = reduce(first.state, { type: 'key-touch-needed', keyId: 'k1' }, SETTINGS);
    expect(touch.effects).toEqual([
      { type: 'notify', slot: 'key', notification: expect.objectContaining({ title: 'Touch your key', body: expect.stringContaining('PIN-protected accounts'), icon: 'touch', sticky: true }) as unknown },
    ]);
    const done = reduce(touch.state, { type: 'key-loaded', keyId: 'k1', locked: false, credentials: [TOTP], quiet: true }, SETTINGS);
    expect(done.effects).toContainEqual({ type: 'close-toast', slot: 'key' });
    // Once closed, a later listing closes nothing.
    expect(reduce(done.state, { type: 'key-loaded', keyId: 'k1', locked: false, credentials: [TOTP], quiet: true }, SETTINGS).effects).toEqual([]);
  });
});
