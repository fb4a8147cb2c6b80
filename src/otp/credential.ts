/**
 * The OATH credential model and the YKOATH credential id `[period/][issuer:]account`
 * (docs/protocols.md §1.8). Pure: no I/O.
 */
import { KeytapError } from '../errors.js';

export type OathType = 'TOTP' | 'HOTP';
export type HashAlgorithm = 'SHA1' | 'SHA256' | 'SHA512';

export const OATH_TYPES: readonly OathType[] = ['TOTP', 'HOTP'];
export const HASH_ALGORITHMS: readonly HashAlgorithm[] = ['SHA1', 'SHA256', 'SHA512'];

export const DEFAULT_PERIOD = 30;
export const MIN_DIGITS = 6;
export const MAX_DIGITS = 8;
/** Keys keep the HOTP counter in 4 bytes (YKOATH's IMF tag, the Nitrokey 3's u32; docs/protocols.md). */
export const MAX_KEY_COUNTER = 0xffffffff;
/**
 * The largest HOTP counter keytap keeps: seed files allow 64 bits (PSKC's Counter is xs:long), a
 * JavaScript number holds whole numbers exactly up to 2^53 − 1. Only a key refuses more than 4 bytes.
 */
export const MAX_COUNTER = Number.MAX_SAFE_INTEGER;
/** The longest TOTP step: PSKC's TimeInterval is xs:int. Keys keep the step only in the name (`172800/…`). */
export const MAX_PERIOD = 0x7fffffff;
/** The credential id is stored as raw UTF-8 and may be at most 64 bytes (YKOATH spec). */
export const MAX_CREDENTIAL_ID_BYTES = 64;

/** A credential as a key holds it, without its secret. */
export interface Credential {
  /** Empty or absent when the credential has no issuer. */
  issuer?: string | undefined;
  account: string;
  type: OathType;
  algorithm: HashAlgorithm;
  digits: number;
  /** TOTP time step in seconds; 30 for HOTP (unused there). */
  period: number;
  /** Initial HOTP counter (the key keeps the moving value). */
  counter?: number | undefined;
  /** Every code needs a touch of the key. */
  touch: boolean;
}

/** A credential together with its shared secret, as written to a key. */
export interface CredentialWithSecret extends Credential {
  secret: Uint8Array;
}

export interface CredentialIdParts {
  issuer?: string | undefined;
  account: string;
  period: number;
}

/** Fills in defaults and checks the ranges a key accepts. Throws BAD_INPUT naming the field. */
export function normalizeCredential<T extends Credential>(credential: T): T {
  const { type, algorithm, digits, period, counter } = credential;
  if (!OATH_TYPES.includes(type)) throw badInput(`Unknown OATH type "${String(type)}"; use TOTP or HOTP.`);
  if (!HASH_ALGORITHMS.includes(algorithm)) {
    throw badInput(`Unknown hash algorithm "${String(algorithm)}"; use SHA1, SHA256 or SHA512.`);
  }
  if (!Number.isInteger(digits) || digits < MIN_DIGITS || digits > MAX_DIGITS) {
    throw badInput(`The number of digits must be ${MIN_DIGITS} to ${MAX_DIGITS}, not ${digits}.`);
  }
  if (type === 'TOTP' && (!Number.isInteger(period) || period < 1 || period > MAX_PERIOD)) {
    throw badInput(`The TOTP period must be a whole number of seconds from 1 to ${MAX_PERIOD}, not ${period}.`);
  }
  if (counter !== undefined && (!Number.isInteger(counter) || counter < 0)) {
    throw badInput(`The HOTP counter must be a whole number from 0 to ${MAX_KEY_COUNTER}, not ${counter}.`);
  }
  if (counter !== undefined && counter > MAX_KEY_COUNTER) {
    throw badInput(`The HOTP counter ${counter} does not fit on a key: keys keep a 4-byte counter (0 to ${MAX_KEY_COUNTER}).`);
  }
  if (credential.account.length === 0) throw badInput('The account name must not be empty.');
  const issuer = credential.issuer === '' ? undefined : credential.issuer;
  if (issuer?.includes(':')) {
    // Every reader splits the id at the first colon, so an issuer with a colon would come back as
    // part of the account name, whatever the account looks like.
    throw badInput('The issuer must not contain ":".');
  }
  // Validates the id length as a side effect.
  formatCredentialId({ issuer, account: credential.account, type, period: type === 'TOTP' ? period : DEFAULT_PERIOD });
  return { ...credential, issuer, period: type === 'TOTP' ? period : DEFAULT_PERIOD };
}

const TOTP_ID = /^((\d+)\/)?(([^:]+):)?(.+)$/su;
const PERIOD_PREFIX = /^\d+\/./su;

/**
 * Builds the id a key stores: `[period/][issuer:]account`. The period prefix is written for TOTP
 * with a period other than 30 s, since keys do not store the period anywhere else, and for a 30 s
 * TOTP id that would otherwise begin with digits and a slash.
 */
export function formatCredentialId(parts: CredentialIdParts & { type?: OathType }): string {
  const { issuer, account, period } = parts;
  const type = parts.type ?? 'TOTP';
  let id = issuer ? `${issuer}:${account}` : account;
  // A TOTP id that happens to start like a period prefix ("2024/alice") would be read back with
  // that period and give wrong codes; an explicit "30/" keeps it readable (yubikit parses it too).
  if (type === 'TOTP' && (period !== DEFAULT_PERIOD || PERIOD_PREFIX.test(id))) id = `${period}/${id}`;
  const length = Buffer.byteLength(id, 'utf8');
  if (length > MAX_CREDENTIAL_ID_BYTES) {
    throw badInput(
      `The name "${id}" is ${length} bytes long; a key stores at most ${MAX_CREDENTIAL_ID_BYTES} bytes for issuer and account together.`,
    );
  }
  return id;
}

/** Parses a credential id the way yubikit does (docs/protocols.md §1.8). */
export function parseCredentialId(id: string, type: OathType): CredentialIdParts {
  if (type === 'TOTP') {
    const match = TOTP_ID.exec(id);
    if (!match) return { account: id, period: DEFAULT_PERIOD };
    const period = match[2] === undefined ? DEFAULT_PERIOD : Number.parseInt(match[2], 10);
    return { issuer: match[4], account: match[5] ?? id, period: period > 0 ? period : DEFAULT_PERIOD };
  }
  const colon = id.indexOf(':');
  if (colon > 0) return { issuer: id.slice(0, colon), account: id.slice(colon + 1), period: DEFAULT_PERIOD };
  return { account: id, period: DEFAULT_PERIOD };
}

/** The id of a credential, as a key stores it. */
export function credentialId(credential: Pick<Credential, 'issuer' | 'account' | 'type' | 'period'>): string {
  return formatCredentialId(credential);
}

function badInput(message: string): KeytapError {
  return new KeytapError('BAD_INPUT', message);
}
