/**
 * The one place where the YubiKey OATH applet and the Nitrokey 3 Secrets App differ
 * (docs/protocols.md §2.12). A session decides its dialect once, from the SELECT answer, and asks
 * the capabilities here instead of testing the dialect itself.
 */
import type { HashAlgorithm } from '../../otp/credential.js';
import { Tag } from './constants.js';
import type { Tlv } from './tlv.js';

/**
 * Which OATH applet a key has: the YubiKey OATH applet or the Nitrokey 3 Secrets App. The client
 * session and the emulator (which answers like one of them) both use these names.
 */
export type Dialect = 'yubikey' | 'nitrokey3';
export const DIALECTS: readonly Dialect[] = ['yubikey', 'nitrokey3'];

export interface DialectCapabilities {
  /** Display name of the applet. */
  readonly name: string;
  /** CALCULATE ALL (INS A4, P1 00): absent on the Nitrokey 3 (compiled out, 6D00). */
  readonly calculateAll: boolean;
  /** CALCULATE P2=00 (full HMAC): the Nitrokey 3 answers 6D00. */
  readonly fullResponse: boolean;
  /** Hash algorithms CALCULATE works with (the Nitrokey 3 accepts SHA-512 at PUT and then fails, 6A81). */
  readonly algorithms: readonly HashAlgorithm[];
  /** PUT over an existing id replaces it (YubiKey); the Nitrokey 3 refuses with 6983. */
  readonly putOverwrites: boolean;
  /** YKOATH password (SET CODE / VALIDATE). On the Nitrokey 3 SET CODE is swallowed and answers 9000: never send it. */
  readonly password: boolean;
  /** RENAME (05) on the YubiKey; UPDATE CREDENTIAL (B7) on the Nitrokey 3. */
  readonly renameIns: 'rename' | 'update';
  /** LIST with data 01 returns a properties byte per entry (touch, PIN-encrypted). */
  readonly listV1: boolean;
  /** DELETE always asks for a touch (Nitrokey 3). */
  readonly deleteNeedsTouch: boolean;
  /** RESET always asks for a touch (Nitrokey 3). */
  readonly resetNeedsTouch: boolean;
  /** Credentials a key holds at most, where the applet tells by answering "full". */
  readonly maxCredentials: number;
  /** The longest credential id the applet stores (YubiKey: 64 bytes; Nitrokey 3: Trussed ShortData, 128). */
  readonly maxIdBytes: number;
  /**
   * The OATH application version (SELECT tag 79) of a current firmware: YubiKey 5.4.3 (not
   * 4.2.0–4.2.6, which would switch on yubikit's dummy-APDU workaround); Nitrokey 3 major forced to
   * 4, then secrets-app crate 0.13.0. The emulator answers with it.
   */
  readonly version: readonly [number, number, number];
}

const YUBIKEY: DialectCapabilities = {
  name: 'YubiKey OATH',
  calculateAll: true,
  fullResponse: true,
  algorithms: ['SHA1', 'SHA256', 'SHA512'],
  putOverwrites: true,
  password: true,
  renameIns: 'rename',
  listV1: false,
  deleteNeedsTouch: false,
  resetNeedsTouch: false,
  maxCredentials: 32,
  maxIdBytes: 64,
  version: [5, 4, 3],
};

const NITROKEY3: DialectCapabilities = {
  name: 'Nitrokey 3 Secrets App',
  calculateAll: false,
  fullResponse: false,
  algorithms: ['SHA1', 'SHA256'],
  putOverwrites: false,
  password: false,
  renameIns: 'update',
  listV1: true,
  deleteNeedsTouch: true,
  resetNeedsTouch: true,
  maxCredentials: 50,
  maxIdBytes: 128,
  version: [4, 13, 0],
};

export function capabilitiesOf(dialect: Dialect): DialectCapabilities {
  return dialect === 'nitrokey3' ? NITROKEY3 : YUBIKEY;
}

/**
 * The Nitrokey 3 Secrets App is the only applet that puts a serial (8F) or a PIN counter (82)
 * into its SELECT answer; both YubiKey 4 and the Nitrokey 3 report a major version of 4, so the
 * version alone cannot tell them apart.
 */
export function detectDialect(selectAnswer: readonly Tlv[]): Dialect {
  return selectAnswer.some((t) => t.tag === Tag.SERIAL || t.tag === Tag.PIN_COUNTER) ? 'nitrokey3' : 'yubikey';
}
