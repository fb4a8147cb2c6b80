/**
 * The users of a batch (`program --batch --users FILE`): who gets the next key. The file is a CSV
 * with a UPN column — an Entra admin-center user export works as it is (`userPrincipalName`,
 * `displayName`, … ) — or a plain list of UPNs, one a line. Checked whole before the first key:
 * a batch that stops at user 40 over a typo on line 41 has programmed 40 keys nobody wanted.
 *
 * Who already has a token comes from the ledger (the UPN of every entry that is verified or may be
 * on a key), so an interrupted batch run again with the same file goes on with the next user.
 */
import { KeytapError } from '../errors.js';
import { printable } from '../util/printable.js';
import { checkUpn } from '../seeds/index.js';
import { checkSeedFileSize, controlCharacterProblem, decodeText, eachLine, parseCsvLine, shown } from '../seeds/text.js';
import { createHash, randomBytes } from 'node:crypto';
import type { BatchRun, LedgerEntry } from './ledger.js';
import { isUncertain } from './ledger.js';

export interface BatchUser {
  upn: string;
  displayName?: string | undefined;
  manufacturer?: string | undefined;
  model?: string | undefined;
  /** 1-based line in the users file. */
  line: number;
}

export interface UsersFileProblem {
  line: number;
  message: string;
}

/** The most problems one error lists; a file of 10,000 bad lines is named by its first ones. */
export const MAX_USER_PROBLEMS = 20;

/** Header names, compared without case, spaces, '_' and '-'. */
const COLUMNS = {
  upn: ['upn', 'userprincipalname', 'principalname', 'user'],
  displayName: ['displayname', 'name', 'fullname'],
  manufacturer: ['manufacturer'],
  model: ['model'],
} as const;

type Column = keyof typeof COLUMNS;

function headerKey(field: string): string {
  return field.trim().toLowerCase().replace(/[\s_-]+/gu, '');
}

function columnOf(field: string): Column | undefined {
  const key = headerKey(field);
  for (const [column, names] of Object.entries(COLUMNS) as Array<[Column, readonly string[]]>) {
    if (names.includes(key)) return column;
  }
  return undefined;
}

/**
 * Reads a users file's bytes. BAD_INPUT listing every problem with its line (up to
 * MAX_USER_PROBLEMS): no UPN column in a CSV header, a line that is not CSV, a UPN that is not one,
 * control characters, and a UPN that repeats an earlier line (case does not make two users).
 */
export function parseUsersFile(bytes: Uint8Array, what = 'users file'): BatchUser[] {
  checkSeedFileSize(bytes.length, what);
  const text = decodeText(bytes, what);
  const problems: UsersFileProblem[] = [];
  const users: BatchUser[] = [];
  const firstLine = new Map<string, number>();
  let columns: Array<Column | undefined> | undefined;
  let upnIndex = 0;
  let sawHeader = false;
  for (const { number, text: raw } of eachLine(text)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const fields = parseCsvLine(line);
    if (fields === null) {
      problems.push({ line: number, message: 'a quoted field is not closed' });
      continue;
    }
    if (!sawHeader) {
      sawHeader = true;
      const named = fields.map(columnOf);
      // A first line with a known column name is a header; a lone UPN (with "@") is data.
      if (named.includes('upn')) {
        columns = named;
        upnIndex = named.indexOf('upn');
        continue;
      }
      if (fields.length > 1 || !fields[0]!.includes('@')) {
        throw new KeytapError('BAD_INPUT', `The ${what} has no UPN column: line ${number} is not a header with "upn" or "userPrincipalName", nor a UPN.`, {
          hint: 'Start the file with a header line that has a "upn" (or "userPrincipalName") column, or list one UPN a line.',
        });
      }
    }
    const field = (column: Column): string | undefined => {
      const index = columns ? columns.indexOf(column) : column === 'upn' ? 0 : -1;
      const value = index < 0 ? undefined : fields[index]?.trim();
      return value === '' ? undefined : value;
    };
    if (!columns && fields.length > 1) {
      problems.push({ line: number, message: 'a list of UPNs has one UPN a line (a CSV needs a header line naming its columns)' });
      continue;
    }
    const upn = columns ? fields[upnIndex]?.trim() ?? '' : fields[0]!.trim();
    const user: BatchUser = { upn, displayName: field('displayName'), manufacturer: field('manufacturer'), model: field('model'), line: number };
    const control =
      controlCharacterProblem('UPN', upn) ??
      controlCharacterProblem('display name', user.displayName) ??
      controlCharacterProblem('manufacturer', user.manufacturer) ??
      controlCharacterProblem('model', user.model);
    if (control !== null) {
      problems.push({ line: number, message: control });
      continue;
    }
    if (upn === '') {
      problems.push({ line: number, message: 'the UPN is empty' });
      continue;
    }
    const bad = checkUpn(upn);
    if (bad !== null) {
      problems.push({ line: number, message: `${shown(upn)}: ${bad}` });
      continue;
    }
    const key = upn.toLowerCase();
    const earlier = firstLine.get(key);
    if (earlier !== undefined) {
      problems.push({ line: number, message: `${printable(upn)} repeats line ${earlier} (one key per user)` });
      continue;
    }
    firstLine.set(key, number);
    users.push(user);
  }
  if (problems.length > 0) throw usersFileError(what, problems);
  if (users.length === 0) throw new KeytapError('BAD_INPUT', `The ${what} lists no users.`);
  return users;
}

function usersFileError(what: string, problems: readonly UsersFileProblem[]): KeytapError {
  const listed = problems.slice(0, MAX_USER_PROBLEMS).map((p) => `line ${p.line}: ${p.message}`);
  const more = problems.length > MAX_USER_PROBLEMS ? `; and ${problems.length - MAX_USER_PROBLEMS} more` : '';
  return new KeytapError('BAD_INPUT', `The ${what} has ${problems.length} problem(s), so no key was programmed: ${listed.join('; ')}${more}.`, {
    hint: 'Fix the lines named and run again; nothing was written.',
  });
}

/** UPNs (lower case) that have a token in the ledger: verified, or possibly on a key. */
export function usersWithTokens(entries: readonly LedgerEntry[]): Set<string> {
  const upns = new Set<string>();
  for (const entry of entries) {
    if (entry.token.upn !== undefined && (entry.state === 'done' || isUncertain(entry))) upns.add(entry.token.upn.toLowerCase());
  }
  return upns;
}

/** What identifies a users file for a run: its users, lower case, in order (not its spacing, columns or display names). */
export function usersDigest(users: readonly BatchUser[]): string {
  return createHash('sha256').update(users.map((u) => u.upn.toLowerCase()).join('\n')).digest('hex');
}

/**
 * The batch run this one is: with `again`, the latest `--again` run of the ledger over the same
 * users is resumed (an interrupted one goes on where it stopped) unless `newRun` asks for a fresh
 * one; otherwise, and for the first run, a new id.
 */
export function batchRunFor(entries: readonly LedgerEntry[], users: readonly BatchUser[], options: { again?: boolean | undefined; newRun?: boolean | undefined }): { run: BatchRun; resumed: boolean } {
  const digest = usersDigest(users);
  const again = options.again === true;
  if (again && options.newRun !== true) {
    for (let i = entries.length - 1; i >= 0; i--) {
      const run = entries[i]!.run;
      if (run?.again === true && run.users === digest) return { run, resumed: true };
    }
  }
  return { run: { id: randomBytes(8).toString('hex'), users: digest, again }, resumed: false };
}

/**
 * The users of one batch run, in file order: each key takes the next user without a token.
 * `again` hands out the users the ledger has tokens for too (a second token each).
 */
export class BatchUsers {
  /** Users skipped because the ledger has a token for them (resuming a batch). */
  readonly alreadyEnrolled: BatchUser[];
  /** Of those, the ones whose only token was never verified (a run stopped in the middle of their key). */
  readonly unverified: BatchUser[];
  private readonly waiting: BatchUser[];

  /**
   * `again` with `runId`: the users who have a token from that run (the one being resumed) are
   * skipped, everyone else gets another.
   */
  constructor(users: readonly BatchUser[], entries: readonly LedgerEntry[], options: { again?: boolean | undefined; runId?: string | undefined } = {}) {
    const counted = options.again ? entries.filter((e) => options.runId !== undefined && e.run?.id === options.runId) : entries;
    const enrolled = usersWithTokens(counted);
    this.alreadyEnrolled = users.filter((u) => enrolled.has(u.upn.toLowerCase()));
    const verified = usersWithTokens(counted.filter((e) => e.state === 'done'));
    this.unverified = this.alreadyEnrolled.filter((u) => !verified.has(u.upn.toLowerCase()));
    const skip = new Set(this.alreadyEnrolled);
    this.waiting = users.filter((u) => !skip.has(u));
  }

  get hasNext(): boolean {
    return this.waiting.length > 0;
  }

  /** The next user, taken: a key that fails gives its user back with `giveBack`. */
  take(): BatchUser | undefined {
    return this.waiting.shift();
  }

  /** Puts a user whose key was not programmed first in line again. */
  giveBack(user: BatchUser): void {
    this.waiting.unshift(user);
  }

  /** Users still without a key, in file order. */
  get withoutKey(): readonly BatchUser[] {
    return this.waiting;
  }
}
