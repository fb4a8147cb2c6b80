/**
 * The resident orchestrator. It feeds events into the pure state machine (state.ts), runs the
 * effects it asks for, and renders the menu model (menu-model.ts) into the tray. Every dependency
 * is injected, so tests run it with fakes and the CLI wires the real ones.
 *
 * Rules it keeps:
 * - A key is opened per operation and closed right after: other programs (a browser doing FIDO,
 *   `keytap code`) need it too. Operations on one key are queued, never interleaved.
 * - Nothing escapes: each entry point (key events, clicks, shortcut presses, IPC requests, timers)
 *   catches what it runs; failures become a toast and a log line that says what to do.
 * - The code goes to the clipboard, to whoever asked over IPC and, only when the user turned
 *   that on, into a toast; never into a log line or the state.
 */
import type { KeyDescriptor } from '../device/discovery/enumerate.js';
import type { OpenKey } from '../device/connect.js';
import { noKeyError } from '../device/connect.js';
import { matchOne } from '../device/oath/match.js';
import type { KeyCredential, OathCode } from '../device/oath/session.js';
import { KeytapError, isKeytapError } from '../errors.js';
import type { Notification, NotificationHandle, Notifier } from '../notify/types.js';
import type { TrayBackend, TrayModel } from '../tray/model.js';
import type { AppConfig, ConfigStore } from './config.js';
import { explainForTray } from './explain.js';
import type { MenuAction } from './menu-model.js';
import { buildTrayModel, parseMenuId } from './menu-model.js';
import type { Autostart, GlobalShortcut } from './platform.js';
import type { AppEvent, AppState, Effect, KeyState, ReadSource, StateError, StateSettings, ToastSlot } from './state.js';
import { INITIAL_STATE, accountKeyRef, findKey, reduce } from './state.js';

/** Where keys come from: the discovery KeyWatcher, or a fake. */
export interface KeySource {
  on(event: 'added' | 'removed', listener: (key: KeyDescriptor) => void): unknown;
  on(event: 'error', listener: (error: Error, source: string) => void): unknown;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Copies a code (marked sensitive) and clears it later if the clipboard still holds it. */
export interface ClipboardGuardLike {
  copy(text: string, clearAfterSeconds: number): Promise<void>;
  /** Clears now if the clipboard still holds our code, and cancels the timer (at quit). */
  stop(): Promise<void>;
}

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export interface ControllerDeps {
  keys: KeySource;
  open: (descriptor: KeyDescriptor, signal: AbortSignal) => Promise<OpenKey>;
  tray: TrayBackend;
  notifier: Notifier;
  clipboard: ClipboardGuardLike;
  shortcut: GlobalShortcut;
  autostart: Autostart;
  /** What "Start at login" runs (argv). */
  autostartCommand: readonly string[];
  config: Pick<ConfigStore, 'current' | 'set' | 'onChange' | 'path' | 'problem' | 'onProblemChange'>;
  /** Opens a file with the desktop's default application ("Settings"). */
  openPath: (path: string) => Promise<void>;
  clock?: Clock | undefined;
  logger?: Logger | undefined;
  version?: string | undefined;
}

export interface CodeAnswer {
  id: string;
  code: string;
  validFrom?: number | undefined;
  validTo?: number | undefined;
}

export interface KeyListing {
  id: string;
  name: string;
  serial?: string | undefined;
  status: KeyState['status'];
  error?: StateError | undefined;
  credentials: KeyCredential[];
}

type DoneResult = Extract<Effect, { type: 'done' }>['result'];

interface Waiter {
  resolve: (result: DoneResult) => void;
  onTouch?: (() => void) | undefined;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export const consoleLogger: Logger = {
  info: (m) => console.error(`keytap: ${m}`),
  warn: (m) => console.error(`keytap: warning: ${m}`),
  error: (m) => console.error(`keytap: error: ${m}`),
};

export class Controller {
  private stateValue: AppState = INITIAL_STATE;
  private readonly descriptors = new Map<string, KeyDescriptor>();
  /** Per key: the tail of its operation queue. */
  private readonly queues = new Map<string, Promise<void>>();
  /** Listings and copies in flight, for `idle()`. */
  private readonly busy = new Set<Promise<void>>();
  private readonly reads = new Map<number, AbortController>();
  private readonly touchTimers = new Map<number, unknown>();
  private readonly waiters = new Map<number, Waiter>();
  private readonly toastHandles = new Map<ToastSlot, NotificationHandle>();
  private toastChain: Promise<void> = Promise.resolve();
  private nextRequestId = 1;
  private renderScheduled = false;
  private rendering: Promise<void> = Promise.resolve();
  private lastRendered: string | undefined;
  private started = false;
  private stopped = false;
  private shortcutRegistered: string | undefined;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private quitResolve!: () => void;
  private readonly unsubscribe: (() => void)[] = [];
  /** Resolves when the user chose Quit (or `quit()` was called). */
  readonly quitRequested: Promise<void>;

  constructor(private readonly deps: ControllerDeps) {
    this.clock = deps.clock ?? systemClock;
    this.logger = deps.logger ?? consoleLogger;
    this.quitRequested = new Promise((resolve) => {
      this.quitResolve = resolve;
    });
  }

  get state(): AppState {
    return this.stateValue;
  }

  get model(): TrayModel {
    return buildTrayModel(this.stateValue, this.deps.config.current);
  }

  /** Shows the tray, registers the shortcut, starts watching keys. Resolves once the keys present at start are known. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    const { config } = this.deps;
    this.unsubscribe.push(
      config.onChange((now, before) => this.guard('settings change', () => this.onConfigChange(now, before))),
      config.onProblemChange((problem) => this.guard('settings problem', () => this.reportConfigProblem(problem))),
    );
    this.reportConfigProblem(config.problem);

    try {
      await this.deps.tray.start(
        (id) => this.handleClick(id),
        (status) => this.guard('tray host', () => this.onTrayStatus(status)),
      );
    } catch (error) {
      const e = toStateError(error);
      this.logger.error(`the tray could not start (${this.deps.tray.name}): ${e.message}${e.hint ? ` ${e.hint}` : ''} — keytap keeps running; "keytap code" still works.`);
      this.toast('app', { title: 'keytap has no tray icon', body: joinLines(e.message, e.hint, 'keytap keeps running: bind "keytap code" to a shortcut.') });
    }
    this.scheduleRender();

    await this.registerShortcut(config.current.shortcut);
    void this.refreshAutostart();

    const { keys } = this.deps;
    keys.on('added', (descriptor) => this.guard('key added', () => this.onKeyAdded(descriptor)));
    keys.on('removed', (descriptor) => this.guard('key removed', () => this.onKeyRemoved(descriptor)));
    keys.on('error', (error, source) => this.logger.warn(`listing ${source} keys failed: ${describeUnknown(error)}`));
    try {
      await keys.start();
    } catch (error) {
      this.logger.error(`watching for keys failed: ${describeUnknown(error)}`);
    }
  }

  /** Stops everything it started; the clipboard is cleared if it still holds our code. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const off of this.unsubscribe.splice(0)) off();
    for (const [requestId] of this.reads) {
      this.dispatch({ type: 'read-cancelled', requestId, reason: { code: 'CANCELLED', message: 'keytap is quitting.' }, now: this.nowSeconds() });
    }
    for (const handle of this.touchTimers.values()) this.clock.clearTimeout(handle);
    this.touchTimers.clear();
    await settle(this.deps.keys.stop(), this.logger, 'stopping the key watcher');
    if (this.shortcutRegistered !== undefined) await settle(this.deps.shortcut.unregister(), this.logger, 'unregistering the shortcut');
    await settle(this.deps.clipboard.stop(), this.logger, 'clearing the clipboard');
    await settle(Promise.all([...this.queues.values()]).then(() => undefined), this.logger, 'finishing key operations');
    await settle(this.rendering, this.logger, 'rendering');
    await settle(this.toastChain, this.logger, 'toasts');
    for (const handle of this.toastHandles.values()) await settle(this.deps.notifier.close(handle), this.logger, 'closing a toast');
    await settle(this.deps.tray.stop(), this.logger, 'stopping the tray');
    await settle(this.deps.notifier.stop(), this.logger, 'stopping notifications');
  }

  quit(): void {
    this.quitResolve();
  }

  /** A click in the tray menu, by item id. */
  handleClick(id: string): void {
    this.guard(`menu click ${id}`, () => {
      const action = parseMenuId(id);
      if (action) this.onAction(action);
    });
  }

  /** The global shortcut: the default account, or the only one. */
  shortcutPressed(): void {
    this.guard('shortcut', () => {
      const target = this.defaultTarget();
      if ('error' in target) {
        this.toast('read', { title: target.error.message, body: target.error.hint ?? '' });
        return;
      }
      this.requestRead(target.keyId, target.credentialId, 'shortcut');
    });
  }

  /**
   * `keytap code [query]` over IPC: the same flow as a click (touch toast, copy, toast), answering
   * with the code. With several keys, the query is matched across all of them.
   */
  async requestCode(query: string | undefined, options: { signal?: AbortSignal | undefined; onTouch?: ((credentialId: string) => void) | undefined } = {}): Promise<CodeAnswer> {
    await this.refreshAll();
    const ready = this.stateValue.keys.filter((k) => k.status === 'ready');
    if (this.stateValue.keys.length === 0) throw noKeyError();
    if (ready.length === 0) {
      const key = this.stateValue.keys[0]!;
      if (key.status === 'locked') {
        // The words `keytap code` uses when it opens a locked key itself.
        throw new KeytapError('AUTH_REQUIRED', `The OATH application on ${key.name} is password-protected.`, { detail: { kind: 'locked', keyName: key.name } });
      }
      throw key.error ? new KeytapError(key.error.code, key.error.message, key.error.hint ? { hint: key.error.hint } : {}) : noKeyError();
    }
    const candidates = ready.flatMap((key) => key.credentials.map((credential) => ({ id: credential.id, keyId: key.id })));
    const chosen = matchOne(candidates, query);
    const result = await new Promise<DoneResult>((resolve) => {
      const requestId = this.nextRequestId++;
      const onAbort = (): void => {
        this.guard('IPC cancel', () =>
          this.dispatch({ type: 'read-cancelled', requestId, reason: { code: 'CANCELLED', message: 'The caller went away.' }, now: this.nowSeconds() }),
        );
      };
      this.waiters.set(requestId, {
        resolve: (r) => {
          options.signal?.removeEventListener('abort', onAbort);
          resolve(r);
        },
        onTouch: options.onTouch ? () => options.onTouch?.(chosen.id) : undefined,
      });
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.dispatch({ type: 'read-requested', requestId, keyId: chosen.keyId, credentialId: chosen.id, source: 'ipc', now: this.nowSeconds() });
    });
    if (!result.ok) throw new KeytapError(result.error.code, result.error.message, result.error.hint ? { hint: result.error.hint } : {});
    return { id: result.credentialId, code: result.code.code, validFrom: result.code.validFrom, validTo: result.code.validTo };
  }

  /** `keytap list` over IPC: every key, with its accounts read afresh. */
  async listKeys(): Promise<KeyListing[]> {
    await this.refreshAll();
    return this.stateValue.keys.map((k) => ({ id: k.id, name: k.name, serial: k.serial, status: k.status, error: k.error, credentials: k.credentials }));
  }

  /**
   * Resolves once every key listing, copy, toast and render started so far has finished (tests,
   * IPC). Reads are not waited for: one may wait for a touch that never comes.
   */
  async idle(): Promise<void> {
    let before: Promise<void>[];
    do {
      before = [...this.busy];
      await Promise.all(before);
      await this.toastChain;
      await this.rendering;
    } while ([...this.busy].some((p) => !before.includes(p)));
  }

  // ---- events in ----

  private onKeyAdded(descriptor: KeyDescriptor): void {
    this.descriptors.set(descriptor.id, descriptor);
    this.dispatch({ type: 'key-added', key: { id: descriptor.id, name: descriptor.name, kind: descriptor.kind, serial: descriptor.serial } });
  }

  private onKeyRemoved(descriptor: KeyDescriptor): void {
    this.dispatch({ type: 'key-removed', keyId: descriptor.id, now: this.nowSeconds() });
    // An operation still queued for it fails on its own (the link is gone); forget the descriptor after.
    const tail = this.queues.get(descriptor.id) ?? Promise.resolve();
    void tail.then(() => {
      if (!findKey(this.stateValue, descriptor.id)) this.descriptors.delete(descriptor.id);
    });
  }

  private onAction(action: MenuAction): void {
    const { config } = this.deps;
    switch (action.type) {
      case 'read':
        this.requestRead(action.keyId, action.credentialId, 'menu');
        return;
      case 'retry':
        this.dispatch({ type: 'key-retry', keyId: action.keyId });
        return;
      case 'cancel': {
        const pending = this.stateValue.pending;
        if (pending) {
          this.dispatch({
            type: 'read-cancelled',
            requestId: pending.requestId,
            reason: { code: 'CANCELLED', message: `Reading ${pending.credentialId} was cancelled.` },
            now: this.nowSeconds(),
          });
        }
        return;
      }
      case 'default-account':
        config.set('defaultAccount', action.account);
        return;
      case 'toggle':
        if (action.setting === 'autostart') void this.toggleAutostart();
        else config.set(action.setting, !config.current[action.setting]);
        return;
      case 'settings':
        void this.deps.openPath(config.path).catch((error: unknown) => {
          const e = toStateError(error);
          this.logger.warn(`opening ${config.path} failed: ${e.message}`);
          this.toast('app', { title: 'Could not open the settings file', body: `Open ${config.path} in a text editor.` });
        });
        return;
      case 'about':
        this.toast('app', {
          title: `keytap ${this.deps.version ?? ''}`.trim(),
          body: joinLines('Reads OATH codes from USB security keys into the clipboard.', `Settings: ${config.path}`, 'Run "keytap doctor" if something does not work.'),
        });
        return;
      case 'quit':
        this.quit();
        return;
    }
  }

  private requestRead(keyId: string, credentialId: string, source: ReadSource): void {
    const requestId = this.nextRequestId++;
    this.dispatch({ type: 'read-requested', requestId, keyId, credentialId, source, now: this.nowSeconds() });
  }

  private defaultTarget(): { keyId: string; credentialId: string } | { error: StateError } {
    const chosen = this.deps.config.current.defaultAccount;
    const ready = this.stateValue.keys.filter((k) => k.status === 'ready');
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
      return this.stateValue.keys.length === 0
        ? { error: { code: 'NO_KEY', message: 'No key is connected.', hint: 'Plug in your key and press the shortcut again.' } }
        : { error: { code: 'NO_MATCH', message: 'No account to read.', hint: 'The connected key holds no accounts it can read now.' } };
    }
    return { error: { code: 'AMBIGUOUS', message: `${all.length} accounts: which one should the shortcut read?`, hint: 'Choose one under "Default account for the shortcut" in the keytap menu.' } };
  }

  // ---- the state machine ----

  private settings(): StateSettings {
    const c = this.deps.config.current;
    return {
      notifications: c.notifications,
      notifyOnConnect: c.notifyOnConnect,
      showCodeInNotification: c.showCodeInNotification,
      touchTimeoutSeconds: c.touchTimeoutSeconds,
      clipboardClearSeconds: c.clipboardClearSeconds,
    };
  }

  private dispatch(event: AppEvent): void {
    let effects: Effect[];
    try {
      const transition = reduce(this.stateValue, event, this.settings());
      this.stateValue = transition.state;
      effects = transition.effects;
    } catch (error) {
      this.logger.error(`state machine failed on ${event.type}: ${describeUnknown(error)}`);
      return;
    }
    this.scheduleRender();
    for (const effect of effects) this.guard(`effect ${effect.type}`, () => this.run(effect));
  }

  private run(effect: Effect): void {
    switch (effect.type) {
      case 'load':
        this.track(this.enqueue(effect.keyId, () => this.load(effect.keyId)));
        return;
      case 'read':
        this.startRead(effect.requestId, effect.keyId, effect.credential, effect.time);
        return;
      case 'cancel':
        this.reads.get(effect.requestId)?.abort(new KeytapError(effect.reason.code, effect.reason.message, effect.reason.hint ? { hint: effect.reason.hint } : {}));
        this.clearTouchTimer(effect.requestId);
        return;
      case 'touch-timer': {
        this.clearTouchTimer(effect.requestId);
        const handle = this.clock.setTimeout(() => {
          this.touchTimers.delete(effect.requestId);
          this.guard('touch timer', () => this.dispatch({ type: 'touch-timed-out', requestId: effect.requestId, now: this.nowSeconds() }));
        }, effect.ms);
        this.touchTimers.set(effect.requestId, handle);
        return;
      }
      case 'copy':
        this.track(this.copy(effect.requestId, effect.text, effect.clearAfterSeconds));
        return;
      case 'done': {
        this.clearTouchTimer(effect.requestId);
        const waiter = this.waiters.get(effect.requestId);
        this.waiters.delete(effect.requestId);
        waiter?.resolve(effect.result);
        return;
      }
      case 'notify':
        this.toast(effect.slot, effect.notification);
        return;
      case 'close-toast':
        this.closeToast(effect.slot);
        return;
      case 'log':
        this.logger[effect.level](effect.message);
        return;
    }
  }

  // ---- effects ----

  private async load(keyId: string, quiet = false): Promise<void> {
    const descriptor = this.descriptors.get(keyId);
    if (!descriptor || !findKey(this.stateValue, keyId)) return;
    const abort = new AbortController();
    let key: OpenKey | undefined;
    try {
      key = await this.deps.open(descriptor, abort.signal);
      if (key.session.locked) {
        this.dispatch({ type: 'key-loaded', keyId, serial: key.session.serial, locked: true, credentials: [], quiet });
        return;
      }
      const credentials = await key.session.list(abort.signal);
      this.dispatch({ type: 'key-loaded', keyId, serial: key.session.serial, locked: false, credentials, quiet });
    } catch (error) {
      // Unplugged while being listed: key-removed has taken (or is about to take) its section away.
      if (isKeytapError(error, 'KEY_REMOVED') && !this.descriptorPresent(keyId)) return;
      this.dispatch({ type: 'key-failed', keyId, error: toStateError(error, this.logger) });
    } finally {
      if (key) await key.close().catch((error: unknown) => this.logger.warn(`closing ${descriptor.name} failed: ${describeUnknown(error)}`));
    }
  }

  private descriptorPresent(keyId: string): boolean {
    return findKey(this.stateValue, keyId) !== undefined;
  }

  private startRead(requestId: number, keyId: string, credential: KeyCredential, time: number): void {
    const abort = new AbortController();
    this.reads.set(requestId, abort);
    // Not tracked for idle(): a read may wait for a touch; its end arrives as an event.
    void this.enqueue(keyId, async () => {
      const descriptor = this.descriptors.get(keyId);
      let key: OpenKey | undefined;
      try {
        if (abort.signal.aborted) return;
        if (!descriptor) throw new KeytapError('KEY_REMOVED', 'The key is gone.');
        key = await this.deps.open(descriptor, abort.signal);
        if (key.session.locked) {
          throw new KeytapError('AUTH_REQUIRED', `The OATH application on ${key.name} is password-protected.`, { detail: { kind: 'locked', keyName: key.name } });
        }
        const code: OathCode = await key.session.calculate(credential, {
          time,
          signal: abort.signal,
          onTouchNeeded: () => {
            this.guard('touch prompt', () => {
              this.waiters.get(requestId)?.onTouch?.();
              this.dispatch({ type: 'touch-needed', requestId });
            });
          },
        });
        this.dispatch({ type: 'read-succeeded', requestId, code, now: this.nowSeconds() });
      } catch (error) {
        // After a cancel the state machine has moved on and ignores this; otherwise it explains it.
        this.dispatch({ type: 'read-failed', requestId, error: toStateError(error, this.logger), now: this.nowSeconds() });
      } finally {
        this.reads.delete(requestId);
        this.clearTouchTimer(requestId);
        if (key) await key.close().catch((error: unknown) => this.logger.warn(`closing ${key?.name ?? 'the key'} failed: ${describeUnknown(error)}`));
      }
    });
  }

  private async copy(requestId: number, text: string, clearAfterSeconds: number): Promise<void> {
    let error: StateError | undefined;
    try {
      await this.deps.clipboard.copy(text, clearAfterSeconds);
    } catch (e) {
      error = toStateError(e, this.logger);
    }
    const show = this.deps.config.current.showCodeInNotification;
    this.guard('copy finished', () => this.dispatch({ type: 'copy-finished', requestId, now: this.nowSeconds(), error, code: show ? text : undefined }));
  }

  private enqueue(keyId: string, operation: () => Promise<void>): Promise<void> {
    const previous = this.queues.get(keyId) ?? Promise.resolve();
    const next = previous.then(operation).catch((error: unknown) => this.logger.error(`key operation failed: ${describeUnknown(error)}`));
    this.queues.set(keyId, next);
    void next.then(() => {
      if (this.queues.get(keyId) === next) this.queues.delete(keyId);
    });
    return next;
  }

  /** Remembers work that `idle()` waits for, until it is done. */
  private track(work: Promise<void>): void {
    const tracked = work.catch((error: unknown) => this.logger.error(`background work failed: ${describeUnknown(error)}`));
    this.busy.add(tracked);
    void tracked.then(() => this.busy.delete(tracked));
  }

  /**
   * Re-lists every key (IPC asks for what is on the keys now, not what the menu last saw). A key
   * with a read in flight keeps what the menu shows: its queue waits for a touch.
   */
  private async refreshAll(): Promise<void> {
    const pendingKey = this.stateValue.pending?.keyId;
    for (const key of this.stateValue.keys) {
      if (key.status === 'loading' || key.id === pendingKey) continue; // a load is queued already, or the key is busy
      this.track(this.enqueue(key.id, () => this.load(key.id, true)));
    }
    await this.idle();
  }

  private clearTouchTimer(requestId: number): void {
    const handle = this.touchTimers.get(requestId);
    if (handle !== undefined) this.clock.clearTimeout(handle);
    this.touchTimers.delete(requestId);
  }

  // ---- toasts ----

  /** Toasts go out one after another, so "Code copied" always replaces the touch prompt it follows. */
  private toast(slot: ToastSlot, notification: Notification): void {
    if (!this.deps.config.current.notifications) return;
    this.toastChain = this.toastChain.then(async () => {
      try {
        const handle = await this.deps.notifier.show(notification, this.toastHandles.get(slot));
        this.toastHandles.set(slot, handle);
      } catch (error) {
        this.logger.warn(`showing a notification failed: ${describeUnknown(error)}`);
      }
    });
  }

  private closeToast(slot: ToastSlot): void {
    this.toastChain = this.toastChain.then(async () => {
      const handle = this.toastHandles.get(slot);
      if (!handle) return;
      this.toastHandles.delete(slot);
      try {
        await this.deps.notifier.close(handle);
      } catch (error) {
        this.logger.warn(`closing a notification failed: ${describeUnknown(error)}`);
      }
    });
  }

  // ---- the tray ----

  private scheduleRender(): void {
    if (this.renderScheduled || this.stopped) return;
    this.renderScheduled = true;
    // Coalesce the events of one tick (key added + its toast + …) into one render.
    queueMicrotask(() => {
      this.renderScheduled = false;
      this.rendering = this.rendering.then(async () => {
        let model: TrayModel;
        try {
          model = this.model;
        } catch (error) {
          this.logger.error(`building the menu failed: ${describeUnknown(error)}`);
          return;
        }
        const json = JSON.stringify(model);
        if (json === this.lastRendered) return;
        try {
          await this.deps.tray.render(model);
          this.lastRendered = json;
        } catch (error) {
          this.logger.warn(`updating the tray failed: ${describeUnknown(error)}`);
        }
      });
    });
  }

  private onTrayStatus(status: 'shown' | 'no-host'): void {
    const before = this.stateValue.trayHost;
    this.dispatch({ type: 'tray-host', status });
    if (status === 'no-host' && before !== 'no-host') {
      this.logger.warn(
        `no tray host (${this.deps.tray.name}): the icon is not shown until one appears. On GNOME, install the AppIndicator extension. keytap keeps running; "keytap code" still works.`,
      );
      if (before === 'unknown') {
        this.toast('app', { title: 'No system tray found', body: 'keytap keeps running. On GNOME, install the "AppIndicator and KStatusNotifierItem Support" extension; or bind "keytap code" to a shortcut.' });
      }
    } else if (status === 'shown' && before === 'no-host') {
      this.logger.info('the tray host is back; the icon is shown again');
      this.lastRendered = undefined;
      this.scheduleRender();
    }
  }

  // ---- settings, shortcut, autostart ----

  private onConfigChange(now: AppConfig, before: AppConfig): void {
    this.scheduleRender();
    if (now.shortcut !== before.shortcut) void this.registerShortcut(now.shortcut);
  }

  private reportConfigProblem(problem: KeytapError | undefined): void {
    if (!problem) return;
    this.logger.error(`${problem.message} ${problem.hint ?? ''}`.trim());
    // Shown even with toasts off: the file that turns them off may be the one that is broken.
    this.toastChain = this.toastChain.then(async () => {
      try {
        await this.deps.notifier.show({ title: 'keytap: settings file invalid', body: joinLines(problem.message, problem.hint) });
      } catch {
        // the log line above says it
      }
    });
  }

  private async registerShortcut(accelerator: string): Promise<void> {
    const { shortcut } = this.deps;
    try {
      if (this.shortcutRegistered !== undefined) {
        this.shortcutRegistered = undefined;
        await shortcut.unregister();
      }
      await shortcut.register(accelerator, () => this.shortcutPressed());
      this.shortcutRegistered = accelerator;
      this.dispatch({ type: 'shortcut-changed', status: 'registered' });
      this.logger.info(`global shortcut ${accelerator} registered (${shortcut.name})`);
    } catch (error) {
      const e = toStateError(error);
      this.dispatch({ type: 'shortcut-changed', status: 'unavailable' });
      this.logger.warn(`the global shortcut ${accelerator} is not available (${shortcut.name}): ${e.message}${e.hint ? ` ${e.hint}` : ''}`);
      this.toast('app', {
        title: `Shortcut ${accelerator} is not available here`,
        body: joinLines(e.hint ?? e.message, 'Bind the command "keytap code" to a key in your desktop\'s keyboard settings instead: it asks this keytap for the code.'),
      });
    }
  }

  private async refreshAutostart(): Promise<void> {
    try {
      this.dispatch({ type: 'autostart-changed', enabled: await this.deps.autostart.isEnabled() });
    } catch (error) {
      this.logger.warn(`cannot tell whether keytap starts at login (${this.deps.autostart.name}): ${describeUnknown(error)}`);
      this.dispatch({ type: 'autostart-changed', enabled: undefined });
    }
  }

  private async toggleAutostart(): Promise<void> {
    const { autostart } = this.deps;
    try {
      if (this.stateValue.autostart) await autostart.disable();
      else await autostart.enable(this.deps.autostartCommand);
    } catch (error) {
      const e = toStateError(error, this.logger);
      this.logger.warn(`changing "Start at login" failed (${autostart.name}): ${e.message}`);
      this.toast('app', { title: 'Could not change "Start at login"', body: joinLines(e.message, e.hint) });
    }
    await this.refreshAutostart();
  }

  // ---- plumbing ----

  private nowSeconds(): number {
    return this.clock.now() / 1000;
  }

  /** The event boundary: whatever `run` throws is logged, never thrown into an emitter or a timer. */
  private guard(what: string, run: () => void): void {
    try {
      run();
    } catch (error) {
      this.logger.error(`${what} failed: ${describeUnknown(error)}`);
    }
  }
}

/** What the state keeps of an error. Unexpected ones keep their stack in the log, not in a toast. */
export function toStateError(error: unknown, logger?: Logger): StateError {
  if (error instanceof KeytapError) return { code: error.code, ...explainForTray(error) };
  logger?.error(`unexpected: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  return {
    code: 'DEVICE_ERROR',
    message: `Unexpected error: ${error instanceof Error ? error.message : String(error)}`,
    hint: 'This is a bug in keytap; the log has the details. Please report it.',
  };
}

function describeUnknown(error: unknown): string {
  if (error instanceof KeytapError) return `${error.message}${error.hint ? ` ${error.hint}` : ''}`;
  return error instanceof Error ? error.message : String(error);
}

async function settle(promise: Promise<unknown>, logger: Logger, what: string): Promise<void> {
  try {
    await promise;
  } catch (error) {
    logger.warn(`${what} failed: ${describeUnknown(error)}`);
  }
}

function joinLines(...lines: (string | undefined)[]): string {
  return lines.filter((l): l is string => l !== undefined && l !== '').join('\n');
}
