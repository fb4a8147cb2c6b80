/**
 * A minimal X11 client that owns the CLIPBOARD selection from inside this process and answers
 * paste requests itself (ICCCM §2). It exists because no Debian command-line tool can publish two
 * targets at once: `xclip -t` offers exactly one, xsel only text. Owning the selection ourselves
 * lets us offer the text (UTF8_STRING, STRING, TEXT, text/plain, text/plain;charset=utf-8) *and*
 * `x-kde-passwordManagerHint` = "secret", the marker KeePassXC sets and Klipper, CopyQ, GPaste and
 * clipman-style managers honour by not recording the copy.
 *
 * Only the core protocol is spoken, over the display's Unix socket, with MIT-MAGIC-COOKIE-1 from
 * $XAUTHORITY when there is one. No INCR (large transfers): the adapter uses it only for short text.
 */
import { readFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { homedir, hostname } from 'node:os';
import { join } from 'node:path';

const OP = {
  CreateWindow: 1,
  DestroyWindow: 4,
  InternAtom: 16,
  ChangeProperty: 18,
  DeleteProperty: 19,
  GetProperty: 20,
  SetSelectionOwner: 22,
  GetSelectionOwner: 23,
  ConvertSelection: 24,
  SendEvent: 25,
} as const;
const EVENT = { PropertyNotify: 28, SelectionClear: 29, SelectionRequest: 30, SelectionNotify: 31 } as const;
const ATOM_ATOM = 4;
const ATOM_INTEGER = 19;
const ATOM_STRING = 31;
const CURRENT_TIME = 0;
const NONE = 0;
const PROPERTY_CHANGE_MASK = 0x400000;
const INPUT_ONLY = 2;
const CW_EVENT_MASK = 0x800;

export const PASSWORD_MANAGER_HINT = 'x-kde-passwordManagerHint';
const ATOM_NAMES = [
  'CLIPBOARD',
  'TARGETS',
  'TIMESTAMP',
  'MULTIPLE',
  'UTF8_STRING',
  'TEXT',
  'text/plain',
  'text/plain;charset=utf-8',
  'INCR',
  PASSWORD_MANAGER_HINT,
  'KEYTAP_SELECTION',
] as const;
type AtomName = (typeof ATOM_NAMES)[number];

/** How the display is reached: a Unix socket path (":0" → /tmp/.X11-unix/X0) and its number. */
export function parseDisplay(display: string): { socketPath: string; number: string } | undefined {
  const match = /^(?:unix)?:(\d+)(?:\.\d+)?$/.exec(display.trim());
  if (!match?.[1]) return undefined;
  return { socketPath: `/tmp/.X11-unix/X${match[1]}`, number: match[1] };
}

/** The MIT-MAGIC-COOKIE-1 for a local display from an Xauthority file, if any. */
export function readXauthCookie(file: string, displayNumber: string, host = hostname()): Buffer | undefined {
  let data: Buffer;
  try {
    data = readFileSync(file);
  } catch {
    return undefined;
  }
  let offset = 0;
  const field = (): Buffer | undefined => {
    if (offset + 2 > data.length) return undefined;
    const length = data.readUInt16BE(offset);
    offset += 2;
    if (offset + length > data.length) return undefined;
    const value = data.subarray(offset, offset + length);
    offset += length;
    return value;
  };
  while (offset + 2 <= data.length) {
    const family = data.readUInt16BE(offset);
    offset += 2;
    const address = field();
    const number = field();
    const name = field();
    const cookie = field();
    if (!address || !number || !name || !cookie) return undefined;
    // 256 = FamilyLocal (by host name), 65535 = FamilyWild.
    const hostMatches = family === 65535 || (family === 256 && address.toString() === host);
    const numberMatches = number.length === 0 || number.toString() === displayNumber;
    if (hostMatches && numberMatches && name.toString() === 'MIT-MAGIC-COOKIE-1') return cookie;
  }
  return undefined;
}

const pad4 = (n: number) => (4 - (n % 4)) % 4;

interface Pending {
  resolve(reply: Buffer): void;
  reject(error: Error): void;
}

export class X11Error extends Error {}

/**
 * One connection to the X server, one InputOnly window, ownership of CLIPBOARD while we hold a
 * text. Every failure surfaces as a rejected promise or through `onClose`; nothing throws from
 * socket callbacks.
 */
export class X11Selection {
  private buffer: Buffer = Buffer.alloc(0);
  private sequence = 0;
  private readonly pending = new Map<number, Pending>();
  private readonly waiters: ((event: Buffer) => boolean)[] = [];
  private readonly atoms = new Map<AtomName, number>();
  private window = 0;
  private text: Buffer | undefined;
  private sensitive = false;
  private ownedSince = 0;
  private closed = false;
  private closeReason: Error | undefined;

  private constructor(
    private readonly socket: Socket,
    private readonly onClose: (error: Error) => void,
  ) {}

  /** Connects to `display` (":0"); rejects when there is no such display or it refuses us. */
  static async connect(display: string, options: { onClose?: (error: Error) => void; xauthority?: string; timeoutMs?: number } = {}): Promise<X11Selection> {
    const parsed = parseDisplay(display);
    if (!parsed) throw new X11Error(`DISPLAY ${JSON.stringify(display)} is not a local display`);
    const xauthority = options.xauthority ?? process.env.XAUTHORITY ?? join(homedir(), '.Xauthority');
    const cookie = readXauthCookie(xauthority, parsed.number);
    const socket = createConnection(parsed.socketPath);
    const selection = new X11Selection(socket, options.onClose ?? (() => undefined));
    const timeoutMs = options.timeoutMs ?? 3_000;
    const setup = await new Promise<Buffer>((resolve, reject) => {
      let data = Buffer.alloc(0);
      const timer = setTimeout(() => fail(new X11Error('the X server did not answer')), timeoutMs);
      const fail = (error: Error) => {
        clearTimeout(timer);
        socket.destroy();
        reject(error);
      };
      socket.once('error', (error) => fail(new X11Error(`cannot connect to ${display}: ${error.message}`)));
      socket.once('connect', () => {
        const name = cookie ? Buffer.from('MIT-MAGIC-COOKIE-1') : Buffer.alloc(0);
        const auth = cookie ?? Buffer.alloc(0);
        const request = Buffer.alloc(12 + name.length + pad4(name.length) + auth.length + pad4(auth.length));
        request.writeUInt8(0x6c, 0); // 'l': little-endian
        request.writeUInt16LE(11, 2);
        request.writeUInt16LE(0, 4);
        request.writeUInt16LE(name.length, 6);
        request.writeUInt16LE(auth.length, 8);
        name.copy(request, 12);
        auth.copy(request, 12 + name.length + pad4(name.length));
        socket.write(request);
      });
      const onData = (chunk: Buffer) => {
        data = Buffer.concat([data, chunk]);
        if (data.length < 8) return;
        const total = 8 + data.readUInt16LE(6) * 4;
        if (data.length < total) return;
        socket.off('data', onData);
        clearTimeout(timer);
        const status = data.readUInt8(0);
        if (status !== 1) {
          const reason = status === 0 ? data.subarray(8, 8 + data.readUInt8(1)).toString() : 'further authentication required';
          fail(new X11Error(`the X server refused the connection: ${reason.trim()}`));
          return;
        }
        selection.buffer = data.subarray(total);
        resolve(data.subarray(0, total));
      };
      socket.on('data', onData);
    });
    socket.removeAllListeners('error');
    selection.start(setup);
    try {
      await selection.init();
    } catch (error) {
      selection.close();
      throw error;
    }
    return selection;
  }

  /** Whether we (still) own CLIPBOARD: nobody copied anything since our write. */
  get owns(): boolean {
    return this.text !== undefined;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Takes CLIPBOARD with `text`, offered as plain text and, if `sensitive`, with the hint. */
  async own(text: string, sensitive: boolean): Promise<void> {
    const time = await this.serverTime();
    this.text = Buffer.from(text, 'utf8');
    this.sensitive = sensitive;
    this.ownedSince = time;
    this.request(OP.SetSelectionOwner, 0, this.u32(this.window, this.atom('CLIPBOARD'), time));
    const owner = (await this.roundTrip(OP.GetSelectionOwner, 0, this.u32(this.atom('CLIPBOARD')))).readUInt32LE(8);
    if (owner !== this.window) {
      this.text = undefined;
      throw new X11Error('the X server did not give us the clipboard');
    }
  }

  /** Empties CLIPBOARD (owner None), whoever owns it. */
  async clear(): Promise<void> {
    const time = await this.serverTime();
    this.text = undefined;
    this.request(OP.SetSelectionOwner, 0, this.u32(NONE, this.atom('CLIPBOARD'), time));
    await this.roundTrip(OP.GetSelectionOwner, 0, this.u32(this.atom('CLIPBOARD')));
  }

  /** The text in CLIPBOARD, or undefined when there is none (or it is too large to be ours). */
  async read(timeoutMs = 1_000): Promise<string | undefined> {
    if (this.text) return this.text.toString('utf8');
    const owner = (await this.roundTrip(OP.GetSelectionOwner, 0, this.u32(this.atom('CLIPBOARD')))).readUInt32LE(8);
    if (owner === NONE) return undefined;
    for (const target of ['UTF8_STRING', 'STRING'] as const) {
      const targetAtom = target === 'STRING' ? ATOM_STRING : this.atom(target);
      const notify = this.waitForEvent(
        (event) => event.readUInt8(0) % 128 === EVENT.SelectionNotify && event.readUInt32LE(8) === this.window,
        timeoutMs,
      );
      this.request(OP.ConvertSelection, 0, this.u32(this.window, this.atom('CLIPBOARD'), targetAtom, this.atom('KEYTAP_SELECTION'), CURRENT_TIME));
      const event = await notify;
      if (event.readUInt32LE(20) === NONE) continue;
      const reply = await this.roundTrip(OP.GetProperty, 1, this.u32(this.window, this.atom('KEYTAP_SELECTION'), 0, 0, 1 << 20));
      const type = reply.readUInt32LE(8);
      if (type === this.atom('INCR')) {
        this.request(OP.DeleteProperty, 0, this.u32(this.window, this.atom('KEYTAP_SELECTION')));
        return undefined;
      }
      const length = reply.readUInt32LE(16) * (reply.readUInt8(1) / 8);
      const value = reply.subarray(32, 32 + length);
      return target === 'STRING' ? value.toString('latin1') : value.toString('utf8');
    }
    return undefined;
  }

  close(): void {
    this.shutdown(new X11Error('closed'));
  }

  // ── protocol plumbing ──

  private start(setup: Buffer): void {
    const idBase = setup.readUInt32LE(12);
    const vendorLength = setup.readUInt16LE(24);
    const formats = setup.readUInt8(29);
    const rootOffset = 40 + vendorLength + pad4(vendorLength) + 8 * formats;
    const root = setup.readUInt32LE(rootOffset);
    this.window = idBase | 1;
    this.socket.on('data', (chunk: Buffer) => {
      this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
      this.drain();
    });
    this.socket.on('error', (error) => this.shutdown(new X11Error(`X connection: ${error.message}`)));
    this.socket.on('close', () => this.shutdown(new X11Error('the X server closed the connection')));
    // An InputOnly window that only listens to PropertyNotify (our source of server timestamps).
    this.request(OP.CreateWindow, 0, this.u32(this.window, root, 0, 1 | (1 << 16), 0 | (INPUT_ONLY << 16), 0, CW_EVENT_MASK, PROPERTY_CHANGE_MASK));
    this.drain();
  }

  private async init(): Promise<void> {
    const replies = ATOM_NAMES.map((name) => {
      const bytes = Buffer.from(name, 'latin1');
      const body = Buffer.alloc(4 + bytes.length + pad4(bytes.length));
      body.writeUInt16LE(bytes.length, 0);
      bytes.copy(body, 4);
      return this.roundTrip(OP.InternAtom, 0, body).then((reply) => this.atoms.set(name, reply.readUInt32LE(8)));
    });
    await Promise.all(replies);
  }

  private atom(name: AtomName): number {
    const atom = this.atoms.get(name);
    if (atom === undefined) throw new X11Error(`atom ${name} was not interned`);
    return atom;
  }

  private u32(...values: number[]): Buffer {
    const buffer = Buffer.alloc(values.length * 4);
    values.forEach((value, index) => buffer.writeUInt32LE(value >>> 0, index * 4));
    return buffer;
  }

  /** Sends a request; returns its sequence number. */
  private request(opcode: number, data: number, body: Buffer): number {
    if (this.closed) throw this.closeReason ?? new X11Error('the X connection is closed');
    const header = Buffer.alloc(4);
    header.writeUInt8(opcode, 0);
    header.writeUInt8(data, 1);
    header.writeUInt16LE((4 + body.length) / 4, 2);
    this.socket.write(Buffer.concat([header, body]));
    this.sequence = (this.sequence + 1) & 0xffff;
    return this.sequence;
  }

  private roundTrip(opcode: number, data: number, body: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      try {
        this.pending.set(this.request(opcode, data, body), { resolve, reject });
      } catch (error) {
        reject(error instanceof Error ? error : new X11Error(String(error)));
      }
    });
  }

  private waitForEvent(match: (event: Buffer) => boolean, timeoutMs: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const index = this.waiters.indexOf(waiter);
        if (index >= 0) this.waiters.splice(index, 1);
        reject(new X11Error('the clipboard owner did not answer'));
      }, timeoutMs);
      const waiter = (event: Buffer) => {
        if (event.length === 0) {
          clearTimeout(timer);
          reject(this.closeReason ?? new X11Error('the X connection is closed'));
          return true;
        }
        if (!match(event)) return false;
        clearTimeout(timer);
        resolve(event);
        return true;
      };
      this.waiters.push(waiter);
    });
  }

  /** A server timestamp, as ICCCM wants for SetSelectionOwner: append nothing to a property of ours. */
  private async serverTime(): Promise<number> {
    const notify = this.waitForEvent(
      (event) => event.readUInt8(0) % 128 === EVENT.PropertyNotify && event.readUInt32LE(4) === this.window,
      2_000,
    );
    const body = Buffer.concat([this.u32(this.window, this.atom('KEYTAP_SELECTION'), ATOM_STRING), Buffer.from([8, 0, 0, 0]), this.u32(0)]);
    this.request(OP.ChangeProperty, 2 /* Append */, body);
    const event = await notify;
    return event.readUInt32LE(12);
  }

  private drain(): void {
    while (this.buffer.length >= 32) {
      const kind = this.buffer.readUInt8(0);
      const length = kind === 1 ? 32 + this.buffer.readUInt32LE(4) * 4 : 32;
      if (this.buffer.length < length) return;
      const packet = this.buffer.subarray(0, length);
      this.buffer = this.buffer.subarray(length);
      if (kind === 0 || kind === 1) {
        const sequence = packet.readUInt16LE(2);
        const pending = this.pending.get(sequence);
        if (!pending) continue; // An error for a request without reply; the round trip after it tells.
        this.pending.delete(sequence);
        if (kind === 1) pending.resolve(packet);
        else pending.reject(new X11Error(`X error ${packet.readUInt8(1)} for request ${packet.readUInt8(10)}`));
        continue;
      }
      try {
        this.dispatch(packet);
      } catch {
        // A malformed request from another client must not become an exception in a socket
        // callback (that would end the process); that client just gets no answer.
      }
    }
  }

  private dispatch(event: Buffer): void {
    const code = event.readUInt8(0) % 128;
    if (code === EVENT.SelectionRequest) {
      this.answer(event);
      return;
    }
    if (code === EVENT.SelectionClear && event.readUInt32LE(12) === this.atoms.get('CLIPBOARD')) {
      // Someone else copied: their text is the clipboard now, and ours is forgotten.
      this.text = undefined;
      return;
    }
    const index = this.waiters.findIndex((waiter) => waiter(event));
    if (index >= 0) this.waiters.splice(index, 1);
  }

  /** Answers a paste (ICCCM §2.2): put the data on the requestor's property, then notify it. */
  private answer(event: Buffer): void {
    const time = event.readUInt32LE(4);
    const requestor = event.readUInt32LE(12);
    const selection = event.readUInt32LE(16);
    const target = event.readUInt32LE(20);
    // Obsolete clients pass None and expect the target's name to be used.
    let property = event.readUInt32LE(24) || target;
    const text = this.text;
    const owned = text !== undefined && selection === this.atoms.get('CLIPBOARD') && (time === CURRENT_TIME || time >= this.ownedSince);
    const textTargets = [this.atom('UTF8_STRING'), this.atom('TEXT'), this.atom('text/plain'), this.atom('text/plain;charset=utf-8')];
    if (!owned) {
      property = NONE;
    } else if (target === this.atom('TARGETS')) {
      const targets = [this.atom('TARGETS'), this.atom('TIMESTAMP'), ...textTargets, ATOM_STRING];
      if (this.sensitive) targets.push(this.atom(PASSWORD_MANAGER_HINT));
      this.setProperty(requestor, property, ATOM_ATOM, 32, this.u32(...targets));
    } else if (target === this.atom('TIMESTAMP')) {
      this.setProperty(requestor, property, ATOM_INTEGER, 32, this.u32(this.ownedSince));
    } else if (textTargets.includes(target)) {
      // TEXT is answered as UTF8_STRING, which ICCCM allows; the MIME names answer in their own type.
      const type = target === this.atom('TEXT') ? this.atom('UTF8_STRING') : target;
      this.setProperty(requestor, property, type, 8, text);
    } else if (target === ATOM_STRING) {
      this.setProperty(requestor, property, ATOM_STRING, 8, Buffer.from(text.toString('utf8'), 'latin1'));
    } else if (this.sensitive && target === this.atom(PASSWORD_MANAGER_HINT)) {
      this.setProperty(requestor, property, target, 8, Buffer.from('secret'));
    } else {
      property = NONE; // MULTIPLE and anything else: refused, the requestor falls back.
    }
    const notify = Buffer.alloc(32);
    notify.writeUInt8(EVENT.SelectionNotify, 0);
    notify.writeUInt32LE(time, 4);
    notify.writeUInt32LE(requestor, 8);
    notify.writeUInt32LE(selection, 12);
    notify.writeUInt32LE(target, 16);
    notify.writeUInt32LE(property, 20);
    try {
      this.request(OP.SendEvent, 0, Buffer.concat([this.u32(requestor, 0), notify]));
    } catch {
      // The connection is gone; the requestor times out on its own.
    }
  }

  private setProperty(window: number, property: number, type: number, format: 8 | 32, data: Buffer): void {
    const units = data.length / (format / 8);
    const body = Buffer.concat([this.u32(window, property, type), Buffer.from([format, 0, 0, 0]), this.u32(units), data, Buffer.alloc(pad4(data.length))]);
    this.request(OP.ChangeProperty, 0 /* Replace */, body);
  }

  private shutdown(reason: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.closeReason = reason;
    this.text = undefined;
    for (const pending of this.pending.values()) pending.reject(reason);
    this.pending.clear();
    for (const waiter of this.waiters.splice(0)) waiter(Buffer.alloc(0));
    this.socket.destroy();
    this.onClose(reason);
  }

  /** Lets the process exit while we hold no selection; an owned selection keeps it alive. */
  unrefSocket(): void {
    this.socket.unref();
  }
}
