/**
 * The virtual key as a smart card in vsmartcard's virtual reader (vpcd, docs/protocols.md §5), so that
 * PC/SC clients — keytap's own PC/SC path, ykman, anything on pcsc-lite — can use it as they use a
 * YubiKey in a CCID reader.
 *
 * vpcd (loaded by pcscd) listens, by default on port 35963; the card connects. Every message is a
 * 2-byte big-endian length and a payload. vpcd always asks and the card answers:
 * - 1-byte payloads are control codes: 00 power off, 01 power on, 02 reset (no answer), 04 get ATR
 *   (answer: the ATR). pcscd polls presence with GET ATR all the time, also before power-on.
 * - anything longer is a command APDU; the answer is data ‖ SW1 SW2.
 *
 * vpcd holds one lock across "send request, read answer" (vpcd.c `vicc_transmit`), so it never
 * sends a second request before the first is answered: while an APDU waits for a touch, presence
 * polling waits inside vpcd and resumes after the answer. Messages are therefore answered strictly
 * in order, one at a time; a GET ATR that did arrive behind a pending APDU (a vpcd that pipelined)
 * would still be answered in order, which is the only thing the framing allows. An empty answer
 * would read as "card removed" to vpcd, so none is ever sent.
 *
 * The card stays available across vpcd going away (pcscd restarted or stopped): it reconnects with
 * backoff and never throws out of its event handlers. `close()` is pulling the card out.
 */
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { KeytapError } from '../errors.js';
import type { CardApplet } from './types.js';

export const VPCD_DEFAULT_HOST = '127.0.0.1';
/** vpcd's first slot, `0x8C7B` (the second slot is 35964). */
export const VPCD_DEFAULT_PORT = 35963;

export const VpcdControl = { POWER_OFF: 0x00, POWER_ON: 0x01, RESET: 0x02, GET_ATR: 0x04 } as const;

/**
 * The ATR of the virtual key: the one a YubiKey 5 NFC has on an external contactless reader
 * (`3B 8D 80 01 80 73 C0 21 C0 57 "YubiKey" F9`: T=1, historical bytes in compact TLV), with
 * "keytap" instead of "YubiKey" in the card issuer's data (tag 5), so no software mistakes it for a
 * genuine YubiKey.
 *
 * NFC-looking on purpose (T0 = 8C, high nibble not F; docs/protocols.md §5.4): a reader named
 * "Virtual PCD" has no USB product id, and ykman 5 refuses a USB-looking card without one ("PID
 * must be provided for non-NFC connections", yubikit/support.py `read_info`), while a card on an
 * NFC reader needs none. ykman 4.0.9 works either way; over NFC it keeps short APDUs and sends
 * no touch-workaround dummy APDUs, and it reads the serial from the Management application as
 * on a real key (management-applet.ts).
 */
export const VIRTUAL_KEY_ATR = withTck([0x3b, 0x8c, 0x80, 0x01, 0x80, 0x73, 0xc0, 0x21, 0xc0, 0x56, ...Buffer.from('keytap', 'latin1')]);

/** Appends TCK: the XOR of T0 … the last historical byte (required when a protocol other than T=0 is indicated). */
function withTck(bytes: number[]): Uint8Array {
  const tck = bytes.slice(1).reduce((x, b) => x ^ b, 0);
  return Uint8Array.from([...bytes, tck]);
}

export interface VpcdAddress {
  host: string;
  port: number;
}

/** Parses `HOST:PORT`, `HOST`, `:PORT` or `PORT` (IPv6 literals in brackets: `[::1]:35963`). */
export function parseVpcdAddress(text: string | undefined): VpcdAddress {
  const value = (text ?? '').trim();
  if (value === '') return { host: VPCD_DEFAULT_HOST, port: VPCD_DEFAULT_PORT };
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*))(?::(\d+))?$/u.exec(value);
  const onlyPort = /^\d+$/u.test(value);
  const host = onlyPort ? VPCD_DEFAULT_HOST : (match?.[1] ?? match?.[2] ?? '') || VPCD_DEFAULT_HOST;
  const portText = onlyPort ? value : match?.[3];
  const port = portText === undefined ? VPCD_DEFAULT_PORT : Number(portText);
  if (!match && !onlyPort) throw new KeytapError('USAGE', `"${value}" is not HOST:PORT.`, { detail: { kind: 'bad-vpcd-address' } });
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new KeytapError('USAGE', `The vpcd port must be 1–65535, not "${portText ?? ''}".`);
  return { host, port };
}

export interface VpcdCardOptions extends Partial<VpcdAddress> {
  applet: CardApplet;
  /** The key's button; resolves true when touched, false when its touch timeout passed. */
  requestTouch: (signal: AbortSignal) => Promise<boolean>;
  atr?: Uint8Array | undefined;
  /** First reconnect delay; doubles up to `maxRetryMs`. */
  retryMs?: number | undefined;
  maxRetryMs?: number | undefined;
  /** Progress lines for a human (connected, lost); never APDU bytes. */
  log?: ((line: string) => void) | undefined;
}

/** Largest message either side may frame. */
const MAX_FRAME = 0xffff;
/** Answer for an applet that failed outright (it should never: it turns every input into a SW). */
const SW_NO_PRECISE_DIAGNOSIS = Uint8Array.of(0x6f, 0x00);

export class VpcdCard {
  readonly host: string;
  readonly port: number;
  private readonly applet: CardApplet;
  private readonly requestTouch: (signal: AbortSignal) => Promise<boolean>;
  private readonly atr: Uint8Array;
  private readonly retryMs: number;
  private readonly maxRetryMs: number;
  private readonly log: (line: string) => void;
  private socket: Socket | undefined;
  /** Aborts the APDU in progress (its touch wait) when the connection ends. */
  private connection: AbortController | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private nextRetryMs: number;
  private closed = false;
  private wasConnected = false;
  private readonly connectedWaiters = new Set<() => void>();

  constructor(options: VpcdCardOptions) {
    this.host = options.host ?? VPCD_DEFAULT_HOST;
    this.port = options.port ?? VPCD_DEFAULT_PORT;
    this.applet = options.applet;
    this.requestTouch = options.requestTouch;
    this.atr = options.atr ?? VIRTUAL_KEY_ATR;
    this.retryMs = options.retryMs ?? 250;
    this.maxRetryMs = options.maxRetryMs ?? 5_000;
    this.nextRetryMs = this.retryMs;
    this.log = options.log ?? (() => undefined);
  }

  /** Connected to vpcd right now (the card is "in the reader"). */
  get connected(): boolean {
    return this.socket !== undefined && this.connection !== undefined;
  }

  /** Starts connecting (and reconnecting whenever the connection is lost) until `close()`. */
  start(): void {
    if (this.closed || this.socket || this.retryTimer) return;
    this.connect();
  }

  /** Resolves once connected (or at once if connected); for tests and startup messages. */
  whenConnected(): Promise<void> {
    if (this.connected) return Promise.resolve();
    return new Promise((resolve) => this.connectedWaiters.add(resolve));
  }

  /** Pulls the card out: drops the connection without answering, cancels a pending touch, stops reconnecting. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.dropConnection();
    for (const resolve of this.connectedWaiters) resolve();
    this.connectedWaiters.clear();
    return Promise.resolve();
  }

  private connect(): void {
    const socket = connect({ host: this.host, port: this.port });
    this.socket = socket;
    socket.setNoDelay(true);
    const controller = new AbortController();
    let buffered: Buffer = Buffer.alloc(0);
    // Messages are handled one at a time, in order (see the file comment).
    let queue: Promise<void> = Promise.resolve();

    socket.on('connect', () => {
      if (this.socket !== socket) return;
      this.connection = controller;
      this.nextRetryMs = this.retryMs;
      this.log(`${this.wasConnected ? 'reconnected' : 'connected'} to vpcd at ${this.host}:${this.port}`);
      this.wasConnected = true;
      for (const resolve of this.connectedWaiters) resolve();
      this.connectedWaiters.clear();
    });
    socket.on('data', (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2) {
        const length = buffered.readUInt16BE(0);
        if (buffered.length < 2 + length) break;
        const message = Uint8Array.from(buffered.subarray(2, 2 + length));
        buffered = buffered.subarray(2 + length);
        queue = queue.then(() => this.handle(socket, message, controller.signal));
      }
    });
    // 'error' is always followed by 'close'; without a listener it would be thrown.
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (this.socket === socket && !this.connection && error.code !== 'ECONNREFUSED') this.log(`cannot reach vpcd at ${this.host}:${this.port}: ${error.code ?? error.message}`);
    });
    socket.on('close', () => {
      controller.abort(new KeytapError('CANCELLED', 'The vpcd connection closed.'));
      if (this.socket !== socket) return;
      const hadConnection = this.connection === controller;
      this.socket = undefined;
      this.connection = undefined;
      if (hadConnection && !this.closed) this.log(`vpcd at ${this.host}:${this.port} went away; reconnecting`);
      this.scheduleReconnect();
    });
  }

  private scheduleReconnect(): void {
    if (this.closed || this.retryTimer) return;
    const delay = this.nextRetryMs;
    this.nextRetryMs = Math.min(this.nextRetryMs * 2, this.maxRetryMs);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (!this.closed) this.connect();
    }, delay);
  }

  private dropConnection(): void {
    const socket = this.socket;
    this.socket = undefined;
    this.connection?.abort(new KeytapError('CANCELLED', 'The virtual card was removed.'));
    this.connection = undefined;
    socket?.destroy();
  }

  /** Answers one message from vpcd. Never throws: a failure drops the connection (card removed), and it reconnects. */
  private async handle(socket: Socket, message: Uint8Array, signal: AbortSignal): Promise<void> {
    if (signal.aborted || socket.destroyed) return;
    let answer: Uint8Array | undefined;
    if (message.length === 1) {
      // Power off / on / reset need no answer. A real card loses its RAM state on power-off; this
      // applet also serves the HID side of the same key, whose session must survive, and every
      // PC/SC client SELECTs before it does anything, which resets the OATH session state anyway.
      if (message[0] === VpcdControl.GET_ATR) answer = this.atr;
    } else if (message.length === 0) {
      return;
    } else {
      answer = await this.process(message, signal);
    }
    if (answer === undefined || signal.aborted || socket.destroyed) return;
    if (answer.length === 0 || answer.length > MAX_FRAME) answer = SW_NO_PRECISE_DIAGNOSIS;
    const frame = Buffer.alloc(2 + answer.length);
    frame.writeUInt16BE(answer.length, 0);
    frame.set(answer, 2);
    socket.write(frame);
  }

  private async process(apdu: Uint8Array, signal: AbortSignal): Promise<Uint8Array> {
    try {
      return await this.applet.process(apdu, { signal, requestTouch: () => this.requestTouch(signal) });
    } catch (error) {
      // The applet turns every input into a status word; reaching here is a bug of ours (no APDU bytes in the log).
      console.error('keytap virtual key (vpcd): the applet failed:', error instanceof Error ? error.message : String(error));
      return SW_NO_PRECISE_DIAGNOSIS;
    }
  }
}
