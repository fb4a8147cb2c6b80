/**
 * Google Authenticator's export QR codes: `otpauth-migration://offline?data=BASE64`, the data a
 * protobuf MigrationPayload (docs/seed-formats.md §4.4). Parsed by protobufjs from the schema
 * below; every account comes back either as a credential or with the reason it cannot be added
 * (MD5, an unknown enum value, a counter too large), never silently dropped. Pure: no I/O.
 */
import protobuf from 'protobufjs/light.js';
import { KeytapError } from '../errors.js';
import type { CredentialWithSecret, HashAlgorithm, OathType } from './credential.js';
import { DEFAULT_PERIOD, MAX_KEY_COUNTER } from './credential.js';

/** The schema as Google Authenticator writes it (proto3; field numbers per docs/seed-formats.md §4.4). */
const SCHEMA = {
  nested: {
    MigrationPayload: {
      fields: {
        otpParameters: { rule: 'repeated', type: 'OtpParameters', id: 1 },
        version: { type: 'int32', id: 2 },
        batchSize: { type: 'int32', id: 3 },
        batchIndex: { type: 'int32', id: 4 },
        batchId: { type: 'int32', id: 5 },
      },
      nested: {
        OtpParameters: {
          fields: {
            secret: { type: 'bytes', id: 1 },
            name: { type: 'string', id: 2 },
            issuer: { type: 'string', id: 3 },
            algorithm: { type: 'int32', id: 4 },
            digits: { type: 'int32', id: 5 },
            type: { type: 'int32', id: 6 },
            counter: { type: 'uint64', id: 7 },
          },
        },
      },
    },
  },
};
// The enums are read as plain numbers (int32 has the same wire encoding), so a value this schema
// does not know reaches the checks below as what it is, not as a name protobufjs had to invent.
const ALGORITHMS: Record<number, HashAlgorithm | 'MD5'> = { 0: 'SHA1', 1: 'SHA1', 2: 'SHA256', 3: 'SHA512', 4: 'MD5' };
const DIGITS: Record<number, number> = { 0: 6, 1: 6, 2: 8 };
const TYPES: Record<number, OathType> = { 1: 'HOTP', 2: 'TOTP' };

const payloadType = protobuf.Root.fromJSON(SCHEMA).lookupType('MigrationPayload');

/** Which part of an export this QR code is: Google Authenticator splits large exports over several codes. */
export interface MigrationBatch {
  /** 0-based. */
  index: number;
  size: number;
  /** Shared by the codes of one export. */
  id: number;
}

export type MigrationAccount =
  | { ok: true; credential: CredentialWithSecret }
  /** Names only (no secret): what the export calls the account, and why it cannot go on a key. */
  | { ok: false; issuer: string | undefined; account: string; problem: string };

export interface MigrationPayload {
  batch: MigrationBatch;
  accounts: MigrationAccount[];
}

export function isMigrationUri(text: string): boolean {
  return /^otpauth-migration:\/\//iu.test(text.trim());
}

/** Reads an `otpauth-migration://offline?data=…` URI. BAD_INPUT when the URI or payload is malformed. */
export function parseMigrationUri(uri: string): MigrationPayload {
  const text = uri.trim();
  const match = /^otpauth-migration:\/\/offline\?(.*)$/isu.exec(text);
  if (!match) throw badInput('This is not an otpauth-migration://offline URI.');
  const data = match[1]!
    .split('&')
    .map((pair) => pair.split('='))
    .find(([key]) => key === 'data')
    ?.slice(1)
    .join('=');
  if (data === undefined || data === '') throw badInput('The otpauth-migration URI has no data parameter.');
  let base64: string;
  try {
    base64 = decodeURIComponent(data).replace(/-/gu, '+').replace(/_/gu, '/').replace(/\s/gu, '');
  } catch {
    throw badInput('The otpauth-migration URI has a broken %-escape in its data.');
  }
  if (!/^[A-Za-z0-9+/]+=*$/u.test(base64)) throw badInput('The data of the otpauth-migration URI is not Base64.');
  const bytes = Buffer.from(base64, 'base64');
  try {
    let decoded: Record<string, unknown>;
    try {
      decoded = payloadType.toObject(payloadType.decode(bytes), { longs: String, bytes: Buffer, defaults: true, arrays: true });
    } catch {
      // protobufjs's messages name offsets and wire types, nothing a user can act on.
      throw badInput('The data of the otpauth-migration URI is not a Google Authenticator export (the payload does not decode).');
    }
    const size = Number(decoded.batchSize) || 1;
    const index = Number(decoded.batchIndex) || 0;
    return {
      batch: { index, size, id: Number(decoded.batchId) || 0 },
      // Each secret is copied out of `bytes` (the decoded Buffers are views of it) before it is zeroed.
      accounts: (decoded.otpParameters as Record<string, unknown>[]).map(readAccount),
    };
  } finally {
    bytes.fill(0);
  }
}

function readAccount(parameters: Record<string, unknown>): MigrationAccount {
  const secret = parameters.secret as Buffer;
  const { issuer, account } = splitName(String(parameters.name), String(parameters.issuer));
  const refuse = (problem: string): MigrationAccount => ({ ok: false, issuer, account, problem });
  if (account === '') return refuse('it has no account name');
  if (secret.length === 0) return refuse('it has no secret');
  const algorithmNumber = Number(parameters.algorithm);
  const algorithm = ALGORITHMS[algorithmNumber];
  if (algorithm === undefined) return refuse(`its algorithm is unknown (value ${algorithmNumber})`);
  if (algorithm === 'MD5') return refuse('it uses MD5, which OATH keys do not support');
  const digitsNumber = Number(parameters.digits);
  const digits = DIGITS[digitsNumber];
  if (digits === undefined) return refuse(`its number of digits is unknown (value ${digitsNumber})`);
  const typeNumber = Number(parameters.type);
  const type = TYPES[typeNumber];
  if (type === undefined) return refuse(`its type is ${typeNumber === 0 ? 'not given' : `unknown (value ${typeNumber})`}; it must be TOTP or HOTP`);
  let counter: number | undefined;
  if (type === 'HOTP') {
    const value = BigInt(String(parameters.counter));
    // Every account here is bound for a key, which keeps the counter in 4 bytes.
    if (value > BigInt(MAX_KEY_COUNTER)) return refuse(`its HOTP counter ${value} is above ${MAX_KEY_COUNTER}, the largest a key keeps`);
    counter = Number(value);
  }
  return {
    ok: true,
    // Google Authenticator's exports carry no period: its TOTP accounts all use 30 seconds.
    credential: { issuer, account, type, algorithm, digits, period: DEFAULT_PERIOD, counter, touch: false, secret: new Uint8Array(secret) },
  };
}

/** The name is often the otpauth label, "Issuer:account"; the issuer field wins when both say one. */
function splitName(name: string, issuerField: string): { issuer: string | undefined; account: string } {
  const issuer = issuerField.trim();
  const colon = name.indexOf(':');
  if (colon >= 0) {
    const prefix = name.slice(0, colon).trim();
    if (issuer === '' || prefix === issuer) return { issuer: prefix === '' ? undefined : prefix, account: name.slice(colon + 1).trim() };
  }
  return { issuer: issuer === '' ? undefined : issuer, account: name.trim() };
}

function badInput(message: string): KeytapError {
  return new KeytapError('BAD_INPUT', message);
}
