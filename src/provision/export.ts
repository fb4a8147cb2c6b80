/**
 * Seed files from the ledger. Each file is always the whole picture — rewritten from the ledger,
 * atomically, mode 0600 — so a crash between two keys (or in the middle of an export) can never
 * leave a file that lacks a programmed token: the next export (or `keytap seeds export`) writes
 * it complete again.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { KeytapError, isKeytapError } from '../errors.js';
import type { SeedFormat, SeedReadOptions, SeedToken, SeedWriteOptions } from '../seeds/index.js';
import { MAX_SEED_FILE_BYTES, dualShieldFormat, entraFormat, hexCsvFormat, pskcFormat } from '../seeds/index.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import type { LedgerEntry } from './ledger.js';
import { ledgerTokens } from './ledger.js';
import { formatsRefusing } from './token.js';

export interface ExportFileResult {
  format: SeedFormat;
  path: string;
  /** False when the format can carry none of the tokens meant for this file: nothing was written. */
  written: boolean;
  tokenCount: number;
  /** Tokens this format cannot carry (e.g. HOTP for Entra), with the reason. */
  skipped: Array<{ serial: string; reason: string }>;
}

/** Skipped tokens by reason, in the order the reasons first occur, so that a report names each reason once. */
export function skippedByReason(skipped: ReadonlyArray<{ serial: string; reason: string }>): Array<{ reason: string; serials: string[] }> {
  const groups = new Map<string, string[]>();
  for (const { serial, reason } of skipped) {
    const serials = groups.get(reason);
    if (serials) serials.push(serial);
    else groups.set(reason, [serial]);
  }
  return [...groups].map(([reason, serials]) => ({ reason, serials }));
}

export interface ExportPlan {
  format: SeedFormat;
  fileName: string;
  tokens: SeedToken[];
  skipped: Array<{ serial: string; reason: string }>;
}

export interface FormatChoice {
  formats: SeedFormat[];
  /** The vendor's formats that cannot carry the token, each with the reason (e.g. Entra without a user). */
  leftOut: Array<{ format: SeedFormat; reason: string }>;
}

/**
 * The seed files Deepnet's SafeKey programming tool writes for the token's type
 * (docs/seed-formats.md §3.2), plus PSKC: TOTP tseeds.csv (Entra) and tseeds.xml (DualShield);
 * HOTP hseeds.csv (hex CSV) and hseeds.xml (DualShield). What cannot carry the token is left out
 * with the reason: above all the Entra CSV, which needs a user (UPN) for every token.
 */
export function vendorFormats(token: SeedToken): FormatChoice {
  const candidates = token.type === 'TOTP' ? [entraFormat, dualShieldFormat, pskcFormat] : [hexCsvFormat, dualShieldFormat, pskcFormat];
  const leftOut = formatsRefusing(token, candidates);
  return { formats: candidates.filter((format) => !leftOut.some((r) => r.format === format)), leftOut };
}

/** Which tokens go into which file: per format, one file per default file name (tseeds / hseeds). */
export function planExports(tokens: readonly SeedToken[], formats: readonly SeedFormat[]): ExportPlan[] {
  const plans: ExportPlan[] = [];
  for (const format of formats) {
    const byFile = new Map<string, ExportPlan>();
    for (const token of tokens) {
      const fileName = format.defaultFileName(token.type);
      let plan = byFile.get(fileName);
      if (!plan) {
        plan = { format, fileName, tokens: [], skipped: [] };
        byFile.set(fileName, plan);
      }
      const reason = format.accepts(token);
      if (reason === null) plan.tokens.push(token);
      else plan.skipped.push({ serial: token.serial, reason });
    }
    plans.push(...byFile.values());
  }
  return plans;
}

export interface WriteExportsOptions {
  formats: readonly SeedFormat[];
  outDir: string;
  includePending?: boolean | undefined;
  /** Replace files that exist: all, none, or all but those named here with the reason they must stay. */
  overwrite: boolean | ReadonlyMap<string, string>;
  write?: SeedWriteOptions | undefined;
  /** Test seam: called between writing a temp file and giving it its name. */
  beforeCommit?: (() => void) | undefined;
}

/**
 * Writes every requested format from the ledger's entries. A file whose format can carry none of
 * its tokens is not written, and is in the results (written: false) with the reason for each token,
 * so that no requested format is dropped without a word.
 */
export async function writeExports(entries: readonly LedgerEntry[], options: WriteExportsOptions): Promise<ExportFileResult[]> {
  const { tokens } = ledgerTokens(entries, { includePending: options.includePending });
  const allPlans = planExports(tokens, options.formats);
  const plans = allPlans.filter((plan) => plan.tokens.length > 0);
  const keep = (path: string): string | undefined =>
    typeof options.overwrite === 'boolean' ? (options.overwrite ? undefined : 'the file exists') : options.overwrite.get(path);
  const overwriteFor = (path: string): boolean => keep(path) === undefined;
  // Refuse before the first file is written, not halfway through the list.
  for (const plan of plans) {
    const path = join(options.outDir, plan.fileName);
    const reason = keep(path);
    if (reason !== undefined && (await exists(path))) throw existsError(path, reason);
  }
  const results: ExportFileResult[] = [];
  for (const plan of allPlans) {
    const path = join(options.outDir, plan.fileName);
    if (plan.tokens.length === 0) {
      results.push({ format: plan.format, path, written: false, tokenCount: 0, skipped: plan.skipped });
      continue;
    }
    const bytes = plan.format.write(plan.tokens, options.write);
    await writeFileAtomic(path, bytes, { mode: 0o600, overwrite: overwriteFor(path), beforeCommit: options.beforeCommit });
    bytes.fill(0);
    results.push({ format: plan.format, path, written: true, tokenCount: plan.tokens.length, skipped: plan.skipped });
  }
  return results;
}

/** What a seed file in the output folder holds, read once per run start (see SeedFileReads). */
type HeldSerials = { kind: 'missing' } | { kind: 'unreadable'; reason: string } | { kind: 'held'; serials: ReadonlySet<string> };

/**
 * Seed files already read, by path: a run's start asks of each file both whether it may be
 * rewritten and whether it lacks a verified token, and an encrypted PSKC file costs a PBKDF2
 * derivation per read.
 */
export type SeedFileReads = Map<string, Promise<HeldSerials>>;

function heldSerials(path: string, format: SeedFormat, read: SeedReadOptions, reads: SeedFileReads | undefined): Promise<HeldSerials> {
  const known = reads?.get(path);
  if (known) return known;
  const held = readHeldSerials(path, format, read);
  reads?.set(path, held);
  return held;
}

async function readHeldSerials(path: string, format: SeedFormat, read: SeedReadOptions): Promise<HeldSerials> {
  let bytes: Buffer;
  try {
    if ((await stat(path)).size > MAX_SEED_FILE_BYTES) return { kind: 'unreadable', reason: `it exists and is larger than any seed file keytap reads (${MAX_SEED_FILE_BYTES / 2 ** 20} MB)` };
    bytes = await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing' };
    throw error;
  }
  try {
    const tokens = format.read(bytes, read);
    for (const token of tokens) token.secret.fill(0);
    return { kind: 'held', serials: new Set(tokens.map((t) => t.serial)) };
  } catch (error) {
    return { kind: 'unreadable', reason: `it exists and cannot be read as ${format.title}${isKeytapError(error) ? ` (${error.message.replace(/\.$/u, '')})` : ''}` };
  } finally {
    bytes.fill(0);
  }
}

/**
 * Whether a seed file that is already in the output folder may be rewritten without --force:
 * only when every token in it is in the ledger too (it came from an earlier run into this folder),
 * so that rewriting it from the ledger loses nothing. Returns the reason when it may not.
 */
export async function existingFileConflict(
  path: string,
  format: SeedFormat,
  ledgerSerials: ReadonlySet<string>,
  read: SeedReadOptions = {},
  reads?: SeedFileReads,
): Promise<string | null> {
  const held = await heldSerials(path, format, read, reads);
  if (held.kind === 'missing') return null;
  if (held.kind === 'unreadable') return held.reason;
  const foreign = [...held.serials].filter((serial) => !ledgerSerials.has(serial));
  if (foreign.length > 0) return `it exists and holds ${foreign.length} token(s) that are not in the ledger (e.g. serial ${foreign[0]!})`;
  return null;
}

/**
 * The seed files of `formats` in `outDir` that may not be rewritten without --force (see
 * existingFileConflict), each with the reason.
 */
export async function foreignSeedFiles(
  outDir: string,
  formats: readonly SeedFormat[],
  ledgerSerials: ReadonlySet<string>,
  read: SeedReadOptions = {},
  reads?: SeedFileReads,
): Promise<Array<{ path: string; reason: string }>> {
  const found: Array<{ path: string; reason: string }> = [];
  const seen = new Set<string>();
  for (const format of formats) {
    for (const type of ['TOTP', 'HOTP'] as const) {
      const path = join(outDir, format.defaultFileName(type));
      if (seen.has(path)) continue;
      seen.add(path);
      const reason = await existingFileConflict(path, format, ledgerSerials, read, reads);
      if (reason !== null) found.push({ path, reason });
    }
  }
  return found;
}

/**
 * The seed files in `outDir` that lack a token the ledger has verified, or are missing or cannot
 * be read: what a programmer killed between a token's `done` record and rewriting the files leaves behind.
 */
export async function staleSeedFiles(
  entries: readonly LedgerEntry[],
  formats: readonly SeedFormat[],
  outDir: string,
  read: SeedReadOptions = {},
  reads?: SeedFileReads,
): Promise<string[]> {
  const { tokens } = ledgerTokens(entries);
  const stale: string[] = [];
  for (const plan of planExports(tokens, formats)) {
    if (plan.tokens.length === 0) continue;
    const path = join(outDir, plan.fileName);
    // A file that cannot be read is rewritten too: the write then says what is wrong with the path.
    const held = await heldSerials(path, plan.format, read, reads).catch(() => undefined);
    if (held?.kind !== 'held' || plan.tokens.some((t) => !held.serials.has(t.serial))) stale.push(path);
  }
  return stale;
}

export function existsError(path: string, reason: string): KeytapError {
  return new KeytapError('EXISTS', `Not overwriting ${path}: ${reason}.`, { detail: { kind: 'file-exists', path } });
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
