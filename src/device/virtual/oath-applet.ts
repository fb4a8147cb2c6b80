/**
 * The OATH applet of the virtual key: the card side of YKOATH (docs/protocols.md §1), answering either
 * as a YubiKey 5 (firmware 5.4.3) or as a Nitrokey 3 Secrets App (4.13.0, §2), byte for byte,
 * quirks included, since the point of a virtual key is that clients cannot tell it from a real one.
 *
 * Every malformed input becomes a status word; process() never throws for what a host sends.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { isKeytapError } from '../../errors.js';
import type { HashAlgorithm, OathType } from '../../otp/credential.js';
import { counterBytes, hmac } from '../../otp/hotp.js';
import { ALGORITHM_MASK, AlgorithmByte, Ins, ListProperty, OATH_AID, OathTypeByte, Property, Sw, TYPE_MASK, Tag } from '../oath/constants.js';
import { PIN_ATTEMPTS } from './store.js';
import type { StoredCredential, VirtualKeyStore } from './store.js';
import type { AppletContext, CardApplet, Dialect } from './types.js';

/** Reported by the YubiKey dialect. Not 4.2.0–4.2.6, which would switch on yubikit's dummy-APDU workaround. */
export const YUBIKEY_VERSION = Uint8Array.from([5, 4, 3]);
/** Reported by the Nitrokey 3 dialect: major forced to 4, then secrets-app crate 0.13.0. */
export const NITROKEY3_VERSION = Uint8Array.from([4, 13, 0]);

const ALGORITHM_BY_CODE = new Map<number, HashAlgorithm>([
  [AlgorithmByte.SHA1, 'SHA1'],
  [AlgorithmByte.SHA256, 'SHA256'],
  [AlgorithmByte.SHA512, 'SHA512'],
]);
const BLOCK_SIZE: Record<HashAlgorithm, number> = { SHA1: 64, SHA256: 64, SHA512: 128 };
const NODE_HASH: Record<HashAlgorithm, string> = { SHA1: 'sha1', SHA256: 'sha256', SHA512: 'sha512' };

const YUBIKEY_MAX_CREDENTIALS = 32;
const NITROKEY3_MAX_CREDENTIALS = 50;
const YUBIKEY_MAX_ID = 64;
/** Trussed ShortData: labels and secrets up to 128 bytes. */
const NITROKEY3_MAX_SHORT_DATA = 128;
/** A short-APDU response carries at most 256 data bytes; the rest follows on SEND REMAINING. */
const YUBIKEY_RESPONSE_CHUNK = 256;
/** usbd-ctaphid's message limit: the NK3 stops LIST there and answers 61FF. */
const NITROKEY3_LIST_LIMIT = 3072;
/** Accumulated command chaining data; far more than any OATH command needs. */
const MAX_CHAINED_DATA = 4096;
const MAX_PIN = 64;
const HOTP_COUNTER_LIMIT = 0x1_0000_0000;

export interface OathAppletOptions {
  /** Defaults to the store's dialect. */
  dialect?: Dialect | undefined;
}

interface Apdu {
  cla: number;
  ins: number;
  p1: number;
  p2: number;
  data: Buffer;
}

interface Tlv {
  tag: number;
  value: Buffer;
}

/** Thrown inside the applet to answer with a status word. Never leaves process(). */
class StatusError extends Error {
  constructor(readonly sw: number) {
    super(`SW ${sw.toString(16)}`);
  }
}

function fail(sw: number): never {
  throw new StatusError(sw);
}

export class OathApplet implements CardApplet {
  readonly dialect: Dialect;
  private readonly store: VirtualKeyStore;

  // Session state: what a real key keeps in RAM and loses on power-off.
  /** YubiKey: VALIDATE succeeded since the last SELECT (or no password is set). */
  private unlocked = false;
  /** YubiKey: the challenge of the last SELECT answer, good for one VALIDATE. */
  private validateChallenge: Buffer | undefined;
  /** Response bytes waiting for SEND REMAINING. */
  private remaining: Buffer[] = [];
  /** YubiKey command chaining (CLA 0x10): header and data received so far. */
  private chain: { ins: number; p1: number; p2: number; data: Buffer[]; size: number } | undefined;
  /** Nitrokey 3: VERIFY PIN (or SET PIN) succeeded in the previous command ("per-request authorization"). */
  private pinAuthorized = false;
  /** One APDU at a time, as on a card: a touch wait holds up the next command. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(store: VirtualKeyStore, options: OathAppletOptions = {}) {
    this.store = store;
    this.dialect = options.dialect ?? store.dialect;
  }

  process(apdu: Uint8Array, context: AppletContext): Promise<Uint8Array> {
    const run = this.queue.then(() => this.processOne(Buffer.from(apdu), context));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async processOne(bytes: Buffer, context: AppletContext): Promise<Uint8Array> {
    const authorizedBefore = this.pinAuthorized;
    this.pinAuthorized = false;
    try {
      const apdu = parseApdu(bytes);
      if (apdu === undefined) return sw(Sw.WRONG_LENGTH);
      if (this.dialect === 'nitrokey3') return await this.nitrokey3(apdu, context, authorizedBefore);
      return await this.yubikey(apdu, context);
    } catch (error) {
      if (error instanceof StatusError) return sw(error.sw);
      // A cancelled touch wait (CTAPHID CANCEL, unplug): a YubiKey reports it as "not touched"; the
      // NK3 maps every user-presence error other than a timeout to 6500 [inferred, §2.10].
      if (isKeytapError(error, 'CANCELLED')) {
        return sw(this.dialect === 'nitrokey3' ? Sw.EXEC_ERROR_PERSISTENT : Sw.SECURITY_STATUS);
      }
      // Anything else is ours (a store write failed): the key's "memory failure".
      return sw(this.dialect === 'nitrokey3' ? Sw.EXEC_ERROR_PERSISTENT : Sw.MEMORY_FAILURE);
    }
  }

  // -------------------------------------------------------------------------------------------
  // YubiKey 5

  private async yubikey(apdu: Apdu, context: AppletContext): Promise<Uint8Array> {
    if ((apdu.cla & ~0x10) !== 0) return sw(Sw.CLA_NOT_SUPPORTED);
    if (apdu.cla & 0x10) {
      // Command chaining: keep the chunk, answer 9000, act on the last chunk (CLA 0x00).
      const chain =
        this.chain && this.chain.ins === apdu.ins && this.chain.p1 === apdu.p1 && this.chain.p2 === apdu.p2
          ? this.chain
          : { ins: apdu.ins, p1: apdu.p1, p2: apdu.p2, data: [], size: 0 };
      chain.data.push(apdu.data);
      chain.size += apdu.data.length;
      this.chain = chain.size > MAX_CHAINED_DATA ? undefined : chain;
      return sw(this.chain ? Sw.OK : Sw.WRONG_LENGTH);
    }
    const chain = this.chain;
    this.chain = undefined;
    if (chain && chain.ins === apdu.ins && chain.p1 === apdu.p1 && chain.p2 === apdu.p2) {
      if (chain.size + apdu.data.length > MAX_CHAINED_DATA) return sw(Sw.WRONG_LENGTH);
      apdu = { ...apdu, data: Buffer.concat([...chain.data, apdu.data]) };
    }
    if (apdu.ins !== Ins.SEND_REMAINING) this.remaining = [];

    const { ins, p1, p2 } = apdu;
    if (ins === Ins.SELECT && p1 === 0x04) return this.ykSelect(apdu);
    // VALIDATE and RESET are the two commands a locked applet still takes.
    if (ins === Ins.VALIDATE) return this.ykValidate(apdu);
    if (ins === Ins.RESET) {
      if (p1 !== 0xde || p2 !== 0xad) return sw(Sw.INCORRECT_P1P2);
      await this.store.reset();
      this.unlocked = true;
      this.validateChallenge = undefined;
      return sw(Sw.OK);
    }
    const known: number[] = [Ins.PUT, Ins.DELETE, Ins.SET_CODE, Ins.RENAME, Ins.LIST, Ins.CALCULATE, Ins.CALCULATE_ALL, Ins.SEND_REMAINING];
    if (!known.includes(ins)) return sw(Sw.INS_NOT_SUPPORTED);
    if (this.store.accessKey && !this.unlocked) return sw(Sw.SECURITY_STATUS);
    switch (ins) {
      case Ins.SEND_REMAINING:
        return this.sendRemaining();
      case Ins.PUT:
        return this.ykPut(apdu);
      case Ins.DELETE:
        return this.ykDelete(apdu);
      case Ins.SET_CODE:
        return this.ykSetCode(apdu);
      case Ins.RENAME:
        return this.ykRename(apdu);
      case Ins.LIST:
        return this.ykList();
      case Ins.CALCULATE:
        return this.ykCalculate(apdu, context);
      default:
        if (p1 !== 0x00) return sw(Sw.INCORRECT_P1P2);
        return this.ykCalculateAll(apdu);
    }
  }

  private ykSelect(apdu: Apdu): Uint8Array {
    if (!sameBytes(apdu.data, OATH_AID)) return sw(Sw.NOT_FOUND);
    const parts = [tlv(Tag.VERSION, YUBIKEY_VERSION), tlv(Tag.NAME, this.store.salt)];
    const accessKey = this.store.accessKey;
    if (accessKey) {
      // A password is set: every SELECT locks the session and hands out a fresh challenge.
      this.unlocked = false;
      this.validateChallenge = randomBytes(8);
      parts.push(tlv(Tag.CHALLENGE, this.validateChallenge), tlv(Tag.ALGORITHM, [AlgorithmByte[accessKey.algorithm]]));
    } else {
      this.unlocked = true;
      this.validateChallenge = undefined;
    }
    return this.respond(Buffer.concat(parts));
  }

  private ykValidate(apdu: Apdu): Uint8Array {
    if (apdu.p1 !== 0 || apdu.p2 !== 0) return sw(Sw.INCORRECT_P1P2);
    const tlvs = parseTlvs(apdu.data);
    const response = single(tlvs, Tag.RESPONSE);
    const hostChallenge = single(tlvs, Tag.CHALLENGE);
    if (tlvs.length !== 2 || hostChallenge.length === 0 || hostChallenge.length > 64) return sw(Sw.WRONG_DATA);
    const accessKey = this.store.accessKey;
    if (!accessKey) return sw(Sw.NO_SUCH_OBJECT);
    // One VALIDATE per SELECT: a guess costs a round trip and a new challenge.
    const challenge = this.validateChallenge;
    this.validateChallenge = undefined;
    if (!challenge) return sw(Sw.WRONG_DATA);
    const expected = keyedHmac(accessKey.algorithm, accessKey.key, challenge);
    if (response.length !== expected.length || !timingSafeEqual(response, expected)) {
      this.unlocked = false;
      return sw(Sw.WRONG_DATA);
    }
    this.unlocked = true;
    return this.respond(tlv(Tag.RESPONSE, keyedHmac(accessKey.algorithm, accessKey.key, hostChallenge)));
  }

  private async ykPut(apdu: Apdu): Promise<Uint8Array> {
    if (apdu.p1 !== 0 || apdu.p2 !== 0) return sw(Sw.INCORRECT_P1P2);
    const tlvs = parseTlvs(apdu.data, { valueOnlyTags: [Tag.PROPERTY] });
    const allowed: number[] = [Tag.NAME, Tag.KEY, Tag.PROPERTY, Tag.IMF];
    if (tlvs.some((t) => !allowed.includes(t.tag))) return sw(Sw.WRONG_DATA);
    const id = single(tlvs, Tag.NAME);
    const key = single(tlvs, Tag.KEY);
    const property = optional(tlvs, Tag.PROPERTY)?.[0] ?? 0;
    const imf = optional(tlvs, Tag.IMF);
    if (id.length === 0 || id.length > YUBIKEY_MAX_ID) return sw(Sw.WRONG_DATA);
    const header = parseKeyHeader(key, 6, 8);
    if (header.secret.length === 0 || header.secret.length > BLOCK_SIZE[header.algorithm]) return sw(Sw.WRONG_DATA);
    if (imf !== undefined && imf.length !== 4) return sw(Sw.WRONG_DATA);

    const existing = this.store.findCredential(id);
    if (!existing && this.store.credentials.length >= YUBIKEY_MAX_CREDENTIALS) return sw(Sw.NO_SPACE);
    await this.store.putCredential({
      id,
      type: header.type,
      algorithm: header.algorithm,
      digits: header.digits,
      key: header.secret,
      counter: imf ? imf.readUInt32BE(0) : 0,
      touch: (property & Property.REQUIRE_TOUCH) !== 0,
      increasing: (property & Property.INCREASING) !== 0,
      pinProtected: false,
    });
    return sw(Sw.OK);
  }

  private async ykDelete(apdu: Apdu): Promise<Uint8Array> {
    if (apdu.p1 !== 0 || apdu.p2 !== 0) return sw(Sw.INCORRECT_P1P2);
    const tlvs = parseTlvs(apdu.data);
    const id = single(tlvs, Tag.NAME);
    if (tlvs.length !== 1) return sw(Sw.WRONG_DATA);
    if (!this.store.findCredential(id)) return sw(Sw.NO_SUCH_OBJECT);
    await this.store.deleteCredential(id);
    return sw(Sw.OK);
  }

  private async ykRename(apdu: Apdu): Promise<Uint8Array> {
    if (apdu.p1 !== 0 || apdu.p2 !== 0) return sw(Sw.INCORRECT_P1P2);
    const tlvs = parseTlvs(apdu.data);
    if (tlvs.length !== 2 || tlvs.some((t) => t.tag !== Tag.NAME)) return sw(Sw.WRONG_DATA);
    const [oldId, newId] = [tlvs[0]!.value, tlvs[1]!.value];
    if (newId.length === 0 || newId.length > YUBIKEY_MAX_ID) return sw(Sw.WRONG_DATA);
    const credential = this.store.findCredential(oldId);
    if (!credential) return sw(Sw.NO_SUCH_OBJECT);
    // Renaming onto another credential would silently destroy it.
    if (!sameBytes(oldId, newId) && this.store.findCredential(newId)) return sw(Sw.WRONG_DATA);
    await this.store.replaceCredential(oldId, { ...credential, id: newId });
    return sw(Sw.OK);
  }

  private async ykSetCode(apdu: Apdu): Promise<Uint8Array> {
    if (apdu.p1 !== 0 || apdu.p2 !== 0) return sw(Sw.INCORRECT_P1P2);
    const tlvs = parseTlvs(apdu.data);
    const keyData = single(tlvs, Tag.KEY);
    if (keyData.length === 0) {
      if (tlvs.length !== 1) return sw(Sw.WRONG_DATA);
      await this.store.setAccessKey(undefined);
      this.unlocked = true;
      return sw(Sw.OK);
    }
    const challenge = single(tlvs, Tag.CHALLENGE);
    const response = single(tlvs, Tag.RESPONSE);
    if (tlvs.length !== 3) return sw(Sw.WRONG_DATA);
    const algorithm = ALGORITHM_BY_CODE.get(keyData[0]! & ALGORITHM_MASK);
    const key = keyData.subarray(1);
    if (!algorithm || key.length === 0 || key.length > BLOCK_SIZE[algorithm] || challenge.length === 0) return sw(Sw.WRONG_DATA);
    // The host proves it holds the key it sends (a garbled key would lock the user out).
    const expected = keyedHmac(algorithm, key, challenge);
    if (response.length !== expected.length || !timingSafeEqual(response, expected)) return sw(Sw.NO_SUCH_OBJECT);
    await this.store.setAccessKey({ algorithm, key: Buffer.from(key) });
    // The session that set the password stays unlocked until the next SELECT.
    this.unlocked = true;
    return sw(Sw.OK);
  }

  private ykList(): Uint8Array {
    const entries = this.store.credentials.map((c) => tlv(Tag.NAME_LIST, Buffer.concat([Buffer.of(typeAlgorithm(c)), c.id])));
    return this.respond(Buffer.concat(entries));
  }

  private async ykCalculate(apdu: Apdu, context: AppletContext): Promise<Uint8Array> {
    if (apdu.p1 !== 0 || (apdu.p2 !== 0 && apdu.p2 !== 1)) return sw(Sw.INCORRECT_P1P2);
    const tlvs = parseTlvs(apdu.data);
    const id = single(tlvs, Tag.NAME);
    const challenge = single(tlvs, Tag.CHALLENGE);
    if (tlvs.length !== 2 || challenge.length > 64) return sw(Sw.WRONG_DATA);
    const credential = this.store.findCredential(id);
    if (!credential) return sw(Sw.NO_SUCH_OBJECT);
    if (credential.type === 'TOTP' && challenge.length === 0) return sw(Sw.WRONG_DATA);
    if (credential.touch && !(await context.requestTouch())) return sw(Sw.SECURITY_STATUS);
    const mac = await this.compute(credential, challenge);
    return this.respond(codeTlv(credential, mac, apdu.p2 === 1, false));
  }

  private async ykCalculateAll(apdu: Apdu): Promise<Uint8Array> {
    if (apdu.p2 !== 0 && apdu.p2 !== 1) return sw(Sw.INCORRECT_P1P2);
    const tlvs = parseTlvs(apdu.data);
    const challenge = single(tlvs, Tag.CHALLENGE);
    if (tlvs.length !== 1 || challenge.length === 0 || challenge.length > 64) return sw(Sw.WRONG_DATA);
    const parts: Buffer[] = [];
    for (const credential of this.store.credentials) {
      parts.push(tlv(Tag.NAME, credential.id));
      // HOTP is never computed here (it would use up a counter value); touch TOTP waits for its
      // own CALCULATE. Every other TOTP is computed with the host's (30 s) challenge, whatever its
      // period: the host recomputes those, as yubikit does.
      if (credential.type === 'HOTP') parts.push(tlv(Tag.HOTP, [credential.digits]));
      else if (credential.touch) parts.push(tlv(Tag.TOUCH, [credential.digits]));
      else parts.push(codeTlv(credential, await this.compute(credential, challenge), apdu.p2 === 1, false));
    }
    return this.respond(Buffer.concat(parts));
  }

  // -------------------------------------------------------------------------------------------
  // Nitrokey 3 Secrets App

  private async nitrokey3(apdu: Apdu, context: AppletContext, authorized: boolean): Promise<Uint8Array> {
    const { cla, ins, p1, p2, data } = apdu;
    if (cla & 0x10) return sw(Sw.CHAINING_NOT_SUPPORTED);
    if (cla & 0x0c) return sw(Sw.SECURE_MESSAGING_NOT_SUPPORTED);
    if (cla & 0x03) return sw(Sw.LOGICAL_CHANNEL_NOT_SUPPORTED);
    if (cla !== 0) return sw(Sw.CLA_NOT_SUPPORTED);
    if (ins !== Ins.SEND_REMAINING) this.remaining = [];

    // The YubiKey-OTP emulation is tried first (trussed-secrets-app command.rs).
    if (ins === 0x01 && p2 === 0x00 && p1 === 0x10) return this.respond(this.store.serialBytes);
    if (ins === 0x01 && p2 === 0x00 && (p1 === 0x30 || p1 === 0x38) && isPkcs7Challenge(data)) {
      // HMAC challenge-response slots: the virtual key cannot hold HmacSlot credentials (kind 0x40).
      return sw(Sw.NOT_FOUND);
    }
    // The trap: YKOATH SET CODE `00 03 00 00` is "get status" to the OTP emulation. The bytes after
    // the version are 0x42 in trussed-secrets-app's yk_status.
    if (ins === Ins.SET_CODE && p1 === 0 && p2 === 0) {
      return this.respond(Buffer.from([4, NITROKEY3_VERSION[1]!, NITROKEY3_VERSION[2]!, 0x42, 0x42, 0x42]));
    }
    if (ins === Ins.SELECT && p1 === 0x04 && p2 === 0x00) {
      if (!sameBytes(data, OATH_AID)) return sw(Sw.NOT_FOUND);
      return this.nkSelect();
    }
    const is = (i: number, a: number, b: number): boolean => ins === i && p1 === a && p2 === b;
    if (is(Ins.CALCULATE, 0, 1)) return this.nkCalculate(data, context, authorized);
    if (is(Ins.DELETE, 0, 0)) return this.nkDelete(data, context, authorized);
    if (is(Ins.LIST, 0, 0)) return this.nkList(data, authorized);
    if (is(Ins.PUT, 0, 0)) return this.nkPut(data, context, authorized);
    if (is(Ins.RESET, 0xde, 0xad)) {
      if (!(await context.requestTouch())) return sw(Sw.SECURITY_STATUS);
      await this.store.reset();
      return sw(Sw.OK);
    }
    if (is(Ins.VERIFY_PIN, 0, 0)) return this.nkVerifyPin(data, context);
    if (is(Ins.SET_PIN, 0, 0)) return this.nkSetPin(data, context);
    if (is(Ins.CHANGE_PIN, 0, 0)) return this.nkChangePin(data, context);
    if (is(Ins.UPDATE_CREDENTIAL, 0, 0)) return this.nkUpdate(data, context, authorized);
    if (is(Ins.SEND_REMAINING, 0, 0)) return this.remaining.length > 0 ? this.sendRemaining() : sw(Sw.CONDITIONS_OF_USE);
    // Not in the virtual key: reverse HOTP (B1) and the password safe (B5). Real NK3s have them.
    // CALCULATE P2=00, CALCULATE ALL, VALIDATE and RENAME are not in the NK3 either.
    return sw(Sw.INS_NOT_SUPPORTED);
  }

  private nkSelect(): Uint8Array {
    const parts = [tlv(Tag.VERSION, NITROKEY3_VERSION)];
    const pin = this.store.pin;
    // With a PIN, the salt (71) gives way to the attempt counter (82): ykman cannot work then.
    if (pin) parts.push(tlv(Tag.PIN_COUNTER, [pin.attemptsLeft]));
    else parts.push(tlv(Tag.NAME, this.store.salt));
    parts.push(tlv(Tag.SERIAL, this.store.serialBytes));
    return this.respond(Buffer.concat(parts));
  }

  /** A PIN-protected credential is invisible unless VERIFY PIN came right before. */
  private nkFind(id: Uint8Array, authorized: boolean): StoredCredential | undefined {
    const credential = this.store.findCredential(id);
    return credential && (!credential.pinProtected || authorized) ? credential : undefined;
  }

  private async nkCalculate(data: Buffer, context: AppletContext, authorized: boolean): Promise<Uint8Array> {
    const tlvs = parseTlvs(data);
    if (tlvs[0]?.tag !== Tag.NAME || tlvs[1]?.tag !== Tag.CHALLENGE) return sw(Sw.WRONG_DATA);
    const credential = this.nkFind(tlvs[0].value, authorized);
    if (!credential) return sw(Sw.NOT_FOUND);
    // Touch is skipped for a PIN-protected credential: VERIFY PIN already took one.
    if (credential.touch && !credential.pinProtected && !(await context.requestTouch())) {
      return sw(Sw.SECURITY_STATUS);
    }
    if (credential.algorithm === 'SHA512') return sw(Sw.FUNCTION_NOT_SUPPORTED);
    if (credential.type === 'HOTP' && credential.counter >= HOTP_COUNTER_LIMIT) return sw(Sw.EXEC_ERROR_PERSISTENT);
    const mac = await this.compute(credential, tlvs[1].value);
    return this.respond(codeTlv(credential, mac, true, true));
  }

  private async nkDelete(data: Buffer, context: AppletContext, authorized: boolean): Promise<Uint8Array> {
    const tlvs = parseTlvs(data);
    if (tlvs[0]?.tag !== Tag.NAME) return sw(Sw.WRONG_DATA);
    if (!(await context.requestTouch())) return sw(Sw.SECURITY_STATUS);
    const credential = this.nkFind(tlvs[0].value, authorized);
    if (!credential) return sw(Sw.NOT_FOUND);
    await this.store.deleteCredential(credential.id);
    return sw(Sw.OK);
  }

  private nkList(data: Buffer, authorized: boolean): Uint8Array {
    const version = data.length === 0 ? 0 : data[0]!;
    if (version > 1) return sw(Sw.WRONG_DATA);
    const entries: Buffer[] = [];
    for (const c of this.store.credentials) {
      if (c.pinProtected && !authorized) continue;
      const body = [Buffer.of(typeAlgorithm(c)), Buffer.from(c.id)];
      if (version === 1) body.push(Buffer.of((c.touch ? ListProperty.TOUCH : 0) | (c.pinProtected ? ListProperty.PIN_ENCRYPTED : 0)));
      entries.push(tlv(Tag.NAME_LIST, Buffer.concat(body)));
    }
    // Chunks of whole entries up to 3072 bytes, each but the last answered with 61FF.
    const chunks: Buffer[] = [];
    let current: Buffer[] = [];
    let size = 0;
    for (const entry of entries) {
      if (size + entry.length > NITROKEY3_LIST_LIMIT && current.length > 0) {
        chunks.push(Buffer.concat(current));
        current = [];
        size = 0;
      }
      current.push(entry);
      size += entry.length;
    }
    chunks.push(Buffer.concat(current));
    this.remaining = chunks.slice(1);
    return withSw(chunks[0]!, this.remaining.length > 0 ? 0x61ff : Sw.OK);
  }

  private async nkPut(data: Buffer, context: AppletContext, authorized: boolean): Promise<Uint8Array> {
    const tlvs = parseTlvs(data, { valueOnlyTags: [Tag.PROPERTY] });
    if (tlvs[0]?.tag !== Tag.NAME || tlvs[1]?.tag !== Tag.KEY) return sw(Sw.WRONG_DATA);
    const id = tlvs[0].value;
    const key = tlvs[1].value;
    let rest = tlvs.slice(2);
    let property = 0;
    if (rest[0]?.tag === Tag.PROPERTY) {
      property = rest[0].value[0]!;
      rest = rest.slice(1);
    }
    let counter = 0;
    if (rest[0]?.tag === Tag.IMF && ((key[0] ?? 0) & TYPE_MASK) === OathTypeByte.HOTP) {
      if (rest[0].value.length === 4) counter = rest[0].value.readUInt32BE(0);
      rest = rest.slice(1);
    }
    const pws: number[] = [Tag.PWS_LOGIN, Tag.PWS_PASSWORD, Tag.PWS_METADATA];
    if (rest.some((t) => !pws.includes(t.tag))) return sw(Sw.WRONG_DATA);
    // The password safe (83/84/85) is not part of the virtual key.
    if (rest.length > 0) return sw(Sw.FUNCTION_NOT_SUPPORTED);
    if (id.length === 0 || id.length > NITROKEY3_MAX_SHORT_DATA) return sw(Sw.WRONG_DATA);
    if (key.length < 3) return sw(Sw.WRONG_DATA);
    const kind = key[0]! & TYPE_MASK;
    // Reverse HOTP (0x30) and HMAC slots (0x40) exist on a real NK3, not on the virtual one.
    if (kind === 0x30 || kind === 0x40) return sw(Sw.FUNCTION_NOT_SUPPORTED);
    const header = parseKeyHeader(key, 0, 255);
    if (header.secret.length > NITROKEY3_MAX_SHORT_DATA) return sw(Sw.WRONG_DATA);
    const touch = (property & Property.REQUIRE_TOUCH) !== 0;
    const pinProtected = (property & Property.PIN_ENCRYPT) !== 0;

    if (touch && !pinProtected && !(await context.requestTouch())) return sw(Sw.SECURITY_STATUS);
    if (this.store.credentials.length >= NITROKEY3_MAX_CREDENTIALS) return sw(Sw.NO_SPACE);
    // No overwriting, and a hidden PIN-protected credential of that name counts too (the NK3 checks
    // by file name).
    if (this.store.findCredential(id)) return sw(Sw.OPERATION_BLOCKED);
    // Encrypting with the PIN key needs that key, which exists only right after VERIFY PIN.
    if (pinProtected && (!this.store.pin || !authorized)) return sw(Sw.SECURITY_STATUS);
    await this.store.putCredential({
      id,
      type: header.type,
      algorithm: header.algorithm,
      digits: header.digits,
      key: header.secret,
      counter,
      touch,
      increasing: false,
      pinProtected,
    });
    return sw(Sw.OK);
  }

  private async nkUpdate(data: Buffer, context: AppletContext, authorized: boolean): Promise<Uint8Array> {
    // Here 78 is an ordinary TLV with a length byte, unlike in PUT.
    const tlvs = parseTlvs(data);
    if (tlvs[0]?.tag !== Tag.NAME || tlvs[0].value.length === 0) return sw(Sw.WRONG_DATA);
    const id = tlvs[0].value;
    let newId: Buffer | undefined;
    let property: number | undefined;
    for (const t of tlvs.slice(1)) {
      if (t.tag === Tag.NAME) newId = t.value;
      else if (t.tag === Tag.PROPERTY && t.value.length >= 1) property = t.value[0];
      else if (t.tag === Tag.PWS_LOGIN || t.tag === Tag.PWS_PASSWORD || t.tag === Tag.PWS_METADATA) return sw(Sw.FUNCTION_NOT_SUPPORTED);
      else return sw(Sw.WRONG_DATA);
    }
    if (newId !== undefined && (newId.length === 0 || newId.length > NITROKEY3_MAX_SHORT_DATA)) return sw(Sw.WRONG_DATA);
    if (!(await context.requestTouch())) return sw(Sw.SECURITY_STATUS);
    if (newId !== undefined && this.store.findCredential(newId)) return sw(Sw.OPERATION_BLOCKED);
    const credential = this.nkFind(id, authorized);
    if (!credential) return sw(Sw.NOT_FOUND);
    await this.store.replaceCredential(credential.id, {
      ...credential,
      id: newId ?? credential.id,
      touch: property === undefined ? credential.touch : (property & Property.REQUIRE_TOUCH) !== 0,
    });
    return sw(Sw.OK);
  }

  private async nkVerifyPin(data: Buffer, context: AppletContext): Promise<Uint8Array> {
    const pinValue = pinTlv(data, false);
    const pin = this.store.pin;
    if (!pin) return sw(Sw.SECURITY_STATUS);
    // Touch first, so that no program can burn the attempt counter behind the user's back.
    if (!(await context.requestTouch())) return sw(Sw.SECURITY_STATUS);
    // Blocked: trussed-auth refuses, which the app reports as 6400 [inferred].
    if (pin.attemptsLeft === 0) return sw(Sw.EXEC_ERROR_NONPERSISTENT);
    if (!(await this.checkPin(pinValue.pin))) return sw(Sw.VERIFICATION_FAILED);
    this.pinAuthorized = true;
    return sw(Sw.OK);
  }

  private async nkSetPin(data: Buffer, context: AppletContext): Promise<Uint8Array> {
    const { pin } = pinTlv(data, false);
    if (this.store.pin) return sw(Sw.SECURITY_STATUS);
    if (!(await context.requestTouch())) return sw(Sw.SECURITY_STATUS);
    if (pin.length === 0) return sw(Sw.VERIFICATION_FAILED);
    await this.store.setPin(pin);
    this.pinAuthorized = true;
    return sw(Sw.OK);
  }

  private async nkChangePin(data: Buffer, context: AppletContext): Promise<Uint8Array> {
    const { pin, newPin } = pinTlv(data, true);
    const state = this.store.pin;
    if (!state) return sw(Sw.SECURITY_STATUS);
    if (!(await context.requestTouch())) return sw(Sw.SECURITY_STATUS);
    if (state.attemptsLeft === 0 || newPin === undefined || newPin.length === 0) return sw(Sw.VERIFICATION_FAILED);
    if (!(await this.checkPin(pin))) return sw(Sw.VERIFICATION_FAILED);
    await this.store.setPin(newPin);
    return sw(Sw.OK);
  }

  /** Checks a PIN and keeps the attempt counter (persisted first, so a crash cannot refund a try). */
  private async checkPin(pin: Buffer): Promise<boolean> {
    const state = this.store.pin;
    if (!state || state.attemptsLeft === 0) return false;
    await this.store.setPinAttemptsLeft(state.attemptsLeft - 1);
    if (!this.store.pinMatches(pin)) return false;
    await this.store.setPinAttemptsLeft(PIN_ATTEMPTS);
    return true;
  }

  // -------------------------------------------------------------------------------------------
  // Shared

  /**
   * The HMAC for a CALCULATE. HOTP uses the stored counter and ignores the challenge; the advanced
   * counter is on disk before the code leaves the key, so a crash can never hand out a code twice.
   */
  private async compute(credential: StoredCredential, challenge: Buffer): Promise<Buffer> {
    if (credential.type === 'HOTP') {
      if (credential.counter >= HOTP_COUNTER_LIMIT) fail(Sw.MEMORY_FAILURE);
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

  /** Sends `data`, keeping what does not fit for SEND REMAINING (YubiKey: 256-byte chunks). */
  private respond(data: Buffer): Uint8Array {
    if (this.dialect === 'nitrokey3' || data.length <= YUBIKEY_RESPONSE_CHUNK) {
      this.remaining = [];
      return withSw(data, Sw.OK);
    }
    const chunks: Buffer[] = [];
    for (let offset = 0; offset < data.length; offset += YUBIKEY_RESPONSE_CHUNK) {
      chunks.push(data.subarray(offset, offset + YUBIKEY_RESPONSE_CHUNK));
    }
    this.remaining = chunks.slice(1);
    return withSw(chunks[0]!, moreDataSw(this.remaining));
  }

  private sendRemaining(): Uint8Array {
    const next = this.remaining.shift();
    // Nothing pending: an empty, complete answer (the YubiKey dialect; the NK3 checks before).
    if (!next) return sw(Sw.OK);
    const more = this.remaining.length > 0;
    if (this.dialect === 'nitrokey3') return withSw(next, more ? 0x61ff : Sw.OK);
    return withSw(next, more ? moreDataSw(this.remaining) : Sw.OK);
  }
}

// ---------------------------------------------------------------------------------------------
// Encoding helpers

/**
 * ISO 7816-4 command APDU: short (`Lc` 1 byte, optional `Le`) or extended (`00 Lc_hi Lc_lo`,
 * optional 2-byte `Le`; `00 Le_hi Le_lo` alone for no data). ykman 4.0.9's no-data commands end in
 * a lone `00`, which is a case-2 Le. undefined = the lengths do not add up (6700).
 */
export function parseApdu(bytes: Uint8Array): Apdu | undefined {
  const buf = Buffer.from(bytes);
  if (buf.length < 4) return undefined;
  const header = { cla: buf[0]!, ins: buf[1]!, p1: buf[2]!, p2: buf[3]! };
  const body = buf.subarray(4);
  if (body.length === 0 || body.length === 1) return { ...header, data: Buffer.alloc(0) };
  if (body[0] !== 0) {
    const lc = body[0]!;
    if (body.length === 1 + lc || body.length === 2 + lc) return { ...header, data: body.subarray(1, 1 + lc) };
    return undefined;
  }
  if (body.length === 3) return { ...header, data: Buffer.alloc(0) };
  if (body.length < 3) return undefined;
  const lc = body.readUInt16BE(1);
  if (lc === 0) return undefined;
  if (body.length === 3 + lc || body.length === 5 + lc) return { ...header, data: body.subarray(3, 3 + lc) };
  return undefined;
}

/**
 * BER-TLV with one-byte tags. Tags in `valueOnlyTags` carry exactly one value byte and no length
 * (YKOATH's PUT property). Malformed data → StatusError 6A80.
 */
function parseTlvs(data: Buffer, options: { valueOnlyTags?: readonly number[] } = {}): Tlv[] {
  const out: Tlv[] = [];
  let offset = 0;
  while (offset < data.length) {
    const tag = data[offset++]!;
    if (options.valueOnlyTags?.includes(tag)) {
      if (offset >= data.length) fail(Sw.WRONG_DATA);
      out.push({ tag, value: data.subarray(offset, offset + 1) });
      offset += 1;
      continue;
    }
    if (offset >= data.length) fail(Sw.WRONG_DATA);
    let length = data[offset++]!;
    if (length === 0x81 || length === 0x82) {
      const n = length - 0x80;
      if (offset + n > data.length) fail(Sw.WRONG_DATA);
      length = n === 1 ? data[offset]! : data.readUInt16BE(offset);
      offset += n;
    } else if (length > 0x80) {
      fail(Sw.WRONG_DATA);
    }
    if (offset + length > data.length) fail(Sw.WRONG_DATA);
    out.push({ tag, value: data.subarray(offset, offset + length) });
    offset += length;
  }
  return out;
}

/** The one TLV with this tag; none or several → 6A80. */
function single(tlvs: readonly Tlv[], tag: number): Buffer {
  const found = tlvs.filter((t) => t.tag === tag);
  if (found.length !== 1) fail(Sw.WRONG_DATA);
  return found[0]!.value;
}

function optional(tlvs: readonly Tlv[], tag: number): Buffer | undefined {
  const found = tlvs.filter((t) => t.tag === tag);
  if (found.length > 1) fail(Sw.WRONG_DATA);
  return found[0]?.value;
}

/** `<type|algo> <digits> <key>` of tag 73. */
function parseKeyHeader(key: Buffer, minDigits: number, maxDigits: number): { type: OathType; algorithm: HashAlgorithm; digits: number; secret: Buffer } {
  if (key.length < 3) fail(Sw.WRONG_DATA);
  const typeCode = key[0]! & TYPE_MASK;
  const type: OathType | undefined = typeCode === OathTypeByte.HOTP ? 'HOTP' : typeCode === OathTypeByte.TOTP ? 'TOTP' : undefined;
  const algorithm = ALGORITHM_BY_CODE.get(key[0]! & ALGORITHM_MASK);
  const digits = key[1]!;
  if (!type || !algorithm || digits < minDigits || digits > maxDigits) fail(Sw.WRONG_DATA);
  return { type, algorithm, digits, secret: Buffer.from(key.subarray(2)) };
}

function pinTlv(data: Buffer, withNew: boolean): { pin: Buffer; newPin?: Buffer } {
  const tlvs = parseTlvs(data);
  if (tlvs[0]?.tag !== Tag.PIN || tlvs[0].value.length > MAX_PIN) fail(Sw.WRONG_DATA);
  if (!withNew) return { pin: tlvs[0].value };
  if (tlvs[1]?.tag !== Tag.NEW_PIN || tlvs[1].value.length > MAX_PIN) fail(Sw.WRONG_DATA);
  return { pin: tlvs[0].value, newPin: tlvs[1].value };
}

function isPkcs7Challenge(data: Buffer): boolean {
  if (data.length !== 64) return false;
  const pad = data[63]!;
  return pad >= 1 && pad <= 63 && data.subarray(64 - pad).every((b) => b === pad);
}

function typeAlgorithm(credential: StoredCredential): number {
  return OathTypeByte[credential.type] | AlgorithmByte[credential.algorithm];
}

/**
 * `76 05 <digits> <4 bytes>` (truncated) or `75 <1+n> <digits> <HMAC>`. A YubiKey leaves the top
 * bit of the truncated value as it is (the host masks it); a Nitrokey 3 clears it.
 */
function codeTlv(credential: StoredCredential, mac: Buffer, truncated: boolean, maskTopBit: boolean): Buffer {
  if (!truncated) return tlv(Tag.RESPONSE, Buffer.concat([Buffer.of(credential.digits), mac]));
  const offset = mac[mac.length - 1]! & 0x0f;
  const value = Buffer.from(mac.subarray(offset, offset + 4));
  if (maskTopBit) value[0] = value[0]! & 0x7f;
  return tlv(Tag.TRUNCATED, Buffer.concat([Buffer.of(credential.digits), value]));
}

function keyedHmac(algorithm: HashAlgorithm, key: Uint8Array, message: Uint8Array): Buffer {
  return createHmac(NODE_HASH[algorithm], key).update(message).digest();
}

/** Challenges as big-endian numbers (shorter = smaller when the lengths differ). */
function compareChallenges(a: Buffer, b: Uint8Array): number {
  if (a.length !== b.length) return a.length - b.length;
  return Buffer.compare(a, b);
}

function tlv(tag: number, value: Uint8Array | readonly number[]): Buffer {
  const bytes = Buffer.from(value as Uint8Array);
  const length =
    bytes.length < 0x80 ? [bytes.length] : bytes.length <= 0xff ? [0x81, bytes.length] : [0x82, bytes.length >> 8, bytes.length & 0xff];
  return Buffer.concat([Buffer.from([tag, ...length]), bytes]);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

function moreDataSw(remaining: readonly Buffer[]): number {
  const left = remaining.reduce((n, c) => n + c.length, 0);
  return 0x6100 | (left > 0xff ? 0x00 : left);
}

function withSw(data: Uint8Array, status: number): Uint8Array {
  const out = new Uint8Array(data.length + 2);
  out.set(data, 0);
  out[data.length] = status >> 8;
  out[data.length + 1] = status & 0xff;
  return out;
}

function sw(status: number): Uint8Array {
  return Uint8Array.of(status >> 8, status & 0xff);
}
