/**
 * The YubiKey 5 OATH applet (firmware 5.4.3) of the emulator: the card side of YKOATH
 * (docs/protocols.md §1), byte for byte, quirks included: command chaining, 256-byte answers continued
 * by SEND REMAINING, a password (SET CODE / VALIDATE) that locks every new SELECT.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { ALGORITHM_MASK, AlgorithmByte, HASH_BLOCK_SIZE, Ins, OATH_AID, Property, Sw, Tag, algorithmOfByte } from '../device/oath/constants.js';
import { capabilitiesOf } from '../device/oath/dialect.js';
import { MANAGEMENT_AID } from '../device/management.js';
import { hmac } from '../otp/hotp.js';
import { DialectApplet, codeTlv, optional, parseKeyHeader, parseTlvs, sameBytes, single, sw, tlv, typeAlgorithm } from './oath-applet-common.js';
import type { Apdu } from './oath-applet-common.js';
import { ManagementApplet } from './management-applet.js';
import type { AppletContext } from './types.js';

const CAPABILITIES = capabilitiesOf('yubikey');
/** A short-APDU response carries at most 256 data bytes; the rest follows on SEND REMAINING. */
const YUBIKEY_RESPONSE_CHUNK = 256;
/** Accumulated command chaining data; far more than any OATH command needs. */
const MAX_CHAINED_DATA = 4096;

export class YubiKeyOathApplet extends DialectApplet {
  // A YubiKey reports a cancelled touch wait as "not touched".
  readonly cancelledSw = Sw.SECURITY_STATUS;
  readonly internalErrorSw = Sw.MEMORY_FAILURE;

  // Session state: what a real key keeps in RAM and loses on power-off.
  /** VALIDATE succeeded since the last SELECT (or no password is set). */
  private unlocked = false;
  /** The challenge of the last SELECT answer, good for one VALIDATE. */
  private validateChallenge: Buffer | undefined;
  /** The Management application is selected rather than OATH (the applet OATH commands reach without a SELECT). */
  private managementSelected = false;
  private readonly management = new ManagementApplet(this.store);
  /** Command chaining (CLA 0x10): header and data received so far. */
  private chain: { ins: number; p1: number; p2: number; data: Buffer[]; size: number } | undefined;

  async handle(apdu: Apdu, context: AppletContext): Promise<Uint8Array> {
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
    const { ins, p1, p2 } = apdu;
    // The card's other application: a SELECT that finds it switches over, a SELECT of OATH switches
    // back, and a SELECT of an AID the card lacks (6A82) leaves the selection as it was.
    if (ins === Ins.SELECT && p1 === 0x04 && sameBytes(apdu.data, MANAGEMENT_AID)) {
      this.managementSelected = true;
      return this.management.select();
    }
    if (ins === Ins.SELECT && p1 === 0x04 && sameBytes(apdu.data, OATH_AID)) this.managementSelected = false;
    else if (this.managementSelected && !(ins === Ins.SELECT && p1 === 0x04)) return this.management.handle(apdu);

    if (apdu.ins !== Ins.SEND_REMAINING) this.remaining = [];
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
    const parts = [tlv(Tag.VERSION, CAPABILITIES.version), tlv(Tag.NAME, this.store.salt)];
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
    const expected = hmac(accessKey.algorithm, accessKey.key, challenge);
    if (response.length !== expected.length || !timingSafeEqual(response, expected)) {
      this.unlocked = false;
      return sw(Sw.WRONG_DATA);
    }
    this.unlocked = true;
    return this.respond(tlv(Tag.RESPONSE, hmac(accessKey.algorithm, accessKey.key, hostChallenge)));
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
    if (id.length === 0 || id.length > CAPABILITIES.maxIdBytes) return sw(Sw.WRONG_DATA);
    const header = parseKeyHeader(key, 6, 8);
    if (header.secret.length === 0 || header.secret.length > HASH_BLOCK_SIZE[header.algorithm]) return sw(Sw.WRONG_DATA);
    if (imf !== undefined && imf.length !== 4) return sw(Sw.WRONG_DATA);

    const existing = this.store.findCredential(id);
    if (!existing && this.store.credentials.length >= CAPABILITIES.maxCredentials) return sw(Sw.NO_SPACE);
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
    if (newId.length === 0 || newId.length > CAPABILITIES.maxIdBytes) return sw(Sw.WRONG_DATA);
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
    const algorithm = algorithmOfByte(keyData[0]! & ALGORITHM_MASK);
    const key = keyData.subarray(1);
    if (!algorithm || key.length === 0 || key.length > HASH_BLOCK_SIZE[algorithm] || challenge.length === 0) return sw(Sw.WRONG_DATA);
    // The host proves it holds the key it sends (a garbled key would lock the user out).
    const expected = hmac(algorithm, key, challenge);
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

  /** 61xx: xx is how many bytes are left, 00 for 256 or more. */
  protected moreDataSw(): number {
    const left = this.remaining.reduce((n, c) => n + c.length, 0);
    return 0x6100 | (left > 0xff ? 0x00 : left);
  }

  /** Sends `data`, keeping what does not fit for SEND REMAINING (YubiKey: 256-byte chunks). */
  private respond(data: Buffer): Uint8Array {
    const chunks: Buffer[] = [data.subarray(0, YUBIKEY_RESPONSE_CHUNK)];
    for (let offset = YUBIKEY_RESPONSE_CHUNK; offset < data.length; offset += YUBIKEY_RESPONSE_CHUNK) {
      chunks.push(data.subarray(offset, offset + YUBIKEY_RESPONSE_CHUNK));
    }
    return this.sendChunks(chunks);
  }
}
