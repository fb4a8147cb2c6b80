/**
 * The resident process as a pure state machine: `reduce(state, event, settings)` returns the next
 * state and the effects the controller must run (open a key and read, copy, show a toast, cancel).
 * Every toast the resident process shows is decided here, from an event; the controller only runs
 * the `notify` effects.
 * No I/O, no clock, no timers here: events carry the time, effects name the timers. The code a key
 * returns passes through the `done` and `copy` effects only; it is never kept in the state, so
 * logging or rendering the state cannot leak it. Typing is the same: the code goes out in the
 * `type` effect and comes back in `type-finished` only for the copy that may follow.
 */
import type { Dialect } from '../device/oath/dialect.js';
import type { KeyCredential, OathCode } from '../device/oath/session.js';
import type { ErrorCode, ErrorDetail } from '../errors.js';
import type { Notification } from '../notify/types.js';
import type { DesktopBinding } from '../desktop/platform.js';
import type { TrayHostStatus } from '../tray/model.js';
import type { AccountDeliver, DefaultAccount, Deliver } from './config.js';
import { TRAY_LOCKED_HINT, explainDesktopBinding, explainDesktopBindingInline } from './explain.js';
import { accountLabelOf } from './account-label.js';

export type KeyStatus = 'loading' | 'ready' | 'locked' | 'error';
export type KeySourceKind = 'hid' | 'virtual' | 'pcsc';

/** An error as the state keeps it: what happened and what to do. */
export interface StateError {
  code: ErrorCode;
  message: string;
  hint?: string | undefined;
  /** The lower layer's structured detail, kept so an IPC caller can word the error for its own command. */
  detail?: ErrorDetail | undefined;
}

export interface KeyState {
  /** The discovery id (HID path, `virtual:<id>`): what `removed` refers to. */
  id: string;
  name: string;
  /** From SELECT, once the key was opened. */
  serial?: string | undefined;
  kind: KeySourceKind;
  /** What the key answers like, where discovery tells (a virtual key's model). */
  dialect?: Dialect | undefined;
  status: KeyStatus;
  /**
   * A locked key opened with a secret: 'held' in memory since "Unlock…" (until unplugged),
   * 'remembered' in the OS keyring. `canRemember`: a keyring is there to remember it in.
   */
  secret?: 'held' | 'remembered' | undefined;
  canRemember?: boolean | undefined;
  /** Nitrokey 3: a PIN is set and not given yet, so its PIN-protected accounts are not listed. */
  pinLocked?: boolean | undefined;
  /** A "Touch your key" toast for this key's listing is up (the VERIFY PIN of a remembered PIN): closed when the listing ends. */
  touchPrompted?: boolean | undefined;
  /** For `locked` and `error`: what happened and what to do. */
  error?: StateError | undefined;
  credentials: KeyCredential[];
}

export type ReadSource = 'menu' | 'shortcut' | 'ipc';
/** 'copying': the code is read and being delivered (copied, typed, or both). */
export type ReadPhase = 'reading' | 'touch' | 'copying';

export interface PendingRead {
  requestId: number;
  keyId: string;
  /** The key's accountKeyRef when the read was asked for: what "Recent" records should the key go away meanwhile. */
  keyRef: string;
  credentialId: string;
  source: ReadSource;
  phase: ReadPhase;
  /** Seconds since the epoch the code is computed for. */
  time: number;
  /** Set once read: the validity window of the code (not the code). */
  validTo?: number | undefined;
  /** Where the code goes once read. */
  deliver: Deliver;
  /** Set once typing was tried: whether it worked, and why not. */
  typed?: boolean | undefined;
  typeError?: StateError | undefined;
}

export type ReadResult =
  | { ok: true; keyId: string; credentialId: string; at: number; validTo?: number | undefined }
  | { ok: false; keyId: string; credentialId: string; at: number; error: StateError };

export type ShortcutStatus = 'off' | 'registered' | 'unavailable';

/** An account read lately: its key by accountKeyRef (the serial where known, so it outlives a re-plug) and its credential id. Names only. */
export interface RecentAccount {
  keyId: string;
  credentialId: string;
}

/** How many recently read accounts are kept (and shown under "Recent"): enough for the few used daily. */
export const RECENT_MAX = 5;

export interface AppState {
  keys: KeyState[];
  pending?: PendingRead | undefined;
  last?: ReadResult | undefined;
  /** Facts the menu shows that come from the platform. */
  autostart?: boolean | undefined;
  shortcut: ShortcutStatus;
  /** The last "shortcut not available" advice given, so the same is not said twice. */
  shortcutAdvice?: string | undefined;
  /** Whether the type shortcut is registered with the first one (false: it was dropped, the first kept). */
  typeShortcutRegistered?: boolean | undefined;
  /** The accounts read lately, the latest first (persisted by the controller). */
  recent?: RecentAccount[] | undefined;
  /** The tray host went away (only toasts and IPC reach the user then). */
  /** no-bus: there is no D-Bus session bus at all (so no tray host and no toasts either). */
  trayHost: TrayHostStatus | 'unknown';
  /** The typing failure the user was last told about (a fallback to copying says why once). */
  typingProblem?: string | undefined;
  /** The key an "Add account from QR code on screen…" is under way for (the menu offers to cancel it). */
  addingFromQr?: string | undefined;
}

export const INITIAL_STATE: AppState = Object.freeze({ keys: [], shortcut: 'off', trayHost: 'unknown' });

/** The part of the configuration the state machine reads. */
export interface StateSettings {
  notifications: boolean;
  notifyOnConnect: boolean;
  showCodeInNotification: boolean;
  touchTimeoutSeconds: number;
  clipboardClearSeconds: number;
  /** Default 'copy'. */
  deliver?: Deliver | undefined;
  deliverFor?: readonly AccountDeliver[] | undefined;
}

export interface KeyInfo {
  id: string;
  name: string;
  kind: KeySourceKind;
  serial?: string | undefined;
  dialect?: Dialect | undefined;
}

export type AppEvent =
  | { type: 'key-added'; key: KeyInfo }
  /** The recently read accounts saved by an earlier run. */
  | { type: 'recent-loaded'; recent: RecentAccount[] }
  | {
      type: 'key-loaded';
      keyId: string;
      serial?: string | undefined;
      locked: boolean;
      credentials: KeyCredential[];
      quiet?: boolean | undefined;
      secret?: 'held' | 'remembered' | undefined;
      canRemember?: boolean | undefined;
      pinLocked?: boolean | undefined;
    }
  /** Unlocking (the prompt, the keyring) failed; a cancelled prompt is no failure to show. */
  | { type: 'unlock-failed'; keyId: string; error: StateError }
  /** Listing the key waits for a touch nobody clicked for: the VERIFY PIN of the remembered Nitrokey 3 PIN. */
  | { type: 'key-touch-needed'; keyId: string }
  /** The access key remembered for the key did not open it: it was forgotten. */
  | { type: 'remembered-wrong'; keyId: string; what?: 'password' | 'PIN' | undefined }
  /** Remember/Forget on this computer finished (or failed: `error`). */
  | { type: 'secret-changed'; keyId: string; secret: 'held' | 'remembered'; error?: StateError | undefined }
  | { type: 'key-failed'; keyId: string; error: StateError }
  | { type: 'key-removed'; keyId: string; now: number }
  | { type: 'key-retry'; keyId: string }
  /** `deliver`: where the code goes, when the caller decides (else the account's setting). */
  | { type: 'read-requested'; requestId: number; keyId: string; credentialId: string; source: ReadSource; now: number; deliver?: Deliver | undefined }
  | { type: 'touch-needed'; requestId: number }
  | { type: 'touch-timed-out'; requestId: number; now: number }
  | { type: 'read-succeeded'; requestId: number; code: OathCode; now: number }
  | { type: 'read-failed'; requestId: number; error: StateError; now: number }
  | { type: 'read-cancelled'; requestId: number; reason: StateError; now: number }
  /** `code` travels back only so the toast can show it when the user turned that on; it is not kept. */
  | { type: 'copy-finished'; requestId: number; now: number; error?: StateError | undefined; code?: string | undefined }
  /** Typing the code into the focused window ended (`error`: why it did not). */
  | { type: 'type-finished'; requestId: number; now: number; error?: StateError | undefined; code?: string | undefined }
  | { type: 'autostart-changed'; enabled: boolean | undefined }
  /** Turning "Start at login" on or off failed (`backend`: the adapter's name). */
  | { type: 'autostart-failed'; backend: string; error: StateError }
  /** The global shortcut was registered, or could not be (then `error` says why). */
  | {
      type: 'shortcut-changed';
      status: ShortcutStatus;
      accelerator?: string | undefined;
      backend?: string | undefined;
      error?: StateError | undefined;
      typeShortcut?: boolean | undefined;
      /** Unavailable: how to bind the shortcuts in this desktop instead, when keytap knows it. */
      binding?: DesktopBinding | undefined;
    }
  /**
   * The global shortcut was pressed: read the account the focused window calls for (`window`: what
   * window-rules.ts found, and why, never the title), else the default account, or the only one.
   */
  | {
      type: 'shortcut-pressed';
      requestId: number;
      defaultAccount?: DefaultAccount | undefined;
      now: number;
      deliver?: Deliver | undefined;
      window?: { accounts: { keyId: string; credentialId: string }[]; why: string } | undefined;
    }
  | { type: 'tray-host'; status: TrayHostStatus; backend?: string | undefined; reason?: string | undefined }
  /** The tray backend could not start at all. */
  | { type: 'tray-failed'; backend: string; error: StateError }
  /** The settings file is invalid (shown even with toasts off: that file may be what turned them off). */
  | { type: 'config-problem'; error: StateError }
  /** "Settings" in the menu: opening the file failed. */
  | { type: 'settings-open-failed'; path: string; error: StateError }
  /** "About" in the menu. */
  | { type: 'about-requested'; version?: string | undefined; settingsPath: string }
  /** The tray host left showing a menu to keytap (it cannot show one) and keytap could not offer the accounts: no finder installed, or nothing to offer. */
  | { type: 'menu-not-shown'; reason: 'no-finder' | 'no-key' | 'no-accounts' }
  /** The finder opened for such a host failed (not a cancel). */
  | { type: 'finder-failed'; finder: string; error: StateError }
  /** "Use for this window…": window rule `rule` (its number in the settings) now reads this account. */
  | { type: 'window-rule-added'; credentialId: string; rule: number; app?: string | undefined }
  /** "Add account from QR code on screen…" was clicked: the screen is being captured and searched. */
  | { type: 'qr-add-started'; keyId: string }
  /** "Add account from QR code on screen…": the account (its label, never its secret) went on the key. */
  | { type: 'qr-account-added'; keyId: string; label: string }
  /** "Add account from QR code on screen…" failed: nothing was added. */
  | { type: 'qr-account-failed'; keyId: string; error: StateError };


/** Toasts are kept in slots: a new toast in a slot replaces the one shown there. */
export type ToastSlot = 'read' | 'key' | 'app';

export type Effect =
  /** Open the key, LIST its credentials, close it; answer with key-loaded or key-failed. */
  | { type: 'load'; keyId: string }
  /** Open the key, CALCULATE for `time`, close it; answer with touch-needed, read-succeeded/failed. */
  | { type: 'read'; requestId: number; keyId: string; credential: KeyCredential; time: number }
  /** Abort the read in flight with this reason. */
  | { type: 'cancel'; requestId: number; reason: StateError }
  /** Fire touch-timed-out for this request after `ms`, unless the read ends first. */
  | { type: 'touch-timer'; requestId: number; ms: number }
  /** Copy (marked sensitive) and have it cleared after `clearAfterSeconds` (0: never) if unchanged; answer with copy-finished. */
  | { type: 'copy'; requestId: number; text: string; clearAfterSeconds: number }
  /** Type the code into the focused window; answer with type-finished. */
  | { type: 'type'; requestId: number; text: string }
  /** The code went where it was to go (or not): the IPC callers waiting for it learn how it went. */
  | { type: 'delivered'; requestId: number; copied: boolean; copyError?: StateError | undefined; typed: boolean; typeError?: StateError | undefined }
  /** The request is over: answer whoever asked (an IPC client). */
  | { type: 'done'; requestId: number; result: { ok: true; credentialId: string; code: OathCode } | { ok: false; error: StateError } }
  /** Show a toast in `slot` (replacing the one there); without a slot, a toast of its own. */
  | { type: 'notify'; slot?: ToastSlot | undefined; notification: Notification }
  | { type: 'close-toast'; slot: ToastSlot }
  /** The recent list changed: save it (names only). */
  | { type: 'save-recent'; recent: RecentAccount[] }
  /** A line for the log (never a code). */
  | { type: 'log'; level: 'info' | 'warn' | 'error'; message: string };

export interface Transition {
  state: AppState;
  effects: Effect[];
}

/** Less than this many seconds left in the period: read the next period's code instead. */
export const NEXT_PERIOD_THRESHOLD_SECONDS = 5;

/**
 * The time to compute a TOTP code for: now, or the start of the next period when less than 5 s of
 * this one remain (a code that expires while being typed is useless). HOTP has no period.
 */
export function readTime(credential: Pick<KeyCredential, 'type' | 'period'>, now: number): number {
  if (credential.type !== 'TOTP') return now;
  const remaining = credential.period - (now % credential.period);
  return remaining < NEXT_PERIOD_THRESHOLD_SECONDS ? now + remaining : now;
}

/** The key reference saved with a default account: the serial survives re-plugging, a HID path does not. */
export function accountKeyRef(key: Pick<KeyState, 'id' | 'serial'>): string {
  return key.serial ?? key.id;
}

export function findKey(state: AppState, keyId: string): KeyState | undefined {
  return state.keys.find((k) => k.id === keyId);
}

export function reduce(state: AppState, event: AppEvent, settings: StateSettings): Transition {
  switch (event.type) {
    case 'recent-loaded': {
      // Keys already here name their entries by their stable ref from the start.
      const recent = state.keys.reduce((list, key) => recentByRef(list, key), uniqueRecent(event.recent));
      return { state: { ...state, recent }, effects: [] };
    }

    case 'key-added': {
      const key: KeyState = { id: event.key.id, name: event.key.name, kind: event.key.kind, serial: event.key.serial, dialect: event.key.dialect, status: 'loading', credentials: [] };
      const keys = [...state.keys.filter((k) => k.id !== key.id), key];
      // A failed result belongs to the situation before this key came.
      const last = state.last?.ok === false ? undefined : state.last;
      return { state: { ...state, keys, last }, effects: [{ type: 'load', keyId: key.id }, log('info', `key added: ${key.name} (${key.id})`)] };
    }

    case 'key-retry': {
      const key = findKey(state, event.keyId);
      if (!key || key.status === 'loading') return unchanged(state);
      return { state: updateKey(state, event.keyId, { status: 'loading', error: undefined }), effects: [{ type: 'load', keyId: event.keyId }] };
    }

    case 'key-loaded': {
      const key = findKey(state, event.keyId);
      if (!key) return unchanged(state); // unplugged while it was being listed
      const serial = event.serial ?? key.serial;
      if (event.locked) {
        if (key.status === 'locked' && event.quiet) return unchanged(state);
        const error: StateError = {
          code: 'AUTH_REQUIRED',
          message: `The OATH application on ${key.name} is password-protected.`,
          hint: TRAY_LOCKED_HINT,
        };
        const { state: renamed, effects: saveRenamed } = withRecentByRef(updateKey(state, key.id, { status: 'locked', serial, credentials: [], error }), { id: key.id, serial });
        return {
          state: renamed,
          effects: [...saveRenamed, ...toast(settings, 'key', { title: `${key.name} is locked`, body: error.hint ?? error.message, icon: 'error' }), log('warn', `${key.name}: ${error.message} ${error.hint ?? ''}`)],
        };
      }
      const wasReady = key.status === 'ready';
      const { state: next, effects } = withRecentByRef(
        updateKey(state, key.id, { status: 'ready', serial, credentials: event.credentials, error: undefined, secret: event.secret, canRemember: event.canRemember, pinLocked: event.pinLocked, touchPrompted: undefined }),
        { id: key.id, serial },
      );
      if (key.touchPrompted) effects.push({ type: 'close-toast', slot: 'key' });
      if (!wasReady && !event.quiet) effects.push(log('info', `${keyTitle({ ...key, serial })}: ${accountsCount(event.credentials.length)}`));
      if (!wasReady && !event.quiet && settings.notifyOnConnect) {
        effects.push(...toast(settings, 'key', { title: `${keyTitle({ ...key, serial })} connected`, body: accountsCount(event.credentials.length), urgency: 'low', icon: 'key' }));
      }
      return { state: next, effects };
    }

    case 'key-touch-needed': {
      const key = findKey(state, event.keyId);
      if (!key) return unchanged(state);
      return {
        state: updateKey(state, key.id, { touchPrompted: true }),
        effects: toast(settings, 'key', { title: 'Touch your key', body: `${keyModelName(key)}: to show its PIN-protected accounts with the remembered PIN`, urgency: 'normal', sticky: true, icon: 'touch' }),
      };
    }

    case 'unlock-failed': {
      const key = findKey(state, event.keyId);
      if (!key || isCancel(event.error)) return unchanged(state);
      return {
        state,
        effects: [...toast(settings, 'key', { title: `${key.name} was not unlocked: ${event.error.message}`, body: event.error.hint ?? '', urgency: 'normal', icon: 'error' }), log('warn', `${key.name}: unlocking failed: ${describe(event.error)}`)],
      };
    }

    case 'remembered-wrong': {
      const key = findKey(state, event.keyId);
      if (!key) return unchanged(state);
      const what = event.what ?? 'password';
      const body = `The ${what} was changed, or the key was reset. Choose "Unlock…" to give the ${what}.`;
      return {
        state,
        // The 'app' slot: the "is locked" toast that follows in the 'key' slot must not replace it.
        effects: [...toast(settings, 'app', { title: `The ${what} remembered for ${key.name} was wrong and is forgotten`, body, urgency: 'normal', icon: 'error' }), log('warn', `${key.name}: the remembered ${what === 'PIN' ? 'PIN' : 'access key'} was wrong; forgotten`)],
      };
    }

    case 'secret-changed': {
      const key = findKey(state, event.keyId);
      if (!key) return unchanged(state);
      if (event.error) {
        return {
          state,
          effects: [...toast(settings, 'key', { title: event.error.message, body: event.error.hint ?? '', urgency: 'normal', icon: 'error' }), log('warn', `${key.name}: ${describe(event.error)}`)],
        };
      }
      return { state: updateKey(state, key.id, { secret: event.secret }), effects: [log('info', `${key.name}: access key ${event.secret === 'remembered' ? 'remembered' : 'forgotten'} on this computer`)] };
    }

    case 'key-failed': {
      const key = findKey(state, event.keyId);
      if (!key) return unchanged(state);
      return {
        state: updateKey(state, key.id, { status: 'error', error: event.error, touchPrompted: undefined }),
        effects: [
          ...toast(settings, 'key', { title: `${key.name}: ${event.error.message}`, body: event.error.hint ?? '', urgency: 'normal', icon: 'error' }),
          log('error', `${key.name}: ${describe(event.error)}`),
        ],
      };
    }

    case 'key-removed': {
      const key = findKey(state, event.keyId);
      if (!key) return unchanged(state);
      const keys = state.keys.filter((k) => k.id !== event.keyId);
      const pending = state.pending;
      const last = state.last && state.last.keyId === event.keyId && !state.last.ok ? undefined : state.last;
      const removed = log('info', `key removed: ${keyTitle(key)}`);
      if (!pending || pending.keyId !== event.keyId || pending.phase === 'copying') {
        return { state: { ...state, keys, last }, effects: key.touchPrompted ? [{ type: 'close-toast', slot: 'key' }, removed] : [removed] };
      }
      const reason: StateError = {
        code: 'KEY_REMOVED',
        message: `${key.name} was removed while reading ${pending.credentialId}.`,
        hint: 'Plug it in again and choose the account once more.',
      };
      const finished = finishWithError({ ...state, keys, last }, pending, reason, event.now, settings, true);
      return { ...finished, effects: [...finished.effects, removed] };
    }

    case 'read-requested': {
      if (state.pending) {
        // One read at a time: a key waits for one touch, and a second click would only queue a
        // second touch prompt for a code nobody asked for twice.
        const error: StateError = {
          code: 'BUSY',
          message: `Already reading ${state.pending.credentialId}.`,
          hint: state.pending.phase === 'touch' ? 'Touch your key to finish that one first.' : 'Wait a moment and try again.',
        };
        return { state, effects: [{ type: 'done', requestId: event.requestId, result: { ok: false, error } }] };
      }
      const key = findKey(state, event.keyId);
      const credential = key?.credentials.find((c) => c.id === event.credentialId);
      if (!key || key.status !== 'ready' || !credential) {
        const error: StateError = key
          ? key.status === 'ready'
            ? { code: 'NOT_FOUND', message: `${key.name} has no account ${event.credentialId} (any more).`, hint: 'The menu shows the accounts now on the key.' }
            : (key.error ?? { code: 'NO_KEY', message: `${key.name} is not ready yet.`, hint: 'Wait a moment and try again.' })
          : { code: 'NO_KEY', message: 'That key is not connected.', hint: 'Plug it in and try again.' };
        return {
          state,
          effects: [
            { type: 'done', requestId: event.requestId, result: { ok: false, error } },
            ...toast(settings, 'read', { title: error.message, body: error.hint ?? '' }),
            ...(key && key.status === 'ready' ? [{ type: 'load', keyId: key.id } as Effect] : []),
          ],
        };
      }
      const time = readTime(credential, event.now);
      const deliver = event.deliver ?? deliverFor(settings, key, credential.id);
      const pending: PendingRead = { requestId: event.requestId, keyId: key.id, keyRef: accountKeyRef(key), credentialId: credential.id, source: event.source, phase: 'reading', time, deliver };
      const effects: Effect[] = [];
      // A credential known to need touch gets its prompt at once; the session confirms with touch-needed.
      if (credential.touch === true) {
        pending.phase = 'touch';
        effects.push(...touchPrompt(settings, key, credential.id), { type: 'touch-timer', requestId: pending.requestId, ms: settings.touchTimeoutSeconds * 1000 });
      }
      effects.unshift({ type: 'read', requestId: pending.requestId, keyId: key.id, credential, time });
      return { state: { ...state, pending, last: undefined }, effects };
    }

    case 'touch-needed': {
      const pending = state.pending;
      if (!pending || pending.requestId !== event.requestId || pending.phase !== 'reading') return unchanged(state);
      const key = findKey(state, pending.keyId);
      return {
        state: { ...state, pending: { ...pending, phase: 'touch' } },
        effects: [
          ...touchPrompt(settings, key, pending.credentialId),
          { type: 'touch-timer', requestId: pending.requestId, ms: settings.touchTimeoutSeconds * 1000 },
        ],
      };
    }

    case 'touch-timed-out': {
      const pending = state.pending;
      if (!pending || pending.requestId !== event.requestId || pending.phase !== 'touch') return unchanged(state);
      const reason: StateError = {
        code: 'TOUCH_TIMEOUT',
        message: `No touch within ${settings.touchTimeoutSeconds} s; ${pending.credentialId} was not read.`,
        hint: 'Choose the account again and touch the key when it blinks.',
      };
      return finishWithError(state, pending, reason, event.now, settings, true);
    }

    case 'read-succeeded': {
      const pending = state.pending;
      if (!pending || pending.requestId !== event.requestId || pending.phase === 'copying') return unchanged(state);
      return {
        state: { ...state, pending: { ...pending, phase: 'copying', validTo: event.code.validTo } },
        effects: [
          { type: 'done', requestId: pending.requestId, result: { ok: true, credentialId: pending.credentialId, code: event.code } },
          // Typed first: the window with the focus now is the one the user means.
          pending.deliver === 'copy'
            ? { type: 'copy', requestId: pending.requestId, text: event.code.code, clearAfterSeconds: settings.clipboardClearSeconds }
            : { type: 'type', requestId: pending.requestId, text: event.code.code },
        ],
      };
    }

    case 'type-finished': {
      const pending = state.pending;
      if (!pending || pending.requestId !== event.requestId || pending.phase !== 'copying' || pending.typed !== undefined) return unchanged(state);
      const typed = event.error === undefined;
      const next: PendingRead = { ...pending, typed, typeError: event.error };
      const copy = (): Effect[] => (event.code === undefined ? [] : [{ type: 'copy', requestId: pending.requestId, text: event.code, clearAfterSeconds: settings.clipboardClearSeconds }]);
      if (!typed) {
        // Falls back to copying: the code is not lost, and the toast says why it was not typed.
        return { state: { ...state, pending: next }, effects: [...copy(), log('warn', `typing the code of ${pending.credentialId} failed: ${describe(event.error!)}; copying it instead`)] };
      }
      if (pending.deliver === 'both') return { state: { ...state, pending: next, typingProblem: undefined }, effects: copy() };
      const key = findKey(state, pending.keyId);
      const last: ReadResult = { ok: true, keyId: pending.keyId, credentialId: pending.credentialId, at: event.now, validTo: pending.validTo };
      const validFor = pending.validTo === undefined ? undefined : Math.max(0, Math.floor(pending.validTo - event.now));
      const shown = accountLabelOf(state, pending.keyId, pending.credentialId);
      const recent = recentWith(state, key, pending);
      return {
        state: { ...state, pending: undefined, last, recent, typingProblem: undefined },
        effects: [
          ...toast(settings, 'read', {
            title: validFor === undefined ? 'Code typed' : `Code typed, valid for ${validFor} s`,
            body: joinLines(key ? `${shown} on ${keyModelName(key)}` : shown),
            urgency: 'low',
            timeoutMs: 5_000,
            icon: 'key',
          }),
          log('info', `typed the code of ${key ? `${pending.credentialId} (${key.name})` : pending.credentialId} into the focused window`),
          { type: 'save-recent', recent },
          { type: 'delivered', requestId: pending.requestId, copied: false, typed: true },
        ],
      };
    }

    case 'copy-finished': {
      const pending = state.pending;
      if (!pending || pending.requestId !== event.requestId || pending.phase !== 'copying') return unchanged(state);
      const key = findKey(state, pending.keyId);
      if (event.error) {
        const last: ReadResult = { ok: false, keyId: pending.keyId, credentialId: pending.credentialId, at: event.now, error: event.error };
        return {
          state: { ...state, pending: undefined, last },
          effects: [
            ...toast(settings, 'read', {
              title: pending.typed ? `Code typed, but not copied` : `Could not ${pending.typeError ? 'type or ' : ''}copy the code of ${accountLabelOf(state, pending.keyId, pending.credentialId)}`,
              body: joinLines(pending.typeError?.message, event.error.message, event.error.hint),
              urgency: 'normal',
              icon: 'error',
            }),
            log('error', `copying the code of ${pending.credentialId} failed: ${describe(event.error)}`),
            deliveredEffect(pending, event.error),
          ],
        };
      }
      const last: ReadResult = { ok: true, keyId: pending.keyId, credentialId: pending.credentialId, at: event.now, validTo: pending.validTo };
      const validFor = pending.validTo === undefined ? undefined : Math.max(0, Math.floor(pending.validTo - event.now));
      const clearing = settings.clipboardClearSeconds > 0 ? `The clipboard is cleared in ${settings.clipboardClearSeconds} s.` : undefined;
      const where = key ? `${pending.credentialId} (${key.name})` : pending.credentialId;
      const shown = accountLabelOf(state, pending.keyId, pending.credentialId);
      const copiedLine = `copied the code of ${where} to the clipboard${validFor === undefined ? '' : `, valid for ${validFor} s`}${settings.clipboardClearSeconds > 0 ? `; clearing it in ${settings.clipboardClearSeconds} s` : ''}`;
      const what = pending.typed ? 'Code typed and copied' : pending.typeError ? 'Code copied, not typed' : 'Code copied';
      // Why typing failed is said the first time; after that, a short reminder.
      const typeError = pending.typeError;
      const explain = typeError && state.typingProblem !== typeError.message;
      const whyNotTyped = typeError ? (explain ? joinLines(typeError.message, typeError.hint) : 'Typing does not work here (see the first such notification).') : undefined;
      const recent = recentWith(state, key, pending);
      return {
        state: { ...state, pending: undefined, last, recent, typingProblem: typeError ? typeError.message : state.typingProblem },
        effects: [
          ...toast(settings, 'read', {
            title: validFor === undefined ? what : `${what}, valid for ${validFor} s`,
            body: joinLines(whyNotTyped, settings.showCodeInNotification && event.code !== undefined ? `Code: ${groupCode(event.code)}` : undefined, key ? `${shown} on ${keyModelName(key)}` : shown, clearing),
            urgency: 'low',
            timeoutMs: 5_000,
            icon: 'key',
          }),
          log('info', copiedLine),
          { type: 'save-recent', recent },
          deliveredEffect(pending, undefined),
        ],
      };
    }

    case 'read-failed': {
      const pending = state.pending;
      if (!pending || pending.requestId !== event.requestId || pending.phase === 'copying') return unchanged(state);
      const key = findKey(state, pending.keyId);
      const error = explainReadError(event.error, key?.name ?? 'the key', pending.credentialId, settings);
      const next = finishWithError(state, pending, error, event.now, settings, false);
      // A credential that is gone from the key: re-list, so the menu shows what is there now.
      if (error.code === 'NOT_FOUND' && key) next.effects.push({ type: 'load', keyId: key.id });
      return next;
    }

    case 'read-cancelled': {
      const pending = state.pending;
      // While the code is being typed a cancel still stops it (and no fallback copy follows);
      // a copy itself is too quick to cancel.
      const typing = pending?.phase === 'copying' && pending.deliver !== 'copy' && pending.typed === undefined;
      if (!pending || pending.requestId !== event.requestId || (pending.phase === 'copying' && !typing)) return unchanged(state);
      return finishWithError(state, pending, event.reason, event.now, settings, true);
    }

    case 'shortcut-pressed': {
      const fits = event.window?.accounts.filter((a) => findKey(state, a.keyId)?.credentials.some((c) => c.id === a.credentialId));
      if (event.window && fits && fits.length > 1) {
        // Several fit and no finder to choose in: the menu is where to choose, and a rule settles it for next time.
        const names = fits.map((a) => a.credentialId);
        return {
          state,
          effects: [
            log('info', `the shortcut read nothing: ${names.length} accounts fit the focused window (${event.window.why})`),
            ...toast(settings, 'read', {
              title: `${names.length} accounts fit this window: which one?`,
              body: joinLines(names.join(', '), 'Choose one in the keytap menu, or add a window rule for this window to the settings file.'),
              icon: 'error',
            }),
          ],
        };
      }
      if (event.window && fits?.length === 1) {
        const [only] = fits;
        const next = reduce(state, { type: 'read-requested', requestId: event.requestId, keyId: only!.keyId, credentialId: only!.credentialId, source: 'shortcut', now: event.now, deliver: event.deliver }, settings);
        return { state: next.state, effects: [log('info', `the shortcut reads ${only!.credentialId} for the focused window (${event.window.why})`), ...next.effects] };
      }
      const target = shortcutTarget(state, event.defaultAccount);
      if ('error' in target) return { state, effects: toast(settings, 'read', { title: target.error.message, body: target.error.hint ?? '', icon: 'error' }) };
      return reduce(state, { type: 'read-requested', requestId: event.requestId, keyId: target.keyId, credentialId: target.credentialId, source: 'shortcut', now: event.now, deliver: event.deliver }, settings);
    }

    case 'autostart-changed':
      return { state: { ...state, autostart: event.enabled }, effects: [] };

    case 'window-rule-added':
      return {
        state,
        effects: [
          log('info', `window rule ${event.rule} of the settings reads ${event.credentialId}${event.app ? ` (application ${event.app})` : ''}`),
          ...toast(settings, 'app', { title: `The shortcut reads ${event.credentialId} in this window now`, body: 'Window rules are in the settings file, under windowRules.', icon: 'key' }),
        ],
      };

    case 'autostart-failed':
      return {
        state,
        effects: [
          log('warn', `changing "Start at login" failed (${event.backend}): ${event.error.message}`),
          ...toast(settings, 'app', { title: 'Could not change "Start at login"', body: joinLines(event.error.message, event.error.hint), icon: 'error' }),
        ],
      };

    case 'shortcut-changed': {
      const next = { ...state, shortcut: event.status, typeShortcutRegistered: event.status === 'registered' && event.typeShortcut !== false };
      const accelerator = event.accelerator ?? 'shortcut';
      const backend = event.backend === undefined ? '' : ` (${event.backend})`;
      if (event.status === 'registered' && event.accelerator !== undefined) {
        // Registered, the advice given before no longer stands: a later refusal is told again.
        return { state: { ...next, shortcutAdvice: undefined }, effects: [log('info', `global shortcut ${accelerator} registered${backend}`)] };
      }
      if (event.status === 'unavailable' && event.error) {
        const e = event.error;
        const advice = bindingAdvice(event.binding) ?? e.hint ?? BIND_KEYTAP_CODE;
        const inline = event.binding ? explainDesktopBindingInline(event.binding) : advice;
        // Said once per run: registering again (the settings file saved) finds the same desktop.
        const said = `${accelerator}\n${advice}`;
        if (state.shortcutAdvice === said) return { state: next, effects: [] };
        return {
          state: { ...next, shortcutAdvice: said },
          effects: [
            log('warn', `the global shortcut ${accelerator} is not available${backend}: ${e.message} ${inline}`),
            ...toast(settings, 'app', { title: `Shortcut ${accelerator} is not available here`, body: advice, icon: 'error' }),
          ],
        };
      }
      return { state: next, effects: [] };
    }

    case 'tray-host': {
      const before = state.trayHost;
      const next = { ...state, trayHost: event.status };
      const backend = event.backend === undefined ? '' : ` (${event.backend})`;
      // No bus is not a missing tray extension: say what is missing, once (the backend keeps retrying quietly).
      if (event.status === 'no-bus') {
        if (before === 'no-bus') return { state: next, effects: [] };
        return {
          state: next,
          effects: [log('warn', `${event.reason ?? 'no D-Bus session bus'}: no tray icon and no toasts until there is one. keytap keeps running; "keytap code" still works.`)],
        };
      }
      if (event.status === 'no-host' && before !== 'no-host') {
        const effects: Effect[] = [
          log('warn', `no tray host${backend}: the icon is not shown until one appears. On GNOME, install the AppIndicator extension. keytap keeps running; "keytap code" still works.`),
        ];
        if (before === 'unknown') {
          effects.push(
            ...toast(settings, 'app', {
              title: 'No system tray found',
              body: 'keytap keeps running. On GNOME, install the "AppIndicator and KStatusNotifierItem Support" extension; or bind "keytap code" to a shortcut.',
              icon: 'error',
            }),
          );
        }
        return { state: next, effects };
      }
      if (event.status === 'shown' && (before === 'no-host' || before === 'no-bus')) return { state: next, effects: [log('info', 'the tray host is back; the icon is shown again')] };
      return { state: next, effects: [] };
    }

    case 'tray-failed': {
      const e = event.error;
      return {
        state,
        effects: [
          log('error', `the tray could not start (${event.backend}): ${e.message}${e.hint ? ` ${e.hint}` : ''} — keytap keeps running; "keytap code" still works.`),
          ...toast(settings, 'app', { title: 'keytap has no tray icon', body: joinLines(e.message, e.hint, 'keytap keeps running: bind "keytap code" to a shortcut.'), icon: 'error' }),
        ],
      };
    }

    case 'config-problem':
      return {
        state,
        effects: [
          log('error', `${event.error.message} ${event.error.hint ?? ''}`.trim()),
          // Not through toast(): the file that turns toasts off may be the one that is broken.
          { type: 'notify', notification: { title: 'keytap: settings file invalid', body: joinLines(event.error.message, event.error.hint), icon: 'error' } },
        ],
      };

    case 'settings-open-failed':
      return {
        state,
        effects: [
          log('warn', `opening ${event.path} failed: ${event.error.message}`),
          ...toast(settings, 'app', { title: 'Could not open the settings file', body: joinLines(event.error.message, `Open ${event.path} in a text editor.`), icon: 'error' }),
        ],
      };

    case 'qr-add-started':
      return { state: { ...state, addingFromQr: event.keyId }, effects: [] };

    case 'qr-account-added': {
      const key = findKey(state, event.keyId);
      return {
        state: { ...state, addingFromQr: undefined },
        effects: [
          log('info', `added ${event.label} from a QR code on the screen to ${key?.name ?? event.keyId}`),
          ...toast(settings, 'app', { title: 'Account added', body: key ? `${event.label} on ${keyModelName(key)}` : event.label, icon: 'key' }),
          // The menu shows the new account once the key is listed again.
          ...(key ? [{ type: 'load', keyId: key.id } as Effect] : []),
        ],
      };
    }

    case 'qr-account-failed':
      return {
        state: { ...state, addingFromQr: undefined },
        effects: [
          log(isCancel(event.error) ? 'info' : 'warn', `adding an account from a QR code: ${describe(event.error)}`),
          ...toast(settings, 'app', {
            title: isCancel(event.error) ? 'No account added' : 'Could not add an account from the QR code',
            body: joinLines(event.error.message, event.error.hint),
            ...(isCancel(event.error) ? { urgency: 'low', icon: 'key' } : { icon: 'error' }),
          }),
        ],
      };

    case 'menu-not-shown':
      if (event.reason === 'no-finder') {
        return {
          state,
          effects: [
            log('warn', 'the tray host cannot show the menu and no finder (fuzzel, wofi, rofi, dmenu) is installed'),
            ...toast(settings, 'app', {
              title: 'keytap cannot show its menu here',
              body: joinLines(
                'This tray cannot show menus, and keytap found no finder to list the accounts in.',
                'Install one (apt install fuzzel or wofi on Wayland, rofi or suckless-tools for dmenu on X11), or bind "keytap pick" to a key.',
              ),
              icon: 'error',
            }),
          ],
        };
      }
      return {
        state,
        effects: toast(settings, 'app', {
          title: event.reason === 'no-key' ? 'No key connected' : 'No accounts',
          body: event.reason === 'no-key' ? 'Plug in your security key.' : 'The connected keys hold no accounts. Add one with "keytap add".',
        }),
      };

    case 'finder-failed':
      return {
        state,
        effects: [
          log('warn', `${event.finder} failed: ${event.error.message}`),
          ...toast(settings, 'app', { title: `Could not list the accounts in ${event.finder}`, body: joinLines(event.error.message, 'Try "keytap pick" in a terminal.'), icon: 'error' }),
        ],
      };

    case 'about-requested':
      return {
        state,
        effects: toast(settings, 'app', {
          title: `keytap ${event.version ?? ''}`.trim(),
          body: joinLines('Reads OATH codes from USB security keys into the clipboard.', `Settings: ${event.settingsPath}`, 'Run "keytap doctor" if something does not work.'),
        }),
      };
  }
}

const BIND_KEYTAP_CODE = 'Bind the command "keytap code" to a key in your desktop\'s keyboard settings: it asks this keytap for the code.';

function bindingAdvice(binding: DesktopBinding | undefined): string | undefined {
  return binding ? joinLines(...explainDesktopBinding(binding)) : undefined;
}

/** What the shortcut reads: the default account when its key is here, else the only account there is. */
export function shortcutTarget(state: AppState, chosen: DefaultAccount | undefined): { keyId: string; credentialId: string } | { error: StateError } {
  const ready = state.keys.filter((k) => k.status === 'ready');
  if (chosen) {
    const key = ready.find((k) => accountKeyRef(k) === chosen.keyId || k.id === chosen.keyId);
    if (key?.credentials.some((c) => c.id === chosen.credentialId)) return { keyId: key.id, credentialId: chosen.credentialId };
    return {
      error: {
        code: 'NO_KEY',
        message: `The default account ${chosen.credentialId} is not on a connected key.`,
        hint: 'Plug in its key, or choose another one under "Default account for the shortcut".',
      },
    };
  }
  const all = ready.flatMap((k) => k.credentials.map((c) => ({ keyId: k.id, credentialId: c.id })));
  if (all.length === 1) return all[0]!;
  if (all.length === 0) {
    return state.keys.length === 0
      ? { error: { code: 'NO_KEY', message: 'No key is connected.', hint: 'Plug in your key and press the shortcut again.' } }
      : { error: { code: 'NO_MATCH', message: 'No account to read.', hint: 'The connected key holds no accounts it can read now.' } };
  }
  return { error: { code: 'AMBIGUOUS', message: `${all.length} accounts: which one should the shortcut read?`, hint: 'Choose one under "Default account for the shortcut" in the keytap menu.' } };
}

/** Where an account's code goes: its own choice in deliverFor, else the global one. */
export function deliverFor(settings: Pick<StateSettings, 'deliver' | 'deliverFor'>, key: Pick<KeyState, 'id' | 'serial'>, credentialId: string): Deliver {
  const ref = accountKeyRef(key);
  const own = settings.deliverFor?.find((d) => (d.keyId === ref || d.keyId === key.id) && d.credentialId === credentialId);
  return own?.deliver ?? settings.deliver ?? 'copy';
}

/** The recent list with this read's account first (once, by whichever id the key was recorded under), as many as RECENT_MAX. */
function recentWith(state: AppState, key: KeyState | undefined, pending: PendingRead): RecentAccount[] {
  const used: RecentAccount = { keyId: key ? accountKeyRef(key) : pending.keyRef, credentialId: pending.credentialId };
  const sameKey = (keyId: string): boolean => keyId === used.keyId || keyId === pending.keyId || (key !== undefined && keyId === key.id);
  return [used, ...(state.recent ?? []).filter((r) => !sameKey(r.keyId) || r.credentialId !== used.credentialId)].slice(0, RECENT_MAX);
}

/** Each account once (the first, latest, entry kept), as many as RECENT_MAX. */
export function uniqueRecent(recent: readonly RecentAccount[]): RecentAccount[] {
  const seen = new Set<string>();
  const unique: RecentAccount[] = [];
  for (const r of recent) {
    const id = JSON.stringify([r.keyId, r.credentialId]);
    if (seen.has(id)) continue;
    seen.add(id);
    unique.push({ keyId: r.keyId, credentialId: r.credentialId });
  }
  return unique.slice(0, RECENT_MAX);
}

/**
 * The list with this key's entries under its stable ref (accountKeyRef: the serial once known),
 * not its discovery id, so one account is one entry however it was recorded.
 */
function recentByRef(recent: readonly RecentAccount[], key: Pick<KeyState, 'id' | 'serial'>): RecentAccount[] {
  const ref = accountKeyRef(key);
  if (ref === key.id) return [...recent];
  return uniqueRecent(recent.map((r) => (r.keyId === key.id ? { keyId: ref, credentialId: r.credentialId } : r)));
}

/** recentByRef on the state; a list that changed is saved. */
function withRecentByRef(state: AppState, key: Pick<KeyState, 'id' | 'serial'>): Transition {
  if (!state.recent) return { state, effects: [] };
  const recent = recentByRef(state.recent, key);
  if (JSON.stringify(recent) === JSON.stringify(state.recent)) return { state, effects: [] };
  return { state: { ...state, recent }, effects: [{ type: 'save-recent', recent }] };
}

function deliveredEffect(pending: PendingRead, copyError: StateError | undefined): Effect {
  return { type: 'delivered', requestId: pending.requestId, copied: copyError === undefined, copyError, typed: pending.typed === true, typeError: pending.typeError };
}

/** A code as a toast shows it, when the user asked for that: "123 456", "1234 5678". */
export function groupCode(code: string): string {
  return code.length === 6 || code.length === 8 ? `${code.slice(0, code.length / 2)} ${code.slice(code.length / 2)}` : code;
}

/** The models a virtual key answers like, by dialect. */
const VIRTUAL_MODELS: Record<Dialect, string> = { yubikey: 'Virtual YubiKey 5', nitrokey3: 'Virtual Nitrokey 3' };

/**
 * "Nitrokey 3 (1234ABCD)", "Virtual YubiKey 5 (0A0B0C0D)": serials in capitals whatever case the
 * key or the registry reports them in, so the same key reads the same in the menu and the toasts.
 */
export function keyTitle(key: Pick<KeyState, 'name' | 'serial' | 'kind' | 'dialect'>): string {
  const name = keyModelName(key);
  return key.serial ? `${name} (${key.serial.toUpperCase()})` : name;
}

/** A key as toasts name it: as the menu does, without the serial (one key is plugged in, mostly). */
function keyModelName(key: Pick<KeyState, 'name' | 'kind' | 'dialect'>): string {
  return key.kind === 'virtual' && key.dialect !== undefined ? VIRTUAL_MODELS[key.dialect] : key.name;
}

export function accountsCount(n: number): string {
  return n === 1 ? '1 account' : `${n} accounts`;
}

function finishWithError(state: AppState, pending: PendingRead, error: StateError, now: number, settings: StateSettings, cancel: boolean): Transition {
  const last: ReadResult = { ok: false, keyId: pending.keyId, credentialId: pending.credentialId, at: now, error };
  const effects: Effect[] = [];
  if (cancel) effects.push({ type: 'cancel', requestId: pending.requestId, reason: error });
  effects.push(
    { type: 'done', requestId: pending.requestId, result: { ok: false, error } },
    // A cancel is what the user asked for: a calm toast, not an error.
    ...toast(settings, 'read', { title: error.message, body: error.hint ?? '', ...(isCancel(error) ? { urgency: 'low', icon: 'key' } : { urgency: 'normal', icon: 'error' }) }),
    log(isCancel(error) ? 'info' : 'warn', `reading ${pending.credentialId}: ${describe(error)}`),
  );
  // The toast replaces the touch prompt; with toasts off, the prompt was never shown.
  return { state: { ...state, pending: undefined, last }, effects };
}

/** Turns what the device layer said into words for a toast, per error code. */
export function explainReadError(error: StateError, keyName: string, credentialId: string, settings: Pick<StateSettings, 'touchTimeoutSeconds'>): StateError {
  switch (error.code) {
    case 'TOUCH_TIMEOUT':
      return { code: error.code, message: `No touch in time; ${credentialId} was not read.`, hint: 'Choose the account again and touch the key when it blinks.' };
    case 'KEY_REMOVED':
      return { code: error.code, message: `${keyName} was removed while reading ${credentialId}.`, hint: 'Plug it in again and choose the account once more.' };
    case 'BUSY':
      return { code: error.code, message: `${keyName} is busy with another program.`, hint: error.hint ?? 'Close the other program (a browser asking for the key, another authenticator) and try again.' };
    case 'PERMISSION_DENIED':
      return { code: error.code, message: `No permission to open ${keyName}.`, hint: error.hint ?? 'Install the udev rules ("keytap doctor" shows how) and plug the key in again.' };
    case 'AUTH_REQUIRED':
      return { code: error.code, message: error.message, hint: error.hint ?? TRAY_LOCKED_HINT };
    case 'CANCELLED':
      return { code: error.code, message: `Reading ${credentialId} was cancelled.`, hint: error.hint };
    case 'TIMEOUT':
      return { code: error.code, message: `${keyName} did not answer.`, hint: error.hint ?? `Unplug it, plug it in again, and try again (touch timeout: ${settings.touchTimeoutSeconds} s).` };
    default:
      return error;
  }
}

/** Waiting for the user is not an alarm: normal urgency, and it stays until the read ends (the next toast in the slot replaces it). */
function touchPrompt(settings: StateSettings, key: KeyState | undefined, credentialId: string): Effect[] {
  const shown = accountLabelOf({ keys: key ? [key] : [] }, key?.id, credentialId);
  return toast(settings, 'read', {
    title: 'Touch your key',
    body: key ? `${shown} on ${keyModelName(key)}` : shown,
    urgency: 'normal',
    sticky: true,
    icon: 'touch',
  });
}

/** A read the user (or the caller) cancelled on purpose: not an error to badge or to keep showing. */
export function isCancel(error: StateError): boolean {
  return error.code === 'CANCELLED';
}

function toast(settings: StateSettings, slot: ToastSlot, notification: Notification): Effect[] {
  if (!settings.notifications) return [];
  return [{ type: 'notify', slot, notification }];
}

function log(level: 'info' | 'warn' | 'error', message: string): Effect {
  return { type: 'log', level, message };
}

function describe(error: StateError): string {
  return `${error.code}: ${error.message}${error.hint ? ` — ${error.hint}` : ''}`;
}

function joinLines(...lines: (string | undefined)[]): string {
  return lines.filter((l): l is string => l !== undefined && l !== '').join('\n');
}

function updateKey(state: AppState, keyId: string, patch: Partial<KeyState>): AppState {
  return { ...state, keys: state.keys.map((k) => (k.id === keyId ? { ...k, ...patch } : k)) };
}

function unchanged(state: AppState): Transition {
  return { state, effects: [] };
}
