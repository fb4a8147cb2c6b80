/**
 * The Wayland wire format (wayland.freedesktop.org/docs/html/ch04.html, "Wire Format"): a message
 * is the sender's object id (uint32), then size << 16 | opcode (uint32, the size in bytes with
 * this 8-byte header), then the arguments, each a multiple of 4 bytes in the host's byte order:
 * int, uint, object and new_id as 32-bit words (object 0 is null); a string as its length
 * including the terminating NUL, the bytes, the NUL and padding to 4 (length 0 is a null string);
 * an array as its length, the bytes and padding. File descriptors travel out of band (SCM_RIGHTS)
 * and take no bytes. Pure: no I/O.
 *
 * keytap's platforms are little-endian, so the byte order is fixed here.
 */

export const HEADER_BYTES = 8;

export type WireArg =
  | { type: 'int'; value: number }
  | { type: 'uint'; value: number }
  | { type: 'object'; value: number }
  | { type: 'new_id'; value: number }
  | { type: 'string'; value: string | null };

export interface WireMessage {
  objectId: number;
  opcode: number;
  /** The arguments' bytes (after the header). */
  body: Buffer;
}

/** The peer broke the wire format (or a message did not carry what its signature says). */
export class WireFormatError extends Error {
  override readonly name = 'WireFormatError';
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

const padded = (length: number): number => (length + 3) & ~3;

export function encodeMessage(objectId: number, opcode: number, args: readonly WireArg[] = []): Buffer {
  const parts: Buffer[] = [];
  for (const arg of args) {
    if (arg.type === 'string') {
      if (arg.value === null) {
        parts.push(Buffer.alloc(4));
        continue;
      }
      const text = Buffer.from(arg.value, 'utf8');
      if (text.includes(0)) throw new WireFormatError('A Wayland string cannot hold a NUL byte.');
      const part = Buffer.alloc(4 + padded(text.length + 1));
      part.writeUInt32LE(text.length + 1, 0);
      text.copy(part, 4);
      parts.push(part);
    } else {
      const part = Buffer.alloc(4);
      if (arg.type === 'int') part.writeInt32LE(arg.value, 0);
      else part.writeUInt32LE(arg.value, 0);
      parts.push(part);
    }
  }
  const size = HEADER_BYTES + parts.reduce((sum, part) => sum + part.length, 0);
  if (size > 0xffff) throw new WireFormatError(`A Wayland message is at most 65535 bytes; this one would be ${size}.`);
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt32LE(objectId, 0);
  header.writeUInt32LE(((size << 16) | opcode) >>> 0, 4);
  return Buffer.concat([header, ...parts]);
}

/** Splits a byte stream into messages; keeps an incomplete one until the rest arrives. */
export class MessageReader {
  private pending: Buffer = Buffer.alloc(0);

  /** The complete messages `chunk` finishes. Throws WireFormatError on a malformed header. */
  push(chunk: Buffer): WireMessage[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const messages: WireMessage[] = [];
    while (this.pending.length >= HEADER_BYTES) {
      const objectId = this.pending.readUInt32LE(0);
      const word = this.pending.readUInt32LE(4);
      const size = word >>> 16;
      if (size < HEADER_BYTES || size % 4 !== 0) throw new WireFormatError(`A Wayland message of ${size} bytes is malformed (it must be a multiple of 4 and at least 8).`);
      if (objectId === 0) throw new WireFormatError('A Wayland message came from object 0, which does not exist.');
      if (this.pending.length < size) break;
      messages.push({ objectId, opcode: word & 0xffff, body: this.pending.subarray(HEADER_BYTES, size) });
      this.pending = this.pending.subarray(size);
    }
    return messages;
  }

  /** Bytes of a message not complete yet. */
  get buffered(): number {
    return this.pending.length;
  }
}

/** Reads one message's arguments in order, as its signature says. */
export class ArgReader {
  private offset = 0;

  constructor(private readonly body: Buffer) {}

  uint(): number {
    return this.word().readUInt32LE(0);
  }

  int(): number {
    return this.word().readInt32LE(0);
  }

  /** An object id; 0 is null. */
  object(): number {
    return this.uint();
  }

  newId(): number {
    const id = this.uint();
    if (id === 0) throw new WireFormatError('A Wayland new_id argument was 0.');
    return id;
  }

  string(): string | null {
    const length = this.uint();
    if (length === 0) return null;
    const end = this.offset + padded(length);
    if (end > this.body.length) throw new WireFormatError(`A Wayland string of ${length} bytes runs past the end of its message.`);
    const bytes = this.body.subarray(this.offset, this.offset + length);
    if (bytes[length - 1] !== 0) throw new WireFormatError('A Wayland string did not end with a NUL byte.');
    const text = bytes.subarray(0, length - 1);
    if (text.includes(0)) throw new WireFormatError('A Wayland string held a NUL byte before its end.');
    this.offset = end;
    try {
      return UTF8.decode(text);
    } catch {
      throw new WireFormatError('A Wayland string was not UTF-8.');
    }
  }

  private word(): Buffer {
    if (this.offset + 4 > this.body.length) throw new WireFormatError('A Wayland message ended before all of its arguments.');
    const word = this.body.subarray(this.offset, this.offset + 4);
    this.offset += 4;
    return word;
  }
}
