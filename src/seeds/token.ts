/**
 * The seed record every seed-file format reads and writes, the descriptor each format module
 * exports, and the checks they share. Pure: no I/O. Messages name serials, line numbers and
 * element paths, never a secret, a passphrase or a key.
 */
import { randomBytes } from 'node:crypto';
import type { ErrorDetail } from '../errors.js';
import { KeytapError } from '../errors.js';
import type { HashAlgorithm, OathType } from '../otp/credential.js';
import { DEFAULT_PERIOD, HASH_ALGORITHMS, MAX_COUNTER, MAX_DIGITS, MAX_PERIOD, MIN_DIGITS, OATH_TYPES } from '../otp/credential.js';
import { controlCharacterIn } from '../util/printable.js';

export type { HashAlgorithm, OathType } from '../otp/credential.js';

/** One token's seed and the parameters a seed file can carry. */
export interface SeedToken {
  /** The serial printed on the token (or generated); unique within a file. */
  serial: string;
  secret: Uint8Array;
  type: OathType;
  algorithm: HashAlgorithm;
  /** 6–8. */
  digits: number;
  /** TOTP step in seconds; 30 for HOTP (unused there). */
  period: number;
  /** Initial HOTP counter; 0 for TOTP (unused there). */
  counter: number;
  /** The user the token is for (Entra needs it). */
  upn?: string | undefined;
  /** The issuer of the credential on the key. */
  issuer?: string | undefined;
  /** The account name of the credential on the key. */
  account?: string | undefined;
  manufacturer?: string | undefined;
  model?: string | undefined;
  /**
   * The user's display name (a users file's column; the ledger keeps it). The Graph device's
   * `displayName` and the activation view show it; no seed file has a column for it.
   */
  displayName?: string | undefined;
  /**
   * PSKC: the Key's Id where it is not the serial. One device may hold several keys (RFC 6030
   * Figure 10), so the serial alone does not always name a token; serial and key id do.
   */
  keyId?: string | undefined;
}

export type SeedFormatName = 'entra' | 'pskc' | 'dualshield' | 'hexcsv' | 'privacyidea' | 'otpauth' | 'graph';

export const SEED_FORMAT_NAMES: readonly SeedFormatName[] = ['entra', 'pskc', 'dualshield', 'hexcsv', 'privacyidea', 'otpauth', 'graph'];

/** How a PSKC file protects its secrets (docs/seed-formats.md §2.4–§2.5). */
export type PskcProtection =
  | { kind: 'none' }
  /** AES-128-CBC with a pre-shared 16-byte key, HMAC-SHA1 MAC with a random MAC key. */
  | { kind: 'psk'; key: Uint8Array; keyName?: string }
  /** PBKDF2-HMAC-SHA1 from a passphrase (default 100,000 iterations, 16-byte random salt), then as for a PSK. */
  | { kind: 'passphrase'; passphrase: string; iterations?: number; salt?: Uint8Array; keyName?: string };

/**
 * The manufacturer and model the Entra ID CSV and Graph get for a token that has none: both
 * fields are required there, and no vendor's name would be true for every key.
 */
export const UNKNOWN_DEVICE_TEXT = 'Unknown';

export interface SeedWriteOptions {
  /** For formats that need a manufacturer (Entra CSV, Graph) when a token has none. Default "Unknown". */
  manufacturer?: string;
  /** For formats that need a model (Entra CSV, Graph) when a token has none. Default "Unknown". */
  model?: string;
  pskc?: PskcProtection;
  /** DualShield header codes; productCode defaults to ST (TOTP) / SE (HOTP), manufacturerCode to DN. */
  dualshield?: { manufacturerCode?: string; productCode?: string };
  /** Random bytes for IVs, MAC keys and salts; tests pass a seeded source. Default crypto.randomBytes. */
  randomBytes?: (length: number) => Uint8Array;
}

export interface SeedWarning {
  /** 1-based line of a text file, when the warning is about one. */
  line?: number;
  /** Element path in an XML or JSON file, when the warning is about one. */
  path?: string;
  message: string;
}

export interface SeedReadOptions {
  /** PSKC: the passphrase of a PBKDF2-protected file. */
  passphrase?: string;
  /** PSKC: the pre-shared key of a PSK-protected file. */
  key?: Uint8Array;
  /** PSKC: derive a passphrase key even when the file asks for more than PSKC_MAX_ITERATIONS PBKDF2 iterations. */
  allowSlowKdf?: boolean;
  /**
   * Entra CSV: how to read the secret column. Default: Base32, refusing what looks like hex or
   * Base64 with an error that says so; give 'hex' or 'base64' to read such a third-party file anyway.
   */
  secretEncoding?: 'base32' | 'hex' | 'base64';
  /** Things worth telling the user that do not stop the read. */
  onWarning?: (warning: SeedWarning) => void;
}

export interface SeedFormat {
  name: SeedFormatName;
  /** A short human name ("Entra ID CSV"). */
  title: string;
  /** The file name a programming run writes for tokens of this type. */
  defaultFileName(type: OathType): string;
  /** null when this format can carry the token, otherwise why not (no secret in it). */
  accepts(token: SeedToken): string | null;
  /** The whole file. Throws BAD_INPUT naming the first token it cannot carry, or a repeated serial. */
  write(tokens: readonly SeedToken[], options?: SeedWriteOptions): Buffer;
  /** Every token in the file. Throws BAD_INPUT naming the line or element and the problem. Never writes anything. */
  read(bytes: Uint8Array, options?: SeedReadOptions): SeedToken[];
}

export { MAX_COUNTER, MAX_PERIOD } from '../otp/credential.js';

/** BAD_INPUT about a seed file (or a value for one); `hint` is advice that holds for every caller, never a CLI option. */
export function badInput(message: string, hint?: string, detail: ErrorDetail = { kind: 'invalid-seed-file' }): KeytapError {
  return new KeytapError('BAD_INPUT', message, { hint, detail });
}

/** Serials are quoted in messages; keep them short and printable there. */
export function quoteSerial(serial: string): string {
  const shown = serial.length > 40 ? `${serial.slice(0, 40)}…` : serial;
  return JSON.stringify(shown);
}

/** What every format needs of a token. null when fine, otherwise the reason. */
export function checkToken(token: SeedToken): string | null {
  if (typeof token.serial !== 'string' || token.serial.length === 0) return 'the serial number is empty';
  if (controlCharacterIn(token.serial)) return 'the serial number contains a control character';
  if (token.serial.trim() !== token.serial) return 'the serial number starts or ends with white space';
  if (!(token.secret instanceof Uint8Array) || token.secret.length === 0) return 'the secret is empty';
  if (!OATH_TYPES.includes(token.type)) return `unknown OATH type "${String(token.type)}"`;
  if (!HASH_ALGORITHMS.includes(token.algorithm)) return `unknown hash algorithm "${String(token.algorithm)}"`;
  if (!Number.isInteger(token.digits) || token.digits < MIN_DIGITS || token.digits > MAX_DIGITS) {
    return `${String(token.digits)} digits; keys show ${MIN_DIGITS} to ${MAX_DIGITS}`;
  }
  if (token.type === 'TOTP' && (!Number.isInteger(token.period) || token.period < 1 || token.period > MAX_PERIOD)) {
    return `a time step of ${String(token.period)} s; it must be 1 to ${MAX_PERIOD}`;
  }
  if (token.type === 'HOTP' && (!Number.isInteger(token.counter) || token.counter < 0 || token.counter > MAX_COUNTER)) {
    return `an HOTP counter of ${String(token.counter)}; it must be 0 to ${MAX_COUNTER}`;
  }
  for (const field of ['upn', 'issuer', 'account', 'manufacturer', 'model'] as const) {
    const value = token[field];
    if (value !== undefined && (typeof value !== 'string' || controlCharacterIn(value))) return `the ${field} contains a control character`;
  }
  return null;
}

/** A token with the fields that do not apply to its type set to their neutral values. */
export function normalizeToken(token: SeedToken): SeedToken {
  return {
    ...token,
    period: token.type === 'TOTP' ? token.period : DEFAULT_PERIOD,
    counter: token.type === 'HOTP' ? token.counter : 0,
  };
}

/**
 * Checks every token against the format before any byte is produced: the first refused token
 * and repeated serials are BAD_INPUT naming the serial and its position.
 */
export function assertWritable(format: SeedFormat, tokens: readonly SeedToken[]): void {
  const seen = new Map<string, number>();
  tokens.forEach((token, index) => {
    const reason = format.accepts(token);
    if (reason !== null) {
      throw badInput(`${format.title}: token ${index + 1} (serial ${quoteSerial(String(token.serial))}) cannot be written: ${reason}.`, undefined, {
        kind: 'format-cannot-carry',
        format: format.name,
        reason,
      });
    }
    const earlier = seen.get(token.serial);
    if (earlier !== undefined) {
      throw badInput(`${format.title}: tokens ${earlier + 1} and ${index + 1} have the same serial number ${quoteSerial(token.serial)}.`);
    }
    seen.set(token.serial, index);
  });
}

/** The first place a serial was seen, for "repeats line N" messages. */
export class SerialRegistry {
  private readonly seen = new Map<string, string>();
  /** The place it was seen before, or undefined (and remembers this place). */
  claim(serial: string, place: string): string | undefined {
    const earlier = this.seen.get(serial);
    if (earlier === undefined) this.seen.set(serial, place);
    return earlier;
  }
}

export function defaultRandomBytes(options: SeedWriteOptions | undefined): (length: number) => Uint8Array {
  return options?.randomBytes ?? defaultRandom;
}


function defaultRandom(length: number): Uint8Array {
  return randomBytes(length);
}
