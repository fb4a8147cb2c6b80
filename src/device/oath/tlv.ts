/**
 * BER-TLV with one-byte tags, as YKOATH uses it (docs/protocols.md §1.3). Parsing is strict: anything
 * that runs past the end is a PROTOCOL error, because a key that answers that is broken or the
 * transport mangled the answer.
 */
import { KeytapError } from '../../errors.js';

export interface Tlv {
  tag: number;
  value: Uint8Array;
}

export function encodeTlv(tag: number, value: Uint8Array = new Uint8Array()): Uint8Array {
  const length = value.length;
  let header: number[];
  if (length < 0x80) header = [tag, length];
  else if (length <= 0xff) header = [tag, 0x81, length];
  else if (length <= 0xffff) header = [tag, 0x82, length >> 8, length & 0xff];
  else throw new RangeError('A TLV value may be at most 65535 bytes.');
  const out = new Uint8Array(header.length + length);
  out.set(header);
  out.set(value, header.length);
  return out;
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

export interface ParseTlvOptions {
  /**
   * Tags that carry exactly one value byte and no length: the property byte (78) in YKOATH PUT,
   * as the card side reads a PUT. The client never parses a PUT.
   */
  valueOnlyTags?: readonly number[] | undefined;
}

/** Parses a sequence of TLVs that fills `data` exactly. */
export function parseTlvs(data: Uint8Array, options: ParseTlvOptions = {}): Tlv[] {
  const tlvs: Tlv[] = [];
  let offset = 0;
  while (offset < data.length) {
    const tag = data[offset]!;
    if (options.valueOnlyTags?.includes(tag)) {
      if (offset + 1 >= data.length) throw malformed(`tag ${hex(tag)} has no value`);
      tlvs.push({ tag, value: data.subarray(offset + 1, offset + 2) });
      offset += 2;
      continue;
    }
    let length = data[offset + 1];
    offset += 2;
    if (length === undefined) throw malformed(`tag ${hex(tag)} has no length`);
    if (length === 0x81 || length === 0x82) {
      const size = length - 0x80;
      if (offset + size > data.length) throw malformed(`the length of tag ${hex(tag)} is cut short`);
      length = size === 1 ? data[offset]! : (data[offset]! << 8) | data[offset + 1]!;
      offset += size;
    } else if (length >= 0x80) {
      throw malformed(`tag ${hex(tag)} has an unsupported length encoding`);
    }
    if (offset + length > data.length) throw malformed(`tag ${hex(tag)} runs past the end of the answer`);
    tlvs.push({ tag, value: data.subarray(offset, offset + length) });
    offset += length;
  }
  return tlvs;
}

/** The value of the first TLV with `tag`, or undefined. */
export function findTlv(tlvs: readonly Tlv[], tag: number): Uint8Array | undefined {
  return tlvs.find((t) => t.tag === tag)?.value;
}

function hex(byte: number): string {
  return `0x${byte.toString(16).padStart(2, '0')}`;
}

function malformed(what: string): KeytapError {
  return new KeytapError('PROTOCOL', `The key sent a malformed answer: ${what}.`, {
    hint: 'Unplug the key and plug it in again; if it keeps happening, the key or its firmware may be faulty.',
  });
}

export { malformed as malformedAnswer };
