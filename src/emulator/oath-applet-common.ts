/**
 * What the emulator's two OATH applets (oath-applet-yubikey.ts, oath-applet-nitrokey3.ts) share:
 * the base class with the store, the pending SEND REMAINING answer and the HMAC of a CALCULATE,
 * and the encoding helpers. TLVs are parsed by the client's own code (device/oath/tlv.ts); a
 * malformed one answers 6A80 here.
 */
import { ALGORITHM_MASK, AlgorithmByte, OathTypeByte, Sw, TYPE_MASK, Tag, algorithmOfByte } from '../device/oath/constants.js';
import { encodeTlv, parseTlvs as parseClientTlvs } from '../device/oath/tlv.js';
import type { HashAlgorithm, OathType } from '../otp/credential.js';
import { counterBytes, hmac } from '../otp/hotp.js';
import type { StoredCredential, VirtualKeyStore } from './store.js';
import type { AppletContext } from './types.js';

const HOTP_COUNTER_LIMIT = 0x1_0000_0000;

export interface Apdu {
  cla: number;
  ins: number;
  p1: number;
  p2: number;
  data: Buffer;
}

export interface Tlv {
  tag: number;
  value: Buffer;
}

/** Thrown inside an applet to answer with a status word. Never leaves OathApplet.process(). */
export class StatusError extends Error {
  constructor(readonly sw: number) {
    super(`SW ${sw.toString(16)}`);
  }
}

export function fail(sw: number): never {
  throw new StatusError(sw);
}

/** One dialect's applet: its session state and its answer to each parsed command APDU. */
export abstract class DialectApplet {
  /** Response bytes waiting for SEND REMAINING. */
  protected remaining: Buffer[] = [];

  constructor(protected readonly store: VirtualKeyStore) {}

  /** What the key answers when a touch wait is cancelled (CTAPHID CANCEL, unplug). */
  abstract readonly cancelledSw: number;
  /** What the key answers when its own state fails (a store write, an exhausted HOTP counter): its "memory failure". */
  abstract readonly internalErrorSw: number;

  /** Called before every command, also one that does not parse. */
  beginCommand(): void {}

  abstract handle(apdu: Apdu, context: AppletContext): Promise<Uint8Array>;

  /** The status word of an answer that SEND REMAINING continues (YubiKey: 61xx with what is left; NK3: 61FF). */
  protected abstract moreDataSw(): number;

  /** Answers with the first chunk and keeps the rest for SEND REMAINING. */
  protected sendChunks(chunks: readonly Buffer[]): Uint8Array {
    this.remaining = chunks.slice(1);
    return withSw(chunks[0]!, this.remaining.length > 0 ? this.moreDataSw() : Sw.OK);
  }

  /** The next pending chunk; nothing pending is an empty, complete answer. */
  protected sendRemaining(): Uint8Array {
    const next = this.remaining.shift();
    if (!next) return sw(Sw.OK);
    return withSw(next, this.remaining.length > 0 ? this.moreDataSw() : Sw.OK);
  }

  /**
   * The HMAC for a CALCULATE. HOTP uses the stored counter and ignores the challenge; the advanced
   * counter is on disk before the code leaves the key, so a crash can never hand out a code twice.
   */
  protected async compute(credential: StoredCredential, challenge: Buffer): Promise<Buffer> {
    if (credential.type === 'HOTP') {
      // A counter that cannot advance is a failure of the key's own state.
      if (credential.counter >= HOTP_COUNTER_LIMIT) fail(this.internalErrorSw);
      await this.store.replaceCredential(credential.id, { ...credential, counter: credential.counter + 1 });
      return hmac(credential.algorithm, credential.key, counterBytes(credential.counter));
    }
    if (credential.increasing) {
      const last = credential.lastChallenge;
      if (last && compareChallenges(challenge, last) < 0) fail(Sw.WRONG_DATA);
      if (!last || compareChallenges(challenge, last) > 0) {
        await this.store.replaceCredential(credential.id, { ...credential, lastChallenge: Buffer.from(challenge) });
      }
    }
    return hmac(credential.algorithm, credential.key, challenge);
  }
}

/**
 * BER-TLV with one-byte tags, parsed by the client's code. Tags in `valueOnlyTags` carry exactly
 * one value byte and no length (YKOATH's PUT property). Malformed data → StatusError 6A80.
 */
export function parseTlvs(data: Buffer, options: { valueOnlyTags?: readonly number[] } = {}): Tlv[] {
  try {
    return parseClientTlvs(data, options).map(({ tag, value }) => ({ tag, value: Buffer.from(value.buffer, value.byteOffset, value.length) }));
  } catch {
    fail(Sw.WRONG_DATA);
  }
}

/** The one TLV with this tag; none or several → 6A80. */
export function single(tlvs: readonly Tlv[], tag: number): Buffer {
  const found = tlvs.filter((t) => t.tag === tag);
  if (found.length !== 1) fail(Sw.WRONG_DATA);
  return found[0]!.value;
}

export function optional(tlvs: readonly Tlv[], tag: number): Buffer | undefined {
  const found = tlvs.filter((t) => t.tag === tag);
  if (found.length > 1) fail(Sw.WRONG_DATA);
  return found[0]?.value;
}

/** `<type|algo> <digits> <key>` of tag 73. */
export function parseKeyHeader(key: Buffer, minDigits: number, maxDigits: number): { type: OathType; algorithm: HashAlgorithm; digits: number; secret: Buffer } {
  if (key.length < 3) fail(Sw.WRONG_DATA);
  const typeCode = key[0]! & TYPE_MASK;
  const type: OathType | undefined = typeCode === OathTypeByte.HOTP ? 'HOTP' : typeCode === OathTypeByte.TOTP ? 'TOTP' : undefined;
  const algorithm = algorithmOfByte(key[0]! & ALGORITHM_MASK);
  const digits = key[1]!;
  if (!type || !algorithm || digits < minDigits || digits > maxDigits) fail(Sw.WRONG_DATA);
  return { type, algorithm, digits, secret: Buffer.from(key.subarray(2)) };
}

export function typeAlgorithm(credential: StoredCredential): number {
  return OathTypeByte[credential.type] | AlgorithmByte[credential.algorithm];
}

/**
 * `76 05 <digits> <4 bytes>` (truncated) or `75 <1+n> <digits> <HMAC>`. A YubiKey leaves the top
 * bit of the truncated value as it is (the host masks it); a Nitrokey 3 clears it.
 */
export function codeTlv(credential: StoredCredential, mac: Buffer, truncated: boolean, maskTopBit: boolean): Buffer {
  if (!truncated) return tlv(Tag.RESPONSE, Buffer.concat([Buffer.of(credential.digits), mac]));
  const offset = mac[mac.length - 1]! & 0x0f;
  const value = Buffer.from(mac.subarray(offset, offset + 4));
  if (maskTopBit) value[0] = value[0]! & 0x7f;
  return tlv(Tag.TRUNCATED, Buffer.concat([Buffer.of(credential.digits), value]));
}

/** Challenges as big-endian numbers (shorter = smaller when the lengths differ). */
function compareChallenges(a: Buffer, b: Uint8Array): number {
  if (a.length !== b.length) return a.length - b.length;
  return Buffer.compare(a, b);
}

/** One TLV, encoded as the client encodes it (device/oath/tlv.ts). */
export function tlv(tag: number, value: Uint8Array | readonly number[]): Buffer {
  return Buffer.from(encodeTlv(tag, Uint8Array.from(value)));
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0;
}

export function withSw(data: Uint8Array, status: number): Uint8Array {
  const out = new Uint8Array(data.length + 2);
  out.set(data, 0);
  out[data.length] = status >> 8;
  out[data.length + 1] = status & 0xff;
  return out;
}

export function sw(status: number): Uint8Array {
  return Uint8Array.of(status >> 8, status & 0xff);
}
