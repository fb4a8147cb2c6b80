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
import type { CliIo } from '../output.js';
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
    .description("each token's current code (TOTP now; HOTP the next one), e.g. to activate tokens in the Entra portal")
    .argument('<file>', 'a seed file in any format keytap reads')
    .addOption(new Option('--format <name>', 'the file format, when it cannot be told from the content'))
    .addOption(new Option('--passphrase <passphrase>', 'passphrase of an encrypted PSKC file').env('KEYTAP_PSKC_PASSPHRASE'))
    .addOption(new Option('--key <hex>', 'pre-shared key of an encrypted PSKC file').env('KEYTAP_PSKC_KEY'))
    .addOption(new Option('--allow-slow-kdf', ALLOW_SLOW_KDF_HELP))
    .addOption(new Option('--time <seconds>', 'compute the codes for this time (seconds since 1970) instead of now').argParser(integerIn(0, 2 ** 40)))
    .addOption(new Option('--show-secrets', 'print each secret (Base32) too'))
    .action(async (file: string, options: { format?: string; passphrase?: string; key?: string; allowSlowKdf?: boolean; time?: number; showSecrets?: boolean }) => {
      const tokens = await readSeedFile(
        file,
        {
          ...(options.passphrase !== undefined ? { passphrase: options.passphrase } : {}),
          ...(options.key !== undefined ? { key: hexDecode(options.key) } : {}),
          allowSlowKdf: options.allowSlowKdf === true,
          onWarning: (warning) => io.err(`${basename(file)}${warning.line !== undefined ? `:${warning.line}` : ''}: warning: ${warning.message}`),
        },
        options.format !== undefined ? seedFormat(options.format) : undefined,
      );
      const time = options.time ?? Date.now() / 1000;
      // A device with several keys (RFC 6030 Figure 10) shows each key's id after its serial.
      const label = (t: SeedToken): string => (t.keyId === undefined ? t.serial : `${t.serial}/${t.keyId}`);
      const width = Math.max(6, ...tokens.map((t) => label(t).length));
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
        const secret = options.showSecrets ? `  ${base32Encode(token.secret)}` : '';
        io.out(`${label(token).padEnd(width)}  ${code.padEnd(8)}  ${(token.upn ?? '-').padEnd(24)}  ${note}${secret}`);
        token.secret.fill(0);
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
