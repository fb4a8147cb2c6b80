/**
 * One programming run into an output folder: the ledger, the serials already taken, the export
 * formats, and after each key the seed files rewritten from the ledger. Single-key and batch
 * programming both go through `programOne`.
 */
import type { OpenKey, OpenedKey } from '../device/open.js';
import type { TypedCodeRequest } from './feitian.js';
import { programFeitianKey } from './feitian.js';
import type { PskcProtection, SeedFormat, SeedReadOptions } from '../seeds/index.js';
import { KeytapError, isKeytapError } from '../errors.js';
import { removeStaleTempFiles } from '../util/atomic-file.js';
import type { ExportFileResult } from './export.js';
import type { SeedFileReads } from './export.js';
import { existsError, foreignSeedFiles, staleSeedFiles, writeExports } from './export.js';
import type { LedgerOptions } from './ledger.js';
import { Ledger, StorageError, ledgerTokens } from './ledger.js';
import type { ProgramOutcome, TouchPhase } from './programmer.js';
import { programKey } from './programmer.js';
import type { StepHook } from './steps.js';
import type { ProvisionToken, RandomSource } from './token.js';
import { SerialAllocator, checkTokenForRun, formatsNeedingUser } from './token.js';

export interface RunOptions extends LedgerOptions {
  outDir: string;
  formats: readonly SeedFormat[];
  pskc?: PskcProtection | undefined;
  /** Replace seed files that are in the folder and hold tokens the ledger does not know. */
  force?: boolean | undefined;
  serialPrefix?: string | undefined;
  allowShortSecret?: boolean | undefined;
  /**
   * The formats are the default ones (what the vendor tool writes): a format that refuses a token
   * only for want of a user leaves it out of its file instead of refusing it, as the vendor tool
   * writes tseeds.csv only for tokens with a user. Formats asked for by name refuse it.
   */
  leaveOutWithoutUser?: boolean | undefined;
  randomDigit?: (() => number) | undefined;
  random?: RandomSource | undefined;
  /** Called after each durable step of programming a key (see steps.ts); a seam for the crash-safety tests. */
  afterStep?: StepHook | undefined;
}

export interface RunSummary {
  programmed: number;
  failed: number;
  skipped: number;
}

export interface ProgramOneOptions {
  replace?: boolean | undefined;
  signal?: AbortSignal | undefined;
  onTouchNeeded?: ((phase: TouchPhase) => void) | undefined;
  now?: (() => number) | undefined;
  /** A Feitian HOTP key verifies by typing its code: this reads it (feitian.ts). Required for such keys. */
  readTypedCode?: ((request: TypedCodeRequest) => Promise<string>) | undefined;
}

/** An OATH key's OpenKey as an OpenedKey. */
export function asOpenedKey(key: OpenKey | OpenedKey): OpenedKey {
  return 'kind' in key ? key : { kind: 'oath', key };
}

export interface ProgramOneResult {
  outcome: ProgramOutcome;
  exports: ExportFileResult[];
}

export class ProvisionRun {
  readonly summary: RunSummary = { programmed: 0, failed: 0, skipped: 0 };
  readonly serials: SerialAllocator;
  private keyNumber = 0;
  /** Seed files the start rewrote because they lacked verified tokens (an earlier run was killed before writing them). */
  repairedFiles: string[] = [];

  private constructor(
    readonly ledger: Ledger,
    private readonly options: RunOptions,
    readonly removedTempFiles: string[],
  ) {
    this.serials = new SerialAllocator(ledger.serials(), options.serialPrefix, options.randomDigit);
  }

  /**
   * Opens (or creates) the ledger and checks, before any key is touched, that the seed files it
   * will rewrite are its own: a file holding tokens the ledger does not know needs --force.
   */
  static async start(options: RunOptions): Promise<ProvisionRun> {
    // Opening the ledger creates the folder and takes its lock; temp files are removed under the lock.
    const ledger = await Ledger.open(options.outDir, options);
    let removed: string[];
    try {
      removed = await removeStaleTempFiles(options.outDir);
      const read: SeedReadOptions = pskcReadOptions(options.pskc);
      const reads: SeedFileReads = new Map();
      if (!options.force) {
        const [foreign] = await foreignSeedFiles(options.outDir, options.formats, ledger.serials(), read, reads);
        if (foreign) throw existsError(foreign.path, foreign.reason);
      }
      const run = new ProvisionRun(ledger, options, removed);
      // A run killed between a token's `done` record and the export left files without it: they
      // are made whole again before anything else happens.
      run.repairedFiles = await staleSeedFiles(ledger.entries, options.formats, options.outDir, read, reads);
      if (run.repairedFiles.length > 0) await run.export(0);
      return run;
    } catch (error) {
      await ledger.close({ discardIfUnused: true });
      throw error;
    }
  }

  get outDir(): string {
    return this.options.outDir;
  }

  get formats(): readonly SeedFormat[] {
    return this.options.formats;
  }

  /** The refusals that need no key (short secret, a format that cannot take the token). */
  check(token: ProvisionToken): void {
    const needingUser = this.options.leaveOutWithoutUser ? formatsNeedingUser(token, this.options.formats) : [];
    checkTokenForRun(token, this.options.formats.filter((format) => !needingUser.includes(format)), { allowShortSecret: this.options.allowShortSecret });
  }

  /** Programs and verifies one key, counts the outcome, and rewrites the seed files when the ledger changed. */
  async programOne(key: OpenKey | OpenedKey, token: ProvisionToken, options: ProgramOneOptions = {}): Promise<ProgramOneResult> {
    this.check(token);
    const keyNumber = ++this.keyNumber;
    const opened = asOpenedKey(key);
    const common = { ...options, ledger: this.ledger, keyNumber, afterStep: this.options.afterStep };
    let outcome: ProgramOutcome;
    if (opened.kind === 'oath') {
      outcome = await programKey(opened.key, token, common);
    } else {
      const { readTypedCode } = options;
      if (readTypedCode === undefined) throw new KeytapError('UNSUPPORTED', `${opened.key.name} types its codes, and nothing here can read what it types.`);
      outcome = await programFeitianKey(opened.key, token, { ...common, readTypedCode });
    }
    if (outcome.status === 'programmed') this.summary.programmed++;
    else if (outcome.status === 'failed') this.summary.failed++;
    else this.summary.skipped++;
    const exports = outcome.status === 'programmed' ? await this.export(keyNumber) : [];
    return { outcome, exports };
  }

  /** Rewrites every seed file from the ledger (done entries only). */
  async export(keyNumber = this.keyNumber): Promise<ExportFileResult[]> {
    try {
      return await writeExports(this.ledger.entries, {
      formats: this.options.formats,
      outDir: this.options.outDir,
      overwrite: true,
      write: { pskc: this.options.pskc },
      beforeCommit: () => this.options.afterStep?.('mid-export', keyNumber),
      });
    } catch (error) {
      if (!isKeytapError(error)) throw error;
      throw new StorageError(error.code, `${error.message} The ledger has every seed, so the files can be written again from it.`, {
        hint: error.hint,
        detail: { kind: 'seed-files-not-written', ledgerDir: this.options.outDir },
        cause: error,
      });
    }
  }

  /** Entries that may be on a key but were never verified (from a crash in an earlier run). */
  uncertainEntries(): number {
    return ledgerTokens(this.ledger.entries).leftOut.length;
  }

  /** Closes the ledger; one this run created and wrote nothing to goes, with the folder it made. */
  async close(): Promise<void> {
    await this.ledger.close({ discardIfUnused: true });
  }
}

export function pskcReadOptions(pskc: PskcProtection | undefined): SeedReadOptions {
  if (pskc?.kind === 'passphrase') return { passphrase: pskc.passphrase };
  if (pskc?.kind === 'psk') return { key: pskc.key };
  return {};
}
