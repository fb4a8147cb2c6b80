/**
 * The enrollment ledger: the promise that no seed is ever lost.
 *
 * `ledger.jsonl` in the output folder, mode 0600, append-only JSON lines. Line 1 is a header; then
 * - before a secret is sent to a key: an `enroll` record (serial, UPN, parameters, secret, key
 *   identity, time, and for a `--users` batch its run: BatchRun) in state `pending`, appended and
 *   fsync'ed — only then does the secret leave; a record without `run` (older ledgers) is read as
 *   belonging to no run;
 * - after verification: a `state` record `done`, with the HOTP counter as it is after verifying;
 * - after a failure: a `state` record `failed`, after the credential was removed from the key
 *   (`leftOnKey` says when removing it could not be confirmed).
 * A crash at any moment therefore leaves every seed that may be on a key in the ledger: at worst
 * as `pending`. A crash in the middle of an append leaves a torn last line; reading skips it and
 * says so (a torn `enroll` line means its secret was never sent; a torn `state` line leaves the
 * entry `pending`, which still exports).
 *
 * Encryption (optional, with a passphrase): scrypt (N = 2^15, r = 8, p = 1) derives one AES-256
 * key per ledger; each line is AES-256-GCM with a fresh 96-bit IV and the ledger id as associated
 * data. scrypt rather than PBKDF2 because it is memory-hard (32 MiB per guess), which makes
 * guessing the passphrase on GPUs far more expensive, and Node has it built in; PBKDF2 is used for
 * PSKC only because RFC 6030 prescribes it. Per-line encryption keeps the file append-only and
 * lets a torn line spoil only itself. The header carries an encrypted check value, so a wrong
 * passphrase is refused before a single record is written with the wrong key.
 */
import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { chmod, mkdir, open, readFile, rm, rmdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { KeytapError } from '../errors.js';
import type { HashAlgorithm, OathType } from '../otp/credential.js';
import { hexDecode, hexEncode } from '../otp/encoding.js';
import { fsError, processAlive, syncDirectory, writeFileAtomic } from '../util/atomic-file.js';
import { inputFileError } from '../util/input-file.js';
import { ensurePrivateFolder } from '../util/private-folder.js';
import { LEDGER_FORMAT } from '../seeds/index.js';
import type { ProvisionToken } from './token.js';

export const LEDGER_FILE = 'ledger.jsonl';
const LOCK_FILE = 'ledger.lock';
const FORMAT = LEDGER_FORMAT;
const VERSION = 1;
const CHECK_TEXT = 'keytap-ledger-check';
const SCRYPT = { N: 2 ** 15, r: 8, p: 1, keyLength: 32 } as const;
const SCRYPT_MAXMEM = 64 * 1024 * 1024;

export type EntryState = 'pending' | 'done' | 'failed';

/** Which key a token went to. */
export interface KeyIdentity {
  /** The key's serial where it reports one, else the descriptor id. */
  id: string;
  name: string;
  serial?: string | undefined;
  dialect?: string | undefined;
}

export interface LedgerEntry {
  /** Random id linking an entry's records. */
  id: string;
  state: EntryState;
  token: ProvisionToken;
  key: KeyIdentity;
  /** The name on the key. */
  credentialId: string;
  /** When the enroll record was written (ISO 8601). */
  enrolledAt: string;
  /** When the state last changed. */
  updatedAt: string;
  /** HOTP: the key's counter after verification (reading a code advanced it). */
  counterAfter?: number | undefined;
  reason?: string | undefined;
  /** `failed` entries whose credential may still be on the key. */
  leftOnKey?: boolean | undefined;
  /** 1-based line of the enroll record. */
  line: number;
  /** The batch run (`--users`) that wrote the entry; absent in ledgers from before runs were recorded. */
  run?: BatchRun | undefined;
}

/**
 * One `program --batch --users` run, recorded with each of its entries so that a run that was
 * interrupted can be told from the next one: `--again` resumed skips only the users who got a
 * token from the run it resumes.
 */
export interface BatchRun {
  /** Random, made when the run starts (or taken from the run it resumes). */
  id: string;
  /** SHA-256 (hex) of the users of the file, lower case, one a line, in order. */
  users: string;
  /** The run gives users a token although they have one (--again). */
  again: boolean;
}

export interface LedgerProblem {
  line: number;
  message: string;
}

export interface LedgerContents {
  encrypted: boolean;
  created: string;
  entries: LedgerEntry[];
  /** Lines that could not be read: a torn last line after a crash, or damage. Never fatal. */
  problems: LedgerProblem[];
}

interface Header {
  format: typeof FORMAT;
  version: number;
  created: string;
  ledgerId: string;
  encryption: null | { cipher: 'aes-256-gcm'; kdf: 'scrypt'; salt: string; N: number; r: number; p: number; check: SealedLine };
}

interface SealedLine {
  iv: string;
  ct: string;
  tag: string;
}

interface TokenJson {
  serial: string;
  secret: string;
  type: OathType;
  algorithm: HashAlgorithm;
  digits: number;
  period: number;
  counter: number;
  touch: boolean;
  upn?: string | undefined;
  issuer?: string | undefined;
  account?: string | undefined;
  manufacturer?: string | undefined;
  model?: string | undefined;
  displayName?: string | undefined;
}

type LedgerRecord =
  | { record: 'enroll'; entry: string; state: 'pending'; time: string; token: TokenJson; key: KeyIdentity; credentialId: string; run?: BatchRun | undefined }
  | { record: 'state'; entry: string; state: 'done' | 'failed'; time: string; counter?: number | undefined; reason?: string | undefined; leftOnKey?: boolean | undefined };

export interface LedgerOptions {
  /** Encrypts a new ledger / opens an encrypted one. */
  passphrase?: string | undefined;
}

/**
 * Writing the ledger or a seed file failed (disk full, permissions). Fatal for a batch: going on
 * would program keys whose seeds may not be kept.
 */
export class StorageError extends KeytapError {
  override readonly name = 'StorageError';
}

/** `write` with a failure of the file system turned into a StorageError in fsError's words. */
async function writing<T>(path: string, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (error instanceof KeytapError) throw error;
    const translated = fsError(path, error);
    throw new StorageError(translated.code, translated.message, { cause: error });
  }
}

export function ledgerPath(dir: string): string {
  return join(dir, LEDGER_FILE);
}

/** An open ledger, for appending. One writer at a time (ledger.lock). */
export class Ledger {
  private constructor(
    readonly dir: string,
    private handle: FileHandle | undefined,
    private readonly key: Buffer | undefined,
    private readonly ledgerId: string,
    private readonly contents: LedgerContents,
    private readonly created: CreatedPaths,
  ) {}

  /**
   * Opens the ledger in `dir` for appending, creating the folder (0700) and the ledger when
   * missing. Takes the lock; BUSY when another live process holds it. A torn last line is closed
   * with a newline so the next record starts on its own line (and reported in `problems`).
   */
  static async open(dir: string, options: LedgerOptions = {}): Promise<Ledger> {
    // Created here, where a failure gets the ledger's storage words (StorageError); then checked.
    const created: CreatedPaths = { firstDir: await writing(dir, () => mkdir(dir, { recursive: true, mode: 0o700 })), file: false, appended: false };
    try {
      ensurePrivateFolder(dir, { what: 'The ledger folder', othersMayRead: true });
      await takeLock(dir);
    } catch (error) {
      await removeIfUnused(dir, created);
      throw error;
    }
    try {
      const path = ledgerPath(dir);
      let bytes: Buffer | undefined;
      try {
        bytes = await readFile(path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
      if (bytes === undefined || bytes.length === 0) {
        bytes = Buffer.from(`${JSON.stringify(newHeader(options.passphrase))}\n`, 'utf8');
        await writeFileAtomic(path, bytes, { overwrite: true });
        created.file = true;
      }
      const { header, key, contents } = parseLedger(bytes, options.passphrase, path);
      const handle = await writing(path, () => open(path, fsConstants.O_WRONLY | fsConstants.O_APPEND));
      try {
        if (process.platform !== 'win32') await writing(path, () => chmod(path, 0o600));
        if (bytes[bytes.length - 1] !== 0x0a) {
          await writing(path, async () => {
            await handle.write('\n');
            await handle.sync();
          });
        }
      } catch (error) {
        await handle.close();
        throw error;
      }
      return new Ledger(dir, handle, key, header.ledgerId, contents, created);
    } catch (error) {
      await releaseLock(dir);
      await removeIfUnused(dir, created);
      throw error;
    }
  }

  get encrypted(): boolean {
    return this.key !== undefined;
  }

  /** What the ledger held when it was opened, plus what this run appended. */
  get entries(): readonly LedgerEntry[] {
    return this.contents.entries;
  }

  get problems(): readonly LedgerProblem[] {
    return this.contents.problems;
  }

  /** Every serial the ledger knows (for unique serials). */
  serials(): Set<string> {
    return new Set(this.contents.entries.map((e) => e.token.serial));
  }

  /** The batch run whose entries are being appended (set once by the batch); recorded with each entry. */
  run: BatchRun | undefined;

  /** Appends and fsyncs the `pending` record. Only after this resolves may the secret go to the key. */
  async appendPending(token: ProvisionToken, key: KeyIdentity, credentialId: string): Promise<LedgerEntry> {
    const time = new Date().toISOString();
    const id = randomBytes(8).toString('hex');
    const run = this.run;
    await this.append({ record: 'enroll', entry: id, state: 'pending', time, token: tokenToJson(token), key, credentialId, ...(run ? { run } : {}) });
    const entry: LedgerEntry = { id, state: 'pending', token: { ...token, secret: Uint8Array.from(token.secret) }, key, credentialId, enrolledAt: time, updatedAt: time, line: 0, ...(run ? { run } : {}) };
    this.contents.entries.push(entry);
    return entry;
  }

  /** Appends `done`; for HOTP with the key's counter after verification. */
  async markDone(entry: LedgerEntry, counterAfter?: number): Promise<void> {
    const time = new Date().toISOString();
    await this.append({ record: 'state', entry: entry.id, state: 'done', time, ...(counterAfter === undefined ? {} : { counter: counterAfter }) });
    entry.state = 'done';
    entry.updatedAt = time;
    entry.counterAfter = counterAfter;
  }

  /** Appends `failed`; `leftOnKey` when the credential could not be removed from the key. */
  async markFailed(entry: LedgerEntry, reason: string, leftOnKey: boolean): Promise<void> {
    const time = new Date().toISOString();
    await this.append({ record: 'state', entry: entry.id, state: 'failed', time, reason, leftOnKey });
    entry.state = 'failed';
    entry.updatedAt = time;
    entry.reason = reason;
    entry.leftOnKey = leftOnKey;
  }

  /**
   * `discardIfUnused`: a ledger this open created and nothing was appended to is removed, with the
   * folders the open created where they are empty (a programming run that ended before its first
   * token leaves nothing behind).
   */
  async close(options: { discardIfUnused?: boolean } = {}): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    if (handle) await handle.close();
    await releaseLock(this.dir);
    if (options.discardIfUnused === true) await removeIfUnused(this.dir, this.created);
  }

  private async append(record: LedgerRecord): Promise<void> {
    if (!this.handle) throw new KeytapError('DEVICE_ERROR', 'The ledger is closed.');
    const json = JSON.stringify(record);
    const line = this.key ? JSON.stringify(seal(this.key, this.ledgerId, json)) : json;
    const handle = this.handle;
    this.created.appended = true;
    // One write of the whole line, then fsync: the record is on disk before the caller goes on.
    await writing(ledgerPath(this.dir), async () => {
      await handle.write(`${line}\n`);
      await handle.sync();
    });
  }
}

/** Reads the ledger in `dir` without locking it (a programmer may be appending meanwhile). */
export async function readLedger(dir: string, options: LedgerOptions = {}): Promise<LedgerContents> {
  const path = ledgerPath(dir);
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new KeytapError('INPUT_FILE', `There is no ledger in ${dir} (no ${LEDGER_FILE}).`, { detail: { kind: 'ledger-missing', dir } });
    }
    throw inputFileError(path, error, 'the ledger');
  }
  return parseLedger(bytes, options.passphrase, path).contents;
}

function parseLedger(bytes: Buffer, passphrase: string | undefined, path: string): { header: Header; key: Buffer | undefined; contents: LedgerContents } {
  const text = bytes.toString('utf8');
  const lines = text.split('\n');
  const endsWithNewline = text.endsWith('\n');
  if (endsWithNewline) lines.pop();
  let header: Header;
  try {
    header = JSON.parse(lines[0] ?? '') as Header;
  } catch {
    throw new KeytapError('BAD_INPUT', `${path} is not a keytap ledger: line 1 is not its header.`);
  }
  if (header.format !== FORMAT || header.version !== VERSION || typeof header.ledgerId !== 'string') {
    throw new KeytapError('BAD_INPUT', `${path} is not a keytap ledger (version ${VERSION}).`);
  }
  const key = ledgerKey(header, passphrase, path);
  const contents: LedgerContents = { encrypted: key !== undefined, created: header.created, entries: [], problems: [] };
  const byId = new Map<string, LedgerEntry>();
  for (let i = 1; i < lines.length; i++) {
    const raw = lines[i]!;
    const lineNumber = i + 1;
    if (raw.trim() === '') continue;
    const torn = !endsWithNewline && i === lines.length - 1;
    let record: LedgerRecord;
    try {
      const json = key ? unseal(key, header.ledgerId, JSON.parse(raw) as SealedLine) : raw;
      record = JSON.parse(json) as LedgerRecord;
      if (typeof record !== 'object' || record === null || typeof record.entry !== 'string') throw new Error('not a record');
    } catch {
      contents.problems.push({
        line: lineNumber,
        message: torn
          ? 'the last line is incomplete (the programmer stopped in the middle of writing it); it is ignored'
          : key
            ? 'the line cannot be decrypted or read (damaged); it is ignored'
            : 'the line is not a complete record (damaged, or torn by a crash); it is ignored',
      });
      continue;
    }
    if (record.record === 'enroll') {
      let token: ProvisionToken;
      try {
        token = tokenFromJson(record.token);
      } catch {
        contents.problems.push({ line: lineNumber, message: 'the enroll record has an unreadable token; it is ignored' });
        continue;
      }
      const entry: LedgerEntry = {
        id: record.entry,
        state: 'pending',
        token,
        key: record.key,
        credentialId: record.credentialId,
        enrolledAt: record.time,
        updatedAt: record.time,
        line: lineNumber,
        ...(isBatchRun(record.run) ? { run: record.run } : {}),
      };
      byId.set(entry.id, entry);
      contents.entries.push(entry);
    } else if (record.record === 'state') {
      const entry = byId.get(record.entry);
      if (!entry) {
        contents.problems.push({ line: lineNumber, message: `a state record for an unknown entry ${record.entry}; it is ignored` });
        continue;
      }
      entry.state = record.state;
      entry.updatedAt = record.time;
      if (record.state === 'done') entry.counterAfter = record.counter;
      else {
        entry.reason = record.reason;
        entry.leftOnKey = record.leftOnKey === true;
      }
    } else {
      contents.problems.push({ line: lineNumber, message: 'an unknown kind of record; it is ignored' });
    }
  }
  return { header, key, contents };
}

function isBatchRun(value: unknown): value is BatchRun {
  if (typeof value !== 'object' || value === null) return false;
  const run = value as Record<string, unknown>;
  return typeof run.id === 'string' && typeof run.users === 'string' && typeof run.again === 'boolean';
}

function newHeader(passphrase: string | undefined): Header {
  const ledgerId = randomBytes(16).toString('hex');
  const base = { format: FORMAT, version: VERSION, created: new Date().toISOString(), ledgerId } as const;
  if (passphrase === undefined) return { ...base, encryption: null };
  if (passphrase.length === 0) throw new KeytapError('BAD_INPUT', 'The ledger passphrase must not be empty.');
  const salt = randomBytes(16);
  const key = deriveKey(passphrase, salt, SCRYPT);
  return {
    ...base,
    encryption: { cipher: 'aes-256-gcm', kdf: 'scrypt', salt: salt.toString('base64'), ...{ N: SCRYPT.N, r: SCRYPT.r, p: SCRYPT.p }, check: seal(key, ledgerId, CHECK_TEXT) },
  };
}

/** scrypt, synchronous: it runs once per ledger (about 100 ms), and keeps reading a ledger a plain function. */
function deriveKey(passphrase: string, salt: Uint8Array, params: { N: number; r: number; p: number }): Buffer {
  return scryptSync(Buffer.from(passphrase.normalize('NFC'), 'utf8'), salt, SCRYPT.keyLength, { N: params.N, r: params.r, p: params.p, maxmem: SCRYPT_MAXMEM });
}

function ledgerKey(header: Header, passphrase: string | undefined, path: string): Buffer | undefined {
  const encryption = header.encryption;
  if (!encryption) {
    if (passphrase !== undefined) {
      throw new KeytapError('BAD_INPUT', `The ledger ${path} is not encrypted, but a ledger passphrase was given.`, {
        hint: 'Leave out the passphrase (a ledger is encrypted, or not, from its first line).',
      });
    }
    return undefined;
  }
  if (passphrase === undefined) {
    throw new KeytapError('AUTH_REQUIRED', `The ledger ${path} is encrypted.`, { detail: { kind: 'ledger-encrypted', path } });
  }
  // The header is read from disk: its parameters are checked before scrypt runs, so that a damaged
  // or hostile header cannot make it run for hours or ask for gigabytes.
  if (encryption.N !== SCRYPT.N || encryption.r !== SCRYPT.r || encryption.p !== SCRYPT.p) {
    throw new KeytapError(
      'BAD_INPUT',
      `${path}: the scrypt parameters N=${String(encryption.N)}, r=${String(encryption.r)}, p=${String(encryption.p)} are not the ones keytap writes (N=${SCRYPT.N}, r=${SCRYPT.r}, p=${SCRYPT.p}); the header is damaged.`,
    );
  }
  const key = deriveKey(passphrase, Buffer.from(encryption.salt, 'base64'), encryption);
  try {
    if (unseal(key, header.ledgerId, encryption.check) !== CHECK_TEXT) throw new Error('check');
  } catch {
    throw new KeytapError('WRONG_PASSWORD', `The passphrase does not open the ledger ${path}.`);
  }
  return key;
}

function seal(key: Buffer, ledgerId: string, text: string): SealedLine {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(ledgerId, 'utf8'));
  const ct = Buffer.concat([cipher.update(text, 'utf8'), cipher.final()]);
  return { iv: iv.toString('base64'), ct: ct.toString('base64'), tag: cipher.getAuthTag().toString('base64') };
}

function unseal(key: Buffer, ledgerId: string, sealed: SealedLine): string {
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(sealed.iv, 'base64'));
  decipher.setAAD(Buffer.from(ledgerId, 'utf8'));
  decipher.setAuthTag(Buffer.from(sealed.tag, 'base64'));
  return Buffer.concat([decipher.update(Buffer.from(sealed.ct, 'base64')), decipher.final()]).toString('utf8');
}

function tokenToJson(token: ProvisionToken): TokenJson {
  return {
    serial: token.serial,
    secret: hexEncode(token.secret),
    type: token.type,
    algorithm: token.algorithm,
    digits: token.digits,
    period: token.period,
    counter: token.counter,
    touch: token.touch,
    upn: token.upn,
    issuer: token.issuer,
    account: token.account,
    manufacturer: token.manufacturer,
    model: token.model,
    displayName: token.displayName,
  };
}

function tokenFromJson(json: TokenJson): ProvisionToken {
  if (typeof json.serial !== 'string' || typeof json.secret !== 'string') throw new Error('token');
  return {
    serial: json.serial,
    secret: hexDecode(json.secret),
    type: json.type,
    algorithm: json.algorithm,
    digits: json.digits,
    period: json.period,
    counter: json.counter,
    touch: json.touch === true,
    upn: json.upn,
    issuer: json.issuer,
    account: json.account,
    manufacturer: json.manufacturer,
    model: json.model,
    ...(typeof json.displayName === 'string' ? { displayName: json.displayName } : {}),
  };
}

/**
 * The tokens a seed file made from the ledger holds: `done` entries (HOTP with the counter after
 * verification), and with `includePending` also `pending` entries and `failed` ones that may
 * still be on a key (HOTP with the initial counter: the key may or may not have advanced by one
 * reading, and an HOTP server's look-ahead window covers one ahead, not one behind). When a
 * serial appears more than once (a replacement key), the latest entry wins.
 */
export function ledgerTokens(
  entries: readonly LedgerEntry[],
  options: { includePending?: boolean | undefined } = {},
): { tokens: ProvisionToken[]; pending: LedgerEntry[]; leftOut: LedgerEntry[] } {
  const includePending = options.includePending === true;
  const chosen = new Map<string, LedgerEntry>();
  const position = new Map<LedgerEntry, number>();
  entries.forEach((entry, index) => {
    position.set(entry, index);
    if (entry.state === 'done' || (isUncertain(entry) && includePending)) {
      chosen.delete(entry.token.serial); // Map order follows the latest entry
      chosen.set(entry.token.serial, entry);
    }
  });
  const exported = new Set(chosen.values());
  const supersededByDone = (entry: LedgerEntry): boolean => {
    const latest = chosen.get(entry.token.serial);
    return latest !== undefined && latest.state === 'done' && position.get(latest)! > position.get(entry)!;
  };
  const tokens = [...chosen.values()].map((entry) => ({
    ...entry.token,
    counter: entry.token.type === 'HOTP' && entry.state === 'done' && entry.counterAfter !== undefined ? entry.counterAfter : entry.token.counter,
  }));
  return {
    tokens,
    pending: entries.filter((e) => isUncertain(e) && exported.has(e)),
    leftOut: entries.filter((e) => isUncertain(e) && !exported.has(e) && !supersededByDone(e)),
  };
}

/** The seed may be on a key, but it was never verified there. */
export function isUncertain(entry: LedgerEntry): boolean {
  return entry.state === 'pending' || (entry.state === 'failed' && entry.leftOnKey === true);
}

/** What opening a ledger created: the folders (the first of them, as mkdir reports it) and the file. */
interface CreatedPaths {
  firstDir: string | undefined;
  file: boolean;
  /** A record was appended (or attempted): the ledger is kept, whatever else happens. */
  appended: boolean;
}

/**
 * A run that ends before writing a record (refused, no key, Ctrl+C at the first "Insert key")
 * leaves nothing behind: the header-only ledger it created goes, and so do the folders it created,
 * where they are empty. A ledger or folder that was there before is never touched.
 */
async function removeIfUnused(dir: string, created: CreatedPaths): Promise<void> {
  if (created.appended) return;
  if (created.file) await rm(ledgerPath(dir), { force: true }).catch(() => undefined);
  if (created.firstDir === undefined) return;
  for (let folder = dir; ; folder = dirname(folder)) {
    try {
      await rmdir(folder);
    } catch {
      return; // not empty (seed files, a temp file), or gone: what is there stays
    }
    if (folder === created.firstDir || dirname(folder) === folder) return;
  }
}

async function takeLock(dir: string): Promise<void> {
  const path = join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    const handle = await writing(path, () => openExclusive(path));
    if (handle) {
      try {
        await writing(path, () => handle.writeFile(String(process.pid)));
      } catch (error) {
        await handle.close();
        await rm(path, { force: true });
        throw error;
      }
      await handle.close();
      await syncDirectory(dir);
      return;
    }
    const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim());
    if (Number.isInteger(pid) && pid > 0 && processAlive(pid)) {
      throw new KeytapError('BUSY', `Another keytap (pid ${pid}) is programming into ${dir}.`, { detail: { kind: 'ledger-busy', pid, dir } });
    }
    // Left behind by a programmer that was killed: the ledger itself is consistent, take over.
    await rm(path, { force: true });
  }
  throw new KeytapError('BUSY', `Cannot lock the ledger in ${dir}.`);
}

/** A new file, or undefined when it exists already. */
async function openExclusive(path: string): Promise<FileHandle | undefined> {
  try {
    return await open(path, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return undefined;
    throw error;
  }
}

async function releaseLock(dir: string): Promise<void> {
  const path = join(dir, LOCK_FILE);
  const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim());
  if (pid === process.pid) await rm(path, { force: true });
}
