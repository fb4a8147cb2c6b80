/**
 * The host side of CTAPHID (docs/protocols.md §3): a channel on one HID link, and the ApduTransport
 * that carries ISO 7816 APDUs in the Nitrokey 3 vendor command 0x70 (§2.2) or, for keys that take
 * raw vendor APDUs the U2F way (Feitian/HyperFIDO HOTP programming, §4.2), in MSG 0x03.
 *
 * `CtapHidChannel.call(cmd, payload, { onKeepalive })` is python-fido2's seam: everything above it
 * (APDUs, PING, WINK) is one request and one answer; everything below it (packets, other programs'
 * channels, keepalives, busy retries, cancellation) stays in this file.
 *
 * Rules every wait here follows: it has a deadline, it honours the AbortSignal, and whatever the
 * key sends — including garbage — ends in a KeytapError. Payload bytes never go into an error
 * message: APDUs carry secrets.
 */
import { randomBytes } from 'node:crypto';
import { KeytapError, cancelledError, isKeytapError, throwIfAborted } from '../../errors.js';
import { bounded, delay } from '../../util/abortable.js';
import {
  BROADCAST_CID,
  CONT_HEADER,
  CtapHidCommand,
  CtapHidError,
  CtapHidErrorName,
  FramingError,
  KeepaliveStatus,
  MessageAssembler,
  framePackets,
  maxPayload,
  parsePacket,
} from './ctaphid-frames.js';
import type { ApduResponse, ApduTransport, HidLink, TransmitOptions } from './types.js';

/** INIT, PING and WINK answer at once; a key that is silent this long is not going to answer. */
export const SHORT_TIMEOUT_MS = 1_500;
/** Requests that may wait for a touch (docs/protocols.md §3.6: at least 30 s). */
export const DEFAULT_CALL_TIMEOUT_MS = 30_000;
/** CHANNEL_BUSY backoff: python-fido2 waits about 100 ms; we grow it a little so a long wait polls less. */
const BUSY_BACKOFF_START_MS = 100;
const BUSY_BACKOFF_MAX_MS = 500;

export interface CtapHidDeviceInfo {
  /** CTAPHID protocol version, 2 for every current key. */
  protocolVersion: number;
  /** Device version as the key reports it in INIT (major, minor, build). */
  deviceVersion: [number, number, number];
  /** Capability flags (`Capability` in ctaphid-frames.ts). */
  capabilities: number;
}

export interface ChannelOpenOptions {
  /** How long to wait for the INIT answer. */
  initTimeoutMs?: number | undefined;
  signal?: AbortSignal | undefined;
}

export interface CallOptions {
  signal?: AbortSignal | undefined;
  /** Deadline for the whole call, busy retries included. Default 30 s (a touch may be pending). */
  timeoutMs?: number | undefined;
  /** Called with the KEEPALIVE status (PROCESSING 1, UPNEEDED 2) whenever it changes. */
  onKeepalive?: ((status: number) => void) | undefined;
  /** Names the request in error messages ("the key was removed during <operation>"). */
  operation?: string | undefined;
}

/** An ERROR packet from the key (docs/protocols.md §3.5), other than CHANNEL_BUSY which is retried. */
export class CtapHidDeviceError extends KeytapError {
  readonly ctapHidCode: number;

  constructor(ctapHidCode: number, operation: string) {
    const name = CtapHidErrorName[ctapHidCode] ?? 'UNKNOWN';
    const hex = `0x${ctapHidCode.toString(16).padStart(2, '0')}`;
    super(errorCodeFor(ctapHidCode), `The key rejected ${operation} with CTAPHID error ${name} (${hex}).`, {
      hint: hintFor(ctapHidCode),
    });
    this.ctapHidCode = ctapHidCode;
  }
}

function errorCodeFor(code: number): KeytapError['code'] {
  switch (code) {
    case CtapHidError.INVALID_CMD:
      return 'UNSUPPORTED';
    case CtapHidError.CHANNEL_BUSY:
    case CtapHidError.LOCK_REQUIRED:
      return 'BUSY';
    case CtapHidError.OTHER:
      return 'DEVICE_ERROR';
    default:
      return 'PROTOCOL';
  }
}

function hintFor(code: number): string | undefined {
  switch (code) {
    case CtapHidError.INVALID_CMD:
      return 'This key does not offer that function over its FIDO interface (OATH over HID needs a Nitrokey 3).';
    case CtapHidError.LOCK_REQUIRED:
      return 'Another program holds the key locked; close it and try again.';
    default:
      return undefined;
  }
}

const COMMAND_NAMES: Record<number, string> = Object.fromEntries(Object.entries(CtapHidCommand).map(([name, code]) => [code, name]));

function commandName(cmd: number): string {
  return COMMAND_NAMES[cmd] ?? `command 0x${cmd.toString(16).padStart(2, '0')}`;
}

function protocolError(message: string, cause?: unknown): KeytapError {
  return new KeytapError('PROTOCOL', message, {
    hint: 'Unplug the key and plug it in again; if it keeps happening, another program may be talking to the key.',
    cause,
  });
}

/** Thrown inside a call when the key says CHANNEL_BUSY; the call loop retries. */
class BusySignal extends Error {}

/** A link failure, rephrased with what was going on. */
function linkError(error: unknown, operation: string): KeytapError {
  if (isKeytapError(error, 'KEY_REMOVED')) {
    return new KeytapError('KEY_REMOVED', `The key was removed during ${operation}.`, { hint: error.hint, cause: error });
  }
  if (isKeytapError(error)) return error;
  return new KeytapError('DEVICE_ERROR', `Talking to the key failed during ${operation}.`, { cause: error });
}

export class CtapHidChannel {
  readonly link: HidLink;
  /** The largest payload this link's framing carries (7609 with 64-byte reports). */
  readonly maxPayload: number;
  private cidValue: number;
  private infoValue: CtapHidDeviceInfo;
  /** Set when a transaction was abandoned (timeout, cancel, garbage): its late answer must not be taken for the next one's. */
  private stale = false;
  /** Calls run one at a time: a CTAPHID channel has one transaction in flight. */
  private queue: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(link: HidLink, cid: number, info: CtapHidDeviceInfo) {
    this.link = link;
    this.cidValue = cid;
    this.infoValue = info;
    this.maxPayload = maxPayload(link.reportSize);
  }

  /** Allocates a channel: INIT on the broadcast CID with a random nonce (docs/protocols.md §3.4). */
  static async open(link: HidLink, options: ChannelOpenOptions = {}): Promise<CtapHidChannel> {
    const { cid, info } = await initChannel(link, options.initTimeoutMs ?? SHORT_TIMEOUT_MS, options.signal);
    return new CtapHidChannel(link, cid, info);
  }

  /** The channel id the key allocated. Changes when the channel resynchronises after an abandoned call. */
  get cid(): number {
    return this.cidValue;
  }

  get info(): CtapHidDeviceInfo {
    return this.infoValue;
  }

  /**
   * Sends one request and returns the answer's payload. Retries on CHANNEL_BUSY until the deadline;
   * sends CANCEL and rejects CANCELLED when `signal` fires.
   */
  async call(cmd: number, payload: Uint8Array, options: CallOptions = {}): Promise<Uint8Array> {
    const operation = options.operation ?? commandName(cmd);
    if (payload.length > this.maxPayload) {
      throw new KeytapError('UNSUPPORTED', `A CTAPHID message carries at most ${this.maxPayload} bytes; ${operation} needs ${payload.length}.`);
    }
    return this.exclusive(options.signal, () => this.transact(cmd, payload, options, operation));
  }

  /** PING: the key echoes the bytes. */
  async ping(data: Uint8Array = new Uint8Array(), options: Omit<CallOptions, 'onKeepalive'> = {}): Promise<Uint8Array> {
    const answer = await this.call(CtapHidCommand.PING, data, { timeoutMs: SHORT_TIMEOUT_MS, ...options });
    if (answer.length !== data.length || answer.some((byte, i) => byte !== data[i])) {
      throw protocolError('The key answered PING with different bytes.');
    }
    return answer;
  }

  /** WINK: the key blinks, so the user can tell which one is meant. */
  async wink(options: Omit<CallOptions, 'onKeepalive'> = {}): Promise<void> {
    await this.call(CtapHidCommand.WINK, new Uint8Array(), { timeoutMs: SHORT_TIMEOUT_MS, ...options });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.link.close();
  }

  private async exclusive<T>(signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    const previous = this.queue;
    let release!: () => void;
    this.queue = new Promise<void>((resolve) => (release = resolve));
    try {
      // The call before us has its own deadline, so this wait is bounded; an abort still ends it at once.
      await bounded(previous, Number.POSITIVE_INFINITY, signal, () => cancelledError(signal));
      if (this.closed) throw new KeytapError('CANCELLED', 'The connection to the key was closed.');
      return await fn();
    } finally {
      // Release only after the previous holder finished, or a cancelled waiter would let the next call overlap.
      void previous.then(release);
    }
  }

  private async transact(cmd: number, payload: Uint8Array, options: CallOptions, operation: string): Promise<Uint8Array> {
    const { signal } = options;
    const timeoutMs = options.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    const deadline = Date.now() + timeoutMs;
    throwIfAborted(signal);
    if (this.stale) await this.resync(deadline, signal, operation);

    let backoff = BUSY_BACKOFF_START_MS;
    let busy = false;
    for (;;) {
      try {
        return await this.exchange(cmd, payload, deadline, options, operation);
      } catch (error) {
        // A deadline that passes while we are still taking turns with another program means "busy", not "silent".
        if (busy && isKeytapError(error, 'TIMEOUT')) throw busyError();
        if (!(error instanceof BusySignal)) throw error;
      }
      // CHANNEL_BUSY: another program's transaction is in flight. Wait and resend the whole request.
      busy = true;
      const wait = Math.min(backoff, deadline - Date.now());
      if (wait <= 0) throw busyError();
      await delay(wait, signal);
      backoff = Math.min(BUSY_BACKOFF_MAX_MS, Math.round(backoff * 1.5));
    }
  }

  /** One attempt: write all packets back to back, read the answer. */
  private async exchange(
    cmd: number,
    payload: Uint8Array,
    deadline: number,
    options: CallOptions,
    operation: string,
  ): Promise<Uint8Array> {
    const { signal } = options;
    const cid = this.cidValue;
    const packets = framePackets(cid, cmd, payload, this.link.reportSize);
    let sent = false;
    try {
      for (const packet of packets) {
        // Counts as sent once the write starts: a write we stop waiting for may still reach the key.
        sent = true;
        await bounded(this.link.write(packet), deadline, signal, () => this.timeoutError(operation, false));
      }
      return await this.readAnswer(cid, cmd, deadline, options, operation);
    } catch (error) {
      if (error instanceof BusySignal) throw error;
      const keytapError = signal?.aborted ? cancelledError(signal) : linkError(error, operation);
      if (keytapError.code === 'CANCELLED' && sent) await this.sendCancel(cid);
      // Whatever the key still sends for this request must not be read as the next call's answer.
      if (sent && keytapError.code !== 'KEY_REMOVED' && !(error instanceof CtapHidDeviceError)) this.stale = true;
      throw keytapError;
    }
  }

  private async readAnswer(
    cid: number,
    cmd: number,
    deadline: number,
    options: CallOptions,
    operation: string,
  ): Promise<Uint8Array> {
    let assembler: MessageAssembler | undefined;
    let lastKeepalive: number | undefined;
    for (;;) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw this.timeoutError(operation, lastKeepalive === KeepaliveStatus.UPNEEDED);
      const report = await this.link.read(remaining, options.signal);
      if (report === undefined) continue; // the loop head turns a passed deadline into TIMEOUT
      if (report.length < CONT_HEADER) throw protocolError(`The key sent a report of ${report.length} bytes during ${operation}.`);
      // Several programs may read the same device node: reports for other channels are theirs (§3.6).
      if (readCid(report) !== cid) continue;
      if (report.length !== this.link.reportSize) {
        throw protocolError(`The key sent a report of ${report.length} bytes instead of ${this.link.reportSize} during ${operation}.`);
      }
      const packet = parsePacket(report);

      if (packet.kind === 'cont') {
        if (assembler === undefined) throw protocolError(`The key sent a continuation packet without a start during ${operation}.`);
        try {
          if (assembler.add(packet)) return assembler.payload;
        } catch (error) {
          if (error instanceof FramingError) {
            throw protocolError(`The key's answer to ${operation} arrived out of order (bad CTAPHID sequence number).`, error);
          }
          throw error;
        }
        continue;
      }

      if (assembler !== undefined) throw protocolError(`The key started a new message in the middle of its answer to ${operation}.`);
      if (packet.cmd === CtapHidCommand.KEEPALIVE) {
        const status = packet.data[0] ?? 0;
        if (status !== lastKeepalive) {
          lastKeepalive = status;
          notify(options.onKeepalive, status);
        }
        continue;
      }
      if (packet.cmd === CtapHidCommand.ERROR) {
        const code = packet.data[0] ?? 0;
        if (code === CtapHidError.CHANNEL_BUSY) throw new BusySignal();
        throw new CtapHidDeviceError(code, operation);
      }
      if (packet.cmd !== cmd) {
        throw protocolError(`The key answered ${operation} with ${commandName(packet.cmd)}.`);
      }
      if (packet.length > this.maxPayload) {
        throw protocolError(`The key announced an answer of ${packet.length} bytes, more than CTAPHID can carry.`);
      }
      assembler = new MessageAssembler(packet);
      if (assembler.complete) return assembler.payload;
    }
  }

  private timeoutError(operation: string, touchPending: boolean): KeytapError {
    if (touchPending) {
      return new KeytapError('TOUCH_TIMEOUT', `The key waited for a touch during ${operation}, and none came in time.`, {
        hint: 'Touch the key when it blinks.',
      });
    }
    return new KeytapError('TIMEOUT', `The key did not answer ${operation} in time.`, {
      hint: 'Unplug the key and plug it in again.',
    });
  }

  /** CANCEL has no answer (§3.3); if it cannot be sent the key is gone or wedged and the next call will say so. */
  private async sendCancel(cid: number): Promise<void> {
    const [packet] = framePackets(cid, CtapHidCommand.CANCEL, new Uint8Array(), this.link.reportSize);
    try {
      await bounded(this.link.write(packet!), Date.now() + SHORT_TIMEOUT_MS, undefined, () => new KeytapError('TIMEOUT', 'CANCEL not sent.'));
    } catch {
      // nothing more to do: the caller gets CANCELLED either way
    }
  }

  /**
   * Gets a fresh channel after an abandoned transaction. The old channel's late answer then
   * arrives on a CID that is no longer ours and is dropped like any other program's traffic.
   */
  private async resync(deadline: number, signal: AbortSignal | undefined, operation: string): Promise<void> {
    const timeout = Math.min(SHORT_TIMEOUT_MS, Math.max(1, deadline - Date.now()));
    try {
      const { cid, info } = await initChannel(this.link, timeout, signal);
      this.cidValue = cid;
      this.infoValue = info;
      this.stale = false;
    } catch (error) {
      throw isKeytapError(error, 'KEY_REMOVED') ? linkError(error, operation) : error;
    }
  }
}

function notify(callback: ((status: number) => void) | undefined, status: number): void {
  try {
    callback?.(status);
  } catch {
    // A failing UI callback (a toast that could not be shown) must not break the transaction on the key.
  }
}

function readCid(report: Uint8Array): number {
  return ((report[0]! << 24) | (report[1]! << 16) | (report[2]! << 8) | report[3]!) >>> 0;
}

const INIT_RESPONSE_LENGTH = 17;

async function initChannel(
  link: HidLink,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<{ cid: number; info: CtapHidDeviceInfo }> {
  throwIfAborted(signal);
  const deadline = Date.now() + timeoutMs;
  const nonce = new Uint8Array(randomBytes(8));
  const [request] = framePackets(BROADCAST_CID, CtapHidCommand.INIT, nonce, link.reportSize);
  let backoff = BUSY_BACKOFF_START_MS;
  let busy = false;
  let resendAt = Number.POSITIVE_INFINITY;
  try {
    await bounded(link.write(request!), deadline, signal, () => initTimeout(busy));
    for (;;) {
      const now = Date.now();
      if (now >= deadline) throw initTimeout(busy);
      if (now >= resendAt) {
        resendAt = Number.POSITIVE_INFINITY;
        await bounded(link.write(request!), deadline, signal, () => initTimeout(busy));
        continue;
      }
      const report = await link.read(Math.min(deadline, resendAt) - now, signal);
      if (report === undefined || report.length !== link.reportSize || readCid(report) !== BROADCAST_CID) continue;
      const packet = parsePacket(report);
      if (packet.kind !== 'init') continue;
      if (packet.cmd === CtapHidCommand.ERROR) {
        // An ERROR on the broadcast channel may answer someone else's INIT. BUSY is worth a retry either way.
        if (packet.data[0] === CtapHidError.CHANNEL_BUSY && resendAt === Number.POSITIVE_INFINITY) {
          busy = true;
          resendAt = Date.now() + backoff;
          backoff = Math.min(BUSY_BACKOFF_MAX_MS, Math.round(backoff * 1.5));
        }
        continue;
      }
      if (packet.cmd !== CtapHidCommand.INIT || packet.data.length < nonce.length) continue;
      // Another program may be allocating a channel at the same moment: its answer carries its nonce.
      if (!nonce.every((byte, i) => packet.data[i] === byte)) continue;
      if (packet.length < INIT_RESPONSE_LENGTH || packet.data.length < INIT_RESPONSE_LENGTH) {
        throw protocolError(`The key answered INIT with ${packet.length} bytes instead of ${INIT_RESPONSE_LENGTH}.`);
      }
      const d = packet.data;
      const cid = readCid(d.subarray(8, 12));
      if (cid === 0 || cid === BROADCAST_CID) throw protocolError('The key allocated an invalid CTAPHID channel.');
      return {
        cid,
        info: { protocolVersion: d[12]!, deviceVersion: [d[13]!, d[14]!, d[15]!], capabilities: d[16]! },
      };
    }
  } catch (error) {
    if (signal?.aborted) throw cancelledError(signal);
    throw linkError(error, 'connecting to the key (INIT)');
  }
}

function busyError(): KeytapError {
  return new KeytapError('BUSY', 'The key is busy with another program.', {
    hint: 'Close the browser tab or app that is using the key, then try again.',
  });
}

function initTimeout(busy: boolean): KeytapError {
  if (busy) return busyError();
  return new KeytapError('TIMEOUT', 'The key did not answer INIT in time.', {
    hint: 'Unplug the key and plug it in again. If it is not a FIDO key, keytap cannot talk to it over HID.',
  });
}

/** Status word first, then data (docs/protocols.md §2.2) — the reverse of ISO order. */
export function parseVendorResponse(payload: Uint8Array): ApduResponse {
  if (payload.length < 2) {
    throw protocolError(`The key answered an APDU with ${payload.length} bytes, too short for a status word.`);
  }
  return { sw: (payload[0]! << 8) | payload[1]!, data: payload.slice(2) };
}

/** ISO order, data then SW (U2FHID MSG answers, docs/protocols.md §4.2). */
export function parseIsoResponse(payload: Uint8Array): ApduResponse {
  if (payload.length < 2) {
    throw protocolError(`The key answered an APDU with ${payload.length} bytes, too short for a status word.`);
  }
  const end = payload.length - 2;
  return { sw: (payload[end]! << 8) | payload[end + 1]!, data: payload.slice(0, end) };
}

/**
 * Which CTAPHID command carries the APDUs: the Nitrokey 3's vendor command 0x70 (SW first), or
 * U2FHID MSG 0x03 (ISO order), which Feitian-made HOTP keys take their programming APDUs in.
 */
export type ApduFraming = 'vendor-secrets' | 'msg';

const FRAMINGS: Record<ApduFraming, { cmd: number; operation: string; parse: (payload: Uint8Array) => ApduResponse }> = {
  'vendor-secrets': { cmd: CtapHidCommand.VENDOR_SECRETS, operation: 'an OATH request', parse: parseVendorResponse },
  msg: { cmd: CtapHidCommand.MSG, operation: 'an APDU (U2FHID MSG)', parse: parseIsoResponse },
};

export interface CtapHidTransportOptions extends ChannelOpenOptions {
  /** What `description` says ("Nitrokey 3 (/dev/hidraw3)"). */
  description?: string | undefined;
  /** Default 'vendor-secrets' (0x70). */
  framing?: ApduFraming | undefined;
}

/** ISO 7816 APDUs over CTAPHID vendor command 0x70 (Nitrokey 3 Secrets App, docs/protocols.md §2.2) or MSG 0x03 (§4.2). */
export class CtapHidApduTransport implements ApduTransport {
  readonly description: string;
  readonly channel: CtapHidChannel;
  readonly framing: ApduFraming;

  constructor(channel: CtapHidChannel, description = 'CTAPHID key', framing: ApduFraming = 'vendor-secrets') {
    this.channel = channel;
    this.description = description;
    this.framing = framing;
  }

  /** Opens a channel on `link` and wraps it. Closes the link if INIT fails. */
  static async open(link: HidLink, options: CtapHidTransportOptions = {}): Promise<CtapHidApduTransport> {
    let channel: CtapHidChannel;
    try {
      channel = await CtapHidChannel.open(link, options);
    } catch (error) {
      await link.close().catch(() => undefined);
      throw error;
    }
    return new CtapHidApduTransport(channel, options.description, options.framing);
  }

  async transmit(apdu: Uint8Array, options: TransmitOptions = {}): Promise<ApduResponse> {
    let touchAnnounced = false;
    const framing = FRAMINGS[this.framing];
    const payload = await this.channel.call(framing.cmd, apdu, {
      signal: options.signal,
      timeoutMs: options.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS,
      operation: framing.operation,
      onKeepalive: (status) => {
        if (status !== KeepaliveStatus.UPNEEDED || touchAnnounced) return;
        touchAnnounced = true;
        options.onTouchNeeded?.();
      },
    });
    return framing.parse(payload);
  }

  async close(): Promise<void> {
    await this.channel.close();
  }
}
