/**
 * The Nitrokey 3 Secrets App (4.13.0, docs/protocols.md §2) of the emulator: the YKOATH commands as
 * the Nitrokey 3 answers them, quirks included (no chaining, no CALCULATE ALL, SET CODE taken for
 * the YubiKey-OTP "get status", touch for every change), plus its PIN and LIST v1. Reverse HOTP,
 * HMAC slots and the password safe are not emulated.
 */
import { Ins, ListProperty, OATH_AID, OathTypeByte, Property, Sw, TYPE_MASK, Tag } from '../device/oath/constants.js';
import { capabilitiesOf } from '../device/oath/dialect.js';
import { DialectApplet, codeTlv, fail, parseKeyHeader, parseTlvs, sameBytes, sw, tlv, typeAlgorithm } from './oath-applet-common.js';
import type { Apdu } from './oath-applet-common.js';
import { PIN_ATTEMPTS } from './store.js';
import type { StoredCredential } from './store.js';
import type { AppletContext } from './types.js';

const CAPABILITIES = capabilitiesOf('nitrokey3');
/** Trussed ShortData: secrets up to 128 bytes. */
const NITROKEY3_MAX_SHORT_DATA = 128;
/** usbd-ctaphid's message limit: the NK3 stops LIST there and answers 61FF. */
const NITROKEY3_LIST_LIMIT = 3072;
const MAX_PIN = 64;

export class Nitrokey3OathApplet extends DialectApplet {
  // The NK3 maps every user-presence error other than a timeout to 6500 [inferred, §2.10].
  readonly cancelledSw = Sw.EXEC_ERROR_PERSISTENT;
  readonly internalErrorSw = Sw.EXEC_ERROR_PERSISTENT;

  /** VERIFY PIN (or SET PIN) succeeded in the previous command ("per-request authorization"). */
  private pinAuthorized = false;
  /** What `pinAuthorized` was when the command being handled arrived. */
  private authorizedBefore = false;

  override beginCommand(): void {
    this.authorizedBefore = this.pinAuthorized;
    this.pinAuthorized = false;
  }

  async handle(apdu: Apdu, context: AppletContext): Promise<Uint8Array> {
    const authorized = this.authorizedBefore;
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
      return this.respond(Buffer.from([4, CAPABILITIES.version[1], CAPABILITIES.version[2], 0x42, 0x42, 0x42]));
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
    const parts = [tlv(Tag.VERSION, CAPABILITIES.version)];
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
    return this.sendChunks(chunks);
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
    if (id.length === 0 || id.length > CAPABILITIES.maxIdBytes) return sw(Sw.WRONG_DATA);
    if (key.length < 3) return sw(Sw.WRONG_DATA);
    const kind = key[0]! & TYPE_MASK;
    // Reverse HOTP (0x30) and HMAC slots (0x40) exist on a real NK3, not on the virtual one.
    if (kind === 0x30 || kind === 0x40) return sw(Sw.FUNCTION_NOT_SUPPORTED);
    const header = parseKeyHeader(key, 0, 255);
    if (header.secret.length > NITROKEY3_MAX_SHORT_DATA) return sw(Sw.WRONG_DATA);
    const touch = (property & Property.REQUIRE_TOUCH) !== 0;
    const pinProtected = (property & Property.PIN_ENCRYPT) !== 0;

    if (touch && !pinProtected && !(await context.requestTouch())) return sw(Sw.SECURITY_STATUS);
    if (this.store.credentials.length >= CAPABILITIES.maxCredentials) return sw(Sw.NO_SPACE);
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
    if (newId !== undefined && (newId.length === 0 || newId.length > CAPABILITIES.maxIdBytes)) return sw(Sw.WRONG_DATA);
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

  /** The NK3 answers 61FF whatever is left. */
  protected moreDataSw(): number {
    return 0x61ff;
  }

  /** Sends `data` whole: the Nitrokey 3 has no 256-byte answer limit (LIST chunks itself). */
  private respond(data: Buffer): Uint8Array {
    return this.sendChunks([data]);
  }
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
