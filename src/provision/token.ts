/**
 * What a programming run puts on a key: the token parameters, the seed (generated or given),
 * the serial (generated: unique within the run and the ledger), and the checks that refuse a
 * token before anything is written anywhere. Pure apart from the random source.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { KeytapError } from '../errors.js';
import type { CredentialWithSecret, HashAlgorithm } from '../otp/credential.js';
import { DEFAULT_PERIOD, normalizeCredential } from '../otp/credential.js';
import { parseSecret } from '../otp/encoding.js';
import type { SeedFormat, SeedToken } from '../seeds/index.js';

/** RFC 4226 §4 R6: the shared secret MUST be at least 128 bits. */
export const MIN_SECRET_BYTES = 16;

/** Generated seed lengths: the hash's output size (RFC 4226 recommends 160 bits for SHA-1; RFC 6238's reference seeds match the hash). */
export const GENERATED_SECRET_BYTES: Readonly<Record<HashAlgorithm, number>> = { SHA1: 20, SHA256: 32, SHA512: 64 };

/** Everything about a token except its seed and serial, plus what only the key needs. */
export type TokenParameters = Omit<SeedToken, 'serial' | 'secret'> & {
  /** Every code needs a touch of the key. */
  touch: boolean;
};

export const DEFAULT_PARAMETERS: TokenParameters = {
  type: 'TOTP',
  algorithm: 'SHA1',
  digits: 6,
  period: DEFAULT_PERIOD,
  counter: 0,
  touch: false,
};

/** A token about to be programmed: the seed-file token plus whether the key asks for a touch. */
export interface ProvisionToken extends SeedToken {
  touch: boolean;
}

export type RandomSource = (length: number) => Uint8Array;

export function generateSecret(algorithm: HashAlgorithm, random: RandomSource = randomBytes): Uint8Array {
  return Uint8Array.from(random(GENERATED_SECRET_BYTES[algorithm]));
}

/** A secret as given on the command line (`BASE32` or `hex:…`); shorter than 16 bytes only when allowed. */
export function parseGivenSecret(text: string, options: { allowShort?: boolean | undefined } = {}): Uint8Array {
  const secret = parseSecret(text.trim());
  checkSecretLength(secret, options);
  return secret;
}

export function checkSecretLength(secret: Uint8Array, options: { allowShort?: boolean | undefined } = {}): void {
  if (secret.length < MIN_SECRET_BYTES && !options.allowShort) {
    throw new KeytapError('BAD_INPUT', `The secret is ${secret.length} bytes; RFC 4226 requires at least ${MIN_SECRET_BYTES} bytes (128 bits).`, {
      detail: { kind: 'short-secret', bytes: secret.length, minimum: MIN_SECRET_BYTES },
    });
  }
}

/** Serial characters that survive every seed format, spreadsheet and label printer. */
const SERIAL_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/u;
export const DEFAULT_SERIAL_PREFIX = 'KT';
const SERIAL_DIGITS = 8;

export function checkSerial(serial: string): void {
  if (!SERIAL_PATTERN.test(serial)) {
    throw new KeytapError('BAD_INPUT', `The serial "${serial.slice(0, 40)}" is not usable: use 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit.`);
  }
}

/**
 * Serials for one run: generated ones are `PREFIX` + 8 random digits (a prefix with a letter
 * keeps spreadsheets from turning them into numbers and dropping leading zeros), never one the
 * ledger or this run already has.
 */
export class SerialAllocator {
  private readonly taken: Set<string>;

  constructor(
    taken: Iterable<string>,
    private readonly prefix: string = DEFAULT_SERIAL_PREFIX,
    private readonly randomDigit: () => number = () => randomInt(10),
  ) {
    this.taken = new Set(taken);
    if (prefix !== '') checkSerial(prefix);
  }

  has(serial: string): boolean {
    return this.taken.has(serial);
  }

  /**
   * A new serial, remembered as taken: the prefix and 8 digits, or as many digits as make
   * `length` characters in all (a Feitian HOTP key takes serials of exactly 8).
   */
  next(length?: number): string {
    const count = length === undefined ? SERIAL_DIGITS : length - this.prefix.length;
    if (count < 1) {
      throw new KeytapError('BAD_INPUT', `The serial prefix "${this.prefix}" leaves no room for digits in a serial of ${length} characters.`, {
        detail: { kind: 'serials-exhausted', prefix: this.prefix },
      });
    }
    for (let attempt = 0; attempt < 1000; attempt++) {
      let digits = '';
      for (let i = 0; i < count; i++) digits += String(this.randomDigit());
      const serial = `${this.prefix}${digits}`;
      if (!this.taken.has(serial)) {
        this.taken.add(serial);
        return serial;
      }
    }
    throw new KeytapError('BAD_INPUT', `No free serial with the prefix "${this.prefix}" after 1000 attempts.`, { detail: { kind: 'serials-exhausted', prefix: this.prefix } });
  }

  /**
   * A new serial of `length` decimal digits and no prefix, remembered as taken: what a Feitian
   * HOTP key expects (hyperhotp's man page: an "8 digit decimal serial").
   */
  nextDecimal(length: number): string {
    for (let attempt = 0; attempt < 1000; attempt++) {
      let serial = '';
      for (let i = 0; i < length; i++) serial += String(this.randomDigit());
      if (!this.taken.has(serial)) {
        this.taken.add(serial);
        return serial;
      }
    }
    throw new KeytapError('BAD_INPUT', `No free serial of ${length} digits after 1000 attempts.`, { detail: { kind: 'serials-exhausted', prefix: '' } });
  }

  /** Takes a given serial; EXISTS when the ledger or this run has it. */
  claim(serial: string): void {
    checkSerial(serial);
    if (this.taken.has(serial)) {
      throw new KeytapError('EXISTS', `The serial ${serial} is already in the ledger.`, { detail: { kind: 'serial-taken', serial } });
    }
    this.taken.add(serial);
  }
}

/** The token for one key. The name on the key defaults to the UPN, else the serial. */
export function buildToken(parameters: TokenParameters, secret: Uint8Array, serial: string): ProvisionToken {
  return {
    serial,
    secret,
    type: parameters.type,
    algorithm: parameters.algorithm,
    digits: parameters.digits,
    period: parameters.type === 'TOTP' ? parameters.period : DEFAULT_PERIOD,
    counter: parameters.type === 'HOTP' ? parameters.counter : 0,
    upn: parameters.upn || undefined,
    issuer: parameters.issuer || undefined,
    account: parameters.account || parameters.upn || serial,
    manufacturer: parameters.manufacturer || undefined,
    model: parameters.model || undefined,
    touch: parameters.touch,
    ...(parameters.displayName ? { displayName: parameters.displayName } : {}),
  };
}

/** The credential written to the key for a token. */
export function credentialFor(token: ProvisionToken): CredentialWithSecret {
  return normalizeCredential({
    issuer: token.issuer,
    account: token.account ?? token.serial,
    type: token.type,
    algorithm: token.algorithm,
    digits: token.digits,
    period: token.period,
    counter: token.type === 'HOTP' ? token.counter : undefined,
    touch: token.touch,
    secret: token.secret,
  });
}

/**
 * The token as the seed files carry it after programming: verification reads one code, so an HOTP
 * token's counter there is one past the one programmed.
 */
export function exportedToken(token: SeedToken): SeedToken {
  return token.type === 'HOTP' ? { ...token, counter: token.counter + 1 } : token;
}

/** Each format that cannot carry the token as it will be exported, with the reason. */
export function formatsRefusing(token: SeedToken, formats: readonly SeedFormat[]): Array<{ format: SeedFormat; reason: string }> {
  const exported = exportedToken(token);
  const refusals: Array<{ format: SeedFormat; reason: string }> = [];
  for (const format of formats) {
    const reason = format.accepts(exported);
    if (reason !== null) refusals.push({ format, reason });
  }
  return refusals;
}

/** The formats that refuse `token` only for want of a user (Entra ID gives every token to one). */
export function formatsNeedingUser(token: SeedToken, formats: readonly SeedFormat[]): SeedFormat[] {
  const withUser = { ...token, upn: 'user@example.com' };
  return formatsRefusing(token, formats)
    .map((r) => r.format)
    .filter((format) => formatsRefusing(withUser, [format]).length === 0);
}

/**
 * The refusals that need no key: parameters outside what the programmer offers, a short secret,
 * and every requested export format that cannot carry the token (Entra: TOTP, SHA-1, 6 digits,
 * 30/60 s; DualShield: an HOTP counter of at most 1 after verification). Throws BAD_INPUT naming
 * each refusing format with its reason.
 */
export function checkTokenForRun(token: ProvisionToken, formats: readonly SeedFormat[], options: { allowShortSecret?: boolean | undefined } = {}): void {
  if (token.digits !== 6 && token.digits !== 8) throw new KeytapError('BAD_INPUT', `Codes of ${token.digits} digits: keytap programs 6 or 8.`);
  checkSecretLength(token.secret, { allowShort: options.allowShortSecret });
  // Validates the name on the key (length, ":" in the issuer) before anything is sent.
  credentialFor(token);
  const refusals = formatsRefusing(token, formats);
  const [first, ...others] = refusals;
  if (first) {
    const more = others.map((r) => ` The ${r.format.title} export cannot take it either: ${r.reason}.`).join('');
    throw new KeytapError('BAD_INPUT', `The ${first.format.title} export cannot take token ${token.serial}: ${first.reason}.${more}`, {
      detail: {
        kind: 'format-cannot-carry',
        format: refusals.map((r) => r.format.name).join(','),
        reason: first.reason,
        // A user would satisfy every refusing format: the fix is to give one, not to drop the format.
        needsUser: formatsNeedingUser(token, formats).length === refusals.length,
      },
    });
  }
}
