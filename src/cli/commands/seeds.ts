/**
 * `keytap seeds check|codes|export`: seed files outside a programming run. Wiring only: the
 * formats are src/seeds, the ledger and the exports src/provision.
 */
import { basename, resolve } from 'node:path';
import type { Command } from 'commander';
import { Option } from 'commander';
import { KeytapError } from '../../errors.js';
import { ensurePrivateFolder } from '../../util/private-folder.js';
import { base32Encode, hexDecode } from '../../otp/encoding.js';
import { hotp, totp, validityWindow } from '../../otp/hotp.js';
import { foreignSeedFiles, writeExports } from '../../provision/export.js';
import { pskcReadOptions } from '../../provision/run.js';
import { fsError } from '../../util/atomic-file.js';
import { ledgerTokens, readLedger } from '../../provision/ledger.js';
import type { SeedFormat, SeedToken } from '../../seeds/index.js';
import { checkEntraCsv, seedFormat } from '../../seeds/index.js';
import { readSeedFile, readSeedFileBytes } from '../../provision/from-file.js';
import { activationRow } from '../../provision/activation.js';
import type { CliIo } from '../output.js';
import { userLabel } from '../output.js';
import { integerIn } from '../parse.js';
import { ALLOW_SLOW_KDF_HELP, parseFormats, pskcProtection } from './program.js';

export function registerSeeds(program: Command, io: CliIo): void {
  const seeds = program.command('seeds').description('check seed files, show their current codes, and write them from a ledger');

  seeds
    .command('check')
    .description('check an Entra ID CSV (tseeds.csv) before uploading it: every problem with its line; exit code 4 when anything fails')
    .argument('<file>', 'the CSV file')
    .action(async (file: string) => {
      const bytes = await readSeedFileBytes(file);
      const result = checkEntraCsv(bytes);
      const name = basename(file);
      for (const problem of result.problems) io.out(`${name}:${problem.line}: error: ${problem.message}`);
      for (const warning of result.warnings) io.out(`${name}:${warning.line}: warning: ${warning.message}`);
      if (!result.ok) {
        // Exit code 4 (as for "nothing matches"): the file is not fit for upload.
        throw new KeytapError('NO_MATCH', `${name}: ${result.problems.length} problem(s); fix them before uploading.`);
      }
      io.out(`${name}: OK, ${result.tokenCount} token(s)${result.warnings.length > 0 ? `, ${result.warnings.length} warning(s)` : ''}.`);
    });

  seeds
    .command('codes')
    .description("each token's current code (TOTP now; HOTP the next one); --activation adds seconds left and the next code, e.g. to activate tokens in the Entra portal")
    .argument('[file]', 'a seed file in any format keytap reads (or --ledger)')
    .addOption(new Option('--ledger <dir>', 'the tokens of an enrollment ledger (the --out of "keytap program") instead of a file'))
    .addOption(new Option('--ledger-passphrase <passphrase>', 'passphrase of an encrypted ledger').env('KEYTAP_LEDGER_PASSPHRASE'))
    .addOption(new Option('--activation', 'one row per token: serial, user, code, seconds left, next code'))
    .addOption(new Option('--watch', 'the activation view, redrawn every second on a terminal until Ctrl+C (printed once when not on a terminal)'))
    .addOption(new Option('--format <name>', 'the file format, when it cannot be told from the content'))
    .addOption(new Option('--passphrase <passphrase>', 'passphrase of an encrypted PSKC file').env('KEYTAP_PSKC_PASSPHRASE'))
    .addOption(new Option('--key <hex>', 'pre-shared key of an encrypted PSKC file').env('KEYTAP_PSKC_KEY'))
    .addOption(new Option('--allow-slow-kdf', ALLOW_SLOW_KDF_HELP))
    .addOption(new Option('--time <seconds>', 'compute the codes for this time (seconds since 1970) instead of now').argParser(integerIn(0, 2 ** 40)))
    .addOption(new Option('--show-secrets', 'print each secret (Base32) too'))
    .action(async (file: string | undefined, options: CodesOptions) => {
      if ((file === undefined) === (options.ledger === undefined)) throw new KeytapError('USAGE', 'Give a seed file or --ledger DIR (one of them).');
      if (options.watch && options.time !== undefined) throw new KeytapError('USAGE', '--watch shows the codes of now; --time prints them once for another time.');
      if (options.showSecrets && (options.activation || options.watch)) throw new KeytapError('USAGE', '--show-secrets applies to the plain list of codes, not to the activation view.');
      // Not --passphrase or --key: they may come from the environment, set for other commands.
      if (options.ledger !== undefined && (options.format !== undefined || options.allowSlowKdf)) {
        throw new KeytapError('USAGE', '--format and --allow-slow-kdf apply to a seed file, not to --ledger.');
      }
      const tokens = file !== undefined ? await codesFromFile(file, options, io) : await codesFromLedger(options.ledger!, options.ledgerPassphrase, io);
      try {
        if (options.watch && process.stdout.isTTY === true) await watchActivation(tokens, io);
        else if (options.activation || options.watch) printActivation(tokens, options.time ?? Date.now() / 1000, io);
        else printCodes(tokens, options.time ?? Date.now() / 1000, options.showSecrets === true, io);
      } finally {
        for (const token of tokens) token.secret.fill(0);
      }
    });

  seeds
    .command('export')
    .description('write seed files from the enrollment ledger of a programming run, at any time')
    .requiredOption('--ledger <dir>', 'the folder holding ledger.jsonl (the --out of "keytap program")')
    .requiredOption('--format <list>', 'formats, comma-separated: entra,pskc,dualshield,hexcsv,privacyidea,otpauth,graph')
    .addOption(new Option('--out <dir>', 'where to write the files (default: the ledger folder)'))
    .addOption(new Option('--force', 'overwrite existing files'))
    .addOption(new Option('--pskc-passphrase <passphrase>', 'encrypt PSKC files with a key derived from this passphrase (PBKDF2)').env('KEYTAP_PSKC_PASSPHRASE'))
    .addOption(new Option('--pskc-key <hex>', 'encrypt PSKC files with this pre-shared 16-byte AES key').env('KEYTAP_PSKC_KEY'))
    .addOption(new Option('--ledger-passphrase <passphrase>', 'passphrase of an encrypted ledger').env('KEYTAP_LEDGER_PASSPHRASE'))
    .addOption(new Option('--include-pending', 'also tokens that may be on a key but were never verified (a run that stopped)'))
    .action(
      async (options: {
        ledger: string;
        format: string;
        out?: string;
        force?: boolean;
        pskcPassphrase?: string;
        pskcKey?: string;
        ledgerPassphrase?: string;
        includePending?: boolean;
      }) => {
        if (options.pskcPassphrase !== undefined && options.pskcKey !== undefined) throw new KeytapError('USAGE', 'Give either --pskc-passphrase or --pskc-key, not both.');
        const formats: SeedFormat[] = parseFormats(options.format);
        const ledgerDir = resolve(options.ledger);
        const outDir = resolve(options.out ?? options.ledger);
        const contents = await readLedger(ledgerDir, { passphrase: options.ledgerPassphrase });
        for (const problem of contents.problems) io.err(`ledger.jsonl line ${problem.line}: ${problem.message}.`);
        const { tokens, pending, leftOut } = ledgerTokens(contents.entries, { includePending: options.includePending });
        for (const entry of pending) {
          io.err(`Including serial ${entry.token.serial} (${entry.state}${entry.state === 'failed' ? ', may be on the key' : ''}, ${entry.key.name}): it was never verified on the key.`);
        }
        if (leftOut.length > 0) {
          io.err(
            `Left out ${leftOut.length} token(s) that may be on a key but were never verified (${leftOut.map((e) => e.token.serial).join(', ')}); --include-pending exports them.`,
          );
        }
        if (tokens.length === 0) throw new KeytapError('NOT_FOUND', `The ledger in ${ledgerDir} has no token to export.`);
        try {
          ensurePrivateFolder(outDir, { what: 'The seed file folder', othersMayRead: true });
        } catch (error) {
          throw error instanceof KeytapError ? error : fsError(outDir, error);
        }
        const pskc = pskcProtection(options.pskcPassphrase, options.pskcKey);
        // Files holding only the ledger's own tokens (an earlier export, or a run killed before its
        // export) are rewritten; any other file needs --force, and the refusal says what it holds.
        const foreign = options.force
          ? []
          : await foreignSeedFiles(outDir, formats, new Set(contents.entries.map((e) => e.token.serial)), pskcReadOptions(pskc));
        const results = await writeExports(contents.entries, {
          formats,
          outDir,
          includePending: options.includePending,
          overwrite: new Map(foreign.map((f) => [f.path, f.reason])),
          write: { pskc },
        });
        for (const result of results) {
          if (result.written) io.out(`Wrote ${result.path}: ${result.tokenCount} token(s).`);
          else io.err(`Not written: ${basename(result.path)} (${result.format.title}) can carry none of the ledger's tokens for it.`);
          for (const skipped of result.skipped) io.err(`  left out of ${basename(result.path)} (${result.format.title}): serial ${skipped.serial}: ${skipped.reason}.`);
        }
        if (!results.some((r) => r.written)) throw new KeytapError('NOT_FOUND', `None of the ledger's tokens fits ${formats.map((f) => f.title).join(', ')}.`);
      },
    );
}

interface CodesOptions {
  ledger?: string;
  ledgerPassphrase?: string;
  activation?: boolean;
  watch?: boolean;
  format?: string;
  passphrase?: string;
  key?: string;
  allowSlowKdf?: boolean;
  time?: number;
  showSecrets?: boolean;
}

async function codesFromFile(file: string, options: CodesOptions, io: CliIo): Promise<SeedToken[]> {
  return readSeedFile(
    file,
    {
      ...(options.passphrase !== undefined ? { passphrase: options.passphrase } : {}),
      ...(options.key !== undefined ? { key: hexDecode(options.key) } : {}),
      allowSlowKdf: options.allowSlowKdf === true,
      onWarning: (warning) => io.err(`${basename(file)}${warning.line !== undefined ? `:${warning.line}` : ''}: warning: ${warning.message}`),
    },
    options.format !== undefined ? seedFormat(options.format) : undefined,
  );
}

/** The ledger's verified tokens, HOTP at the counter the key is at after verification. */
async function codesFromLedger(dir: string, passphrase: string | undefined, io: CliIo): Promise<SeedToken[]> {
  const ledgerDir = resolve(dir);
  const contents = await readLedger(ledgerDir, { passphrase });
  for (const problem of contents.problems) io.err(`ledger.jsonl line ${problem.line}: ${problem.message}.`);
  const { tokens, leftOut } = ledgerTokens(contents.entries);
  if (leftOut.length > 0) io.err(`Left out ${leftOut.length} token(s) that were never verified on a key (${leftOut.map((e) => e.token.serial).join(', ')}).`);
  if (tokens.length === 0) throw new KeytapError('NOT_FOUND', `The ledger in ${ledgerDir} has no verified token.`);
  return tokens;
}

/** A device with several keys (RFC 6030 Figure 10) shows each key's id after its serial. */
function tokenLabel(t: { serial: string; keyId?: string | undefined }): string {
  return t.keyId === undefined ? t.serial : `${t.serial}/${t.keyId}`;
}

function printCodes(tokens: readonly SeedToken[], time: number, showSecrets: boolean, io: CliIo): void {
  const width = Math.max(6, ...tokens.map((t) => tokenLabel(t).length));
  for (const token of tokens) {
    let code: string;
    let note: string;
    if (token.type === 'TOTP') {
      code = totp(token.secret, time, token.period, token.digits, token.algorithm);
      note = `TOTP ${token.period} s, ${Math.ceil(validityWindow(time, token.period).validTo - time)} s left`;
    } else {
      code = hotp(token.secret, token.counter, token.digits, token.algorithm);
      note = `HOTP counter ${token.counter}`;
    }
    const secret = showSecrets ? `  ${base32Encode(token.secret)}` : '';
    io.out(`${tokenLabel(token).padEnd(width)}  ${code.padEnd(8)}  ${(token.upn ?? '-').padEnd(24)}  ${note}${secret}`);
  }
}

/** The activation table: a header, then one row per token (HOTP codes last until used: no seconds left). */
function activationLines(tokens: readonly SeedToken[], time: number): string[] {
  const rows = tokens.map((t) => activationRow(t, time));
  const cells = rows.map((r) => [tokenLabel(r), userLabel(r.upn, r.displayName), r.code, r.secondsLeft === undefined ? '-' : `${r.secondsLeft} s`, r.next]);
  const table = [['SERIAL', 'USER', 'CODE', 'LEFT', 'NEXT'], ...cells];
  const widths = table[0]!.map((_, column) => Math.max(...table.map((row) => row[column]!.length)));
  return table.map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  '));
}

function printActivation(tokens: readonly SeedToken[], time: number, io: CliIo): void {
  for (const line of activationLines(tokens, time)) io.out(line);
}

/** Redraws the activation table at each whole second until Ctrl+C. */
async function watchActivation(tokens: readonly SeedToken[], io: CliIo): Promise<void> {
  const draw = (): void => {
    // Home and clear screen: written raw, since every io line is made printable.
    process.stdout.write('\x1b[H\x1b[2J');
    printActivation(tokens, Date.now() / 1000, io);
    io.out('');
    io.out('Refreshed every second; Ctrl+C to stop.');
  };
  await new Promise<void>((done) => {
    let timer: NodeJS.Timeout | undefined;
    const tick = (): void => {
      draw();
      timer = setTimeout(tick, 1000 - (Date.now() % 1000));
    };
    const stop = (): void => {
      clearTimeout(timer);
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      done();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    tick();
  });
}
