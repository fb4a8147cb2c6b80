/**
 * One YKOATH session over any ApduTransport: the YubiKey OATH applet and the Nitrokey 3 Secrets
 * App, whose differences are decided once from the SELECT answer (dialect.ts).
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { KeytapError, isKeytapError, throwIfAborted } from '../../errors.js';
import type { CredentialWithSecret, HashAlgorithm, OathType } from '../../otp/credential.js';
import { DEFAULT_PERIOD, MAX_KEY_COUNTER, formatCredentialId, normalizeCredential, parseCredentialId } from '../../otp/credential.js';
import { counterBytes, dynamicTruncate, formatCode, maskTruncated, validityWindow } from '../../otp/hotp.js';
import { INS_READ_CONFIG, MANAGEMENT_AID, formatSerial, parseDeviceInfo, serialOfDeviceInfo } from '../management.js';
import { oathDeviceId, oathIdentity } from './identity.js';
import type { ApduTransport } from '../transport/types.js';
import { encodeApdu } from '../transport/types.js';
import {
  ACCESS_KEY_ITERATIONS,
  ACCESS_KEY_LENGTH,
  ALGORITHM_MASK,
  AlgorithmByte,
  HASH_BLOCK_SIZE,
  HMAC_MINIMUM_KEY_SIZE,
  Ins,
  ListProperty,
  NODE_HASH,
  OATH_AID,
  OathTypeByte,
  Property,
  Sw,
  Tag,
  TYPE_MASK,
  algorithmOfByte,
} from './constants.js';
import type { Dialect, DialectCapabilities } from './dialect.js';
import { capabilitiesOf, detectDialect } from './dialect.js';
import type { OathOperation, StatusContext } from './status.js';
import { statusError } from './status.js';
import type { Tlv } from './tlv.js';
import { concatBytes, encodeTlv, findTlv, malformedAnswer, parseTlvs } from './tlv.js';

/** A credential as a key reports it. What the key does not tell is left undefined. */
export interface KeyCredential {
  /** The id stored on the key: `[period/][issuer:]account`. */
  id: string;
  issuer?: string | undefined;
  account: string;
  type: OathType;
  algorithm: HashAlgorithm;
  period: number;
  /** Unknown on a Nitrokey 3 until a code was read (LIST does not say). */
  digits?: number | undefined;
  /** Unknown for HOTP on a YubiKey (CALCULATE ALL does not say), and when the key is locked. */
  touch?: boolean | undefined;
  /** Nitrokey 3: encrypted with the PIN-derived key. */
  pinProtected?: boolean | undefined;
}

export interface OathCode {
  /** The digits to type. */
  code: string;
  digits: number;
  /** TOTP validity window in seconds since the epoch; undefined for HOTP. */
  validFrom?: number | undefined;
  validTo?: number | undefined;
}

export interface TouchAwareOptions {
  signal?: AbortSignal | undefined;
  /** Called once, when the key waits (or may wait) for a touch. */
  onTouchNeeded?: (() => void) | undefined;
}

export interface CalculateOptions extends TouchAwareOptions {
  /** Seconds since the epoch; now by default. */
  time?: number | undefined;
  /** Nitrokey 3: the PIN for a PIN-protected credential, verified right before CALCULATE (its touch is the PIN's). */
  pin?: string | undefined;
}

export interface PutOptions extends TouchAwareOptions {
  /** Replace an account of the same name instead of refusing. */
  replace?: boolean | undefined;
}

/** For HOTP, or when it is not known whether a credential needs touch: prompt after this long without an answer. */
export const TOUCH_PROMPT_DELAY_MS = 500;
/** Deadline for commands that never wait for a touch. */
const QUICK_TIMEOUT_MS = 10_000;

interface SendOptions {
  operation: OathOperation;
  status?: StatusContext;
  signal?: AbortSignal | undefined;
  /** Undefined: the transport's own (touch-length) deadline. */
  timeoutMs?: number | undefined;
  onTouchNeeded?: (() => void) | undefined;
}

export class OathSession {
  readonly transport: ApduTransport;
  private selectTlvs: Tlv[] = [];
  private dialectValue: Dialect = 'yubikey';
  private lockedValue = false;
  /** What DEVICE INFO said, once `readSerial()` read it. */
  private deviceSerial: Uint8Array | undefined;

  private constructor(transport: ApduTransport) {
    this.transport = transport;
  }

  /** SELECTs the OATH application. Fails with NO_KEY when the key has none. */
  static async open(transport: ApduTransport, options: { signal?: AbortSignal } = {}): Promise<OathSession> {
    const session = new OathSession(transport);
    await session.select(options.signal);
    return session;
  }

  get dialect(): Dialect {
    return this.dialectValue;
  }

  get capabilities(): DialectCapabilities {
    return capabilitiesOf(this.dialectValue);
  }

  /** Applet version, e.g. "5.4.3"; the Nitrokey 3 reports 4.<secrets-app version>. */
  get version(): string {
    const v = findTlv(this.selectTlvs, Tag.VERSION);
    return v && v.length >= 3 ? `${v[0]}.${v[1]}.${v[2]}` : 'unknown';
  }

  /**
   * The key's serial as keytap shows it (management.ts `formatSerial`), where it is known: the
   * Nitrokey 3 tells it in SELECT (tag 8F); a YubiKey only after `readSerial()`.
   */
  get serial(): string | undefined {
    const s = findTlv(this.selectTlvs, Tag.SERIAL);
    if (s && s.length > 0) return formatSerial('nitrokey3', s);
    return this.deviceSerial && formatSerial(this.dialectValue, this.deviceSerial);
  }

  /**
   * Reads the serial of a YubiKey where ykman reads it (yubikit/support.py `_read_info_ccid`): the
   * Management application's DEVICE INFO. That means SELECTing away from OATH and back, and the
   * new SELECT locks a password-protected applet again, so call it before `unlock()`. A key
   * without that application (or a Nitrokey 3, whose SELECT told already) is left as it is.
   */
  async readSerial(signal?: AbortSignal): Promise<string | undefined> {
    if (this.serial !== undefined || this.dialectValue !== 'yubikey') return this.serial;
    const options = { signal, timeoutMs: QUICK_TIMEOUT_MS };
    try {
      const selected = await this.transport.transmit(encodeApdu(0x00, Ins.SELECT, 0x04, 0x00, MANAGEMENT_AID), options);
      if (selected.sw !== Sw.OK) return undefined;
      const info = await this.transport.transmit(encodeApdu(0x00, INS_READ_CONFIG, 0x00, 0x00), options);
      const tlvs = info.sw === Sw.OK ? parseDeviceInfo(info.data) : undefined;
      this.deviceSerial = tlvs && serialOfDeviceInfo(tlvs);
    } catch (error) {
      // A DEVICE INFO that does not parse is no serial; the key is still usable for OATH.
      if (!isKeytapError(error, 'PROTOCOL')) throw error;
    } finally {
      await this.select(signal);
    }
    return this.serial;
  }

  /** The applet's salt (tag 71); it changes on RESET. */
  get salt(): Uint8Array | undefined {
    return findTlv(this.selectTlvs, Tag.NAME);
  }

  /** yubikit's device id: Base64 of the first 16 bytes of SHA-256(salt), unpadded. */
  get deviceId(): string | undefined {
    const salt = this.salt;
    return salt ? oathDeviceId(salt) : undefined;
  }

  /** Which physical key this is, the same over each of its interfaces (identity.ts). */
  get identity(): string | undefined {
    return oathIdentity(this.selectTlvs);
  }

  /** A YKOATH password is set and VALIDATE has not been done since the last SELECT. */
  get locked(): boolean {
    return this.lockedValue;
  }

  /** Nitrokey 3: PIN attempts left, where a PIN is set. */
  get pinAttemptsLeft(): number | undefined {
    return findTlv(this.selectTlvs, Tag.PIN_COUNTER)?.[0];
  }

  async select(signal?: AbortSignal): Promise<void> {
    const answer = await this.send(encodeApdu(0x00, Ins.SELECT, 0x04, 0x00, OATH_AID), {
      operation: 'select',
      signal,
      timeoutMs: QUICK_TIMEOUT_MS,
    });
    const tlvs = parseTlvs(answer);
    if (!findTlv(tlvs, Tag.VERSION)) throw malformedAnswer('the SELECT answer has no version');
    this.selectTlvs = tlvs;
    this.dialectValue = detectDialect(tlvs);
    this.lockedValue = findTlv(tlvs, Tag.CHALLENGE) !== undefined;
  }

  /** Unlocks a password-protected YubiKey applet (VALIDATE, with the key's answer checked too). */
  async unlock(password: string, signal?: AbortSignal): Promise<void> {
    if (!this.lockedValue) return;
    const key = this.deriveAccessKey(password);
    try {
      await this.unlockWithAccessKey(key, signal);
    } finally {
      key.fill(0);
    }
  }

  /**
   * Unlocks with the 16-byte access key itself (what `deriveAccessKey` makes of the password, and
   * what a keyring remembers instead of the password). A wrong key is WRONG_PASSWORD.
   */
  async unlockWithAccessKey(key: Uint8Array, signal?: AbortSignal): Promise<void> {
    if (!this.lockedValue) return;
    if (key.length !== ACCESS_KEY_LENGTH) throw new KeytapError('BAD_INPUT', `An access key is ${ACCESS_KEY_LENGTH} bytes long.`, { detail: { kind: 'wrong-password' } });
    const challenge = findTlv(this.selectTlvs, Tag.CHALLENGE)!;
    const hostChallenge = randomBytes(8);
    let answer: Uint8Array;
    try {
      answer = await this.send(
        encodeApdu(0x00, Ins.VALIDATE, 0x00, 0x00, concatBytes(encodeTlv(Tag.RESPONSE, hmacSha1(key, challenge)), encodeTlv(Tag.CHALLENGE, hostChallenge))),
        { operation: 'validate', signal, timeoutMs: QUICK_TIMEOUT_MS },
      );
    } catch (error) {
      // The challenge is spent: a new SELECT gives a fresh one for the next try.
      if (isKeytapError(error, 'WRONG_PASSWORD')) await this.select(signal);
      throw error;
    }
    const response = findTlv(parseTlvs(answer), Tag.RESPONSE);
    const expected = hmacSha1(key, hostChallenge);
    if (!response || response.length !== expected.length || !timingSafeEqual(response, expected)) {
      throw new KeytapError('PROTOCOL', 'The key accepted the password but did not prove that it knows it.', {
        hint: 'This may not be the key it claims to be. Do not trust it with secrets.',
      });
    }
    this.lockedValue = false;
  }

  /**
   * The access key of `password` on this key: PBKDF2-HMAC-SHA1 over the applet's salt, 1000
   * rounds, 16 bytes (docs/protocols.md §1.11). The caller should wipe it when done.
   */
  deriveAccessKey(password: string): Buffer {
    const salt = this.salt;
    if (!salt) throw malformedAnswer('the SELECT answer has no salt');
    const passwordBytes = Buffer.from(password, 'utf8');
    try {
      return pbkdf2Sync(passwordBytes, salt, ACCESS_KEY_ITERATIONS, ACCESS_KEY_LENGTH, 'sha1');
    } finally {
      passwordBytes.fill(0);
    }
  }

  /** Nitrokey 3: a PIN is set (SELECT carries its attempt counter), so PIN-protected accounts may exist. */
  get pinSet(): boolean {
    return this.dialectValue === 'nitrokey3' && this.pinAttemptsLeft !== undefined;
  }

  /**
   * Nitrokey 3 VERIFY PIN. It asks for a touch first (docs/protocols.md §2.7), and what it
   * authorizes lasts for the next command only, so callers send it right before that command
   * (`list` and `calculate` take the PIN and do). A wrong PIN is WRONG_PASSWORD with the attempts left
   * (detail wrong-pin, from a new SELECT); a blocked one AUTH_REQUIRED (detail pin-blocked).
   */
  async verifyPin(pin: string, options: TouchAwareOptions = {}): Promise<void> {
    if (!this.pinSet) throw new KeytapError('UNSUPPORTED', 'This key has no PIN set.', { detail: { kind: 'no-pin' } });
    if (this.pinAttemptsLeft === 0) throw pinBlockedError();
    const prompt = new TouchPrompt(options.onTouchNeeded);
    prompt.fire();
    const pinBytes = Buffer.from(pin, 'utf8');
    const apdu = encodeApdu(0x00, Ins.VERIFY_PIN, 0x00, 0x00, encodeTlv(Tag.PIN, pinBytes));
    try {
      const response = await this.transport.transmit(apdu, { signal: options.signal, onTouchNeeded: () => prompt.fire() });
      if (response.sw === Sw.OK) return;
      if (response.sw === Sw.VERIFICATION_FAILED || response.sw === Sw.EXEC_ERROR_NONPERSISTENT) {
        await this.select(options.signal);
        const left = this.pinAttemptsLeft ?? 0;
        if (left === 0) throw pinBlockedError();
        throw new KeytapError('WRONG_PASSWORD', `The PIN is wrong (${left} attempt${left === 1 ? '' : 's'} left).`, { detail: { kind: 'wrong-pin', attemptsLeft: left } });
      }
      throw statusError(response.sw, 'verify-pin', { unlocked: true, mayNeedTouch: true });
    } finally {
      pinBytes.fill(0);
      apdu.fill(0);
      prompt.cancel();
    }
  }

  /** Sets (or with undefined, removes) the YKOATH password. Refused on the Nitrokey 3, whose applet would only pretend. */
  async setPassword(password: string | undefined, signal?: AbortSignal): Promise<void> {
    if (!this.capabilities.password) {
      throw new KeytapError('UNSUPPORTED', `${this.capabilities.name} has no YKOATH password.`, {
        hint: 'Protect the accounts with the Nitrokey PIN instead (nitropy nk3 secrets).',
      });
    }
    this.assertUnlocked('setting the password');
    let data: Uint8Array;
    if (password === undefined) {
      data = encodeTlv(Tag.KEY);
    } else {
      if (password.length === 0) throw new KeytapError('BAD_INPUT', 'The password must not be empty.');
      const key = this.deriveAccessKey(password);
      const challenge = randomBytes(8);
      const keyValue = concatBytes(Uint8Array.of(OathTypeByte.TOTP | AlgorithmByte.SHA1), key);
      const keyTlv = encodeTlv(Tag.KEY, keyValue);
      data = concatBytes(keyTlv, encodeTlv(Tag.CHALLENGE, challenge), encodeTlv(Tag.RESPONSE, hmacSha1(key, challenge)));
      // Every copy of the new access key but the one in `data`, wiped after the send.
      for (const copy of [key, keyValue, keyTlv]) copy.fill(0);
    }
    const apdu = encodeApdu(0x00, Ins.SET_CODE, 0x00, 0x00, data);
    try {
      await this.send(apdu, { operation: 'set-code', signal, timeoutMs: QUICK_TIMEOUT_MS });
    } finally {
      data.fill(0);
      apdu.fill(0);
    }
  }

  /** The credentials on the key, with what the key tells about digits and touch. */
  async list(signal?: AbortSignal): Promise<KeyCredential[]> {
    return (await this.listWithCodes(Date.now() / 1000, signal)).credentials;
  }

  /**
   * Nitrokey 3: every credential, PIN-protected ones included: VERIFY PIN (a touch) right before
   * LIST. Without a PIN set, the same as `list`.
   */
  async listWithPin(pin: string, options: TouchAwareOptions = {}): Promise<KeyCredential[]> {
    if (!this.pinSet) return this.list(options.signal);
    await this.verifyPin(pin, options);
    return this.listV1(options.signal);
  }

  /**
   * LIST, and on keys that have it CALCULATE ALL: LIST says nothing about digits or touch, CALCULATE
   * ALL does, and computes the 30-second TOTP codes on the way without using up any HOTP counter.
   */
  private async listWithCodes(time: number, signal?: AbortSignal): Promise<{ credentials: KeyCredential[]; values: Map<string, number> }> {
    this.assertUnlocked('listing the accounts');
    const values = new Map<string, number>();
    if (this.capabilities.listV1) return { credentials: await this.listV1(signal), values };
    const answer = await this.send(encodeApdu(0x00, Ins.LIST, 0x00, 0x00), { operation: 'list', signal, timeoutMs: QUICK_TIMEOUT_MS });
    const credentials = parseTlvs(answer)
      .filter((t) => t.tag === Tag.NAME_LIST)
      .map((t) => parseListEntry(t.value, false))
      .filter((c): c is KeyCredential => c !== undefined);
    if (this.capabilities.calculateAll && credentials.length > 0) {
      const details = await this.calculateAllRaw(time, signal);
      for (const credential of credentials) {
        const detail = details.get(credential.id);
        if (!detail) continue;
        credential.digits = detail.digits;
        if (credential.type === 'TOTP') credential.touch = detail.touch;
        if (detail.value !== undefined && credential.type === 'TOTP' && credential.period === DEFAULT_PERIOD) values.set(credential.id, detail.value);
      }
    }
    return { credentials, values };
  }

  private async listV1(signal?: AbortSignal): Promise<KeyCredential[]> {
    const answer = await this.send(encodeApdu(0x00, Ins.LIST, 0x00, 0x00, Uint8Array.of(0x01)), {
      operation: 'list',
      signal,
      timeoutMs: QUICK_TIMEOUT_MS,
    });
    return parseTlvs(answer)
      .filter((t) => t.tag === Tag.NAME_LIST)
      .map((t) => parseListEntry(t.value, true))
      .filter((c): c is KeyCredential => c !== undefined);
  }

  /**
   * The credentials, and the codes CALCULATE ALL computed on the way (30-second TOTP credentials
   * that need no touch, on keys that have CALCULATE ALL), for `time`; nothing else is sent. So
   * `keytap code` reads such an account with SELECT, LIST and CALCULATE ALL alone.
   */
  async listWithReadyCodes(options: { time?: number; signal?: AbortSignal } = {}): Promise<{ credentials: KeyCredential[]; codes: Map<string, OathCode> }> {
    const time = options.time ?? Date.now() / 1000;
    const { credentials, values } = await this.listWithCodes(time, options.signal);
    const codes = new Map<string, OathCode>();
    for (const credential of credentials) {
      const value = values.get(credential.id);
      if (value !== undefined && credential.digits !== undefined) {
        codes.set(credential.id, { code: formatCode(value, credential.digits), digits: credential.digits, ...validityWindow(time, credential.period) });
      }
    }
    return { credentials, codes };
  }

  /**
   * Codes of every TOTP credential that needs no touch, computed for `time`; HOTP and touch
   * credentials are listed without a code. Keys without CALCULATE ALL (Nitrokey 3) fall back to
   * LIST and one CALCULATE per TOTP credential that needs no touch.
   */
  async calculateAll(options: { time?: number; signal?: AbortSignal } = {}): Promise<Array<{ credential: KeyCredential; code?: OathCode }>> {
    const time = options.time ?? Date.now() / 1000;
    const { credentials, codes } = await this.listWithReadyCodes({ time, signal: options.signal });
    const result: Array<{ credential: KeyCredential; code?: OathCode }> = [];
    for (const credential of credentials) {
      const ready = codes.get(credential.id);
      if (ready) {
        result.push({ credential, code: ready });
      } else if (credential.type === 'TOTP' && credential.touch === false && credential.pinProtected !== true) {
        // Periods other than 30 s came back computed with the wrong challenge, as yubikit notes; ask again.
        result.push({ credential, code: await this.calculate(credential, { time, signal: options.signal }) });
      } else {
        result.push({ credential });
      }
    }
    return result;
  }

  /** CALCULATE ALL with the 30-second challenge: digits, touch and codes by credential id. */
  private async calculateAllRaw(time: number, signal?: AbortSignal): Promise<Map<string, { digits: number; touch: boolean; value?: number }>> {
    const challenge = counterBytes(Math.floor(time / DEFAULT_PERIOD));
    const answer = await this.send(encodeApdu(0x00, Ins.CALCULATE_ALL, 0x00, 0x01, encodeTlv(Tag.CHALLENGE, challenge)), {
      operation: 'calculate-all',
      signal,
      timeoutMs: QUICK_TIMEOUT_MS,
    });
    const tlvs = parseTlvs(answer);
    const out = new Map<string, { digits: number; touch: boolean; value?: number }>();
    for (let i = 0; i + 1 < tlvs.length; i += 2) {
      const name = tlvs[i]!;
      const body = tlvs[i + 1]!;
      if (name.tag !== Tag.NAME || body.value.length < 1) throw malformedAnswer('CALCULATE ALL entries are out of order');
      const id = Buffer.from(name.value).toString('utf8');
      const digits = body.value[0]!;
      if (body.tag === Tag.TRUNCATED && body.value.length === 5) out.set(id, { digits, touch: false, value: maskTruncated(body.value.subarray(1)) });
      else if (body.tag === Tag.RESPONSE) out.set(id, { digits, touch: false, value: dynamicTruncate(body.value.subarray(1)) });
      else if (body.tag === Tag.TOUCH) out.set(id, { digits, touch: true });
      else if (body.tag === Tag.HOTP) out.set(id, { digits, touch: false });
      else throw malformedAnswer(`CALCULATE ALL has an entry with tag 0x${body.tag.toString(16)}`);
    }
    return out;
  }

  /**
   * Reads one code. Prompts for touch before sending when the credential is known to need it;
   * for HOTP or when that is unknown, after 500 ms without an answer (or at once when the
   * transport reports that the key waits for a touch).
   */
  async calculate(credential: KeyCredential, options: CalculateOptions = {}): Promise<OathCode> {
    this.assertUnlocked('reading a code');
    const time = options.time ?? Date.now() / 1000;
    const challenge = credential.type === 'TOTP' ? counterBytes(Math.floor(time / credential.period)) : new Uint8Array();
    const data = concatBytes(encodeTlv(Tag.NAME, utf8(credential.id)), encodeTlv(Tag.CHALLENGE, challenge));
    if (credential.pinProtected === true) {
      if (options.pin === undefined) throw new KeytapError('AUTH_REQUIRED', `"${credential.id}" is protected by the key's PIN.`, { detail: { kind: 'pin-required' } });
      await this.verifyPin(options.pin, options);
    }
    const prompt = new TouchPrompt(options.onTouchNeeded);
    if (credential.pinProtected === true) {
      // VERIFY PIN took the touch.
    } else if (credential.touch === true) prompt.fire();
    else if (credential.touch === undefined || credential.type === 'HOTP') prompt.fireAfter(TOUCH_PROMPT_DELAY_MS);
    let answer: Uint8Array;
    try {
      answer = await this.send(encodeApdu(0x00, Ins.CALCULATE, 0x00, 0x01, data), {
        operation: 'calculate',
        signal: options.signal,
        onTouchNeeded: () => prompt.fire(),
        status: { credentialId: credential.id, unlocked: !this.lockedValue, mayNeedTouch: credential.touch !== false },
      });
    } finally {
      prompt.cancel();
    }
    const value = findTlv(parseTlvs(answer), Tag.TRUNCATED);
    if (!value || value.length !== 5) throw malformedAnswer('the CALCULATE answer has no truncated code');
    const digits = value[0]!;
    if (digits < 6 || digits > 10) throw malformedAnswer(`the code has ${digits} digits`);
    const code = formatCode(maskTruncated(value.subarray(1)), digits);
    if (credential.type === 'HOTP') return { code, digits };
    return { code, digits, ...validityWindow(time, credential.period) };
  }

  /**
   * Stores a credential. Refuses, before anything is written, what the key cannot hold. An
   * existing account of the same name is an error unless `replace` is set.
   */
  async put(input: CredentialWithSecret, options: PutOptions = {}): Promise<KeyCredential> {
    this.assertUnlocked('storing an account');
    const credential = normalizeCredential(input);
    const caps = this.capabilities;
    if (!caps.algorithms.includes(credential.algorithm)) {
      throw new KeytapError('UNSUPPORTED', `${caps.name} cannot compute ${credential.algorithm} codes.`, {
        hint: `Use ${caps.algorithms.join(' or ')} on this key.`,
      });
    }
    if (credential.secret.length === 0) throw new KeytapError('BAD_INPUT', 'The secret is empty.');
    // The IMF tag holds 4 bytes; setUint32 below would silently wrap a larger counter.
    if (credential.type === 'HOTP' && (credential.counter ?? 0) > MAX_KEY_COUNTER) {
      throw new KeytapError('BAD_INPUT', `The HOTP counter ${credential.counter} is above ${MAX_KEY_COUNTER}, the largest a key keeps.`);
    }
    const id = formatCredentialId(credential);
    const existing = (await this.list(options.signal)).find((c) => c.id === id);
    if (existing && !options.replace) {
      throw new KeytapError('EXISTS', `The key already has an account "${id}".`, { detail: { kind: 'exists', id } });
    }
    if (existing && !caps.putOverwrites) await this.delete(id, options);

    const key = prepareKey(credential.secret, credential.algorithm);
    const parts = [
      encodeTlv(Tag.NAME, utf8(id)),
      encodeTlv(Tag.KEY, concatBytes(Uint8Array.of(OathTypeByte[credential.type] | AlgorithmByte[credential.algorithm], credential.digits), key)),
    ];
    // The property is tag + value with no length byte (docs/protocols.md §1.7).
    if (credential.touch) parts.push(Uint8Array.of(Tag.PROPERTY, Property.REQUIRE_TOUCH));
    if (credential.type === 'HOTP' && (credential.counter ?? 0) > 0) {
      const imf = new Uint8Array(4);
      new DataView(imf.buffer).setUint32(0, credential.counter!);
      parts.push(encodeTlv(Tag.IMF, imf));
    }
    const data = concatBytes(...parts);
    key.fill(0);
    const prompt = new TouchPrompt(options.onTouchNeeded);
    // The Nitrokey 3 confirms storing a touch credential with a touch.
    if (credential.touch && !caps.putOverwrites) prompt.fire();
    try {
      await this.send(encodeApdu(0x00, Ins.PUT, 0x00, 0x00, data), {
        operation: 'put',
        signal: options.signal,
        onTouchNeeded: () => prompt.fire(),
        status: { credentialId: id, unlocked: true, mayNeedTouch: credential.touch },
      });
    } finally {
      data.fill(0);
      prompt.cancel();
    }
    const { secret: _secret, counter: _counter, ...rest } = credential;
    return { ...rest, id };
  }

  async delete(id: string, options: TouchAwareOptions = {}): Promise<void> {
    this.assertUnlocked('deleting an account');
    const prompt = new TouchPrompt(options.onTouchNeeded);
    if (this.capabilities.deleteNeedsTouch) prompt.fire();
    try {
      await this.send(encodeApdu(0x00, Ins.DELETE, 0x00, 0x00, encodeTlv(Tag.NAME, utf8(id))), {
        operation: 'delete',
        signal: options.signal,
        onTouchNeeded: () => prompt.fire(),
        status: { credentialId: id, unlocked: true, mayNeedTouch: this.capabilities.deleteNeedsTouch },
      });
    } finally {
      prompt.cancel();
    }
  }

  /** Renames a credential, keeping its period prefix (as yubikit does). Returns the new id. */
  async rename(id: string, to: { issuer?: string | undefined; account: string }, type: OathType, options: TouchAwareOptions = {}): Promise<string> {
    this.assertUnlocked('renaming an account');
    const { period } = parseCredentialId(id, type);
    const newId = formatCredentialId({ issuer: to.issuer, account: to.account, period, type });
    const ins = this.capabilities.renameIns === 'rename' ? Ins.RENAME : Ins.UPDATE_CREDENTIAL;
    const prompt = new TouchPrompt(options.onTouchNeeded);
    if (ins === Ins.UPDATE_CREDENTIAL) prompt.fire();
    try {
      await this.send(encodeApdu(0x00, ins, 0x00, 0x00, concatBytes(encodeTlv(Tag.NAME, utf8(id)), encodeTlv(Tag.NAME, utf8(newId)))), {
        operation: 'rename',
        signal: options.signal,
        onTouchNeeded: () => prompt.fire(),
        status: { credentialId: id, unlocked: true },
      });
    } finally {
      prompt.cancel();
    }
    return newId;
  }

  /** Wipes every credential and the password; the applet gets a new salt. */
  async reset(options: TouchAwareOptions = {}): Promise<void> {
    const prompt = new TouchPrompt(options.onTouchNeeded);
    if (this.capabilities.resetNeedsTouch) prompt.fire();
    try {
      await this.send(encodeApdu(0x00, Ins.RESET, 0xde, 0xad), {
        operation: 'reset',
        signal: options.signal,
        onTouchNeeded: () => prompt.fire(),
        status: { unlocked: true, mayNeedTouch: this.capabilities.resetNeedsTouch },
      });
    } finally {
      prompt.cancel();
    }
    await this.select(options.signal);
  }

  /** Sends one command, follows SEND REMAINING chaining, and turns error SWs into KeytapErrors. */
  private async send(apdu: Uint8Array, options: SendOptions): Promise<Uint8Array> {
    throwIfAborted(options.signal);
    const started = Date.now();
    const transmitOptions = { signal: options.signal, timeoutMs: options.timeoutMs, onTouchNeeded: options.onTouchNeeded };
    let response = await this.transport.transmit(apdu, transmitOptions);
    const chunks: Uint8Array[] = [];
    // A key that keeps saying "more" forever would hang us; no OATH answer needs more than this.
    for (let rounds = 0; response.sw >> 8 === Sw.MORE_DATA_SW1; rounds++) {
      if (rounds > 256) throw malformedAnswer('the key kept sending "more data"');
      chunks.push(response.data);
      response = await this.transport.transmit(encodeApdu(0x00, Ins.SEND_REMAINING, 0x00, 0x00), { ...transmitOptions, timeoutMs: QUICK_TIMEOUT_MS });
    }
    if (response.sw !== Sw.OK) {
      throw statusError(response.sw, options.operation, { ...options.status, elapsedMs: Date.now() - started });
    }
    chunks.push(response.data);
    return chunks.length === 1 ? chunks[0]! : concatBytes(...chunks);
  }

  private assertUnlocked(doing: string): void {
    if (this.lockedValue) {
      throw new KeytapError('AUTH_REQUIRED', `The key's OATH application is password-protected; unlock it before ${doing}.`, { detail: { kind: 'locked' } });
    }
  }
}

/** Host-side key processing before PUT (docs/protocols.md §1.9): hash keys longer than the block, pad to 14 bytes. */
export function prepareKey(secret: Uint8Array, algorithm: HashAlgorithm): Uint8Array {
  let key = Uint8Array.from(secret);
  if (key.length > HASH_BLOCK_SIZE[algorithm]) key = Uint8Array.from(createHash(NODE_HASH[algorithm]).update(key).digest());
  if (key.length < HMAC_MINIMUM_KEY_SIZE) {
    const padded = new Uint8Array(HMAC_MINIMUM_KEY_SIZE);
    padded.set(key);
    key = padded;
  }
  return key;
}

function parseListEntry(value: Uint8Array, v1: boolean): KeyCredential | undefined {
  if (value.length < (v1 ? 2 : 1)) throw malformedAnswer('a LIST entry is empty');
  const kind = value[0]! & TYPE_MASK;
  const algorithmByte = value[0]! & ALGORITHM_MASK;
  const idBytes = v1 ? value.subarray(1, value.length - 1) : value.subarray(1);
  // Nitrokey kinds other than HOTP/TOTP (reverse HOTP, HMAC slots, password-safe entries) have no codes to read.
  const type: OathType | undefined = kind === OathTypeByte.TOTP ? 'TOTP' : kind === OathTypeByte.HOTP ? 'HOTP' : undefined;
  const algorithm = algorithmOfByte(algorithmByte);
  if (!type || !algorithm) return undefined;
  const id = Buffer.from(idBytes).toString('utf8');
  const { issuer, account, period } = parseCredentialId(id, type);
  const credential: KeyCredential = { id, issuer, account, type, algorithm, period };
  if (v1) {
    const properties = value[value.length - 1]!;
    credential.touch = (properties & ListProperty.TOUCH) !== 0;
    credential.pinProtected = (properties & ListProperty.PIN_ENCRYPTED) !== 0;
  }
  return credential;
}

/** Fires the touch callback at most once: now, after a delay, or when the transport says so. */
class TouchPrompt {
  private fired = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly callback: (() => void) | undefined) {}

  fire(): void {
    this.cancel();
    if (this.fired || !this.callback) return;
    this.fired = true;
    this.callback();
  }

  fireAfter(ms: number): void {
    if (!this.callback || this.fired) return;
    this.timer = setTimeout(() => this.fire(), ms);
  }

  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

function pinBlockedError(): KeytapError {
  return new KeytapError('AUTH_REQUIRED', "The key's PIN is blocked: no attempts are left.", { detail: { kind: 'pin-blocked' } });
}

function hmacSha1(key: Uint8Array, message: Uint8Array): Buffer {
  return createHmac('sha1', key).update(message).digest();
}

function utf8(text: string): Uint8Array {
  return Buffer.from(text, 'utf8');
}
