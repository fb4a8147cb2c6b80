/**
 * PC/SC (CCID): the only way to a YubiKey's OATH applet (docs/desktop.md §3.0), and the other way to
 * a Nitrokey 3. Built on the npm package `smartcard` (N-API binding of libpcsclite / winscard /
 * PCSC.framework), which is loaded lazily: commands that never touch PC/SC neither pay for it nor
 * fail where libpcsclite or pcscd is missing.
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
 * and leaves the native call to finish on its own (the key ends a touch wait by itself, §1.12);
 * the handle is released, and the next APDU sent, only after it has. APDU bytes never go into an
 * error message: they carry secrets.
 */
import { KeytapError, isKeytapError, throwIfAborted } from '../../errors.js';
import { bounded, delay } from '../../util/abortable.js';
import type { ApduResponse, ApduTransport, TransmitOptions } from './types.js';

// Types only: erased at run time, so importing them does not load the native binding.
import type { CardInterface, ContextInterface, MonitorEvent, ReaderInterface } from 'smartcard';

/** What keytap uses of the `smartcard` module. */
export interface SmartcardModule {
  Context: new () => ContextInterface;
  ReaderMonitor: new () => { readonly isRunning: boolean; start(callback: (event: MonitorEvent) => void): void; stop(): void };
  SCARD_SHARE_EXCLUSIVE: number;
  SCARD_PROTOCOL_T0: number;
  SCARD_PROTOCOL_T1: number;
  SCARD_LEAVE_CARD: number;
  SCARD_STATE_PRESENT: number;
  SCARD_STATE_MUTE: number;
}

/** A touch may be pending: at least 30 s (docs/protocols.md §1.12). */
export const DEFAULT_PCSC_TIMEOUT_MS = 35_000;
/** How long `open` keeps retrying while another program holds the card (one `ykman` or `keytap` command). */
export const DEFAULT_BUSY_WAIT_MS = 2_000;
const BUSY_RETRY_MS = 100;
/** pcscd polls presence every 400 ms; a removal shows within this. */
const REMOVAL_SETTLE_MS = 1_500;
const REMOVAL_POLL_MS = 100;
/** Short APDUs answer at most 256 + 2 bytes, but a key speaking extended APDUs may send more. */
const MAX_RESPONSE = 65_538;

export const PCSCD_HINT =
  // eslint-disable-next-line no-restricted-syntax -- systemctl's option, not keytap's
  'keytap reaches YubiKeys through the PC/SC service. On Linux install and start it: sudo apt install pcscd (Debian, Ubuntu), sudo dnf install pcsc-lite (Fedora), then sudo systemctl enable --now pcscd.socket.';

let loading: Promise<SmartcardModule> | undefined;

/** Loads `smartcard` and its native binding once. A failure is not remembered: the user may install the library and retry. */
export function loadSmartcard(): Promise<SmartcardModule> {
  loading ??= (async () => {
    try {
      const imported = (await import('smartcard')) as unknown as SmartcardModule & { default?: SmartcardModule };
      // CommonJS package: the exports are on `default`, and also named where Node could detect them.
      return imported.default ?? imported;
    } catch (error) {
      loading = undefined;
      throw smartcardLoadError(error);
    }
  })();
  return loading;
}

/** Turns a failed load of `smartcard` into a KeytapError that names the fix. Exported for tests. */
export function smartcardLoadError(error: unknown): KeytapError {
  const text = messageOf(error);
  if (/libpcsclite/i.test(text)) {
    return new KeytapError('UNSUPPORTED', 'keytap cannot use smart card readers: the library libpcsclite is missing.', {
      hint: 'Install it: sudo apt install libpcsclite1 pcscd (Debian, Ubuntu), sudo dnf install pcsc-lite-libs pcsc-lite (Fedora).',
      cause: error,
    });
  }
  if (/cannot find (module|package) 'smartcard'|ERR_MODULE_NOT_FOUND|MODULE_NOT_FOUND/i.test(text) || (error as { code?: unknown }).code === 'ERR_MODULE_NOT_FOUND') {
    return new KeytapError('UNSUPPORTED', 'keytap cannot use smart card readers: the smartcard package (or its native build) is not installed.', {
      hint: 'Reinstall keytap (npm install); building smartcard needs a C++ compiler and libpcsclite-dev.',
      cause: error,
    });
  }
  return new KeytapError('UNSUPPORTED', 'keytap cannot use smart card readers: the smartcard package could not be loaded.', { cause: error });
}

/**
 * PC/SC is not there at all (no library, no binding, no pcscd): for discovery the normal state
 * of a machine without smart card software, not an error.
 */
export function isPcscUnavailable(error: unknown): boolean {
  return isKeytapError(error, 'UNSUPPORTED') || (isKeytapError(error, 'NO_KEY') && error.message.startsWith(NO_SERVICE_MESSAGE));
}

const NO_SERVICE_MESSAGE = 'The PC/SC service (pcscd) is not running';

export function listReaders(context: ContextInterface): ReaderInterface[] {
  try {
    return context.listReaders();
  } catch (error) {
    if (/service/i.test(messageOf(error))) throw noServiceError(error);
    throw new KeytapError('DEVICE_ERROR', 'Listing the smart card readers failed.', { cause: error });
  }
}

function noServiceError(cause: unknown): KeytapError {
  return new KeytapError('NO_KEY', `${NO_SERVICE_MESSAGE}, so no smart card reader can be reached.`, { hint: PCSCD_HINT, cause });
}

/** A PC/SC context (SCardEstablishContext). Fails with NO_KEY + hint when pcscd is not there. */
export async function establishContext(): Promise<{ sc: SmartcardModule; context: ContextInterface }> {
  const sc = await loadSmartcard();
  try {
    return { sc, context: new sc.Context() };
  } catch (error) {
    if (/service|no readers/i.test(messageOf(error))) throw noServiceError(error);
    throw new KeytapError('DEVICE_ERROR', 'Connecting to the PC/SC service failed.', { hint: PCSCD_HINT, cause: error });
  }
}

export function releaseContext(context: ContextInterface): void {
  try {
    context.close();
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
}

export class PcscApduTransport implements ApduTransport {
  readonly description: string;
  readonly readerName: string;
  private readonly context: ContextInterface;
  private readonly card: CardInterface;
  private readonly leaveCard: number;
  /** The native SCardTransmit still running, answered or not: the next one, and the release, wait for it. */
  private inflight: Promise<void> = Promise.resolve();
  private closed = false;
  /** Set once the card is known to be gone: every later call fails the same way. */
  private failure: KeytapError | undefined;

  /** Connects to the card in `readerName`, exclusively. */
  static async open(readerName: string, options: PcscOpenOptions = {}): Promise<PcscApduTransport> {
    throwIfAborted(options.signal);
    const { sc, context } = await establishContext();
    try {
      const card = await connectExclusive(sc, context, readerName, options);
      return new PcscApduTransport(context, card, readerName, options.description ?? readerName, sc);
    } catch (error) {
      releaseContext(context);
      throw error;
    }
  }

  private constructor(context: ContextInterface, card: CardInterface, readerName: string, description: string, sc: SmartcardModule) {
    this.context = context;
    this.card = card;
    this.readerName = readerName;
    this.description = description;
    this.leaveCard = sc.SCARD_LEAVE_CARD;
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

    let native: Promise<Buffer>;
    try {
      await bounded(previous, deadline, options.signal, () => timeoutError(this.description));
      this.assertUsable();
      native = this.card.transmit(Buffer.from(apdu), { maxRecvLength: MAX_RESPONSE });
    } catch (error) {
      occupy(Promise.resolve());
      throw isKeytapError(error) ? error : this.transmitError(error);
    }
    occupy(
      native.then(
        () => undefined,
        () => undefined,
      ),
    );
    let response: Buffer;
    try {
      response = await bounded(native, deadline, options.signal, () => timeoutError(this.description));
    } catch (error) {
      if (isKeytapError(error, 'TIMEOUT') || isKeytapError(error, 'CANCELLED')) throw error;
      throw this.transmitError(error);
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
    const data = Uint8Array.from(response.subarray(0, response.length - 2));
    const sw = (response[response.length - 2]! << 8) | response[response.length - 1]!;
    return { data, sw };
  }

  /**
   * Releases the card. Resolves at once; when an abandoned SCardTransmit is still running, the
   * handle is released after it returns (disconnecting under it would block this thread).
   */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    void this.inflight.then(() => {
      try {
        this.card.disconnect(this.leaveCard);
      } catch {
        // the card is gone already: nothing to release
      }
      releaseContext(this.context);
    });
    return Promise.resolve();
  }

  private assertUsable(): void {
    if (this.closed) throw closedError();
    if (this.failure) throw this.failure;
  }

  /** Turns a native transmit failure into a KeytapError; a removed card makes the transport unusable. */
  private transmitError(error: unknown): KeytapError {
    const text = messageOf(error);
    if (REMOVED.test(text) || (/transaction failed|communication error/i.test(text) && !this.cardStillThere())) {
      this.failure = new KeytapError('KEY_REMOVED', `${this.description} was removed.`, { hint: 'Plug the key in again and retry.', cause: error });
      return this.failure;
    }
    if (/service/i.test(text)) {
      this.failure = new KeytapError('KEY_REMOVED', `The PC/SC service stopped while talking to ${this.description}.`, { hint: PCSCD_HINT, cause: error });
      return this.failure;
    }
    if (/reset/i.test(text)) {
      return new KeytapError('DEVICE_ERROR', `${this.description} was reset by another program.`, { hint: 'Retry.', cause: error });
    }
    return new KeytapError('DEVICE_ERROR', `Talking to ${this.description} failed (${conciseNativeMessage(text)}).`, { cause: error });
  }

  /** Polls the card's presence for up to `ms`: true as soon as it is gone. */
  private async removedWithin(ms: number): Promise<boolean> {
    const until = Date.now() + ms;
    for (;;) {
      if (!this.cardStillThere()) return true;
      if (Date.now() >= until) return false;
      await delay(REMOVAL_POLL_MS, undefined);
    }
  }

  /** After an ambiguous failure: is the card still in the reader? */
  private cardStillThere(): boolean {
    try {
      // SCardStatus fails (SCARD_W_REMOVED_CARD) once pcscd has seen the card go. Its state word
      // is not in SCARD_STATE_* terms, so only the failure is looked at.
      this.card.getStatus();
      return true;
    } catch {
      return false;
    }
  }
}

const REMOVED = /removed|no smart card|reader unavailable|unknown reader|unpowered|card is not connected/i;

async function connectExclusive(sc: SmartcardModule, context: ContextInterface, readerName: string, options: PcscOpenOptions): Promise<CardInterface> {
  const description = options.description ?? readerName;
  const busyUntil = Date.now() + (options.busyWaitMs ?? DEFAULT_BUSY_WAIT_MS);
  for (;;) {
    throwIfAborted(options.signal);
    const readers = listReaders(context);
    const reader = readers.find((r) => r.name === readerName);
    if (!reader) throw new KeytapError('NO_KEY', `The reader "${readerName}" is not connected.`, { detail: { kind: 'reader-missing', reader: readerName } });
    try {
      return await reader.connect(sc.SCARD_SHARE_EXCLUSIVE, sc.SCARD_PROTOCOL_T0 | sc.SCARD_PROTOCOL_T1);
    } catch (error) {
      const text = messageOf(error);
      if (/sharing violation/i.test(text)) {
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
      if (REMOVED.test(text) || /unresponsive|unsupported/i.test(text)) {
        throw new KeytapError('KEY_REMOVED', `There is no usable card in ${description}.`, { hint: 'Plug the key in again and retry.', cause: error });
      }
      if (/service/i.test(text)) throw noServiceError(error);
      throw new KeytapError('DEVICE_ERROR', `Connecting to ${description} failed (${conciseNativeMessage(text)}).`, { cause: error });
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

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The binding's message ("Card was removed"), trimmed: it never carries APDU bytes. */
export function conciseNativeMessage(text: string): string {
  return text.trim().slice(0, 80) || 'unknown error';
}
