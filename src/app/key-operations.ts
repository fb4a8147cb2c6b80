/**
 * The work done on keys: listing a key's accounts and reading one code. A key is opened per
 * operation and closed right after, because other programs (a browser doing FIDO, `keytap code`)
 * need it too; the operations on one key are queued, never interleaved. Results go back as
 * state-machine events; nothing here decides what the user is told.
 */
import type { KeyDescriptor } from '../device/discovery/enumerate.js';
import type { KeyCredential, OathCode } from '../device/oath/session.js';
import type { CredentialWithSecret } from '../otp/credential.js';
import { KeytapError, lockedError, isKeytapError } from '../errors.js';
import type { Keyring } from '../desktop/keyring/index.js';
import type { SecretPrompt } from '../desktop/secret-prompt/index.js';
import type { OpenedKey } from './key-session.js';
import type { LockableSession, UnlockContext } from './unlock.js';
import { KnownWrongSecrets, keyringEntryOf, unlockSession, withPin, withRememberedPin } from './unlock.js';
import type { Clock, Logger } from './logger.js';
import { describeUnknown } from './logger.js';
import type { AppEvent, StateError } from './state.js';
import { fromStateError, toStateError } from './state-error.js';

export interface KeyOperationsDeps {
  open: (descriptor: KeyDescriptor, signal: AbortSignal) => Promise<OpenedKey>;
  clock: Clock;
  logger: Logger;
  /** Feeds a result into the state machine. */
  report: (event: AppEvent) => void;
  /** Whether the state still has this key (it may have been unplugged meanwhile). */
  hasKey: (keyId: string) => boolean;
  /** A read waits for a touch (before `touch-needed` is reported). */
  onTouchNeeded: (requestId: number) => void;
  /** The OS keyring, where there is one: remembered access keys. */
  keyring?: Keyring | undefined;
  /** How to ask for a password ("Unlock…"); undefined: the tray cannot ask. */
  prompt?: (() => SecretPrompt) | undefined;
}

/** A locked key's access key, held in memory from its unlock until it is unplugged. */
interface HeldSecret {
  accessKey: Buffer;
  remembered: boolean;
}

/**
 * A Nitrokey 3's PIN, held in memory from its unlock until the key is unplugged, with the
 * PIN-protected credentials it listed: a re-list shows them without another VERIFY PIN (a touch).
 */
interface HeldPin {
  pin: string;
  remembered: boolean;
  credentials: KeyCredential[];
}

export class KeyOperations {
  private readonly descriptors = new Map<string, KeyDescriptor>();
  /** Serials read once per key while it stays plugged in: a listing is redone on every refresh. */
  private readonly serials = new Map<string, string | undefined>();
  /** Per key: the keyring entry its secrets are filed under (keyringEntryOf), as last seen when it was opened. */
  private readonly entries = new Map<string, string | undefined>();
  /** Per key: the tail of its operation queue. */
  private readonly queues = new Map<string, Promise<void>>();
  /** Listings in flight, for `idle()`. */
  private readonly busy = new Set<Promise<void>>();
  private readonly reads = new Map<number, AbortController>();
  private readonly touchTimers = new Map<number, unknown>();
  private readonly held = new Map<string, HeldSecret>();
  private readonly pins = new Map<string, HeldPin>();
  /** Remembered secrets found wrong while the tray runs: a keyring entry that could not be deleted is not tried on the next load or replug. */
  private readonly knownWrong = new KnownWrongSecrets();
  /**
   * Per key, from plug-in to unplugging (or quitting): every operation on it listens to this, so
   * an open prompt (a pinentry asking for its password) closes when the key goes or the tray quits.
   */
  private readonly plugged = new Map<string, AbortController>();

  constructor(private readonly deps: KeyOperationsDeps) {}

  added(descriptor: KeyDescriptor): void {
    this.descriptors.set(descriptor.id, descriptor);
    this.plugged.get(descriptor.id)?.abort(new KeytapError('KEY_REMOVED', 'The key is gone.'));
    this.plugged.set(descriptor.id, new AbortController());
  }

  /**
   * The key is reached over other interfaces now (its CCID interface came or went): later
   * operations open it the new way. Nothing else changes: it was not unplugged, so what is held
   * for it (an unlocked access key, a PIN) stays, and what runs now finishes the way it started.
   */
  changed(descriptor: KeyDescriptor): void {
    if (this.descriptors.has(descriptor.id)) this.descriptors.set(descriptor.id, descriptor);
  }

  /** Call after the state took the key away: an operation still queued fails on its own (the link is gone); the descriptor is forgotten after it. */
  removed(descriptor: KeyDescriptor): void {
    // Unplugged: what is asked for it is withdrawn (the prompt closes) and it is locked again. The
    // access key held in memory is wiped now, not when the queue drains.
    this.plugged.get(descriptor.id)?.abort(new KeytapError('KEY_REMOVED', 'The key is gone.'));
    this.plugged.delete(descriptor.id);
    this.held.get(descriptor.id)?.accessKey.fill(0);
    this.held.delete(descriptor.id);
    this.pins.delete(descriptor.id);
    const tail = this.queues.get(descriptor.id) ?? Promise.resolve();
    void tail.then(() => {
      if (!this.deps.hasKey(descriptor.id)) {
        this.descriptors.delete(descriptor.id);
        this.serials.delete(descriptor.id);
        this.entries.delete(descriptor.id);
      }
    });
  }

  /** Open the key, LIST, close; answers with key-loaded or key-failed. `quiet`: a re-list nobody needs a toast for. */
  load(keyId: string, quiet = false): void {
    this.track(this.enqueue(keyId, () => this.list(keyId, quiet)));
  }

  /** Open the key, CALCULATE for `time`, close; answers with touch-needed and read-succeeded or read-failed. */
  read(requestId: number, keyId: string, credential: KeyCredential, time: number): void {
    const abort = new AbortController();
    this.reads.set(requestId, abort);
    // Not tracked for idle(): a read may wait for a touch; its end arrives as an event.
    void this.enqueue(keyId, async () => {
      const descriptor = this.descriptors.get(keyId);
      let key: OpenedKey | undefined;
      let pin: string | undefined;
      try {
        if (abort.signal.aborted) return;
        if (!descriptor) throw new KeytapError('KEY_REMOVED', 'The key is gone.');
        const signal = this.whilePlugged(keyId, abort.signal);
        key = await this.deps.open(descriptor, signal);
        if (key.session.locked && !(await this.unlockOpened(keyId, key, signal, false))) throw lockedError(key.name);
        pin = credential.pinProtected === true ? this.pins.get(keyId)?.pin : undefined;
        const code: OathCode = await key.session.calculate(credential, {
          time,
          pin,
          signal,
          onTouchNeeded: () => {
            this.guard('touch prompt', () => {
              this.deps.onTouchNeeded(requestId);
              this.deps.report({ type: 'touch-needed', requestId });
            });
          },
        });
        this.report({ type: 'read-succeeded', requestId, code, now: this.nowSeconds() });
      } catch (error) {
        // After a cancel the state machine has moved on and ignores this; otherwise it explains it.
        this.report({ type: 'read-failed', requestId, error: toStateError(error, this.deps.logger), now: this.nowSeconds() });
        if (pin !== undefined && isKeytapError(error, 'WRONG_PASSWORD') && key) this.dropPin(keyId, key, pin);
      } finally {
        this.reads.delete(requestId);
        this.clearTouchTimer(requestId);
        if (key) await key.close().catch((error: unknown) => this.deps.logger.warn(`closing ${key?.name ?? 'the key'} failed: ${describeUnknown(error)}`));
      }
    });
  }

  /**
   * Open the key, PUT the account, close; in the key's queue like every operation. Resolves with
   * the stored account's id; the caller reports the outcome (and zeroes the secret).
   */
  add(keyId: string, credential: CredentialWithSecret): Promise<string> {
    return new Promise((resolve, reject) => {
      const work = this.enqueue(keyId, async () => {
        const descriptor = this.descriptors.get(keyId);
        let key: OpenedKey | undefined;
        try {
          if (!descriptor) throw new KeytapError('KEY_REMOVED', 'The key is gone.');
          key = await this.deps.open(descriptor, this.whilePlugged(keyId));
          if (key.session.locked) throw lockedError(key.name);
          if (!key.session.put) throw new KeytapError('UNSUPPORTED', `${key.name} cannot store accounts.`);
          resolve((await key.session.put(credential)).id);
        } catch (error) {
          reject(error instanceof Error ? error : new Error(String(error)));
        } finally {
          if (key) await key.close().catch((error: unknown) => this.deps.logger.warn(`closing ${key?.name ?? 'the key'} failed: ${describeUnknown(error)}`));
        }
      });
      this.track(work);
    });
  }

  /** Aborts the read in flight with this reason. */
  cancel(requestId: number, reason: StateError): void {
    this.reads.get(requestId)?.abort(fromStateError(reason));
    this.clearTouchTimer(requestId);
  }

  /** The reads in flight (to cancel them at quit). */
  readsInFlight(): number[] {
    return [...this.reads.keys()];
  }

  /** Reports touch-timed-out for the request after `ms`, unless its read ends first. */
  startTouchTimer(requestId: number, ms: number): void {
    this.clearTouchTimer(requestId);
    const handle = this.deps.clock.setTimeout(() => {
      this.touchTimers.delete(requestId);
      this.report({ type: 'touch-timed-out', requestId, now: this.nowSeconds() });
    }, ms);
    this.touchTimers.set(requestId, handle);
  }

  clearTouchTimer(requestId: number): void {
    const handle = this.touchTimers.get(requestId);
    if (handle !== undefined) this.deps.clock.clearTimeout(handle);
    this.touchTimers.delete(requestId);
  }

  /** Remembers work that `idle()` waits for, until it is done. */
  track(work: Promise<void>): void {
    const tracked = work.catch((error: unknown) => this.deps.logger.error(`background work failed: ${describeUnknown(error)}`));
    this.busy.add(tracked);
    void tracked.then(() => this.busy.delete(tracked));
  }

  /** The tracked work in flight now. */
  inFlight(): Promise<void>[] {
    return [...this.busy];
  }

  /** At quit: no timers left; resolves when every queued operation has finished. */
  async stop(): Promise<void> {
    for (const handle of this.touchTimers.values()) this.deps.clock.clearTimeout(handle);
    this.touchTimers.clear();
    // An open prompt would otherwise hold the queue (and the quit) until someone answers it.
    for (const controller of this.plugged.values()) controller.abort(new KeytapError('CANCELLED', 'keytap is quitting.'));
    await Promise.all([...this.queues.values()]);
    // Quitting locks every key as unplugging does: the access keys held in memory are wiped.
    for (const held of this.held.values()) held.accessKey.fill(0);
    this.held.clear();
    this.pins.clear();
  }

  /**
   * The serial the menu shows and `--device` takes: a YubiKey over PC/SC tells it only through its
   * Management application. A key that cannot tell is listed all the same; one that went away is not.
   */
  private async serialOf(keyId: string, key: OpenedKey, signal: AbortSignal): Promise<string | undefined> {
    if (!key.session.readSerial) return key.session.serial;
    if (this.serials.has(keyId)) return this.serials.get(keyId);
    try {
      const serial = await key.session.readSerial(signal);
      this.serials.set(keyId, serial);
      return serial;
    } catch (error) {
      if (isKeytapError(error, 'KEY_REMOVED') || isKeytapError(error, 'CANCELLED')) throw error;
      this.deps.logger.warn(`reading the serial of ${key.name} failed: ${describeUnknown(error)}`);
      return key.session.serial;
    }
  }

  private async list(keyId: string, quiet: boolean): Promise<void> {
    const descriptor = this.descriptors.get(keyId);
    if (!descriptor || !this.deps.hasKey(keyId)) return;
    const abort = { signal: this.whilePlugged(keyId) };
    let key: OpenedKey | undefined;
    try {
      key = await this.deps.open(descriptor, abort.signal);
      const serial = await this.serialOf(keyId, key, abort.signal);
      const wasLocked = key.session.locked;
      if (wasLocked && !(await this.unlockOpened(keyId, key, abort.signal, false))) {
        this.report({ type: 'key-loaded', keyId, serial, locked: true, credentials: [], quiet });
        return;
      }
      const credentials = await this.withPinCredentials(keyId, key, await key.session.list(abort.signal), abort.signal);
      this.report({ type: 'key-loaded', keyId, serial, locked: false, credentials, quiet, ...this.secretState(keyId, wasLocked, key) });
    } catch (error) {
      // Unplugged while being listed: key-removed has taken (or is about to take) its section away.
      if ((isKeytapError(error, 'KEY_REMOVED') || abort.signal.aborted) && !this.deps.hasKey(keyId)) return;
      this.report({ type: 'key-failed', keyId, error: toStateError(error, this.deps.logger) });
    } finally {
      if (key) await key.close().catch((error: unknown) => this.deps.logger.warn(`closing ${descriptor.name} failed: ${describeUnknown(error)}`));
    }
  }

  /** "Unlock…": ask for the password (pinentry), unlock, hold the access key, list. */
  unlock(keyId: string): void {
    this.track(
      this.enqueue(keyId, async () => {
        const descriptor = this.descriptors.get(keyId);
        if (!descriptor || !this.deps.hasKey(keyId)) return;
        const abort = { signal: this.whilePlugged(keyId) };
        let key: OpenedKey | undefined;
        try {
          key = await this.deps.open(descriptor, abort.signal);
          const serial = await this.serialOf(keyId, key, abort.signal);
          const wasLocked = key.session.locked;
          if (wasLocked) await this.unlockOpened(keyId, key, abort.signal, true);
          if (key.session.pinSet && key.session.listWithPin && !this.pins.has(keyId)) await this.askPin(keyId, key, abort.signal);
          const credentials = await this.withPinCredentials(keyId, key, await key.session.list(abort.signal), abort.signal);
          this.report({ type: 'key-loaded', keyId, serial, locked: false, credentials, ...this.secretState(keyId, wasLocked, key) });
        } catch (error) {
          if ((isKeytapError(error, 'KEY_REMOVED') || abort.signal.aborted) && !this.deps.hasKey(keyId)) return;
          this.report({ type: 'unlock-failed', keyId, error: toStateError(error, this.deps.logger) });
        } finally {
          if (key) await key.close().catch((error: unknown) => this.deps.logger.warn(`closing ${descriptor.name} failed: ${describeUnknown(error)}`));
        }
      }),
    );
  }

  /** "Remember on this computer" / "Forget on this computer": the held access key into the keyring, or out. */
  setRemembered(keyId: string, remember: boolean): void {
    this.track(
      this.enqueue(keyId, async () => {
        const held = this.held.get(keyId);
        const pin = this.pins.get(keyId);
        const keyring = this.deps.keyring;
        try {
          if (!keyring) throw new KeytapError('UNSUPPORTED', 'This computer has no keyring keytap can use.', { detail: { kind: 'no-keyring', reason: 'none was found' } });
          const entryId = this.entries.get(keyId);
          // Not offered in the menu (canRemember false); a stale click is refused all the same.
          if (entryId === undefined) throw new KeytapError('UNSUPPORTED', 'This key tells neither a serial nor an OATH device id; keytap cannot tell it from another key.', { detail: { kind: 'cannot-remember' } });
          if (remember) {
            if (pin) await keyring.set(entryId, 'nk3-pin', pin.pin);
            else if (held) await keyring.set(entryId, 'access-key', held.accessKey.toString('hex'));
            else return;
          } else {
            await keyring.delete(entryId, pin ? 'nk3-pin' : 'access-key');
          }
          if (held) held.remembered = remember;
          if (pin) pin.remembered = remember;
          this.report({ type: 'secret-changed', keyId, secret: remember ? 'remembered' : 'held' });
        } catch (error) {
          this.report({ type: 'secret-changed', keyId, secret: remember ? 'held' : 'remembered', error: toStateError(error, this.deps.logger) });
        }
      }),
    );
  }

  private secretState(keyId: string, wasLocked: boolean, key: OpenedKey): { secret?: 'held' | 'remembered'; canRemember?: boolean; pinLocked?: boolean } {
    const canRemember = this.deps.keyring !== undefined && this.entryOf(keyId, key) !== undefined;
    if (key.session.pinSet && key.session.listWithPin) {
      const pin = this.pins.get(keyId);
      return pin ? { secret: pin.remembered ? 'remembered' : 'held', canRemember } : { pinLocked: true };
    }
    const held = this.held.get(keyId);
    if (!wasLocked || !held) return {};
    return { secret: held.remembered ? 'remembered' : 'held', canRemember };
  }

  /** The keyring entry of an opened key: its serial (read once while it is plugged in), else its OATH device id; undefined when neither. */
  private entryOf(keyId: string, key: OpenedKey): string | undefined {
    const entry = keyringEntryOf({ serial: this.serials.get(keyId) ?? key.session.serial, deviceId: key.session.deviceId });
    this.entries.set(keyId, entry);
    return entry;
  }

  /**
   * The visible credentials and, for a Nitrokey 3 with a PIN, the PIN-protected ones: those listed
   * with the PIN held, or (first time) with the PIN remembered in the keyring; a wrong remembered PIN
   * is forgotten and reported.
   */
  private async withPinCredentials(keyId: string, key: OpenedKey, visible: KeyCredential[], signal: AbortSignal): Promise<KeyCredential[]> {
    const session = key.session;
    if (!session.pinSet || !session.listWithPin) return visible;
    let held = this.pins.get(keyId);
    if (!held && this.deps.keyring) {
      const listWithPin = session.listWithPin.bind(session);
      // VERIFY PIN asks for a touch first (docs/protocols.md §2.7), and nobody clicked for this one: say so.
      const onTouchNeeded = (): void => this.report({ type: 'key-touch-needed', keyId });
      const found = await withRememberedPin(session, this.unlockContext(keyId, key, signal, false), (pin) => listWithPin(pin, { signal, onTouchNeeded }));
      if (found.tried) {
        held = { pin: found.pin, remembered: true, credentials: found.value.filter((c) => c.pinProtected === true) };
        this.pins.set(keyId, held);
      }
    }
    if (!held) return visible;
    const ids = new Set(visible.map((c) => c.id));
    return [...visible, ...held.credentials.filter((c) => !ids.has(c.id))];
  }

  /**
   * The held PIN was refused (changed elsewhere since): it is dropped, never given again (a
   * remembered one is known wrong from now on), and the key re-listed without it, so the menu
   * shows it PIN-locked and offers "Unlock PIN-protected accounts…" again.
   */
  private dropPin(keyId: string, key: OpenedKey, pin: string): void {
    const held = this.pins.get(keyId);
    if (held?.pin !== pin) return;
    this.pins.delete(keyId);
    const entry = this.entries.get(keyId);
    if (held.remembered && entry !== undefined) this.knownWrong.add(entry, 'nk3-pin', pin);
    this.deps.logger.info(`${key.name} refused the PIN held for it; its PIN-protected accounts are locked again`);
    this.load(keyId, true);
  }

  /** "Unlock PIN-protected accounts…": the PIN from the prompt (asked again when wrong), held with what it lists. */
  private async askPin(keyId: string, key: OpenedKey, signal: AbortSignal): Promise<void> {
    const session = key.session;
    const lockable: LockableSession = {
      locked: false,
      serial: session.serial,
      pinSet: true,
      get pinAttemptsLeft() {
        return session.pinAttemptsLeft;
      },
      deriveAccessKey: () => Buffer.alloc(0),
      unlockWithAccessKey: () => Promise.resolve(),
    };
    const onTouchNeeded = (): void => this.report({ type: 'key-touch-needed', keyId });
    const { value, pin, source } = await withPin(lockable, this.unlockContext(keyId, key, signal, true), (given) => session.listWithPin!(given, { signal, onTouchNeeded }));
    this.pins.set(keyId, { pin, remembered: source === 'remembered', credentials: value.filter((c) => c.pinProtected === true) });
  }

  /**
   * Unlocks an opened key with the access key held in memory, else the remembered one (a wrong one
   * is forgotten and reported), else, when `ask`, the prompt. False: still locked (nothing to try).
   */
  private async unlockOpened(keyId: string, key: OpenedKey, signal: AbortSignal, ask: boolean): Promise<boolean> {
    const session = key.session;
    if (!session.unlockWithAccessKey || !session.deriveAccessKey) return false;
    const held = this.held.get(keyId);
    if (held) {
      try {
        await session.unlockWithAccessKey(held.accessKey, signal);
        return true;
      } catch (error) {
        if (!isKeytapError(error, 'WRONG_PASSWORD')) throw error;
        held.accessKey.fill(0);
        this.held.delete(keyId);
      }
    }
    const lockable: LockableSession = {
      get locked() {
        return session.locked;
      },
      serial: session.serial,
      pinSet: false,
      pinAttemptsLeft: undefined,
      deriveAccessKey: (password) => session.deriveAccessKey!(password),
      unlockWithAccessKey: (accessKey, s) => session.unlockWithAccessKey!(accessKey, s),
    };
    try {
      const result = await unlockSession(lockable, this.unlockContext(keyId, key, signal, ask));
      this.held.set(keyId, { accessKey: result.accessKey, remembered: result.source === 'remembered' });
      return true;
    } catch (error) {
      if (!ask && isKeytapError(error, 'AUTH_REQUIRED') && error.detail?.kind === 'locked') return false;
      throw error;
    }
  }

  /** A signal that aborts when the key is unplugged or the tray quits (and with `also`, when it does). */
  private whilePlugged(keyId: string, also?: AbortSignal): AbortSignal {
    const plugged = this.plugged.get(keyId)?.signal ?? AbortSignal.abort(new KeytapError('KEY_REMOVED', 'The key is gone.'));
    return also ? AbortSignal.any([plugged, also]) : plugged;
  }

  /** What unlocking this key may use here: the keyring under its entry, the prompt when `ask`, the known-wrong secrets; notes become events or log lines. */
  private unlockContext(keyId: string, key: OpenedKey, signal: AbortSignal, ask: boolean): UnlockContext {
    return {
      keyName: key.name,
      keyId: this.entryOf(keyId, key),
      keyring: this.deps.keyring,
      prompt: ask ? this.deps.prompt : undefined,
      knownWrong: this.knownWrong,
      signal,
      onNote: (note) => {
        if (note.kind === 'remembered-wrong') this.report({ type: 'remembered-wrong', keyId, ...(note.secret === 'nk3-pin' ? { what: 'PIN' as const } : {}) });
        else if (note.kind === 'keyring-unavailable') this.deps.logger.warn(`keyring: ${note.error.message}`);
        else if (note.kind === 'remembered-not-tried') {
          const why = note.knownWrong ? 'it was found wrong before' : `the key says a wrong PIN was entered since it last worked (${note.attemptsLeft} attempts left)`;
          this.deps.logger.info(`the PIN remembered for ${key.name} was not tried: ${why}`);
        }
      },
    };
  }

  private enqueue(keyId: string, operation: () => Promise<void>): Promise<void> {
    const previous = this.queues.get(keyId) ?? Promise.resolve();
    const next = previous.then(operation).catch((error: unknown) => this.deps.logger.error(`key operation failed: ${describeUnknown(error)}`));
    this.queues.set(keyId, next);
    void next.then(() => {
      if (this.queues.get(keyId) === next) this.queues.delete(keyId);
    });
    return next;
  }

  private report(event: AppEvent): void {
    this.guard(event.type, () => this.deps.report(event));
  }

  private guard(what: string, run: () => void): void {
    try {
      run();
    } catch (error) {
      this.deps.logger.error(`${what} failed: ${describeUnknown(error)}`);
    }
  }

  private nowSeconds(): number {
    return this.deps.clock.now() / 1000;
  }
}
