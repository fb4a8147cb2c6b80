/**
 * The OATH applet of the virtual key: the card side of YKOATH (protocols.md §1), answering either
 * as a YubiKey 5 (firmware 5.4.3) or as a Nitrokey 3 Secrets App (4.13.0, §2), byte for byte,
 * quirks included, since the point of a virtual key is that clients cannot tell it from a real one.
 *
 * Every malformed input becomes a status word; process() never throws for what a host sends.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { isKeytapError } from '../../errors.js';
import type { HashAlgorithm, OathType } from '../../otp/credential.js';
import { counterBytes, hmac } from '../../otp/hotp.js';
import { PIN_ATTEMPTS } from './store.js';
import type { StoredCredential, VirtualKeyStore } from './store.js';
import type { AppletContext, CardApplet, Dialect } from './types.js';

export const OATH_AID = Uint8Array.from([0xa0, 0x00, 0x00, 0x05, 0x27, 0x21, 0x01]);
/** Reported by the YubiKey dialect. Not 4.2.0–4.2.6, which would switch on yubikit's dummy-APDU workaround. */
export const YUBIKEY_VERSION = Uint8Array.from([5, 4, 3]);
/** Reported by the Nitrokey 3 dialect: major forced to 4, then secrets-app crate 0.13.0. */
export const NITROKEY3_VERSION = Uint8Array.from([4, 13, 0]);

export const SW = {
  OK: 0x9000,
  VERIFICATION_FAILED: 0x6300,
  NON_PERSISTENT_ERROR: 0x6400,
  PERSISTENT_ERROR: 0x6500,
  MEMORY_FAILURE: 0x6581,
  WRONG_LENGTH: 0x6700,
  LOGICAL_CHANNEL_NOT_SUPPORTED: 0x6881,
  SECURE_MESSAGING_NOT_SUPPORTED: 0x6882,
  CHAINING_NOT_SUPPORTED: 0x6884,
  SECURITY_STATUS_NOT_SATISFIED: 0x6982,
  OPERATION_BLOCKED: 0x6983,
  NO_SUCH_OBJECT: 0x6984,
  CONDITIONS_NOT_SATISFIED: 0x6985,
  WRONG_DATA: 0x6a80,
  FUNCTION_NOT_SUPPORTED: 0x6a81,
  NOT_FOUND: 0x6a82,
  NO_SPACE: 0x6a84,
  WRONG_P1P2: 0x6a86,
  INS_NOT_SUPPORTED: 0x6d00,
  CLA_NOT_SUPPORTED: 0x6e00,
} as const;

const INS = {
  PUT: 0x01,
  DELETE: 0x02,
  SET_CODE: 0x03,
  RESET: 0x04,
  RENAME: 0x05,
  LIST: 0xa1,
  CALCULATE: 0xa2,
  VALIDATE: 0xa3,
  SELECT_OR_CALCULATE_ALL: 0xa4,
  SEND_REMAINING: 0xa5,
  // Nitrokey 3 extensions
  VERIFY_CODE: 0xb1,
  VERIFY_PIN: 0xb2,
  CHANGE_PIN: 0xb3,
  SET_PIN: 0xb4,
  GET_CREDENTIAL: 0xb5,
  UPDATE_CREDENTIAL: 0xb7,
} as const;

const TAG = {
  NAME: 0x71,
  NAME_LIST: 0x72,
  KEY: 0x73,
  CHALLENGE: 0x74,
  RESPONSE: 0x75,
  TRUNCATED: 0x76,
  HOTP: 0x77,
  PROPERTY: 0x78,
  VERSION: 0x79,
  IMF: 0x7a,
  ALGORITHM: 0x7b,
  TOUCH: 0x7c,
  PIN: 0x80,
  NEW_PIN: 0x81,
  PIN_COUNTER: 0x82,
  PWS_LOGIN: 0x83,
  PWS_PASSWORD: 0x84,
  PWS_METADATA: 0x85,
  SERIAL: 0x8f,
} as const;

const TYPE_CODE: Record<OathType, number> = { HOTP: 0x10, TOTP: 0x20 };
const ALGORITHM_CODE: Record<HashAlgorithm, number> = { SHA1: 0x01, SHA256: 0x02, SHA512: 0x03 };
const ALGORITHM_BY_CODE = new Map<number, HashAlgorithm>([
  [0x01, 'SHA1'],
  [0x02, 'SHA256'],
  [0x03, 'SHA512'],
]);
const BLOCK_SIZE: Record<HashAlgorithm, number> = { SHA1: 64, SHA256: 64, SHA512: 128 };
const NODE_HASH: Record<HashAlgorithm, string> = { SHA1: 'sha1', SHA256: 'sha256', SHA512: 'sha512' };

const YK_PROP_INCREASING = 0x01;
const YK_PROP_TOUCH = 0x02;
const NK_PROP_TOUCH = 0x02;
const NK_PROP_PIN_ENCRYPT = 0x04;
/** LIST v1 property bits (not the same values as PUT's). */
const NK_LIST_TOUCH = 0x01;
const NK_LIST_PIN = 0x02;

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
      if (apdu === undefined) return sw(SW.WRONG_LENGTH);
      if (this.dialect === 'nitrokey3') return await this.nitrokey3(apdu, context, authorizedBefore);
      return await this.yubikey(apdu, context);
    } catch (error) {
      if (error instanceof StatusError) return sw(error.sw);
      // A cancelled touch wait (CTAPHID CANCEL, unplug): a YubiKey reports it as "not touched"; the
      // NK3 maps every user-presence error other than a timeout to 6500 [inferred, §2.10].
      if (isKeytapError(error, 'CANCELLED')) {
        return sw(this.dialect === 'nitrokey3' ? SW.PERSISTENT_ERROR : SW.SECURITY_STATUS_NOT_SATISFIED);
      }
      // Anything else is ours (a store write failed): the key's "memory failure".
      return sw(this.dialect === 'nitrokey3' ? SW.PERSISTENT_ERROR : SW.MEMORY_FAILURE);
    }
  }

  // -------------------------------------------------------------------------------------------
  // YubiKey 5

  private async yubikey(apdu: Apdu, context: AppletContext): Promise<Uint8Array> {
    if ((apdu.cla & ~0x10) !== 0) return sw(SW.CLA_NOT_SUPPORTED);
    if (apdu.cla & 0x10) {
      // Command chaining: keep the chunk, answer 9000, act on the last chunk (CLA 0x00).
      const chain =
        this.chain && this.chain.ins === apdu.ins && this.chain.p1 === apdu.p1 && this.chain.p2 === apdu.p2
          ? this.chain
          : { ins: apdu.ins, p1: apdu.p1, p2: apdu.p2, data: [], size: 0 };
      chain.data.push(apdu.data);
      chain.size += apdu.data.length;
      this.chain = chain.size > MAX_CHAINED_DATA ? undefined : chain;
      return sw(this.chain ? SW.OK : SW.WRONG_LENGTH);
    }
    const chain = this.chain;
    this.chain = undefined;
    if (chain && chain.ins === apdu.ins && chain.p1 === apdu.p1 && chain.p2 === apdu.p2) {
      if (chain.size + apdu.data.length > MAX_CHAINED_DATA) return sw(SW.WRONG_LENGTH);
      apdu = { ...apdu, data: Buffer.concat([...chain.data, apdu.data]) };
    }
    if (apdu.ins !== INS.SEND_REMAINING) this.remaining = [];

    const { ins, p1, p2 } = apdu;
    if (ins === INS.SELECT_OR_CALCULATE_ALL && p1 === 0x04) return this.ykSelect(apdu);
    // VALIDATE and RESET are the two commands a locked applet still takes.
    if (ins === INS.VALIDATE) return this.ykValidate(apdu);
    if (ins === INS.RESET) {
      if (p1 !== 0xde || p2 !== 0xad) return sw(SW.WRONG_P1P2);
      await this.store.reset();
      this.unlocked = true;
      this.validateChallenge = undefined;
      return sw(SW.OK);
    }
    const known: number[] = [INS.PUT, INS.DELETE, INS.SET_CODE, INS.RENAME, INS.LIST, INS.CALCULATE, INS.SELECT_OR_CALCULATE_ALL, INS.SEND_REMAINING];
    if (!known.includes(ins)) return sw(SW.INS_NOT_SUPPORTED);
    if (this.store.accessKey && !this.unlocked) return sw(SW.SECURITY_STATUS_NOT_SATISFIED);
    switch (ins) {
      case INS.SEND_REMAINING:
        return this.sendRemaining();
      case INS.PUT:
        return this.ykPut(apdu);
      case INS.DELETE:
        return this.ykDelete(apdu);
      case INS.SET_CODE:
        return this.ykSetCode(apdu);
      case INS.RENAME:
        return this.ykRename(apdu);
      case INS.LIST:
        return this.ykList();
      case INS.CALCULATE:
        return this.ykCalculate(apdu, context);
      default:
        if (p1 !== 0x00) return sw(SW.WRONG_P1P2);
        return this.ykCalculateAll(apdu);
    }
  }

  private ykSelect(apdu: Apdu): Uint8Array {
    if (!sameBytes(apdu.data, OATH_AID)) return sw(SW.NOT_FOUND);
    const parts = [tlv(TAG.VERSION, YUBIKEY_VERSION), tlv(TAG.NAME, this.store.salt)];
    const accessKey = this.store.accessKey;
    if (accessKey) {
      // A password is set: every SELECT locks the session and hands out a fresh challenge.
      this.unlocked = false;
      this.validateChallenge = randomBytes(8);
      parts.push(tlv(TAG.CHALLENGE, this.validateChallenge), tlv(TAG.ALGORITHM, [ALGORITHM_CODE[accessKey.algorithm]]));
    } else {
      this.unlocked = true;
      this.validateChallenge = undefined;
    }
    return this.respond(Buffer.concat(parts));
  }

  private ykValidate(apdu: Apdu): Uint8Array {
    if (apdu.p1 !== 0 || apdu.p2 !== 0) return sw(SW.WRONG_P1P2);
    const tlvs = parseTlvs(apdu.data);
    const response = single(tlvs, TAG.RESPONSE);
    const hostChallenge = single(tlvs, TAG.CHALLENGE);
    if (tlvs.length !== 2 || hostChallenge.length === 0 || hostChallenge.length > 64) return sw(SW.WRONG_DATA);
    const accessKey = this.store.accessKey;
    if (!accessKey) return sw(SW.NO_SUCH_OBJECT);
    // One VALIDATE per SELECT: a guess costs a round trip and a new challenge.
    const challenge = this.validateChallenge;
    this.validateChallenge = undefined;
    if (!challenge) return sw(SW.WRONG_DATA);
    const expected = keyedHmac(accessKey.algorithm, accessKey.key, challenge);
    if (response.length !== expected.length || !timingSafeEqual(response, expected)) {
      this.unlocked = false;
      return sw(SW.WRONG_DATA);
    }
    this.unlocked = true;
    return this.respond(tlv(TAG.RESPONSE, keyedHmac(accessKey.algorithm, accessKey.key, hostChallenge)));
  }

  private async ykPut(apdu: Apdu): Promise<Uint8Array> {
    if (apdu.p1 !== 0 || apdu.p2 !== 0) return sw(SW.WRONG_P1P2);
    const tlvs = parseTlvs(apdu.data, { valueOnlyTags: [TAG.PROPERTY] });
    const allowed: number[] = [TAG.NAME, TAG.KEY, TAG.PROPERTY, TAG.IMF];
    if (tlvs.some((t) => !allowed.includes(t.tag))) return sw(SW.WRONG_DATA);
    const id = single(tlvs, TAG.NAME);
    const key = single(tlvs, TAG.KEY);
    const property = optional(tlvs, TAG.PROPERTY)?.[0] ?? 0;
    const imf = optional(tlvs, TAG.IMF);
    if (id.length === 0 || id.length > YUBIKEY_MAX_ID) return sw(SW.WRONG_DATA);
    const header = parseKeyHeader(key, 6, 8);
    if (header.secret.length === 0 || header.secret.length > BLOCK_SIZE[header.algorithm]) return sw(SW.WRONG_DATA);
    if (imf !== undefined && imf.length !== 4) return sw(SW.WRONG_DATA);

    const existing = this.store.findCredential(id);
    if (!existing && this.store.credentials.length >= YUBIKEY_MAX_CREDENTIALS) return sw(SW.NO_SPACE);
    await this.store.putCredential({
      id,
      type: header.type,
      algorithm: header.algorithm,
      digits: header.digits,
      key: header.secret,
      counter: imf ? imf.readUInt32BE(0) : 0,
      touch: (property & YK_PROP_TOUCH) !== 0,
      increasing: (property & YK_PROP_INCREASING) !== 0,
      pinProtected: false,
    });
    return sw(SW.OK);
  }

  private async ykDelete(apdu: Apdu): Promise<Uint8Array> {
    if (apdu.p1 !== 0 || apdu.p2 !== 0) return sw(SW.WRONG_P1P2);
    const tlvs = parseTlvs(apdu.data);
    const id = single(tlvs, TAG.NAME);
    if (tlvs.length !== 1) return sw(SW.WRONG_DATA);
    if (!this.store.findCredential(id)) return sw(SW.NO_SUCH_OBJECT);
    await this.store.deleteCredential(id);
    return sw(SW.OK);
  }

  private async ykRename(apdu: Apdu): Promise<Uint8Array> {
    if (apdu.p1 !== 0 || apdu.p2 !== 0) return sw(SW.WRONG_P1P2);
    const tlvs = parseTlvs(apdu.data);
    if (tlvs.length !== 2 || tlvs.some((t) => t.tag !== TAG.NAME)) return sw(SW.WRONG_DATA);
    const [oldId, newId] = [tlvs[0]!.value, tlvs[1]!.value];
    if (newId.length === 0 || newId.length > YUBIKEY_MAX_ID) return sw(SW.WRONG_DATA);
    const credential = this.store.findCredential(oldId);
    if (!credential) return sw(SW.NO_SUCH_OBJECT);
    // Renaming onto another credential would silently destroy it.
    if (!sameBytes(oldId, newId) && this.store.findCredential(newId)) return sw(SW.WRONG_DATA);
    await this.store.replaceCredential(oldId, { ...credential, id: newId });
    return sw(SW.OK);
  }

  private async ykSetCode(apdu: Apdu): Promise<Uint8Array> {
    if (apdu.p1 !== 0 || apdu.p2 !== 0) return sw(SW.WRONG_P1P2);
    const tlvs = parseTlvs(apdu.data);
    const keyData = single(tlvs, TAG.KEY);
    if (keyData.length === 0) {
      if (tlvs.length !== 1) return sw(SW.WRONG_DATA);
      await this.store.setAccessKey(undefined);
      this.unlocked = true;
      return sw(SW.OK);
    }
    const challenge = single(tlvs, TAG.CHALLENGE);
    const response = single(tlvs, TAG.RESPONSE);
    if (tlvs.length !== 3) return sw(SW.WRONG_DATA);
    const algorithm = ALGORITHM_BY_CODE.get(keyData[0]! & 0x0f);
    const key = keyData.subarray(1);
    if (!algorithm || key.length === 0 || key.length > BLOCK_SIZE[algorithm] || challenge.length === 0) return sw(SW.WRONG_DATA);
    // The host proves it holds the key it sends (a garbled key would lock the user out).
    const expected = keyedHmac(algorithm, key, challenge);
    if (response.length !== expected.length || !timingSafeEqual(response, expected)) return sw(SW.NO_SUCH_OBJECT);
    await this.store.setAccessKey({ algorithm, key: Buffer.from(key) });
    // The session that set the password stays unlocked until the next SELECT.
    this.unlocked = true;
    return sw(SW.OK);
  }

  private ykList(): Uint8Array {
    const entries = this.store.credentials.map((c) => tlv(TAG.NAME_LIST, Buffer.concat([Buffer.of(typeAlgorithm(c)), c.id])));
    return this.respond(Buffer.concat(entries));
  }

  private async ykCalculate(apdu: Apdu, context: AppletContext): Promise<Uint8Array> {
    if (apdu.p1 !== 0 || (apdu.p2 !== 0 && apdu.p2 !== 1)) return sw(SW.WRONG_P1P2);
    const tlvs = parseTlvs(apdu.data);
    const id = single(tlvs, TAG.NAME);
    const challenge = single(tlvs, TAG.CHALLENGE);
    if (tlvs.length !== 2 || challenge.length > 64) return sw(SW.WRONG_DATA);
    const credential = this.store.findCredential(id);
    if (!credential) return sw(SW.NO_SUCH_OBJECT);
    if (credential.type === 'TOTP' && challenge.length === 0) return sw(SW.WRONG_DATA);
    if (credential.touch && !(await context.requestTouch())) return sw(SW.SECURITY_STATUS_NOT_SATISFIED);
    const mac = await this.compute(credential, challenge);
    return this.respond(codeTlv(credential, mac, apdu.p2 === 1, false));
  }

  private async ykCalculateAll(apdu: Apdu): Promise<Uint8Array> {
    if (apdu.p2 !== 0 && apdu.p2 !== 1) return sw(SW.WRONG_P1P2);
    const tlvs = parseTlvs(apdu.data);
    const challenge = single(tlvs, TAG.CHALLENGE);
    if (tlvs.length !== 1 || challenge.length === 0 || challenge.length > 64) return sw(SW.WRONG_DATA);
    const parts: Buffer[] = [];
    for (const credential of this.store.credentials) {
      parts.push(tlv(TAG.NAME, credential.id));
      // HOTP is never computed here (it would use up a counter value); touch TOTP waits for its
      // own CALCULATE. Every other TOTP is computed with the host's (30 s) challenge, whatever its
      // period: the host recomputes those, as yubikit does.
      if (credential.type === 'HOTP') parts.push(tlv(TAG.HOTP, [credential.digits]));
      else if (credential.touch) parts.push(tlv(TAG.TOUCH, [credential.digits]));
      else parts.push(codeTlv(credential, await this.compute(credential, challenge), apdu.p2 === 1, false));
    }
    return this.respond(Buffer.concat(parts));
  }

  // -------------------------------------------------------------------------------------------
  // Nitrokey 3 Secrets App

  private async nitrokey3(apdu: Apdu, context: AppletContext, authorized: boolean): Promise<Uint8Array> {
    const { cla, ins, p1, p2, data } = apdu;
    if (cla & 0x10) return sw(SW.CHAINING_NOT_SUPPORTED);
    if (cla & 0x0c) return sw(SW.SECURE_MESSAGING_NOT_SUPPORTED);
    if (cla & 0x03) return sw(SW.LOGICAL_CHANNEL_NOT_SUPPORTED);
    if (cla !== 0) return sw(SW.CLA_NOT_SUPPORTED);
    if (ins !== INS.SEND_REMAINING) this.remaining = [];

    // The YubiKey-OTP emulation is tried first (trussed-secrets-app command.rs).
    if (ins === 0x01 && p2 === 0x00 && p1 === 0x10) return this.respond(this.store.serialBytes);
    if (ins === 0x01 && p2 === 0x00 && (p1 === 0x30 || p1 === 0x38) && isPkcs7Challenge(data)) {
      // HMAC challenge-response slots: the virtual key cannot hold HmacSlot credentials (kind 0x40).
      return sw(SW.NOT_FOUND);
    }
    // The trap: YKOATH SET CODE `00 03 00 00` is "get status" to the OTP emulation. The bytes after
    // the version are 0x42 in trussed-secrets-app's yk_status.
    if (ins === INS.SET_CODE && p1 === 0 && p2 === 0) {
      return this.respond(Buffer.from([4, NITROKEY3_VERSION[1]!, NITROKEY3_VERSION[2]!, 0x42, 0x42, 0x42]));
    }
    if (ins === INS.SELECT_OR_CALCULATE_ALL && p1 === 0x04 && p2 === 0x00) {
      if (!sameBytes(data, OATH_AID)) return sw(SW.NOT_FOUND);
      return this.nkSelect();
    }
    const is = (i: number, a: number, b: number): boolean => ins === i && p1 === a && p2 === b;
    if (is(INS.CALCULATE, 0, 1)) return this.nkCalculate(data, context, authorized);
    if (is(INS.DELETE, 0, 0)) return this.nkDelete(data, context, authorized);
    if (is(INS.LIST, 0, 0)) return this.nkList(data, authorized);
    if (is(INS.PUT, 0, 0)) return this.nkPut(data, context, authorized);
    if (is(INS.RESET, 0xde, 0xad)) {
      if (!(await context.requestTouch())) return sw(SW.SECURITY_STATUS_NOT_SATISFIED);
      await this.store.reset();
      return sw(SW.OK);
    }
    if (is(INS.VERIFY_PIN, 0, 0)) return this.nkVerifyPin(data, context);
    if (is(INS.SET_PIN, 0, 0)) return this.nkSetPin(data, context);
    if (is(INS.CHANGE_PIN, 0, 0)) return this.nkChangePin(data, context);
    if (is(INS.UPDATE_CREDENTIAL, 0, 0)) return this.nkUpdate(data, context, authorized);
    if (is(INS.SEND_REMAINING, 0, 0)) return this.remaining.length > 0 ? this.sendRemaining() : sw(SW.CONDITIONS_NOT_SATISFIED);
    // Not in the virtual key: reverse HOTP (B1) and the password safe (B5). Real NK3s have them.
    // CALCULATE P2=00, CALCULATE ALL, VALIDATE and RENAME are not in the NK3 either.
    return sw(SW.INS_NOT_SUPPORTED);
  }

  private nkSelect(): Uint8Array {
    const parts = [tlv(TAG.VERSION, NITROKEY3_VERSION)];
    const pin = this.store.pin;
    // With a PIN, the salt (71) gives way to the attempt counter (82): ykman cannot work then.
    if (pin) parts.push(tlv(TAG.PIN_COUNTER, [pin.attemptsLeft]));
    else parts.push(tlv(TAG.NAME, this.store.salt));
    parts.push(tlv(TAG.SERIAL, this.store.serialBytes));
    return this.respond(Buffer.concat(parts));
  }

  /** A PIN-protected credential is invisible unless VERIFY PIN came right before. */
  private nkFind(id: Uint8Array, authorized: boolean): StoredCredential | undefined {
    const credential = this.store.findCredential(id);
    return credential && (!credential.pinProtected || authorized) ? credential : undefined;
  }

  private async nkCalculate(data: Buffer, context: AppletContext, authorized: boolean): Promise<Uint8Array> {
    const tlvs = parseTlvs(data);
    if (tlvs[0]?.tag !== TAG.NAME || tlvs[1]?.tag !== TAG.CHALLENGE) return sw(SW.WRONG_DATA);
    const credential = this.nkFind(tlvs[0].value, authorized);
    if (!credential) return sw(SW.NOT_FOUND);
    // Touch is skipped for a PIN-protected credential: VERIFY PIN already took one.
    if (credential.touch && !credential.pinProtected && !(await context.requestTouch())) {
      return sw(SW.SECURITY_STATUS_NOT_SATISFIED);
    }
    if (credential.algorithm === 'SHA512') return sw(SW.FUNCTION_NOT_SUPPORTED);
    if (credential.type === 'HOTP' && credential.counter >= HOTP_COUNTER_LIMIT) return sw(SW.PERSISTENT_ERROR);
    const mac = await this.compute(credential, tlvs[1].value);
    return this.respond(codeTlv(credential, mac, true, true));
  }

  private async nkDelete(data: Buffer, context: AppletContext, authorized: boolean): Promise<Uint8Array> {
    const tlvs = parseTlvs(data);
    if (tlvs[0]?.tag !== TAG.NAME) return sw(SW.WRONG_DATA);
    if (!(await context.requestTouch())) return sw(SW.SECURITY_STATUS_NOT_SATISFIED);
    const credential = this.nkFind(tlvs[0].value, authorized);
    if (!credential) return sw(SW.NOT_FOUND);
    await this.store.deleteCredential(credential.id);
    return sw(SW.OK);
  }

  private nkList(data: Buffer, authorized: boolean): Uint8Array {
    const version = data.length === 0 ? 0 : data[0]!;
    if (version > 1) return sw(SW.WRONG_DATA);
    const entries: Buffer[] = [];
    for (const c of this.store.credentials) {
      if (c.pinProtected && !authorized) continue;
      const body = [Buffer.of(typeAlgorithm(c)), Buffer.from(c.id)];
      if (version === 1) body.push(Buffer.of((c.touch ? NK_LIST_TOUCH : 0) | (c.pinProtected ? NK_LIST_PIN : 0)));
      entries.push(tlv(TAG.NAME_LIST, Buffer.concat(body)));
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
    return withSw(chunks[0]!, this.remaining.length > 0 ? 0x61ff : SW.OK);
  }

  private async nkPut(data: Buffer, context: AppletContext, authorized: boolean): Promise<Uint8Array> {
    const tlvs = parseTlvs(data, { valueOnlyTags: [TAG.PROPERTY] });
    if (tlvs[0]?.tag !== TAG.NAME || tlvs[1]?.tag !== TAG.KEY) return sw(SW.WRONG_DATA);
    const id = tlvs[0].value;
    const key = tlvs[1].value;
    let rest = tlvs.slice(2);
    let property = 0;
    if (rest[0]?.tag === TAG.PROPERTY) {
      property = rest[0].value[0]!;
      rest = rest.slice(1);
    }
    let counter = 0;
    if (rest[0]?.tag === TAG.IMF && ((key[0] ?? 0) & 0xf0) === TYPE_CODE.HOTP) {
      if (rest[0].value.length === 4) counter = rest[0].value.readUInt32BE(0);
      rest = rest.slice(1);
    }
    const pws: number[] = [TAG.PWS_LOGIN, TAG.PWS_PASSWORD, TAG.PWS_METADATA];
    if (rest.some((t) => !pws.includes(t.tag))) return sw(SW.WRONG_DATA);
    // The password safe (83/84/85) is not part of the virtual key.
    if (rest.length > 0) return sw(SW.FUNCTION_NOT_SUPPORTED);
    if (id.length === 0 || id.length > NITROKEY3_MAX_SHORT_DATA) return sw(SW.WRONG_DATA);
    if (key.length < 3) return sw(SW.WRONG_DATA);
    const kind = key[0]! & 0xf0;
    // Reverse HOTP (0x30) and HMAC slots (0x40) exist on a real NK3, not on the virtual one.
    if (kind === 0x30 || kind === 0x40) return sw(SW.FUNCTION_NOT_SUPPORTED);
    const header = parseKeyHeader(key, 0, 255);
    if (header.secret.length > NITROKEY3_MAX_SHORT_DATA) return sw(SW.WRONG_DATA);
    const touch = (property & NK_PROP_TOUCH) !== 0;
    const pinProtected = (property & NK_PROP_PIN_ENCRYPT) !== 0;

    if (touch && !pinProtected && !(await context.requestTouch())) return sw(SW.SECURITY_STATUS_NOT_SATISFIED);
    if (this.store.credentials.length >= NITROKEY3_MAX_CREDENTIALS) return sw(SW.NO_SPACE);
    // No overwriting, and a hidden PIN-protected credential of that name counts too (the NK3 checks
    // by file name).
    if (this.store.findCredential(id)) return sw(SW.OPERATION_BLOCKED);
    // Encrypting with the PIN key needs that key, which exists only right after VERIFY PIN.
    if (pinProtected && (!this.store.pin || !authorized)) return sw(SW.SECURITY_STATUS_NOT_SATISFIED);
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
    return sw(SW.OK);
  }

  private async nkUpdate(data: Buffer, context: AppletContext, authorized: boolean): Promise<Uint8Array> {
    // Here 78 is an ordinary TLV with a length byte, unlike in PUT.
    const tlvs = parseTlvs(data);
    if (tlvs[0]?.tag !== TAG.NAME || tlvs[0].value.length === 0) return sw(SW.WRONG_DATA);
    const id = tlvs[0].value;
    let newId: Buffer | undefined;
    let property: number | undefined;
    for (const t of tlvs.slice(1)) {
      if (t.tag === TAG.NAME) newId = t.value;
      else if (t.tag === TAG.PROPERTY && t.value.length >= 1) property = t.value[0];
      else if (t.tag === TAG.PWS_LOGIN || t.tag === TAG.PWS_PASSWORD || t.tag === TAG.PWS_METADATA) return sw(SW.FUNCTION_NOT_SUPPORTED);
      else return sw(SW.WRONG_DATA);
    }
    if (newId !== undefined && (newId.length === 0 || newId.length > NITROKEY3_MAX_SHORT_DATA)) return sw(SW.WRONG_DATA);
    if (!(await context.requestTouch())) return sw(SW.SECURITY_STATUS_NOT_SATISFIED);
    if (newId !== undefined && this.store.findCredential(newId)) return sw(SW.OPERATION_BLOCKED);
    const credential = this.nkFind(id, authorized);
    if (!credential) return sw(SW.NOT_FOUND);
    await this.store.replaceCredential(credential.id, {
      ...credential,
      id: newId ?? credential.id,
      touch: property === undefined ? credential.touch : (property & NK_PROP_TOUCH) !== 0,
    });
    return sw(SW.OK);
  }

  private async nkVerifyPin(data: Buffer, context: AppletContext): Promise<Uint8Array> {
    const pinValue = pinTlv(data, false);
    const pin = this.store.pin;
    if (!pin) return sw(SW.SECURITY_STATUS_NOT_SATISFIED);
    // Touch first, so that no program can burn the attempt counter behind the user's back.
    if (!(await context.requestTouch())) return sw(SW.SECURITY_STATUS_NOT_SATISFIED);
    // Blocked: trussed-auth refuses, which the app reports as 6400 [inferred].
    if (pin.attemptsLeft === 0) return sw(SW.NON_PERSISTENT_ERROR);
    if (!(await this.checkPin(pinValue.pin))) return sw(SW.VERIFICATION_FAILED);
    this.pinAuthorized = true;
    return sw(SW.OK);
  }

  private async nkSetPin(data: Buffer, context: AppletContext): Promise<Uint8Array> {
    const { pin } = pinTlv(data, false);
    if (this.store.pin) return sw(SW.SECURITY_STATUS_NOT_SATISFIED);
    if (!(await context.requestTouch())) return sw(SW.SECURITY_STATUS_NOT_SATISFIED);
    if (pin.length === 0) return sw(SW.VERIFICATION_FAILED);
    await this.store.setPin(pin);
    this.pinAuthorized = true;
    return sw(SW.OK);
  }

  private async nkChangePin(data: Buffer, context: AppletContext): Promise<Uint8Array> {
    const { pin, newPin } = pinTlv(data, true);
    const state = this.store.pin;
    if (!state) return sw(SW.SECURITY_STATUS_NOT_SATISFIED);
    if (!(await context.requestTouch())) return sw(SW.SECURITY_STATUS_NOT_SATISFIED);
    if (state.attemptsLeft === 0 || newPin === undefined || newPin.length === 0) return sw(SW.VERIFICATION_FAILED);
    if (!(await this.checkPin(pin))) return sw(SW.VERIFICATION_FAILED);
    await this.store.setPin(newPin);
    return sw(SW.OK);
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
      if (credential.counter >= HOTP_COUNTER_LIMIT) fail(SW.MEMORY_FAILURE);
      await this.store.replaceCredential(credential.id, { ...credential, counter: credential.counter + 1 });
      return hmac(credential.algorithm, credential.key, counterBytes(credential.counter));
    }
    if (credential.increasing) {
      const last = credential.lastChallenge;
      if (last && compareChallenges(challenge, last) < 0) fail(SW.WRONG_DATA);
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
      return withSw(data, SW.OK);
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
    if (!next) return sw(SW.OK);
    const more = this.remaining.length > 0;
    if (this.dialect === 'nitrokey3') return withSw(next, more ? 0x61ff : SW.OK);
    return withSw(next, more ? moreDataSw(this.remaining) : SW.OK);
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
      if (offset >= data.length) fail(SW.WRONG_DATA);
      out.push({ tag, value: data.subarray(offset, offset + 1) });
      offset += 1;
      continue;
    }
    if (offset >= data.length) fail(SW.WRONG_DATA);
    let length = data[offset++]!;
    if (length === 0x81 || length === 0x82) {
      const n = length - 0x80;
      if (offset + n > data.length) fail(SW.WRONG_DATA);
      length = n === 1 ? data[offset]! : data.readUInt16BE(offset);
      offset += n;
    } else if (length > 0x80) {
      fail(SW.WRONG_DATA);
    }
    if (offset + length > data.length) fail(SW.WRONG_DATA);
    out.push({ tag, value: data.subarray(offset, offset + length) });
    offset += length;
  }
  return out;
}

/** The one TLV with this tag; none or several → 6A80. */
function single(tlvs: readonly Tlv[], tag: number): Buffer {
  const found = tlvs.filter((t) => t.tag === tag);
  if (found.length !== 1) fail(SW.WRONG_DATA);
  return found[0]!.value;
}

function optional(tlvs: readonly Tlv[], tag: number): Buffer | undefined {
  const found = tlvs.filter((t) => t.tag === tag);
  if (found.length > 1) fail(SW.WRONG_DATA);
  return found[0]?.value;
}

/** `<type|algo> <digits> <key>` of tag 73. */
function parseKeyHeader(key: Buffer, minDigits: number, maxDigits: number): { type: OathType; algorithm: HashAlgorithm; digits: number; secret: Buffer } {
  if (key.length < 3) fail(SW.WRONG_DATA);
  const typeCode = key[0]! & 0xf0;
  const type: OathType | undefined = typeCode === 0x10 ? 'HOTP' : typeCode === 0x20 ? 'TOTP' : undefined;
  const algorithm = ALGORITHM_BY_CODE.get(key[0]! & 0x0f);
  const digits = key[1]!;
  if (!type || !algorithm || digits < minDigits || digits > maxDigits) fail(SW.WRONG_DATA);
  return { type, algorithm, digits, secret: Buffer.from(key.subarray(2)) };
}

function pinTlv(data: Buffer, withNew: boolean): { pin: Buffer; newPin?: Buffer } {
  const tlvs = parseTlvs(data);
  if (tlvs[0]?.tag !== TAG.PIN || tlvs[0].value.length > MAX_PIN) fail(SW.WRONG_DATA);
  if (!withNew) return { pin: tlvs[0].value };
  if (tlvs[1]?.tag !== TAG.NEW_PIN || tlvs[1].value.length > MAX_PIN) fail(SW.WRONG_DATA);
  return { pin: tlvs[0].value, newPin: tlvs[1].value };
}

function isPkcs7Challenge(data: Buffer): boolean {
  if (data.length !== 64) return false;
  const pad = data[63]!;
  return pad >= 1 && pad <= 63 && data.subarray(64 - pad).every((b) => b === pad);
}

function typeAlgorithm(credential: StoredCredential): number {
  return TYPE_CODE[credential.type] | ALGORITHM_CODE[credential.algorithm];
}

/**
 * `76 05 <digits> <4 bytes>` (truncated) or `75 <1+n> <digits> <HMAC>`. A YubiKey leaves the top
 * bit of the truncated value as it is (the host masks it); a Nitrokey 3 clears it.
 */
function codeTlv(credential: StoredCredential, mac: Buffer, truncated: boolean, maskTopBit: boolean): Buffer {
  if (!truncated) return tlv(TAG.RESPONSE, Buffer.concat([Buffer.of(credential.digits), mac]));
  const offset = mac[mac.length - 1]! & 0x0f;
  const value = Buffer.from(mac.subarray(offset, offset + 4));
  if (maskTopBit) value[0] = value[0]! & 0x7f;
  return tlv(TAG.TRUNCATED, Buffer.concat([Buffer.of(credential.digits), value]));
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
