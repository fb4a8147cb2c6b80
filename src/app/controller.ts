/**
 * The resident controller: it wires the parts of the resident process together and does no work
 * of its own. Events from the key watcher, the tray, the shortcut, the settings and IPC go into the
 * pure state machine (state.ts), which decides what happens and what the user is told; the effects
 * it returns go to the key operations (key-operations.ts), the toasts (toasts.ts), the clipboard,
 * the tray renderer (tray-render.ts) and the IPC callers waiting for a code (code-requests.ts).
 * Every dependency is injected, so tests run it with fakes and the composition root
 * (resident.ts) wires the real ones.
 *
 * Rules it keeps:
 * - Nothing escapes: each entry point (key events, clicks, shortcut presses, IPC requests, timers)
 *   catches what it runs; failures become an event (so a toast) and a log line.
 * - The code goes to the clipboard, to whoever asked over IPC and, only when the user turned
 *   that on, into a toast; never into a log line or the state.
 */
import { isOathDialect } from '../device/key-dialect.js';
import type { KeyDescriptor } from '../device/discovery/enumerate.js';
import { noKeyError } from '../device/open.js';
import type { KeyCredential } from '../device/oath/session.js';
import type { Autostart, GlobalShortcut, Typist } from '../desktop/platform.js';
import type { ScreenCapture } from '../desktop/screen-capture/types.js';
import type { FocusedWindow, FocusedWindowSource } from '../desktop/focused-window/types.js';
import { parseAccelerator } from '../desktop/hotkey/accelerator.js';
import { KeytapError, isKeytapError, lockedError, throwIfAborted } from '../errors.js';
import type { Notifier } from '../notify/types.js';
import type { TrayBackend, TrayHostStatus, TrayModel } from '../tray/model.js';
import type { QrScan } from '../qr/accounts.js';
import { scanAndWipe } from '../qr/accounts.js';
import { accountLabel } from './account-label.js';
import type { Choice } from './account-choices.js';
import { choicesOf } from './account-choices.js';
import { chooseAccount } from './choose-account.js';
import { CodeRequests } from './code-requests.js';
import type { AppConfig, ConfigStore, Deliver, WindowRule } from './config.js';
import { KeyOperations } from './key-operations.js';
import type { RecentStore } from './recent-store.js';
import type { OpenedKey } from './key-session.js';
import type { Clock, Logger } from './logger.js';
import { consoleLogger, describeUnknown, settle, systemClock } from './logger.js';
import type { MenuAction } from './menu-model.js';
import { buildTrayModel, parseMenuId } from './menu-model.js';
import type { Keyring } from '../desktop/keyring/index.js';
import type { SecretPrompt } from '../desktop/secret-prompt/index.js';
import type { AppEvent, AppState, Effect, KeyState, StateError, StateSettings } from './state.js';
import { INITIAL_STATE, accountKeyRef, deliverFor, findKey, reduce } from './state.js';
import { fromStateError, toStateError } from './state-error.js';
import { Toasts } from './toasts.js';
import { TrayRenderer } from './tray-render.js';
import { accountForCommand, matchWindow } from './window-rules.js';

/** Where keys come from: the discovery KeyWatcher, or a fake. */
export interface KeySource {
  /** 'changed': a key still there is reached over other interfaces now (the same id; use this descriptor). */
  on(event: 'added' | 'removed' | 'changed', listener: (key: KeyDescriptor) => void): unknown;
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

/** A fuzzy finder of the desktop's (fuzzel, wofi, rofi, dmenu): the accounts offered where the tray host cannot show the menu. */
export interface AccountFinder {
  readonly name: string;
  /** The chosen line; rejects with CANCELLED when the user cancels (Esc). */
  choose(lines: readonly string[], signal: AbortSignal): Promise<string>;
}

export interface ControllerDeps {
  keys: KeySource;
  /** Opens a session on the key for one operation (the device layer's openOathSession fits). */
  open: (descriptor: KeyDescriptor, signal: AbortSignal) => Promise<OpenedKey>;
  tray: TrayBackend;
  notifier: Notifier;
  clipboard: ClipboardGuardLike;
  shortcut: GlobalShortcut;
  /** Types a code into the focused window ("Type the code"); without one, typing falls back to copying. */
  typist?: Typist | undefined;
  autostart: Autostart;
  /** What "Start at login" runs (argv). */
  autostartCommand: readonly string[];
  config: Pick<ConfigStore, 'current' | 'set' | 'onChange' | 'path' | 'problem' | 'onProblemChange'>;
  /** Opens a file with the desktop's default application ("Settings"). */
  openPath: (path: string) => Promise<void>;
  /** The screen, for "Add account from QR code on screen…" (absent: the item says it cannot). */
  screenCapture?: ScreenCapture | undefined;
  /** Where the "Recent" list is kept across restarts; none: in memory only. */
  recent?: RecentStore | undefined;
  clock?: Clock | undefined;
  logger?: Logger | undefined;
  version?: string | undefined;
  /** The OS keyring (remembered access keys), where there is one. */
  keyring?: Keyring | undefined;
  /** How "Unlock…" asks for a password; undefined: it cannot. */
  secretPrompt?: (() => SecretPrompt) | undefined;
  /** The finder for this session, looked for at each click on a host that cannot show the menu; undefined: none installed. */
  finder?: (() => AccountFinder | undefined) | undefined;
  /** Which window has the focus, read at each shortcut press (window rules); undefined: none is read. */
  focusedWindow?: FocusedWindowSource | undefined;
}

export interface CodeAnswer {
  id: string;
  code: string;
  validFrom?: number | undefined;
  validTo?: number | undefined;
  /** Whether the code is on the clipboard; when not, why (the same words as the toast). */
  copied: boolean;
  copyError?: StateError | undefined;
  /** Whether the code was typed into the focused window; when it was to be and was not, why. */
  typed: boolean;
  typeError?: StateError | undefined;
}

/**
 * How many accounts' reads may wait for their turn behind the one being read (each shared by any
 * number of callers). A queue this long already means minutes of touches; more is refused (BUSY).
 */
export const MAX_QUEUED_READS = 16;

/** An IPC read waiting for its turn. */
interface QueuedRead {
  requestId: number;
  keyId: string;
  credentialId: string;
  deliver: Deliver;
}

export interface KeyListing {
  id: string;
  name: string;
  serial?: string | undefined;
  status: KeyState['status'];
  error?: StateError | undefined;
  credentials: KeyCredential[];
}

/** The id of the type shortcut, next to the first one (the portal shows both in its dialog). */
export const TYPE_SHORTCUT_ID = 'keytap-type';

export class Controller {
  private stateValue: AppState = INITIAL_STATE;
  private readonly operations: KeyOperations;
  private readonly toasts: Toasts;
  private readonly renderer: TrayRenderer;
  private readonly requests = new CodeRequests();
  /** IPC reads waiting for the one in flight to end, oldest first. */
  private readonly queued: QueuedRead[] = [];
  private startingQueued = false;
  private started = false;
  /**
   * The "Add account from QR code" under way (one at a time: a second click is ignored): Cancel and
   * stop() abort it, and stop() waits for it to end.
   */
  private qrAdd: { controller: AbortController; done: Promise<void> } | undefined;
  private stopped = false;
  /** The finder open for a host that cannot show the menu (one at a time): stop() closes it. */
  private finding: AbortController | undefined;
  /** The codes being typed, by request id: Cancel and stop() abort them. */
  private readonly typing = new Map<number, AbortController>();
  private shortcutRegistered: string | undefined;
  /**
   * The window that had the focus at the last shortcut press, for "Use for this window…". Kept in
   * memory only: its title never goes into a log line, a toast or the state.
   */
  private lastFocused: FocusedWindow | undefined;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private quitResolve!: () => void;
  private readonly unsubscribe: (() => void)[] = [];
  /** Resolves when the user chose Quit (or `quit()` was called). */
  readonly quitRequested: Promise<void>;

  constructor(private readonly deps: ControllerDeps) {
    this.clock = deps.clock ?? systemClock;
    this.logger = deps.logger ?? consoleLogger;
    this.operations = new KeyOperations({
      open: deps.open,
      clock: this.clock,
      logger: this.logger,
      report: (event) => this.dispatch(event),
      hasKey: (keyId) => findKey(this.stateValue, keyId) !== undefined,
      onTouchNeeded: (requestId) => this.requests.touchNeeded(requestId),
      keyring: deps.keyring,
      prompt: deps.secretPrompt,
    });
    this.toasts = new Toasts(deps.notifier, this.logger);
    this.renderer = new TrayRenderer(deps.tray, () => this.model, this.logger);
    this.quitRequested = new Promise((resolve) => {
      this.quitResolve = resolve;
    });
  }

  get state(): AppState {
    return this.stateValue;
  }

  get model(): TrayModel {
    return buildTrayModel(this.stateValue, this.deps.config.current, this.lastFocused ? { app: this.lastFocused.app } : undefined);
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
    if (this.deps.recent) {
      try {
        this.dispatch({ type: 'recent-loaded', recent: await this.deps.recent.load() });
      } catch (error) {
        this.logger.warn(`loading the recent accounts failed: ${describeUnknown(error)}`);
      }
    }

    try {
      await this.deps.tray.start(
        (id) => this.handleClick(id),
        (status, reason) => this.guard('tray host', () => this.onTrayStatus(status, reason)),
        () => this.menuWanted(),
      );
    } catch (error) {
      this.dispatch({ type: 'tray-failed', backend: this.deps.tray.name, error: toStateError(error) });
    }
    this.renderer.schedule();

    await this.registerShortcut(config.current.shortcut);
    void this.refreshAutostart();

    const { keys } = this.deps;
    keys.on('added', (descriptor) => this.guard('key added', () => this.onKeyAdded(descriptor)));
    keys.on('removed', (descriptor) => this.guard('key removed', () => this.onKeyRemoved(descriptor)));
    keys.on('changed', (descriptor) => this.guard('key changed', () => this.operations.changed(descriptor)));
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
    this.renderer.halt();
    for (const off of this.unsubscribe.splice(0)) off();
    for (const read of this.queued.splice(0)) this.requests.done(read.requestId, { ok: false, error: { code: 'CANCELLED', message: 'keytap is quitting.' } });
    for (const requestId of [...this.operations.readsInFlight(), ...this.typing.keys()]) {
      this.dispatch({ type: 'read-cancelled', requestId, reason: { code: 'CANCELLED', message: 'keytap is quitting.' }, now: this.nowSeconds() });
    }
    for (const typing of this.typing.values()) typing.abort(new KeytapError('CANCELLED', 'keytap is quitting.'));
    // No capture or search goes on after Quit; its working copies are zeroed before stop() ends.
    this.finding?.abort(new KeytapError('CANCELLED', 'keytap is quitting.'));
    const qrAdd = this.qrAdd;
    qrAdd?.controller.abort(new KeytapError('CANCELLED', 'keytap is quitting.'));
    await qrAdd?.done;
    const operations = this.operations.stop();
    await settle(this.deps.keys.stop(), this.logger, 'stopping the key watcher');
    if (this.shortcutRegistered !== undefined) await settle(this.deps.shortcut.unregister(), this.logger, 'unregistering the shortcut');
    await settle(this.deps.clipboard.stop(), this.logger, 'clearing the clipboard');
    await settle(operations, this.logger, 'finishing key operations');
    await settle(this.renderer.settled(), this.logger, 'rendering');
    await this.toasts.closeAll();
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

  /**
   * The tray host left showing a menu to keytap (swaybar cannot show it): the accounts go to the
   * desktop's finder, and the chosen one is read as its menu item's click reads it. While a
   * finder is open, another click opens no second one; a cancelled finder reads nothing.
   */
  menuWanted(): void {
    this.guard('tray click', () => {
      if (this.finding || this.stopped) return;
      const finder = this.deps.finder?.();
      if (!finder) {
        this.dispatch({ type: 'menu-not-shown', reason: 'no-finder' });
        return;
      }
      const choices = this.readyChoices();
      if (choices.length === 0) {
        this.dispatch({ type: 'menu-not-shown', reason: this.stateValue.keys.length === 0 ? 'no-key' : 'no-accounts' });
        return;
      }
      this.offer(finder, choices, (chosen) => this.onAction({ type: 'read', keyId: chosen.keyId, credentialId: chosen.credential.id }));
    });
  }

  private readyChoices(): Choice[] {
    return choicesOf(this.stateValue.keys.filter((k) => k.status === 'ready').map((k) => ({ id: k.id, name: k.name, serial: k.serial, credentials: k.credentials })));
  }

  /** Opens the finder over `choices`; the chosen one goes to `onChosen`, a cancel goes nowhere. */
  private offer(finder: AccountFinder, choices: Choice[], onChosen: (chosen: Choice) => void): void {
    const finding = new AbortController();
    this.finding = finding;
    const lines = choices.map((c) => c.line);
    void finder
      .choose(lines, finding.signal)
      .then(
        (line) => {
          const chosen = choices.find((c) => c.line === line);
          if (finding.signal.aborted || this.stopped) return;
          if (!chosen) {
            this.logger.warn(`${finder.name} answered a line that is none of the accounts offered`);
            return;
          }
          this.guard('finder choice', () => onChosen(chosen));
        },
        (error: unknown) => {
          if (isKeytapError(error, 'CANCELLED') || this.stopped) return;
          this.guard('finder', () => this.dispatch({ type: 'finder-failed', finder: finder.name, error: toStateError(error, this.logger) }));
        },
      )
      .finally(() => {
        if (this.finding === finding) this.finding = undefined;
      });
  }

  /**
   * The global shortcut: the account the focused window calls for (window-rules.ts), else the
   * default account, or the only one. `deliver`: 'type' for the type shortcut. The window is read
   * first, before a finder can take the focus; several accounts that fit go to the finder.
   */
  shortcutPressed(deliver?: Deliver): void {
    this.guard('shortcut', () => {
      const source = this.deps.focusedWindow;
      if (!source) {
        this.shortcutFor(undefined, deliver);
        return;
      }
      void this.readFocusedWindow(source).then((window) => this.guard('shortcut', () => this.shortcutFor(window, deliver)));
    });
  }

  /** The focused window now; undefined when none is, or when it cannot be told (logged, without a title). */
  private async readFocusedWindow(source: FocusedWindowSource): Promise<FocusedWindow | undefined> {
    try {
      const window = await source.read();
      if (window && (window.title || window.app)) {
        this.lastFocused = window;
        this.renderer.schedule();
      }
      return window;
    } catch (error) {
      this.logger.warn(`reading the focused window (${source.name}) failed: ${describeUnknown(error)}`);
      return undefined;
    }
  }

  private shortcutFor(window: FocusedWindow | undefined, deliver: Deliver | undefined): void {
    if (this.stopped) return;
    const config = this.deps.config.current;
    const defaultAccount = config.defaultAccount ?? undefined;
    const ready = this.stateValue.keys.filter((k) => k.status === 'ready');
    const accounts = ready.flatMap((k) => k.credentials.map((c) => ({ keyId: k.id, keySerial: k.serial, credentialId: c.id, issuer: c.issuer })));
    const match = matchWindow(window, accounts, config.windowRules, defaultAccount?.keyId);
    if (match.kind === 'several' && !this.finding) {
      const finder = this.deps.finder?.();
      if (finder) {
        const choices = this.readyChoices().filter((c) => match.accounts.some((a) => a.keyId === c.keyId && a.credentialId === c.credential.id));
        this.logger.info(`the shortcut offers ${choices.length} accounts that fit the focused window (${match.why}) in ${finder.name}`);
        this.offer(finder, choices, (chosen) =>
          this.dispatch({ type: 'read-requested', requestId: this.requests.newId(), keyId: chosen.keyId, credentialId: chosen.credential.id, source: 'shortcut', now: this.nowSeconds(), deliver }),
        );
        return;
      }
    }
    const fitting = match.kind === 'one' ? { accounts: [match.account], why: match.why } : match.kind === 'several' ? { accounts: match.accounts, why: match.why } : undefined;
    this.dispatch({ type: 'shortcut-pressed', requestId: this.requests.newId(), defaultAccount, now: this.nowSeconds(), deliver, window: fitting });
  }

  /**
   * `keytap code [query]` over IPC: the same flow as a click (touch toast, copy, toast), answering
   * with the code. With several keys, the query is matched across all of them (choose-account.ts
   * says which key reads a name that is on several).
   */
  async requestCode(
    query: string | undefined,
    options: { signal?: AbortSignal | undefined; onTouch?: ((credentialId: string) => void) | undefined; deliver?: Deliver | undefined; focused?: boolean | undefined } = {},
  ): Promise<CodeAnswer> {
    // Read before anything else: the window that had the focus when the command ran.
    const window = options.focused && this.deps.focusedWindow ? await this.readFocusedWindow(this.deps.focusedWindow) : undefined;
    await this.refreshAll();
    const ready = this.stateValue.keys.filter((k) => k.status === 'ready');
    if (this.stateValue.keys.length === 0) throw noKeyError();
    if (ready.length === 0) {
      const key = this.stateValue.keys[0]!;
      if (key.status === 'locked') {
        // The words `keytap code` uses when it opens a locked key itself.
        throw lockedError(key.name);
      }
      throw key.error ? fromStateError(key.error) : noKeyError();
    }
    const config = this.deps.config.current;
    if (options.focused) {
      const accounts = ready.flatMap((k) => k.credentials.map((c) => ({ keyId: k.id, keySerial: k.serial, credentialId: c.id, issuer: c.issuer })));
      const fits = accountForCommand(window, accounts, config.windowRules, config.defaultAccount);
      if (fits) {
        this.logger.info(`keytap code --focused reads ${fits.credentialId} (${fits.why})`);
        return this.readFor({ keyId: fits.keyId, credentialId: fits.credentialId }, options);
      }
    }
    const chosen = chooseAccount(ready, query, config.defaultAccount?.keyId);
    return this.readFor({ keyId: chosen.keyId, credentialId: chosen.credentialId }, options);
  }

  /**
   * `keytap pick` over IPC: one exact account of one key (as `listKeys` named them), read as a
   * click reads it (touch toast, copied or typed as that account's click would be, toast),
   * answering with the code.
   */
  async readAccount(keyId: string, credentialId: string, options: { signal?: AbortSignal | undefined; onTouch?: ((credentialId: string) => void) | undefined } = {}): Promise<CodeAnswer> {
    const key = findKey(this.stateValue, keyId);
    if (!key) throw new KeytapError('NO_KEY', `The key ${keyId} is not connected any more.`, { hint: 'Plug it in again, or pick again.' });
    if (key.status === 'locked') throw lockedError(key.name);
    if (key.status === 'error' && key.error) throw fromStateError(key.error);
    // A key still being listed has no accounts yet: that is not "holds no account".
    if (key.status !== 'ready') throw new KeytapError('BUSY', `${key.name} is not ready yet: keytap is still reading its accounts.`, { hint: 'Try again in a moment.' });
    if (!key.credentials.some((c) => c.id === credentialId)) {
      throw new KeytapError('NOT_FOUND', `${key.name} holds no account ${credentialId} (any more).`, { detail: { kind: 'not-found', id: credentialId } });
    }
    // As a click: the account's own delivery, else the tray's.
    return this.readFor({ keyId, credentialId }, { ...options, deliver: deliverFor(this.settings(), key, credentialId) });
  }

  /**
   * One IPC caller's read: it joins the read of the same account in flight or queued (one touch,
   * one code for all), else starts one, or waits its turn behind the read in flight (a key does
   * one thing at a time, and the menu's single pending read is what its toasts describe).
   */
  private async readFor(
    wanted: { keyId: string; credentialId: string },
    options: { signal?: AbortSignal | undefined; onTouch?: ((credentialId: string) => void) | undefined; deliver?: Deliver | undefined },
  ): Promise<CodeAnswer> {
    // An IPC caller says where its code goes; `keytap code` without --type copies, as it always did.
    const deliver = options.deliver ?? 'copy';
    const same = (read: { keyId: string; credentialId: string; deliver?: Deliver | undefined } | undefined): boolean =>
      read?.keyId === wanted.keyId && read.credentialId === wanted.credentialId && (read.deliver ?? 'copy') === deliver;
    const pending = this.stateValue.pending;
    let requestId: number;
    let start = false;
    if (pending && same(pending)) {
      requestId = pending.requestId;
    } else {
      const queued = this.queued.find(same);
      if (queued) {
        requestId = queued.requestId;
      } else if (pending || this.queued.length > 0) {
        if (this.queued.length >= MAX_QUEUED_READS) {
          throw new KeytapError('BUSY', `${this.queued.length} other reads are waiting for the key already; ${wanted.credentialId} was not read.`, { hint: 'Try again once they are done.' });
        }
        requestId = this.requests.newId();
        this.queued.push({ requestId, ...wanted, deliver });
      } else {
        requestId = this.requests.newId();
        start = true;
      }
    }
    // Once per caller: one that joins a read waiting for its touch is told at once, and not again.
    let told = false;
    const onTouch = options.onTouch
      ? () => {
          if (told) return;
          told = true;
          options.onTouch?.(wanted.credentialId);
        }
      : undefined;
    const waiting = this.requests.wait(requestId, onTouch);
    const onAbort = (): void => {
      this.guard('IPC cancel', () => {
        const reason = { code: 'CANCELLED', message: 'The caller went away.' } as const;
        if (!waiting.leave(reason)) return;
        // Nobody waits for this read any more: a queued one is dropped, one started for IPC callers ends.
        const index = this.queued.findIndex((q) => q.requestId === requestId);
        if (index >= 0) this.queued.splice(index, 1);
        else if (this.stateValue.pending?.requestId === requestId && this.stateValue.pending.source === 'ipc') this.dispatch({ type: 'read-cancelled', requestId, reason, now: this.nowSeconds() });
      });
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    if (start) this.dispatch({ type: 'read-requested', requestId, keyId: wanted.keyId, credentialId: wanted.credentialId, source: 'ipc', now: this.nowSeconds(), deliver });
    else if (pending?.requestId === requestId && pending.phase === 'touch') onTouch?.();
    const outcome = await waiting.outcome;
    options.signal?.removeEventListener('abort', onAbort);
    if (!outcome.ok) throw fromStateError(outcome.error);
    const { code } = outcome;
    return {
      id: outcome.credentialId,
      code: code.code,
      validFrom: code.validFrom,
      validTo: code.validTo,
      copied: outcome.copied,
      copyError: outcome.copyError,
      typed: outcome.typed,
      typeError: outcome.typeError,
    };
  }

  /** The next queued IPC read, once none is in flight. */
  private startQueued(): void {
    if (this.startingQueued) return;
    this.startingQueued = true;
    try {
      while (!this.stateValue.pending && this.queued.length > 0) {
        const next = this.queued.shift()!;
        this.dispatch({ type: 'read-requested', requestId: next.requestId, keyId: next.keyId, credentialId: next.credentialId, source: 'ipc', now: this.nowSeconds(), deliver: next.deliver });
      }
    } finally {
      this.startingQueued = false;
    }
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
      before = this.operations.inFlight();
      await Promise.all(before);
      await this.toasts.settled();
      await this.renderer.settled();
    } while (this.operations.inFlight().some((p) => !before.includes(p)));
  }

  // ---- events in ----

  private onKeyAdded(descriptor: KeyDescriptor): void {
    // A Feitian HOTP key types its own code when touched and has no accounts to show: not the tray's.
    if (!isOathDialect(descriptor.dialect) && descriptor.dialect !== undefined) return;
    this.operations.added(descriptor);
    this.dispatch({ type: 'key-added', key: { id: descriptor.id, name: descriptor.name, kind: descriptor.kind, serial: descriptor.serial, dialect: descriptor.dialect } });
  }

  private onKeyRemoved(descriptor: KeyDescriptor): void {
    if (!isOathDialect(descriptor.dialect) && descriptor.dialect !== undefined) return;
    this.dispatch({ type: 'key-removed', keyId: descriptor.id, now: this.nowSeconds() });
    this.operations.removed(descriptor);
  }

  private onAction(action: MenuAction): void {
    const { config } = this.deps;
    switch (action.type) {
      case 'read':
        this.dispatch({ type: 'read-requested', requestId: this.requests.newId(), keyId: action.keyId, credentialId: action.credentialId, source: 'menu', now: this.nowSeconds() });
        return;
      case 'retry':
        this.dispatch({ type: 'key-retry', keyId: action.keyId });
        return;
      case 'unlock':
        this.operations.unlock(action.keyId);
        return;
      case 'remember':
      case 'forget':
        this.operations.setRemembered(action.keyId, action.type === 'remember');
        return;
      case 'add-from-qr':
        this.addFromQr(action.keyId);
        return;
      case 'cancel-qr':
        this.qrAdd?.controller.abort(new KeytapError('CANCELLED', 'Adding an account from a QR code was cancelled.'));
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
      case 'type-code':
        config.set('deliver', config.current.deliver === 'copy' ? 'type' : 'copy');
        return;
      case 'type-code-for': {
        const current = config.current;
        const key = this.stateValue.keys.find((k) => accountKeyRef(k) === action.account.keyId || k.id === action.account.keyId);
        const now = key ? deliverFor({ deliver: current.deliver, deliverFor: current.deliverFor }, key, action.account.credentialId) : current.deliver;
        // Back on: everyone's choice when that types (a 'both' in the file stays 'both'), else 'type'.
        const wanted: Deliver = now !== 'copy' ? 'copy' : current.deliver !== 'copy' ? current.deliver : 'type';
        // Every entry deliverFor() would find for this account (by serial or by the key's id), not only the exact one.
        const refs = new Set([action.account.keyId, ...(key ? [accountKeyRef(key), key.id] : [])]);
        const others = current.deliverFor.filter((d) => !(refs.has(d.keyId) && d.credentialId === action.account.credentialId));
        // The same as everyone's: no entry of its own, so changing the global choice changes it too.
        config.set('deliverFor', wanted === current.deliver ? others : [...others, { ...action.account, deliver: wanted }]);
        return;
      }
      case 'window-rule':
        this.addWindowRule(action.account);
        return;
      case 'toggle':
        if (action.setting === 'autostart') void this.toggleAutostart();
        else config.set(action.setting, !config.current[action.setting]);
        return;
      case 'settings':
        void this.deps.openPath(config.path).catch((error: unknown) => {
          this.guard('settings', () => this.dispatch({ type: 'settings-open-failed', path: config.path, error: toStateError(error) }));
        });
        return;
      case 'about':
        this.dispatch({ type: 'about-requested', version: this.deps.version, settingsPath: config.path });
        return;
      case 'quit':
        this.quit();
        return;
    }
  }

  /**
   * "Use for this window…": the window focused at the last shortcut press reads `account` from now
   * on. The rule holds its whole title and its application (the settings file is the user's to
   * loosen); one the same as it is not added twice. The log and the toast name the account only.
   */
  private addWindowRule(account: { keyId: string; credentialId: string }): void {
    const window = this.lastFocused;
    if (!window) return;
    const rule = { keyId: account.keyId, credentialId: account.credentialId, ...(window.title ? { title: window.title } : {}), ...(window.app ? { app: window.app } : {}) };
    const { config } = this.deps;
    const rules = config.current.windowRules;
    const same = (r: WindowRule): boolean => r.keyId === rule.keyId && r.credentialId === rule.credentialId && r.title === rule.title && r.app === rule.app;
    const number = rules.findIndex(same) + 1 || rules.length + 1;
    if (!rules.some(same)) config.set('windowRules', [...rules, rule]);
    this.dispatch({ type: 'window-rule-added', credentialId: account.credentialId, rule: number, app: window.app });
  }

  private onTrayStatus(status: TrayHostStatus, reason: string | undefined): void {
    const before = this.stateValue.trayHost;
    this.dispatch({ type: 'tray-host', status, backend: this.deps.tray.name, reason });
    if (status === 'shown' && (before === 'no-host' || before === 'no-bus')) this.renderer.renderAgain();
  }

  private onConfigChange(now: AppConfig, before: AppConfig): void {
    this.renderer.schedule();
    if (now.shortcut !== before.shortcut || now.typeShortcut !== before.typeShortcut) void this.registerShortcut(now.shortcut);
  }

  private reportConfigProblem(problem: KeytapError | undefined): void {
    if (problem) this.dispatch({ type: 'config-problem', error: toStateError(problem) });
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
      deliver: c.deliver,
      deliverFor: c.deliverFor,
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
    this.renderer.schedule();
    for (const effect of effects) this.guard(`effect ${effect.type}`, () => this.run(effect));
    if (!this.stateValue.pending && this.queued.length > 0) this.guard('queued reads', () => this.startQueued());
  }

  private run(effect: Effect): void {
    switch (effect.type) {
      case 'load':
        this.operations.load(effect.keyId);
        return;
      case 'read':
        this.operations.read(effect.requestId, effect.keyId, effect.credential, effect.time);
        return;
      case 'cancel':
        this.operations.cancel(effect.requestId, effect.reason);
        this.typing.get(effect.requestId)?.abort(fromStateError(effect.reason));
        return;
      case 'touch-timer':
        this.operations.startTouchTimer(effect.requestId, effect.ms);
        return;
      case 'copy':
        this.operations.track(this.copy(effect.requestId, effect.text, effect.clearAfterSeconds));
        return;
      case 'type':
        this.operations.track(this.type(effect.requestId, effect.text));
        return;
      case 'delivered':
        this.requests.delivered(effect.requestId, { copied: effect.copied, copyError: effect.copyError, typed: effect.typed, typeError: effect.typeError });
        return;
      case 'done':
        this.operations.clearTouchTimer(effect.requestId);
        this.requests.done(effect.requestId, effect.result);
        return;
      case 'notify':
        this.toasts.show(effect.slot, effect.notification);
        return;
      case 'close-toast':
        this.toasts.close(effect.slot);
        return;
      case 'save-recent':
        if (this.deps.recent) this.operations.track(this.deps.recent.save(effect.recent).catch((error: unknown) => this.logger.warn(`saving the recent accounts failed: ${describeUnknown(error)}`)));
        return;
      case 'log':
        this.logger[effect.level](effect.message);
        return;
    }
  }

  // ---- effects that are not key operations ----

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

  private async type(requestId: number, text: string): Promise<void> {
    let error: StateError | undefined;
    const controller = new AbortController();
    this.typing.set(requestId, controller);
    try {
      if (!this.deps.typist) throw new KeytapError('UNSUPPORTED', 'keytap cannot type here.', { hint: 'Paste the code instead.' });
      await this.deps.typist.type(text, controller.signal);
    } catch (e) {
      error = toStateError(e, this.logger);
    } finally {
      this.typing.delete(requestId);
    }
    // Cancelled or quitting: the read has ended already, and nothing may be copied after the clipboard stopped.
    if (controller.signal.aborted || this.stopped) return;
    // The code comes back only for the copy that follows (both, or the fallback); it is not kept.
    this.guard('type finished', () => this.dispatch({ type: 'type-finished', requestId, now: this.nowSeconds(), error, code: text }));
  }

  /**
   * Re-lists every key (IPC asks for what is on the keys now, not what the menu last saw). A key
   * with a read in flight keeps what the menu shows: its queue waits for a touch.
   */
  private async refreshAll(): Promise<void> {
    const pendingKey = this.stateValue.pending?.keyId;
    for (const key of this.stateValue.keys) {
      if (key.status === 'loading' || key.id === pendingKey) continue; // a load is queued already, or the key is busy
      this.operations.load(key.id, true);
    }
    await this.idle();
  }

  /**
   * "Add account from QR code on screen…": capture, find the codes, add the one account there is.
   * The tray has no dialog to choose or confirm in, so several accounts add none (the toast points
   * to `keytap add --qr`); the toast afterwards names what was added.
   */
  private addFromQr(keyId: string): void {
    if (this.qrAdd || this.stopped || !findKey(this.stateValue, keyId)) return;
    const controller = new AbortController();
    const done = this.captureAndAdd(keyId, controller.signal).finally(() => {
      this.qrAdd = undefined;
    });
    this.qrAdd = { controller, done };
  }

  private async captureAndAdd(keyId: string, signal: AbortSignal): Promise<void> {
    this.dispatch({ type: 'qr-add-started', keyId });
    let scan: QrScan | undefined;
    try {
      const capture = this.deps.screenCapture;
      if (!capture) throw new KeytapError('UNSUPPORTED', 'keytap cannot capture the screen here.', { hint: 'Use "keytap add --qr IMAGE" in a terminal with a saved image of the code.' });
      const shot = await capture.capture(signal);
      scan = await scanAndWipe(shot, 'screen', { signal });
      if (scan.accounts.length > 1) {
        throw new KeytapError('AMBIGUOUS', `The QR codes on the screen hold ${scan.accounts.length} accounts; the tray adds one at a time, so none was added.`, {
          hint: 'Show only the one you want, or choose in a terminal with "keytap add --qr".',
        });
      }
      const { credential } = scan.accounts[0]!;
      // The last moment a Cancel or Quit stops it: once writing to the key, it is finished.
      throwIfAborted(signal);
      await this.operations.add(keyId, credential);
      this.dispatch({ type: 'qr-account-added', keyId, label: accountLabel({ id: '', ...credential }) });
    } catch (error) {
      // After Quit there is no toast to show (the notifier is being stopped).
      if (!this.stopped) this.guard('QR code result', () => this.dispatch({ type: 'qr-account-failed', keyId, error: toStateError(error, this.logger) }));
    } finally {
      for (const account of scan?.accounts ?? []) account.credential.secret.fill(0);
    }
  }

  // ---- shortcut, autostart ----

  private async registerShortcut(accelerator: string): Promise<void> {
    const { shortcut } = this.deps;
    try {
      if (this.shortcutRegistered !== undefined) {
        this.shortcutRegistered = undefined;
        await shortcut.unregister();
      }
      const typeAccelerator = this.deps.config.current.typeShortcut;
      const typeBinding = { id: TYPE_SHORTCUT_ID, accelerator: typeAccelerator, description: 'keytap: type a code', onPress: () => this.shortcutPressed('type') };
      let typeShortcut = true;
      try {
        if (sameAccelerator(typeAccelerator, accelerator)) {
          throw new KeytapError('USAGE', `typeShortcut ${typeAccelerator} is the same keys as shortcut ${accelerator}.`, { hint: 'Choose other keys for typeShortcut in the settings file.' });
        }
        await shortcut.register(accelerator, () => this.shortcutPressed(), [typeBinding]);
      } catch (error) {
        typeShortcut = false;
        // A type shortcut that does not parse (a typo in the file) must not cost the first one. Any
        // other refusal holds for both: asking again would show the portal's dialog a second time.
        if (!isKeytapError(error, 'USAGE')) throw error;
        await shortcut.register(accelerator, () => this.shortcutPressed());
        this.logger.warn(`the type shortcut ${typeAccelerator} is not available (${shortcut.name}): ${describeUnknown(error)}`);
      }
      this.shortcutRegistered = accelerator;
      this.dispatch({ type: 'shortcut-changed', status: 'registered', accelerator, backend: shortcut.name, typeShortcut });
    } catch (error) {
      const binding = shortcut.desktopBinding?.([
        { accelerator, args: ['code'] },
        { accelerator: this.deps.config.current.typeShortcut, args: ['code', '--type'] },
      ]);
      this.dispatch({ type: 'shortcut-changed', status: 'unavailable', accelerator, backend: shortcut.name, error: toStateError(error), binding });
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
      this.dispatch({ type: 'autostart-failed', backend: autostart.name, error: toStateError(error, this.logger) });
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

/** Whether two accelerators name the same keys ("Ctrl+Alt+K" and "alt+ctrl+k"); one that does not parse is nobody's twin. */
function sameAccelerator(a: string, b: string): boolean {
  try {
    return JSON.stringify(parseAccelerator(a)) === JSON.stringify(parseAccelerator(b));
  } catch {
    return false;
  }
}
