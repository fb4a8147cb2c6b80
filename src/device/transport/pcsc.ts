/**
 * PC/SC (CCID): the only way to a YubiKey's OATH applet (docs/desktop.md §3.0), and the other way to
 * a Nitrokey 3. Built on the system's own PC/SC library through pcsc-api.ts (koffi), which is
 * loaded lazily: commands that never touch PC/SC neither pay for it nor fail where libpcsclite or
 * pcscd is missing.
 *
 * - `PcscApduTransport`: one card handle, opened EXCLUSIVE for the life of the transport. The
 *   OATH session state (SELECT, VALIDATE, SEND REMAINING) lives on the card, not in the handle:
 *   another program's SELECT in between would silently break it, and while a touch CALCULATE is
 *   pending the card must stay ours (docs/protocols.md §1.12). Raw `{data, sw}`: SEND REMAINING (61xx)
 *   is the session's job, and ISO GET RESPONSE would be wrong for YKOATH anyway.
 * - Reader listing, the OATH probe and hotplug are discovery's (discovery/pcsc-readers.ts), on
 *   the context helpers exported here.
 *
 * SCardTransmit cannot be interrupted. A deadline or an abort therefore answers the caller at once
 * and leaves the native call (on its worker thread) to finish on its own (the key ends a touch wait
 * by itself, §1.12); the handle is released, and the next APDU sent, only after it has. Failures are
 * told apart by their SCARD_* return code; a message names the code, never APDU bytes (they carry
 * secrets).
 */
import { KeytapError, isKeytapError, throwIfAborted } from '../../errors.js';
import { bounded, delay } from '../../util/abortable.js';
import { SCARD_LEAVE_CARD, SCARD_PROTOCOL_T0, SCARD_PROTOCOL_T1, SCARD_SHARE_EXCLUSIVE, isScardError, loadPcsc, scardSymbol } from './pcsc-api.js';
import type { CardConnection, PcscLibrary, ScardCodeName, ScardHandle } from './pcsc-api.js';
import type { ApduResponse, ApduTransport, TransmitOptions } from './types.js';

/** A touch may be pending: at least 30 s (docs/protocols.md §1.12). */
export const DEFAULT_PCSC_TIMEOUT_MS = 35_000;
/** How long `open` keeps retrying while another program holds the card (one `ykman` or `keytap` command). */
export const DEFAULT_BUSY_WAIT_MS = 2_000;
/**
 * How long one SCardConnect may take. Powering a card up and reading its ATR takes well under a
 * second; a reader or driver that never returns must not hang the command (or `doctor --probe`).
 */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const BUSY_RETRY_MS = 100;
/** pcscd polls presence every 400 ms; a removal shows within this. */
const REMOVAL_SETTLE_MS = 1_500;
const REMOVAL_POLL_MS = 100;

export const PCSCD_HINT =
  // eslint-disable-next-line no-restricted-syntax -- systemctl's option, not keytap's
  'keytap reaches YubiKeys through the PC/SC service. On Linux install and start it: sudo apt install pcscd (Debian, Ubuntu), sudo dnf install pcsc-lite (Fedora), then sudo systemctl enable --now pcscd.socket.';

const NO_SERVICE_MESSAGE = 'The PC/SC service (pcscd) is not running';

/** The service is not there (pcscd stopped; on Windows 8+ the service stops with the last reader). */
const SERVICE_GONE: ScardCodeName[] = ['E_NO_SERVICE', 'E_SERVICE_STOPPED'];
/** The card (or its reader) is gone: nothing more can be sent to it. */
const CARD_GONE: ScardCodeName[] = ['W_REMOVED_CARD', 'E_NO_SMARTCARD', 'E_READER_UNAVAILABLE', 'E_UNKNOWN_READER', 'W_UNPOWERED_CARD'];
/** A transmit failure that a removal also causes: the card's presence decides. */
const MAYBE_GONE: ScardCodeName[] = ['E_NOT_TRANSACTED', 'F_COMM_ERROR', 'E_COMM_DATA_LOST', 'E_INVALID_HANDLE'];
/** A card is there but cannot be talked to. */
const CARD_UNUSABLE: ScardCodeName[] = ['W_UNRESPONSIVE_CARD', 'W_UNSUPPORTED_CARD', 'E_CARD_UNSUPPORTED'];

export { loadPcsc };

/**
 * PC/SC is not there at all (no library, no binding, no pcscd): for discovery the normal state
 * of a machine without smart card software, not an error.
 */
export function isPcscUnavailable(error: unknown): boolean {
  return isKeytapError(error, 'UNSUPPORTED') || (isKeytapError(error, 'NO_KEY') && error.message.startsWith(NO_SERVICE_MESSAGE));
}

function noServiceError(cause: unknown): KeytapError {
  return new KeytapError('NO_KEY', `${NO_SERVICE_MESSAGE}, so no smart card reader can be reached.`, { hint: PCSCD_HINT, cause });
}

/** A PC/SC library and one of its contexts (SCardEstablishContext). */
export interface PcscContext {
  readonly pcsc: PcscLibrary;
  readonly context: ScardHandle;
}

/**
 * A PC/SC context. Fails with UNSUPPORTED where there is no PC/SC library, NO_KEY + hint when pcscd
 * is not there. `library`: another implementation of the API (tests); default the system's.
 */
export async function establishContext(library?: PcscLibrary): Promise<PcscContext> {
  const pcsc = library ?? (await loadPcsc());
  try {
    return { pcsc, context: await pcsc.establishContext() };
  } catch (error) {
    // NO_READERS_AVAILABLE: what some services answer here when there is nothing to serve.
    if (isScardError(error, ...SERVICE_GONE, 'E_NO_READERS_AVAILABLE')) throw noServiceError(error);
    throw new KeytapError('DEVICE_ERROR', `Connecting to the PC/SC service failed (${nativeReason(error)}).`, { hint: PCSCD_HINT, cause: error });
  }
}

/** The names of the readers the service knows, with or without a card. */
export async function listReaderNames({ pcsc, context }: PcscContext): Promise<string[]> {
  try {
    return await pcsc.listReaders(context);
  } catch (error) {
    if (isScardError(error, ...SERVICE_GONE)) throw noServiceError(error);
    throw new KeytapError('DEVICE_ERROR', `Listing the smart card readers failed (${nativeReason(error)}).`, { cause: error });
  }
}

export async function releaseContext({ pcsc, context }: PcscContext): Promise<void> {
  try {
    await pcsc.releaseContext(context);
  } catch {
    // already invalid (pcscd went away): nothing to release
  }
}

export interface PcscOpenOptions {
  /** Human description for errors and the session ("YubiKey", "Virtual PCD 00 00"). */
  description?: string | undefined;
  signal?: AbortSignal | undefined;
  /** How long to retry while another program holds the card. Default 2 s. */
  busyWaitMs?: number | undefined;
  /** How long one SCardConnect may take before the open fails with TIMEOUT. Default 10 s. */
  connectTimeoutMs?: number | undefined;
  /** Another implementation of the PC/SC API (tests); default the system's library. */
  library?: PcscLibrary | undefined;
}

export class PcscApduTransport implements ApduTransport {
  readonly description: string;
  readonly readerName: string;
  private readonly scope: PcscContext;
  private readonly connection: CardConnection;
  /** The native SCardTransmit still running, answered or not: the next one, and the release, wait for it. */
  private inflight: Promise<void> = Promise.resolve();
  private busy = false;
  private closed = false;
  /** Set once the card is known to be gone: every later call fails the same way. */
  private failure: KeytapError | undefined;

  /** Connects to the card in `readerName`, exclusively. */
  static async open(readerName: string, options: PcscOpenOptions = {}): Promise<PcscApduTransport> {
    throwIfAborted(options.signal);
    const scope = await establishContext(options.library);
    const abandoned: Array<Promise<CardConnection>> = [];
    try {
      const connection = await connectExclusive(scope, readerName, options, abandoned);
      return new PcscApduTransport(scope, connection, readerName, options.description ?? readerName);
    } catch (error) {
      if (abandoned.length === 0) {
        await releaseContext(scope);
      } else {
        // SCardConnect cannot be interrupted: once the one left behind returns, the card it may
        // have connected is let go, then the context (not awaited: the caller has its answer).
        void Promise.allSettled(abandoned).then(async ([late]) => {
          if (late?.status === 'fulfilled') await scope.pcsc.disconnect(late.value.card, SCARD_LEAVE_CARD).catch(() => undefined);
          await releaseContext(scope);
        });
      }
      throw error;
    }
  }

  private constructor(scope: PcscContext, connection: CardConnection, readerName: string, description: string) {
    this.scope = scope;
    this.connection = connection;
    this.readerName = readerName;
    this.description = description;
  }

  async transmit(apdu: Uint8Array, options: TransmitOptions = {}): Promise<ApduResponse> {
    this.assertUsable();
    throwIfAborted(options.signal);
    const deadline = Date.now() + (options.timeoutMs ?? DEFAULT_PCSC_TIMEOUT_MS);
    // One APDU at a time on the card, in call order; an abandoned one (deadline, abort) still
    // occupies it until SCardTransmit returns. `occupy` says how long this call holds the card.
    const previous = this.inflight;
    let occupy!: (until: Promise<void>) => void;
    const held = new Promise<void>((resolve) => (occupy = (until) => resolve(until)));
    this.inflight = previous.then(() => held);

    let native: Promise<Uint8Array>;
    try {
      await bounded(previous, deadline, options.signal, () => timeoutError(this.description));
      this.assertUsable();
      this.busy = true;
      native = this.scope.pcsc.transmit(this.connection, apdu);
    } catch (error) {
      occupy(Promise.resolve());
      throw isKeytapError(error) ? error : await this.transmitError(error);
    }
    occupy(
      native.then(
        () => void (this.busy = false),
        () => void (this.busy = false),
      ),
    );
    let response: Uint8Array;
    try {
      response = await bounded(native, deadline, options.signal, () => timeoutError(this.description));
    } catch (error) {
      if (isKeytapError(error, 'TIMEOUT') || isKeytapError(error, 'CANCELLED')) throw error;
      throw await this.transmitError(error);
    }
    if (response.length < 2) {
      // vpcd (and other drivers) report a card pulled out mid-command as an empty answer; pcscd
      // notices the removal at its next presence poll (every 400 ms).
      if (await this.removedWithin(REMOVAL_SETTLE_MS)) {
        this.failure = new KeytapError('KEY_REMOVED', `${this.description} was removed.`, { hint: 'Plug the key in again and retry.' });
        throw this.failure;
      }
      throw new KeytapError('PROTOCOL', `${this.description} answered ${response.length} byte(s), without a status word.`);
    }
    const data = response.subarray(0, response.length - 2);
    const sw = (response[response.length - 2]! << 8) | response[response.length - 1]!;
    return { data, sw };
  }

  /**
   * Releases the card and the context. When an abandoned SCardTransmit is still running, this
   * resolves at once and the release follows once the transmit returns (pcsc-lite would make the
   * release wait for it anyway); otherwise it resolves once released, so that the next connection
   * to the card does not race the release.
   */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    const abandoned = this.busy;
    const released = this.inflight.then(async () => {
      try {
        await this.scope.pcsc.disconnect(this.connection.card, SCARD_LEAVE_CARD);
      } catch {
        // the card is gone already: nothing to release
      }
      await releaseContext(this.scope);
    });
    return abandoned ? Promise.resolve() : released;
  }

  private assertUsable(): void {
    if (this.closed) throw closedError();
    if (this.failure) throw this.failure;
  }

  /** Turns a native transmit failure into a KeytapError; a removed card makes the transport unusable. */
  private async transmitError(error: unknown): Promise<KeytapError> {
    if (isScardError(error, ...CARD_GONE) || (isScardError(error, ...MAYBE_GONE) && !(await this.cardStillThere()))) {
      this.failure = new KeytapError('KEY_REMOVED', `${this.description} was removed.`, { hint: 'Plug the key in again and retry.', cause: error });
      return this.failure;
    }
    if (isScardError(error, ...SERVICE_GONE)) {
      this.failure = new KeytapError('KEY_REMOVED', `The PC/SC service stopped while talking to ${this.description}.`, { hint: PCSCD_HINT, cause: error });
      return this.failure;
    }
    if (isScardError(error, 'W_RESET_CARD')) {
      return new KeytapError('DEVICE_ERROR', `${this.description} was reset by another program.`, { hint: 'Retry.', cause: error });
    }
    return new KeytapError('DEVICE_ERROR', `Talking to ${this.description} failed (${nativeReason(error)}).`, { cause: error });
  }

  /** Polls the card's presence for up to `ms`: true as soon as it is gone. */
  private async removedWithin(ms: number): Promise<boolean> {
    const until = Date.now() + ms;
    for (;;) {
      if (!(await this.cardStillThere())) return true;
      if (Date.now() >= until) return false;
      await delay(REMOVAL_POLL_MS, undefined);
    }
  }

  /** After an ambiguous failure: is the card still in the reader? */
  private async cardStillThere(): Promise<boolean> {
    try {
      // SCardStatus fails (SCARD_W_REMOVED_CARD) once pcscd has seen the card go. Its state word
      // is not in SCARD_STATE_* terms (and differs on Windows), so only the failure is looked at.
      await this.scope.pcsc.status(this.connection.card);
      return true;
    } catch {
      return false;
    }
  }
}

/** `abandoned` receives an SCardConnect still running when the deadline or the signal ended the wait for it. */
async function connectExclusive(scope: PcscContext, readerName: string, options: PcscOpenOptions, abandoned: Array<Promise<CardConnection>>): Promise<CardConnection> {
  const description = options.description ?? readerName;
  const busyUntil = Date.now() + (options.busyWaitMs ?? DEFAULT_BUSY_WAIT_MS);
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  for (;;) {
    throwIfAborted(options.signal);
    const attempt = scope.pcsc.connect(scope.context, readerName, SCARD_SHARE_EXCLUSIVE, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1);
    try {
      return await bounded(attempt, Date.now() + connectTimeoutMs, options.signal, () => timeoutError(description));
    } catch (error) {
      if (isKeytapError(error, 'TIMEOUT') || isKeytapError(error, 'CANCELLED')) {
        abandoned.push(attempt);
        throw error;
      }
      if (isScardError(error, 'E_SHARING_VIOLATION')) {
        if (Date.now() + BUSY_RETRY_MS > busyUntil) {
          throw new KeytapError('BUSY', `${description} is in use by another program.`, {
            // eslint-disable-next-line no-restricted-syntax -- gpgconf's option, not keytap's
            hint: 'Close the other program (Yubico Authenticator, ykman, or gpg-agent\'s scdaemon: gpgconf --kill scdaemon) and retry.',
            cause: error,
          });
        }
        await delay(BUSY_RETRY_MS, options.signal);
        continue;
      }
      if (isScardError(error, 'E_UNKNOWN_READER')) {
        // The description, not the name: pcsc-lite puts the reader's USB serial in the name.
        const reader = options.description === undefined ? `The reader "${readerName}"` : options.description;
        throw new KeytapError('NO_KEY', `${reader} is not connected.`, { detail: { kind: 'reader-missing', reader: readerName }, cause: error });
      }
      if (isScardError(error, ...CARD_GONE, ...CARD_UNUSABLE)) {
        throw new KeytapError('KEY_REMOVED', `There is no usable card in ${description}.`, { hint: 'Plug the key in again and retry.', cause: error });
      }
      if (isScardError(error, ...SERVICE_GONE)) throw noServiceError(error);
      throw new KeytapError('DEVICE_ERROR', `Connecting to ${description} failed (${nativeReason(error)}).`, { cause: error });
    }
  }
}

// ---------------------------------------------------------------------------------------------

function timeoutError(description: string): KeytapError {
  return new KeytapError('TIMEOUT', `${description} did not answer in time.`, { hint: 'Unplug the key, plug it in again and retry.' });
}

function closedError(): KeytapError {
  return new KeytapError('CANCELLED', 'The connection to the key was closed.');
}

/** The SCARD_* name of a failed call's return code; any other failure's message, trimmed (never APDU bytes). */
export function nativeReason(error: unknown): string {
  if (isScardError(error)) return scardSymbol(error.rc);
  const text = error instanceof Error ? error.message : String(error);
  return text.trim().slice(0, 80) || 'unknown error';
}
