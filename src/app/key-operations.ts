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
import type { OpenedKey } from './key-session.js';
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
}

export class KeyOperations {
  private readonly descriptors = new Map<string, KeyDescriptor>();
  /** Serials read once per key while it stays plugged in: a listing is redone on every refresh. */
  private readonly serials = new Map<string, string | undefined>();
  /** Per key: the tail of its operation queue. */
  private readonly queues = new Map<string, Promise<void>>();
  /** Listings in flight, for `idle()`. */
  private readonly busy = new Set<Promise<void>>();
  private readonly reads = new Map<number, AbortController>();
  private readonly touchTimers = new Map<number, unknown>();

  constructor(private readonly deps: KeyOperationsDeps) {}

  added(descriptor: KeyDescriptor): void {
    this.descriptors.set(descriptor.id, descriptor);
  }

  /** Call after the state took the key away: an operation still queued fails on its own (the link is gone); the descriptor is forgotten after it. */
  removed(descriptor: KeyDescriptor): void {
    const tail = this.queues.get(descriptor.id) ?? Promise.resolve();
    void tail.then(() => {
      if (!this.deps.hasKey(descriptor.id)) {
        this.descriptors.delete(descriptor.id);
        this.serials.delete(descriptor.id);
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
      try {
        if (abort.signal.aborted) return;
        if (!descriptor) throw new KeytapError('KEY_REMOVED', 'The key is gone.');
        key = await this.deps.open(descriptor, abort.signal);
        if (key.session.locked) throw lockedError(key.name);
        const code: OathCode = await key.session.calculate(credential, {
          time,
          signal: abort.signal,
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
          key = await this.deps.open(descriptor, new AbortController().signal);
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
    await Promise.all([...this.queues.values()]);
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
    const abort = new AbortController();
    let key: OpenedKey | undefined;
    try {
      key = await this.deps.open(descriptor, abort.signal);
      const serial = await this.serialOf(keyId, key, abort.signal);
      if (key.session.locked) {
        this.report({ type: 'key-loaded', keyId, serial, locked: true, credentials: [], quiet });
        return;
      }
      const credentials = await key.session.list(abort.signal);
      this.report({ type: 'key-loaded', keyId, serial, locked: false, credentials, quiet });
    } catch (error) {
      // Unplugged while being listed: key-removed has taken (or is about to take) its section away.
      if (isKeytapError(error, 'KEY_REMOVED') && !this.deps.hasKey(keyId)) return;
      this.report({ type: 'key-failed', keyId, error: toStateError(error, this.deps.logger) });
    } finally {
      if (key) await key.close().catch((error: unknown) => this.deps.logger.warn(`closing ${descriptor.name} failed: ${describeUnknown(error)}`));
    }
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
