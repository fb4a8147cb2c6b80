/**
 * The virtual key's persistent memory: one JSON file per virtual key.
 *
 * SECURITY: this file is as sensitive as the key itself. The OATH secrets, the YubiKey access key
 * and everything else a real key keeps in its secure element are stored here as plain hex, because
 * a software key has nowhere safer to put them. The file is kept owner-only (0600) and written
 * atomically; protect it like a private key (no backups to shared places, no syncing).
 *
 * Concurrency: one process should serve a store at a time. If two processes open the same file,
 * each works on its own copy and the last write wins (the other's changes are lost). A virtual key
 * is a demo and test device, so this is accepted rather than locked against.
 */
import { pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmod, mkdir, readFile, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { KeytapError } from '../errors.js';
import { formatSerial } from '../device/management.js';
import type { Dialect } from '../device/oath/dialect.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { fsReason, inputFileError } from '../util/input-file.js';
import type { HashAlgorithm, OathType } from '../otp/credential.js';
import { DEFAULT_TOUCH_TIMEOUT_MS } from './types.js';
import { KEY_DIALECTS, isOathDialect } from '../device/key-dialect.js';
import type { KeyDialect } from '../device/key-dialect.js';
import { FEITIAN_DIGITS, FEITIAN_SEED_BYTES, isFeitianSerial } from '../device/feitian/protocol.js';
import { NK3_PIN_ATTEMPTS } from '../device/oath/constants.js';

/** A credential as the applet holds it (what PUT sent, plus the moving state). */
export interface StoredCredential {
  /** Credential id ("name") bytes, exactly as PUT sent them. */
  readonly id: Uint8Array;
  readonly type: OathType;
  readonly algorithm: HashAlgorithm;
  readonly digits: number;
  /** HMAC key exactly as PUT sent it (the host already hashed long keys and padded short ones). */
  readonly key: Uint8Array;
  /** HOTP: the counter the next CALCULATE uses. */
  readonly counter: number;
  readonly touch: boolean;
  /** YKOATH property 0x01: a TOTP challenge may never go below the last one used. */
  readonly increasing: boolean;
  /** The last challenge used, kept only for `increasing` credentials. */
  readonly lastChallenge?: Uint8Array | undefined;
  /** Nitrokey 3 property 0x04 ("PIN-encrypted"): visible only right after VERIFY PIN. */
  readonly pinProtected: boolean;
}

/**
 * The one HOTP token of a Feitian/HyperFIDO key (dialect 'feitian'): what PROGRAM sent, and the
 * counter of the next code it types.
 */
export interface StoredHotpToken {
  readonly seed: Uint8Array;
  readonly digits: number;
  /** 8 ASCII characters. */
  readonly serial: string;
  readonly counter: number;
}

/** The YubiKey OATH access key (set with SET CODE, checked by VALIDATE). */
export interface AccessKey {
  readonly algorithm: HashAlgorithm;
  readonly key: Uint8Array;
}

/** The Nitrokey 3 Secrets App PIN: a salted hash and the attempts left. */
export interface PinState {
  readonly salt: Uint8Array;
  readonly hash: Uint8Array;
  readonly attemptsLeft: number;
}

export interface OpenStoreOptions {
  /** For a new file only; an existing file keeps the dialect it was created with. */
  dialect?: KeyDialect | undefined;
  /** For a new file only: start with a few well-known demo accounts. */
  demo?: boolean | undefined;
  /** Create the file (and its folders) when it is missing (the default); otherwise INPUT_FILE. */
  create?: boolean | undefined;
}

export const PIN_ATTEMPTS = NK3_PIN_ATTEMPTS;
const PIN_HASH_ITERATIONS = 20_000;
const STORE_FORMAT = 'keytap-virtual-key';
const STORE_VERSION = 1;
const MAX_TOUCH_TIMEOUT_MS = 10 * 60_000;

interface State {
  dialect: KeyDialect;
  serial: string;
  salt: Buffer;
  touchTimeoutMs: number;
  accessKey: AccessKey | undefined;
  pin: PinState | undefined;
  credentials: StoredCredential[];
  /** Dialect 'feitian' only: the programmed token, undefined while erased. */
  hotp: StoredHotpToken | undefined;
}

export class VirtualKeyStore {
  readonly file: string;
  private state: State;
  /** Writes run one after another so that a later mutation never lands before an earlier one. */
  private writes: Promise<unknown> = Promise.resolve();

  private constructor(file: string, state: State) {
    this.file = file;
    this.state = state;
  }

  /**
   * Loads the store, or creates it (new salt and serial) when the file does not exist and
   * `create` allows it. A file that cannot be read is INPUT_FILE, one that cannot be parsed
   * BAD_INPUT; either way it is left untouched and the error says which file and why.
   */
  static async open(file: string, options: OpenStoreOptions = {}): Promise<VirtualKeyStore> {
    const path = resolve(file);
    let text: string | undefined;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw inputFileError(path, error, 'the virtual key store');
      if (options.create === false) {
        throw new KeytapError('INPUT_FILE', `There is no virtual key at ${path}.`, { detail: { kind: 'no-virtual-key', file: path } });
      }
    }
    if (text !== undefined) {
      const store = new VirtualKeyStore(path, parseState(path, text));
      await tightenMode(path);
      return store;
    }
    const dialect = options.dialect ?? 'yubikey';
    if (!KEY_DIALECTS.includes(dialect)) throw new KeytapError('BAD_INPUT', `Unknown virtual key dialect "${String(dialect)}".`);
    const store = new VirtualKeyStore(path, {
      dialect,
      serial: randomBytes(4).toString('hex'),
      salt: randomBytes(8),
      touchTimeoutMs: DEFAULT_TOUCH_TIMEOUT_MS,
      accessKey: undefined,
      pin: undefined,
      credentials: options.demo && isOathDialect(dialect) ? demoCredentials(dialect) : [],
      hotp: undefined,
    });
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    await store.mutate(() => undefined);
    return store;
  }

  get dialect(): KeyDialect {
    return this.state.dialect;
  }
  /**
   * The serial as keytap shows it for this dialect (formatSerial: decimal for a YubiKey, hex for a
   * Nitrokey 3). A Feitian key has none of its own: its serial is the programmed token's, which CHECK tells.
   */
  get serial(): string | undefined {
    const dialect = this.state.dialect;
    return isOathDialect(dialect) ? formatSerial(dialect, this.serialBytes) : undefined;
  }
  /** Dialect 'feitian': the programmed HOTP token, undefined while erased. */
  get hotp(): StoredHotpToken | undefined {
    return this.state.hotp;
  }
  /** The four bytes the key reports (Management DEVICE INFO, or the Nitrokey 3's SELECT tag 8F); kept as hex in the file. */
  get serialBytes(): Buffer {
    return Buffer.from(this.state.serial, 'hex');
  }
  get touchTimeoutMs(): number {
    return this.state.touchTimeoutMs;
  }
  /** The 8-byte salt/ID of the SELECT answer (tag 71). */
  get salt(): Buffer {
    return Buffer.from(this.state.salt);
  }
  get credentials(): readonly StoredCredential[] {
    return this.state.credentials;
  }
  get accessKey(): AccessKey | undefined {
    return this.state.accessKey;
  }
  get pin(): PinState | undefined {
    return this.state.pin;
  }

  findCredential(id: Uint8Array): StoredCredential | undefined {
    return this.state.credentials.find((c) => Buffer.compare(c.id, id) === 0);
  }

  /** Adds a credential, or replaces the one with the same id in place. */
  putCredential(credential: StoredCredential): Promise<void> {
    return this.mutate((state) => {
      const index = state.credentials.findIndex((c) => Buffer.compare(c.id, credential.id) === 0);
      if (index >= 0) state.credentials[index] = credential;
      else state.credentials.push(credential);
    });
  }

  /** Replaces the credential `id` (which may get a new id: rename). */
  replaceCredential(id: Uint8Array, credential: StoredCredential): Promise<void> {
    return this.mutate((state) => {
      const index = state.credentials.findIndex((c) => Buffer.compare(c.id, id) === 0);
      if (index < 0) throw new KeytapError('NOT_FOUND', 'No such credential in the virtual key store.');
      state.credentials[index] = credential;
    });
  }

  deleteCredential(id: Uint8Array): Promise<void> {
    return this.mutate((state) => {
      state.credentials = state.credentials.filter((c) => Buffer.compare(c.id, id) !== 0);
    });
  }

  setAccessKey(accessKey: AccessKey | undefined): Promise<void> {
    return this.mutate((state) => {
      state.accessKey = accessKey;
    });
  }

  /** Sets (or, with undefined, removes) the Nitrokey 3 PIN, with a full attempt counter. */
  setPin(pin: Uint8Array | undefined): Promise<void> {
    const salt = randomBytes(16);
    const next: PinState | undefined = pin && { salt, hash: hashPin(pin, salt), attemptsLeft: PIN_ATTEMPTS };
    return this.mutate((state) => {
      state.pin = next;
    });
  }

  setPinAttemptsLeft(attemptsLeft: number): Promise<void> {
    return this.mutate((state) => {
      if (state.pin) state.pin = { ...state.pin, attemptsLeft };
    });
  }

  /** Compares a PIN with the stored hash (constant time). Does not count attempts. */
  pinMatches(pin: Uint8Array): boolean {
    const stored = this.state.pin;
    if (!stored) return false;
    return timingSafeEqual(hashPin(pin, stored.salt), stored.hash);
  }

  setTouchTimeoutMs(timeoutMs: number): Promise<void> {
    if (!Number.isInteger(timeoutMs) || timeoutMs < 0 || timeoutMs > MAX_TOUCH_TIMEOUT_MS) {
      throw new KeytapError('BAD_INPUT', `The touch timeout must be 0 to ${MAX_TOUCH_TIMEOUT_MS} ms.`);
    }
    return this.mutate((state) => {
      state.touchTimeoutMs = timeoutMs;
    });
  }

  /** Dialect 'feitian': programs (a token) or erases (undefined) the HOTP token. */
  setHotp(token: StoredHotpToken | undefined): Promise<void> {
    return this.mutate((state) => {
      state.hotp = token;
    });
  }

  /**
   * Dialect 'feitian': the token as it is before this code, with its counter moved on by one in the
   * file first, so that a code is never typed twice even when the write fails half-way.
   */
  async takeHotpCounter(): Promise<StoredHotpToken | undefined> {
    const current = this.state.hotp;
    if (current === undefined) return undefined;
    await this.mutate((state) => {
      state.hotp = { ...current, counter: current.counter + 1 };
    });
    return current;
  }

  /** Factory reset: no credentials, no password or PIN, a new salt (so a new ykman device id). */
  reset(): Promise<void> {
    const salt = randomBytes(8);
    return this.mutate((state) => {
      state.credentials = [];
      state.accessKey = undefined;
      state.pin = undefined;
      state.hotp = undefined;
      state.salt = salt;
    });
  }

  /**
   * Applies a change to a copy, writes the copy, and only then makes it current: if the disk write
   * fails, memory still matches the file and the applet can answer with an error SW.
   */
  private mutate(change: (state: State) => void): Promise<void> {
    const run = this.writes.then(async () => {
      const next: State = { ...this.state, credentials: [...this.state.credentials] };
      change(next);
      await writeAtomically(this.file, serializeState(next));
      this.state = next;
    });
    this.writes = run.catch(() => undefined);
    return run;
  }
}

function hashPin(pin: Uint8Array, salt: Uint8Array): Buffer {
  return pbkdf2Sync(pin, salt, PIN_HASH_ITERATIONS, 32, 'sha256');
}

/** The store is written as a whole, atomically, mode 0600 (it holds the key's secrets). */
async function writeAtomically(file: string, text: string): Promise<void> {
  try {
    await writeFileAtomic(file, text, { mode: 0o600, overwrite: true });
  } catch (error) {
    throw new KeytapError('DEVICE_ERROR', `Cannot write the virtual key store ${file}: ${fsReason(error instanceof KeytapError ? error.cause : error)}.`, {
      cause: error,
    });
  }
}

/** An existing store that others can read is made owner-only again. */
async function tightenMode(file: string): Promise<void> {
  if (process.platform === 'win32') return;
  try {
    const info = await stat(file);
    if ((info.mode & 0o777) !== 0o600) await chmod(file, 0o600);
  } catch {
    // Not ours to chmod (another owner): reading worked, so carry on.
  }
}

// ---------------------------------------------------------------------------------------------
// File format

interface CredentialJson {
  id?: string;
  idHex?: string;
  type: OathType;
  algorithm: HashAlgorithm;
  digits: number;
  key: string;
  counter: number;
  touch: boolean;
  increasing: boolean;
  lastChallenge?: string;
  pinProtected: boolean;
}

function serializeState(state: State): string {
  const json = {
    format: STORE_FORMAT,
    version: STORE_VERSION,
    dialect: state.dialect,
    serial: state.serial,
    salt: state.salt.toString('hex'),
    touchTimeoutMs: state.touchTimeoutMs,
    accessKey: state.accessKey ? { algorithm: state.accessKey.algorithm, key: hex(state.accessKey.key) } : null,
    pin: state.pin ? { salt: hex(state.pin.salt), hash: hex(state.pin.hash), attemptsLeft: state.pin.attemptsLeft } : null,
    ...(state.dialect === 'feitian'
      ? { hotp: state.hotp ? { seed: hex(state.hotp.seed), digits: state.hotp.digits, serial: state.hotp.serial, counter: state.hotp.counter } : null }
      : {}),
    credentials: state.credentials.map((c): CredentialJson => {
      // Ids are bytes; most are UTF-8 text, which is kept readable.
      const text = Buffer.from(c.id).toString('utf8');
      const readable = Buffer.compare(Buffer.from(text, 'utf8'), c.id) === 0;
      return {
        ...(readable ? { id: text } : { idHex: hex(c.id) }),
        type: c.type,
        algorithm: c.algorithm,
        digits: c.digits,
        key: hex(c.key),
        counter: c.counter,
        touch: c.touch,
        increasing: c.increasing,
        ...(c.lastChallenge ? { lastChallenge: hex(c.lastChallenge) } : {}),
        pinProtected: c.pinProtected,
      };
    }),
  };
  return `${JSON.stringify(json, null, 2)}\n`;
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

function parseState(file: string, text: string): State {
  const fail = (problem: string): never => {
    throw new KeytapError('BAD_INPUT', `The virtual key store ${file} is damaged: ${problem}.`, {
      hint: 'Fix the file by hand, or move it away to start with an empty virtual key.',
    });
  };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    fail(`it is not valid JSON (${error instanceof Error ? error.message : 'parse error'})`);
  }
  if (!isRecord(raw)) return fail('it is not a JSON object');
  if (raw.format !== STORE_FORMAT) fail(`"format" is not "${STORE_FORMAT}"`);
  if (raw.version !== STORE_VERSION) fail(`"version" ${JSON.stringify(raw.version)} is not supported (expected ${STORE_VERSION})`);
  const dialect = raw.dialect;
  if (typeof dialect !== 'string' || !KEY_DIALECTS.includes(dialect as KeyDialect)) fail(`"dialect" must be one of ${KEY_DIALECTS.join(', ')}`);
  const serial = raw.serial;
  if (typeof serial !== 'string' || !/^[0-9a-f]{8}$/iu.test(serial)) fail('"serial" must be 8 hex digits');
  const salt = hexField(raw.salt, '"salt"', fail);
  if (salt.length !== 8) fail('"salt" must be 8 bytes (16 hex digits)');
  const touchTimeoutMs = raw.touchTimeoutMs ?? DEFAULT_TOUCH_TIMEOUT_MS;
  if (typeof touchTimeoutMs !== 'number' || !Number.isInteger(touchTimeoutMs) || touchTimeoutMs < 0 || touchTimeoutMs > MAX_TOUCH_TIMEOUT_MS) {
    fail(`"touchTimeoutMs" must be a whole number of milliseconds from 0 to ${MAX_TOUCH_TIMEOUT_MS}`);
  }

  let accessKey: AccessKey | undefined;
  if (raw.accessKey !== null && raw.accessKey !== undefined) {
    if (!isRecord(raw.accessKey)) return fail('"accessKey" must be an object or null');
    accessKey = { algorithm: algorithmField(raw.accessKey.algorithm, '"accessKey.algorithm"', fail), key: hexField(raw.accessKey.key, '"accessKey.key"', fail) };
  }
  let pin: PinState | undefined;
  if (raw.pin !== null && raw.pin !== undefined) {
    if (!isRecord(raw.pin)) return fail('"pin" must be an object or null');
    const attemptsLeft = raw.pin.attemptsLeft;
    if (typeof attemptsLeft !== 'number' || !Number.isInteger(attemptsLeft) || attemptsLeft < 0 || attemptsLeft > PIN_ATTEMPTS) {
      fail(`"pin.attemptsLeft" must be 0 to ${PIN_ATTEMPTS}`);
    }
    pin = { salt: hexField(raw.pin.salt, '"pin.salt"', fail), hash: hexField(raw.pin.hash, '"pin.hash"', fail), attemptsLeft: attemptsLeft as number };
    if (pin.hash.length !== 32) fail('"pin.hash" must be 32 bytes');
  }

  if (!Array.isArray(raw.credentials)) return fail('"credentials" must be an array');
  const credentials = raw.credentials.map((entry: unknown, i: number): StoredCredential => {
    const where = `credentials[${i}]`;
    if (!isRecord(entry)) return fail(`${where} is not an object`);
    let id: Buffer;
    if (typeof entry.id === 'string') id = Buffer.from(entry.id, 'utf8');
    else if (entry.idHex !== undefined) id = hexField(entry.idHex, `${where}.idHex`, fail);
    else return fail(`${where} has no "id"`);
    if (id.length === 0 || id.length > 255) fail(`${where}.id must be 1 to 255 bytes`);
    const type = entry.type;
    if (type !== 'TOTP' && type !== 'HOTP') fail(`${where}.type must be TOTP or HOTP`);
    const digits = entry.digits;
    if (typeof digits !== 'number' || !Number.isInteger(digits) || digits < 1 || digits > 10) fail(`${where}.digits must be 1 to 10`);
    const counter = entry.counter ?? 0;
    if (typeof counter !== 'number' || !Number.isInteger(counter) || counter < 0 || counter > 0x1_0000_0000) {
      fail(`${where}.counter must be a whole number from 0 to 4294967296`);
    }
    for (const flag of ['touch', 'increasing', 'pinProtected'] as const) {
      if (entry[flag] !== undefined && typeof entry[flag] !== 'boolean') fail(`${where}.${flag} must be true or false`);
    }
    return {
      id,
      type: type as OathType,
      algorithm: algorithmField(entry.algorithm, `${where}.algorithm`, fail),
      digits: digits as number,
      key: hexField(entry.key, `${where}.key`, fail),
      counter: counter as number,
      touch: entry.touch === true,
      increasing: entry.increasing === true,
      lastChallenge: entry.lastChallenge === undefined ? undefined : hexField(entry.lastChallenge, `${where}.lastChallenge`, fail),
      pinProtected: entry.pinProtected === true,
    };
  });
  let hotp: StoredHotpToken | undefined;
  if (raw.hotp !== null && raw.hotp !== undefined) {
    if (dialect !== 'feitian') fail('"hotp" belongs to the feitian dialect only');
    if (!isRecord(raw.hotp)) return fail('"hotp" must be an object or null');
    const seed = hexField(raw.hotp.seed, '"hotp.seed"', fail);
    if (seed.length !== FEITIAN_SEED_BYTES) fail(`"hotp.seed" must be ${FEITIAN_SEED_BYTES} bytes`);
    const { digits, serial: tokenSerial, counter } = raw.hotp;
    if (typeof digits !== 'number' || !FEITIAN_DIGITS.includes(digits)) fail('"hotp.digits" must be 6 or 8');
    if (typeof tokenSerial !== 'string' || !isFeitianSerial(tokenSerial)) fail('"hotp.serial" must be 8 printable ASCII characters');
    if (typeof counter !== 'number' || !Number.isSafeInteger(counter) || counter < 0) fail('"hotp.counter" must be a whole number from 0');
    hotp = { seed, digits: digits as number, serial: tokenSerial as string, counter: counter as number };
  }
  const seen = new Set<string>();
  for (const c of credentials) {
    const key = hex(c.id);
    if (seen.has(key)) fail(`the credential id "${Buffer.from(c.id).toString('utf8')}" appears twice`);
    seen.add(key);
  }
  return {
    dialect: dialect as KeyDialect,
    hotp,
    serial: (serial as string).toLowerCase(),
    salt,
    touchTimeoutMs: touchTimeoutMs as number,
    accessKey,
    pin,
    credentials,
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Parses a hex field; the problem is reported by field name, never by content (it may be a secret). */
function hexField(value: unknown, name: string, fail: (problem: string) => never): Buffer {
  if (typeof value !== 'string' || value.length % 2 !== 0 || !/^[0-9a-f]*$/iu.test(value)) return fail(`${name} must be an even number of hex digits`);
  return Buffer.from(value, 'hex');
}

function algorithmField(value: unknown, name: string, fail: (problem: string) => never): HashAlgorithm {
  if (value !== 'SHA1' && value !== 'SHA256' && value !== 'SHA512') return fail(`${name} must be SHA1, SHA256 or SHA512`);
  return value;
}

// ---------------------------------------------------------------------------------------------
// Demo accounts: published test secrets (RFC 4226/6238 and the well-known JBSWY3DPEHPK3PXP), so
// that anyone can check the codes with oathtool. Never use them for a real account.

function demoCredentials(dialect: Dialect): StoredCredential[] {
  const ascii = (s: string): Buffer => Buffer.from(s, 'ascii');
  const demo = (
    id: string,
    type: OathType,
    algorithm: HashAlgorithm,
    digits: number,
    secret: Buffer,
    touch = false,
  ): StoredCredential => ({
    id: Buffer.from(id, 'utf8'),
    type,
    algorithm,
    digits,
    // What yubikit would send: keys shorter than 14 bytes are zero-padded (docs/protocols.md §1.9).
    key: secret.length < 14 ? Buffer.concat([secret, Buffer.alloc(14 - secret.length)]) : secret,
    counter: 0,
    touch,
    increasing: false,
    pinProtected: false,
  });
  const all = [
    demo('Demo:alice@example.com', 'TOTP', 'SHA1', 6, ascii('12345678901234567890')),
    demo('GitHub:alice', 'TOTP', 'SHA256', 6, ascii('12345678901234567890123456789012'), true),
    demo('60/Bank:alice', 'TOTP', 'SHA1', 8, Buffer.from('48656c6c6f21deadbeef', 'hex')),
    demo('VPN:alice', 'HOTP', 'SHA1', 6, ascii('12345678901234567890')),
    demo('Cloud:alice', 'TOTP', 'SHA512', 6, ascii('1234567890123456789012345678901234567890123456789012345678901234')),
  ];
  // A Nitrokey 3 accepts SHA512 at PUT but cannot compute it (6A81), so it gets no such account.
  return dialect === 'nitrokey3' ? all.filter((c) => c.algorithm !== 'SHA512') : all;
}
