/**
 * Just enough CBOR (RFC 8949) to read a CTAP2 authenticatorGetInfo answer: definite-length
 * integers, byte and text strings, arrays, maps, false/true/null. Anything else (indefinite
 * lengths, tags, floats) is refused with a CborError: the probe records that the answer was
 * unreadable instead of guessing. Pure.
 */

export type CborValue = number | bigint | Uint8Array | string | boolean | null | CborValue[] | Map<CborValue, CborValue>;

export class CborError extends Error {}

/** Nesting deeper than this is not a getInfo answer; it also bounds the recursion on hostile input. */
const MAX_DEPTH = 16;

/** Decodes one CBOR item that fills `bytes` exactly. */
export function decodeCbor(bytes: Uint8Array): CborValue {
  const reader = { bytes, offset: 0 };
  const value = readItem(reader, 0);
  if (reader.offset !== bytes.length) throw new CborError(`${bytes.length - reader.offset} bytes after the CBOR item`);
  return value;
}

interface Reader {
  bytes: Uint8Array;
  offset: number;
}

function take(reader: Reader, n: number): Uint8Array {
  if (reader.offset + n > reader.bytes.length) throw new CborError('the CBOR item is cut short');
  const out = reader.bytes.subarray(reader.offset, reader.offset + n);
  reader.offset += n;
  return out;
}

function readArgument(reader: Reader, info: number): number | bigint {
  if (info < 24) return info;
  const size = { 24: 1, 25: 2, 26: 4, 27: 8 }[info];
  if (size === undefined) throw new CborError(info === 31 ? 'indefinite lengths are not supported' : `reserved additional information ${info}`);
  let value = 0n;
  for (const byte of take(reader, size)) value = (value << 8n) | BigInt(byte);
  return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
}

function lengthOf(reader: Reader, info: number): number {
  const length = readArgument(reader, info);
  // Every element takes at least one byte: a longer count than bytes left is a lie.
  if (typeof length === 'bigint' || length > reader.bytes.length - reader.offset) throw new CborError('a CBOR length runs past the end');
  return length;
}

function readItem(reader: Reader, depth: number): CborValue {
  if (depth > MAX_DEPTH) throw new CborError('CBOR nested too deeply');
  const [initial] = take(reader, 1);
  const major = initial! >> 5;
  const info = initial! & 0x1f;
  switch (major) {
    case 0:
      return readArgument(reader, info);
    case 1: {
      const n = readArgument(reader, info);
      return typeof n === 'bigint' ? -1n - n : -1 - n;
    }
    case 2:
      return Uint8Array.from(take(reader, lengthOf(reader, info)));
    case 3:
      return new TextDecoder('utf-8', { fatal: true }).decode(take(reader, lengthOf(reader, info)));
    case 4: {
      const length = lengthOf(reader, info);
      const items: CborValue[] = [];
      for (let i = 0; i < length; i++) items.push(readItem(reader, depth + 1));
      return items;
    }
    case 5: {
      const length = lengthOf(reader, info);
      const map = new Map<CborValue, CborValue>();
      for (let i = 0; i < length; i++) {
        const key = readItem(reader, depth + 1);
        map.set(key, readItem(reader, depth + 1));
      }
      return map;
    }
    case 7:
      if (info === 20) return false;
      if (info === 21) return true;
      if (info === 22) return null;
      throw new CborError(`CBOR simple value or float ${info} is not supported`);
    default:
      throw new CborError('CBOR tags are not supported');
  }
}

/** What the probe reports of authenticatorGetInfo (CTAP 2.1 §6.4): the model's facts, no serial. */
export interface GetInfo {
  versions: string[];
  extensions?: string[] | undefined;
  aaguid?: string | undefined;
  options?: Record<string, boolean> | undefined;
}

/** The getInfo map's keys: versions 0x01, extensions 0x02, aaguid 0x03, options 0x04. */
export function readGetInfo(map: CborValue): GetInfo {
  if (!(map instanceof Map)) throw new CborError('getInfo is not a CBOR map');
  const versions = map.get(0x01);
  if (!Array.isArray(versions) || !versions.every((v) => typeof v === 'string')) throw new CborError('getInfo has no list of versions (0x01)');
  const info: GetInfo = { versions: versions };
  const extensions = map.get(0x02);
  if (Array.isArray(extensions) && extensions.every((v) => typeof v === 'string')) info.extensions = extensions;
  const aaguid = map.get(0x03);
  if (aaguid instanceof Uint8Array && aaguid.length === 16) info.aaguid = Buffer.from(aaguid).toString('hex');
  const options = map.get(0x04);
  if (options instanceof Map) {
    info.options = Object.fromEntries([...options].filter((e): e is [string, boolean] => typeof e[0] === 'string' && typeof e[1] === 'boolean'));
  }
  return info;
}
