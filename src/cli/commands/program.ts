/**
 * `keytap program`: put an OATH token on a key (or, with --batch, on one key after another),
 * verify it, keep its seed in the ledger and write the seed files. The command's options, the
 * questions for what they leave out (../program-questions.ts) and the report; the work, the
 * choice of a token from a seed file included, is in src/provision.
 */
import { basename, resolve } from 'node:path';
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import { openAnyKey } from '../../device/open.js';
import type { OpenedKey } from '../../device/open.js';
import { FEITIAN_SERIAL_LENGTH } from '../../device/feitian/protocol.js';
import type { KeyDescriptor } from '../../device/discovery/enumerate.js';
import { KeyWatcher } from '../../device/discovery/watcher.js';
import { KeytapError, isKeytapError } from '../../errors.js';
import { readInputFile } from '../../util/input-file.js';
import { printable } from '../../util/printable.js';
import type { HashAlgorithm, OathType } from '../../otp/credential.js';
import { base32Encode, hexDecode } from '../../otp/encoding.js';
import type { BatchEvent } from '../../provision/batch.js';
import type { FormatChoice } from '../../provision/export.js';
import { skippedByReason, vendorFormats } from '../../provision/export.js';
import { chooseToken, readSeedFile, replacementToken } from '../../provision/from-file.js';
import { runBatch } from '../../provision/batch.js';
import type { BatchUser } from '../../provision/users.js';
import { BatchUsers, batchRunFor, parseUsersFile, usersWithTokens } from '../../provision/users.js';
import type { BatchOptions } from '../../provision/batch.js';
import { ProvisionRun } from '../../provision/run.js';
import type { StepHook } from '../../provision/steps.js';
import type { ProgramOneResult } from '../../provision/run.js';
import type { ProvisionToken, TokenParameters } from '../../provision/token.js';
import { DEFAULT_PARAMETERS, buildToken, checkSerial, checkTokenForRun, formatsNeedingUser, generateSecret, parseGivenSecret } from '../../provision/token.js';
import type { PskcProtection, SeedFormat } from '../../seeds/index.js';
import { PSKC_MAX_ITERATIONS, SEED_FORMAT_NAMES, checkSeedFileSize, graphFormat, seedFormat } from '../../seeds/index.js';
import type { CliCommand } from '../explain.js';
import { cliCommand, explainForCli } from '../explain.js';
import type { EntraSignInOptions } from './entra.js';
import { DEVICE_TEXT_HELP, addEntraSignInOptions, entraBatchHook, missingDeviceText, unknownDeviceNote } from './entra.js';
import type { KeyOptions } from '../key-options.js';
import { addKeyOptions, connectedKeys, keyReachedOver, onlyKey, withAnyKey, withConnectedAnyKey } from '../key-options.js';
import { readTypedCodeOnTerminal } from '../typed-code.js';
import type { CliIo } from '../output.js';
import { userLabel } from '../output.js';
import { hashAlgorithm, integerIn, oathType, readStdin } from '../parse.js';
import { openPrompter } from '../prompt.js';
import type { Answers } from '../program-questions.js';
import { askProgramQuestions, upnAnswer } from '../program-questions.js';

interface ProgramOptions extends KeyOptions, EntraSignInOptions {
  type?: OathType;
  algorithm?: HashAlgorithm;
  digits?: number;
  period?: number;
  counter?: number;
  secret?: string;
  allowShortSecret?: boolean;
  serial?: string;
  serialPrefix?: string;
  upn?: string;
  issuer?: string;
  account?: string;
  touch?: boolean;
  manufacturer?: string;
  model?: string;
  out?: string;
  formats?: string;
  pskcPassphrase?: string;
  pskcKey?: string;
  ledgerPassphrase?: string;
  replace?: boolean;
  force?: boolean;
  yes?: boolean;
  batch?: boolean;
  count?: number;
  from?: string;
  fromPassphrase?: string;
  fromKey?: string;
  format?: string;
  keyId?: string;
  allowSlowKdf?: boolean;
  showSecrets?: boolean;
  users?: string;
  again?: boolean;
  newRun?: boolean;
  entra?: boolean;
  entraActivate?: boolean;
}

export const DEFAULT_OUT_DIR = './keytap-seeds';
/** What the seed files default to (see vendorFormats): the label the help and the question show. */
export const DEFAULT_FORMATS = "the vendor tool's for the type, plus pskc";
export const ALLOW_SLOW_KDF_HELP = `read a passphrase-protected PSKC file that asks for more than ${PSKC_MAX_ITERATIONS} PBKDF2 iterations (slow)`;

/** `afterStep`: see provision/steps.ts; only the crash-safety tests pass one. */
export function registerProgram(program: Command, io: CliIo, afterStep?: StepHook): void {
  addEntraSignInOptions(addKeyOptions(
    program
      .command('program')
      .description('program a key (or with --batch one key after another) with a new OATH token, verify it, and write its seed files')
      .addOption(new Option('--type <type>', 'totp or hotp (default totp)').argParser(oathType))
      .addOption(new Option('--algorithm <hash>', 'SHA1, SHA256 or SHA512 (default SHA1)').argParser(hashAlgorithm))
      .addOption(new Option('--digits <n>', '6 or 8 (default 6)').argParser(oneOf([6, 8])))
      .addOption(new Option('--period <seconds>', 'TOTP time step, 30 or 60 (default 30)').argParser(oneOf([30, 60])))
      .addOption(new Option('--counter <n>', 'initial HOTP counter (default 0)').argParser(integerIn(0, 0xffffffff)))
      .addOption(new Option('--secret <secret>', 'the seed in Base32 or hex:… ("-" reads it from standard input); generated when left out'))
      .addOption(new Option('--allow-short-secret', 'accept a given secret shorter than 16 bytes (RFC 4226 asks for at least 16)'))
      .addOption(new Option('--serial <serial>', 'the token serial (generated when left out); with --from: which token of the file'))
      .addOption(new Option('--serial-prefix <prefix>', 'prefix of generated serials (default KT; a Feitian HOTP key gets 8 digits, no prefix)'))
      .addOption(new Option('--upn <upn>', 'the user the token is for (user@domain; Entra needs it)'))
      .addOption(new Option('--issuer <issuer>', 'issuer of the account on the key'))
      .addOption(new Option('--account <account>', 'account name on the key (default: the UPN, else the serial)'))
      .addOption(new Option('--touch', 'every code needs a touch of the key'))
      .addOption(new Option('--manufacturer <text>', `manufacturer written to the seed files ${DEVICE_TEXT_HELP}`))
      .addOption(new Option('--model <text>', `model written to the seed files ${DEVICE_TEXT_HELP}`))
      .addOption(new Option('--out <dir>', `folder for the ledger and the seed files (default ${DEFAULT_OUT_DIR})`))
      .addOption(new Option('--formats <list>', `seed files to write, comma-separated: ${SEED_FORMAT_NAMES.join(',')} (default ${DEFAULT_FORMATS})`))
      .addOption(new Option('--pskc-passphrase <passphrase>', 'encrypt PSKC files with a key derived from this passphrase (PBKDF2)').env('KEYTAP_PSKC_PASSPHRASE'))
      .addOption(new Option('--pskc-key <hex>', 'encrypt PSKC files with this pre-shared 16-byte AES key').env('KEYTAP_PSKC_KEY'))
      .addOption(new Option('--ledger-passphrase <passphrase>', 'encrypt the ledger (a new one) / open an encrypted ledger').env('KEYTAP_LEDGER_PASSPHRASE'))
      .addOption(new Option('--replace', 'replace an account of the same name on the key'))
      .addOption(new Option('--force', 'overwrite seed files in the folder that hold tokens the ledger does not know'))
      .addOption(new Option('--yes', 'take the defaults for everything not given; ask nothing'))
      .addOption(new Option('--batch', 'program one key after another: insert, wait, remove, next; Ctrl+C to finish'))
      .addOption(new Option('--users <file>', 'with --batch: the users, one key each, in order (a CSV with a UPN column, e.g. an Entra user export, or one UPN a line)'))
      .addOption(new Option('--again', 'with --users: also give a key to users the ledger already has a token for (an interrupted --again run is resumed)'))
      .addOption(new Option('--new-run', 'with --again: start another --again run instead of resuming the last one over the same users'))
      .addOption(new Option('--count <n>', 'with --batch: stop after this many keys').argParser(integerIn(1, 1_000_000)))
      .addOption(new Option('--from <file>', 're-program a (replacement) key with a token from a seed file'))
      .addOption(new Option('--from-passphrase <passphrase>', 'passphrase of an encrypted PSKC file given with --from').env('KEYTAP_FROM_PASSPHRASE'))
      .addOption(new Option('--from-key <hex>', 'pre-shared key of an encrypted PSKC file given with --from').env('KEYTAP_FROM_KEY'))
      .addOption(new Option('--allow-slow-kdf', `with --from: ${ALLOW_SLOW_KDF_HELP}`))
      .addOption(new Option('--format <name>', 'with --from: the format of the seed file, when it cannot be told from the content'))
      .addOption(new Option('--key-id <id>', 'with --from: which key of a device that has several (a PSKC Key Id)'))
      .addOption(new Option('--show-secrets', 'print the secret (Base32) of each programmed token'))
      .addOption(new Option('--entra', 'with --batch: create, assign and activate each token in Entra ID through Microsoft Graph while its key is inserted'))
      .addOption(new Option('--no-entra-activate', 'with --entra: assign without activating')),
  )).action(async (options: ProgramOptions, command: Command) => {
    await runProgram(options, command, io, afterStep);
  });
}

const SEED_FIELDS = ['type', 'algorithm', 'digits', 'period', 'counter', 'secret', 'serialPrefix'] as const;

async function runProgram(options: ProgramOptions, command: Command, io: CliIo, afterStep: StepHook | undefined): Promise<void> {
  const given = (name: string): boolean => {
    const source = command.getOptionValueSource(name);
    return source === 'cli' || source === 'env';
  };
  if (options.batch) {
    if (options.virtual !== undefined || options.device !== undefined) {
      throw new KeytapError('USAGE', '--batch waits for keys to be plugged in; --virtual and --device choose one key.', {
        hint: 'For virtual keys, plug them in with "keytap virtual start FILE".',
      });
    }
    for (const name of ['serial', 'secret', 'from'] as const) {
      if (options[name] !== undefined) throw new KeytapError('USAGE', `--${name} gives one token; --batch programs a new token on every key.`);
    }
  } else {
    for (const name of ['count', 'users'] as const) {
      if (options[name] !== undefined) throw new KeytapError('USAGE', `--${name} only applies together with --batch.`);
    }
  }
  if (options.users !== undefined && options.upn !== undefined) {
    throw new KeytapError('USAGE', '--users gives each key its own user; leave out --upn.');
  }
  if (options.again === true && !options.batch) throw new KeytapError('USAGE', '--again only applies together with --batch.');
  if (options.newRun === true && (options.again !== true || options.users === undefined)) throw new KeytapError('USAGE', '--new-run only applies together with --users and --again.');
  if (options.entra && !options.batch) throw new KeytapError('USAGE', '--entra enrolls each key of a --batch; for a ledger or seed file use "keytap entra push".');
  if (options.from === undefined) {
    for (const name of ['format', 'keyId', 'allowSlowKdf'] as const) {
      if (options[name] !== undefined) throw new KeytapError('USAGE', `--${kebab(name)} applies to the seed file of --from only.`);
    }
  } else {
    const conflicting = SEED_FIELDS.filter((name) => given(name));
    if (conflicting.length > 0) throw new KeytapError('USAGE', `The seed file says the token's parameters; leave out --${conflicting.map(kebab).join(', --')}.`);
  }
  if (options.pskcPassphrase !== undefined && options.pskcKey !== undefined) {
    throw new KeytapError('USAGE', 'Give either --pskc-passphrase or --pskc-key, not both.');
  }

  // The users file is checked whole before a question is asked or the ledger is opened.
  const users = options.users !== undefined ? parseUsersFile(await readInputFile(options.users, 'the users file', (size) => checkSeedFileSize(size, 'users file')), `users file ${options.users}`) : undefined;
  const interactive = process.stdin.isTTY === true && !options.yes;
  // What the command line gives is checked before the first question, so that no answer is lost to it.
  if (options.type === 'TOTP' && options.counter !== undefined) throw new KeytapError('USAGE', '--counter only applies to --type hotp.');
  if (options.secret !== undefined && options.secret !== '-') parseGivenSecret(options.secret, { allowShort: options.allowShortSecret });
  if (options.serial !== undefined && options.from === undefined) checkSerial(options.serial);
  pskcProtection(options.pskcPassphrase, options.pskcKey);
  const secretFromStdin = options.secret === '-' ? await readStdin() : undefined;
  const { answers, key: chosenKey } = interactive ? await askProgramQuestions(options, given, io) : { answers: {} as Answers, key: undefined };
  const parameters: TokenParameters = {
    type: answers.type ?? options.type ?? DEFAULT_PARAMETERS.type,
    algorithm: answers.algorithm ?? options.algorithm ?? DEFAULT_PARAMETERS.algorithm,
    digits: answers.digits ?? options.digits ?? DEFAULT_PARAMETERS.digits,
    period: answers.period ?? options.period ?? DEFAULT_PARAMETERS.period,
    counter: answers.counter ?? options.counter ?? DEFAULT_PARAMETERS.counter,
    upn: answers.upn ?? options.upn,
    issuer: answers.issuer ?? options.issuer,
    account: answers.account ?? options.account,
    touch: answers.touch ?? options.touch === true,
    manufacturer: answers.manufacturer ?? options.manufacturer,
    model: answers.model ?? options.model,
  };
  if (parameters.type === 'TOTP' && options.counter !== undefined) throw new KeytapError('USAGE', '--counter only applies to --type hotp.');
  const formatList = answers.formats ?? options.formats;
  const outDir = resolve(answers.out ?? options.out ?? DEFAULT_OUT_DIR);
  const pskc = pskcProtection(options.pskcPassphrase, options.pskcKey);
  const secretText = secretFromStdin ?? answers.secret ?? options.secret;
  const serialGiven = answers.serial ?? options.serial;

  // Everything that needs no key is checked before the ledger is opened or a key is touched.
  let fromToken: ProvisionToken | undefined;
  if (options.from !== undefined) fromToken = await tokenFromFile(options, parameters);
  const secret = secretText !== undefined ? parseGivenSecret(secretText, { allowShort: options.allowShortSecret }) : undefined;
  if (serialGiven !== undefined && fromToken === undefined) checkSerial(serialGiven);
  // A sample of the token(s) to come decides the default files (its serial and seed do not matter to them).
  // A batch on a terminal asks each key's user: the default files are those of a token with a user.
  const askingUsers = interactive && options.batch === true && users === undefined && parameters.upn === undefined;
  const sampleParameters = users ? { ...parameters, upn: users[0]!.upn } : askingUsers ? { ...parameters, upn: 'user@example.com' } : parameters;
  const sample = fromToken ?? buildToken(sampleParameters, secret ?? generateSecret(parameters.algorithm), serialGiven ?? 'KT00000000');
  const choice: FormatChoice = formatList !== undefined ? { formats: parseFormats(formatList), leftOut: [] } : vendorFormats(sample);
  const formats = choice.formats;
  // Entra through Graph takes TOTP, 6 digits, SHA-1/256, 30/60 s: refused now, not after the first key.
  if (options.entra) {
    const reason = graphFormat.accepts({ ...sample, upn: sample.upn ?? 'user@example.com' });
    if (reason !== null) throw new KeytapError('BAD_INPUT', `Entra ID cannot take this batch's tokens: ${reason}.`);
    if (options.secret === '-' && options.clientSecret === '-') throw new KeytapError('USAGE', 'Standard input can give --secret or --client-secret, not both.');
  }
  // Each user's own manufacturer and model must fit the formats too: found now, not at key 40.
  for (const user of users ?? []) {
    try {
      checkTokenForRun(buildToken({ ...parameters, upn: user.upn, manufacturer: user.manufacturer ?? parameters.manufacturer, model: user.model ?? parameters.model }, sample.secret, 'KT00000000'), formats, {
        allowShortSecret: true,
      });
    } catch (error) {
      if (!isKeytapError(error)) throw error;
      throw new KeytapError(error.code, `Users file ${options.users} line ${user.line} (${printable(user.upn)}): ${error.message}`, { hint: error.hint, detail: error.detail });
    }
  }
  // A single token is checked whole now, and its key settled, before the ledger folder is made:
  // a refusal (a comma in the manufacturer for the Entra CSV, two keys connected) leaves nothing.
  let onlyConnected: KeyDescriptor | undefined;
  if (!options.batch) {
    checkTokenForRun(fromToken ?? buildToken(parameters, secret ?? sample.secret, serialGiven ?? 'KT00000000'), formats, { allowShortSecret: options.allowShortSecret });
    if (chosenKey?.descriptor === undefined && options.virtual === undefined && options.device === undefined) onlyConnected = onlyKey(await connectedKeys(io, options));
  }
  // The Entra CSV and Graph require both: what they get when none is given is said, not silently made up.
  if (options.entra === true || formats.some((f) => f.name === 'entra' || f.name === 'graph')) {
    const own = (user?: BatchUser): { manufacturer: string | undefined; model: string | undefined } => ({
      manufacturer: user?.manufacturer ?? fromToken?.manufacturer ?? parameters.manufacturer,
      model: user?.model ?? fromToken?.model ?? parameters.model,
    });
    const missing = missingDeviceText(users ? users.map(own) : [own()]);
    const subject = users ? `The tokens of ${missing.count} user(s) in ${options.users} have` : options.batch ? 'The tokens have' : 'The token has';
    if (missing.count > 0) io.err(unknownDeviceNote(subject, missing.fields));
  }

  const run = await ProvisionRun.start({
    outDir,
    formats,
    pskc,
    force: options.force,
    serialPrefix: options.serialPrefix,
    allowShortSecret: options.allowShortSecret,
    leaveOutWithoutUser: formatList === undefined,
    passphrase: options.ledgerPassphrase,
    afterStep,
  });
  try {
    if (run.removedTempFiles.length > 0) io.err(`Removed ${run.removedTempFiles.length} unfinished temp file(s) an earlier run left in ${outDir}.`);
    if (run.repairedFiles.length > 0) {
      io.err(`Rewrote ${run.repairedFiles.map((p) => basename(p)).join(', ')} from the ledger: an earlier run stopped before writing its verified token(s) there.`);
    }
    for (const problem of run.ledger.problems) io.err(`Ledger line ${problem.line}: ${problem.message}.`);
    const uncertain = run.uncertainEntries();
    if (uncertain > 0) {
      io.err(`The ledger has ${uncertain} token(s) that may be on a key but were never verified (an earlier run stopped); "keytap seeds export --ledger ${outDir} --include-pending" writes them too.`);
    }
    const leftOutFor = (serial: string): void => {
      for (const { format, reason } of choice.leftOut) io.err(`Not writing ${format.defaultFileName(sample.type)} (${format.title}) for ${serial}: ${reason}.`);
    };
    if (options.batch) {
      const afterProgrammed = options.entra ? await entraBatchHook({ ...options, activate: options.entraActivate }, io) : undefined;
      await programBatch(run, parameters, options, io, cliCommand(command), { users, askUser: interactive && users === undefined && parameters.upn === undefined, formatsGiven: formatList !== undefined }, afterProgrammed);
    } else {
      // A generated serial is made once the key is open (a Feitian HOTP key takes 8 decimal
      // digits); everything else that needs no key is refused before the key is opened.
      const tokenSecret = secret ?? generateSecret(parameters.algorithm);
      if (serialGiven !== undefined && fromToken === undefined) run.serials.claim(serialGiven);
      run.check(fromToken ?? buildToken(parameters, tokenSecret, serialGiven ?? 'KT00000000'));
      let token: ProvisionToken | undefined;
      const program = (opened: OpenedKey, signal: AbortSignal): Promise<ProgramOneResult> => {
        token = fromToken ?? buildToken(parameters, tokenSecret, serialGiven ?? serialFor(run, opened));
        run.check(token);
        leftOutFor(`token ${token.serial}`);
        if (opened.kind === 'feitian' && serialGiven !== undefined && !/^\d+$/u.test(serialGiven)) {
          io.err(`Warning: the serial ${serialGiven} is not all digits; hyperhotp documents the key's serial as 8 decimal digits, and the key may not take another.`);
        }
        if (opened.kind === 'feitian' && options.virtual !== undefined) {
          io.err(`Note: a virtual key in this process cannot be touched to type its code; serve it with "keytap virtual start ${options.virtual}" and touch it with "keytap virtual touch".`);
        }
        return run.programOne(opened, token, {
          replace: options.replace,
          signal,
          onTouchNeeded: (phase) => io.err(touchMessage(phase, opened.kind === 'feitian')),
          readTypedCode: readTypedCodeOnTerminal(io),
        });
      };
      // The key picked before the questions is the one programmed: no second look that could pick another.
      const settled = chosenKey?.descriptor ?? onlyConnected;
      const result = settled ? await withConnectedAnyKey(settled, options, io, program) : await withAnyKey(options, io, program, 'writes');
      reportResult(io, token!, result, options.showSecrets === true);
      const outcome = result.outcome;
      if (outcome.status !== 'programmed') throw outcome.error;
    }
  } finally {
    await run.close();
  }
}

interface BatchUserSource {
  /** From --users, checked. */
  users: readonly BatchUser[] | undefined;
  /** Ask for each key's user on the terminal once the key is in. */
  askUser: boolean;
  /** --formats (or its question) named the files: one that needs a user makes the answer required. */
  formatsGiven: boolean;
}

async function programBatch(
  run: ProvisionRun,
  parameters: TokenParameters,
  options: ProgramOptions,
  io: CliIo,
  command: CliCommand,
  userSource: BatchUserSource,
  afterProgrammed?: BatchOptions['afterProgrammed'],
): Promise<void> {
  const stop = new AbortController();
  const abort = new AbortController();
  const onSigint = (): void => {
    if (!stop.signal.aborted) {
      io.err('Finishing… (Ctrl+C again to cancel the key in progress)');
      stop.abort();
    } else {
      abort.abort(new KeytapError('CANCELLED', 'Interrupted.'));
    }
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  try {
    // The run is recorded with each entry: an interrupted --again run, started again, is resumed.
    const batchRun = userSource.users ? batchRunFor(run.ledger.entries, userSource.users, { again: options.again, newRun: options.newRun }) : undefined;
    if (batchRun) run.ledger.run = batchRun.run;
    const users = userSource.users ? new BatchUsers(userSource.users, run.ledger.entries, { again: options.again, runId: batchRun?.run.id }) : undefined;
    // Check the parameters once with a sample token, so that a refused format stops the batch before the first key.
    const first = users?.withoutKey[0] ?? userSource.users?.[0];
    const sampleUser = first ? { upn: first.upn } : {};
    // Asked per key: the sample without a user must pass unless a user is then required (checked per answer).
    // With the default files a key without a user gets those that need none (the run leaves it out of the rest).
    const userRequired = userSource.askUser && userSource.formatsGiven && formatsNeedingUser(buildToken({ ...parameters, upn: undefined }, generateSecret(parameters.algorithm), 'KT00000000'), run.formats).length > 0;
    run.check(buildToken({ ...parameters, ...sampleUser, ...(userRequired ? { upn: 'user@example.com' } : {}) }, generateSecret(parameters.algorithm), 'KT00000000'));
    if (users) {
      const enrolled = users.alreadyEnrolled;
      if (batchRun?.resumed === true) {
        io.err(`Resuming the --again run over ${options.users} that the ledger has (--new-run starts another): ${enrolled.length} user(s) got a token from it and get no key: ${userList(enrolled)}.`);
      } else if (enrolled.length > 0) {
        io.err(`${enrolled.length} user(s) in ${options.users} already have a token in the ledger and get no key (--again gives them another): ${userList(enrolled)}.`);
      }
      if (users.unverified.length > 0) {
        io.err(
          `Of these, ${users.unverified.length} have a token that may be on a key but was never verified (an earlier run stopped in the middle of their key): ${userList(users.unverified)}. Check that key with "keytap list"; "keytap seeds export --ledger ${run.outDir} --include-pending" writes their tokens.`,
        );
      }
      if (!users.hasNext) {
        const resumed = batchRun?.resumed === true ? ' from the --again run it resumes (--new-run starts another)' : '';
        io.out(`Every user in ${options.users} has a token in the ledger${resumed}; no key to program. Ledger and seed files in ${run.outDir}.`);
        return;
      }
      io.err(`${users.withoutKey.length} user(s) to give a key to, in the order of ${options.users}.`);
    }
    // The user of the key in hand: given back when the key ends up without a token.
    let current: BatchUser | undefined;
    // Keys programmed whose token the follow-up (Entra ID enrollment, --entra) did not take.
    const notEnrolled: string[] = [];
    // A token a file leaves out (no user for the Entra CSV) is named once, not again after every later key.
    const leftOutSaid = new Set<string>();
    // A Feitian HOTP key takes serials of exactly 8 decimal digits.
    const tokenFor = (user: Partial<BatchUser>, opened: OpenedKey): ProvisionToken =>
      buildToken(
        {
          ...parameters,
          upn: user.upn ?? parameters.upn,
          displayName: user.displayName,
          manufacturer: user.manufacturer ?? parameters.manufacturer,
          model: user.model ?? parameters.model,
        },
        generateSecret(parameters.algorithm),
        serialFor(run, opened),
      );
    const readTypedCode = readTypedCodeOnTerminal(io);
    const summary = await runBatch({
      source: new KeyWatcher(),
      run,
      open: async (descriptor, signal) => {
        const opened = await openAnyKey(options.interface === undefined ? descriptor : keyReachedOver(descriptor, options.interface), signal);
        if (opened.kind === 'feitian') return opened;
        const key = opened.key;
        try {
          if (key.session.locked && options.password !== undefined) await key.session.unlock(options.password, signal);
        } catch (error) {
          await key.close().catch(() => undefined);
          throw error;
        }
        return opened;
      },
      readTypedCode: async (request) => {
        try {
          return await readTypedCode(request);
        } catch (error) {
          // Ctrl+C at the prompt reaches readline, not onSigint: end the batch after this key (erased again) as onSigint would.
          if (isKeytapError(error) && error.code === 'CANCELLED') stop.abort();
          throw error;
        }
      },
      hasNext: () => users?.hasNext ?? true,
      nextToken: async ({ number, opened }) => {
        if (users) {
          current = users.take();
          return current ? tokenFor(current, opened) : undefined;
        }
        if (!userSource.askUser) return tokenFor({}, opened);
        try {
          const upn = await askKeyUser(number, userRequired, io, (answer) => {
            // One token per user, as with --users: the ledger (this run's keys included) says who has one.
            if (options.again !== true && usersWithTokens(run.ledger.entries).has(answer.toLowerCase())) {
              return `${printable(answer)} already has a token in the ledger (--again gives a second one).`;
            }
            return null;
          });
          return tokenFor({ upn }, opened);
        } catch (error) {
          // Ctrl+C or the end of input while asked: finish the batch, as Ctrl+C does between keys.
          if (isKeytapError(error) && error.code === 'CANCELLED') {
            stop.abort();
            return undefined;
          }
          throw error;
        }
      },
      afterProgrammed,
      stop: stop.signal,
      abort: abort.signal,
      replace: options.replace,
      count: options.count,
      report: (event) => {
        if (current && (event.kind === 'error' || event.kind === 'result')) {
          // A token that may still be on the key counts as the user's (as the ledger says on a resume).
          const outcome = event.kind === 'result' ? event.result.outcome : undefined;
          if (!outcome || outcome.status === 'refused' || (outcome.status === 'failed' && !outcome.leftOnKey)) users?.giveBack(current);
          current = undefined;
        }
        if (event.kind === 'after-programmed-error') notEnrolled.push(event.token.serial);
        reportBatchEvent(io, event, options.showSecrets === true, command, leftOutSaid);
      },
    });
    io.out(`Summary: ${summary.programmed} programmed, ${summary.failed} failed, ${summary.skipped} skipped. Ledger and seed files in ${run.outDir}.`);
    if (users && users.withoutKey.length > 0) io.out(`Users still without a key (${users.withoutKey.length}): ${userList(users.withoutKey)}.`);
    if (notEnrolled.length > 0) {
      io.out(`Not enrolled in Entra ID (${notEnrolled.length}): ${serialList(notEnrolled)}; "keytap entra push --ledger ${run.outDir}" enrolls them once the cause is fixed (what is there already is matched, not created twice).`);
    }
    if (summary.failed > 0) throw new KeytapError('DEVICE_ERROR', `${summary.failed} key(s) failed; see above.`);
    if (notEnrolled.length > 0) throw new KeytapError('DEVICE_ERROR', `${notEnrolled.length} programmed key(s) are not enrolled in Entra ID; see above.`);
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
  }
}

/** The user for the key just inserted, asked on the terminal; undefined for none (where allowed). */
/** A generated serial: the run's prefix and 8 digits, or for a Feitian HOTP key the 8 decimal digits it expects. */
function serialFor(run: ProvisionRun, opened: OpenedKey): string {
  return opened.kind === 'feitian' ? run.serials.nextDecimal(FEITIAN_SERIAL_LENGTH) : run.serials.next();
}

async function askKeyUser(number: number, required: boolean, io: CliIo, refuse: (upn: string) => string | null): Promise<string | undefined> {
  // One prompter per question: between questions the batch's own Ctrl+C handling applies.
  const prompter = openPrompter({ input: process.stdin, output: process.stderr, err: (line) => io.err(line) });
  try {
    for (;;) {
      const upn = await prompter.question(`User for key ${number} (UPN, user@domain${required ? '' : '; Enter for none'})`, '', (text) => {
        upnAnswer(text);
        const refusal = refuse(text);
        if (refusal !== null) throw new Error(refusal);
        return text;
      });
      if (upn !== undefined || !required) return upn;
      io.err('  A user is required: the seed files asked for give every token to a user.');
    }
  } finally {
    prompter.close();
  }
}

/** Users as a summary names them: display name (where the file has one), UPN and line; the first few, the rest counted. */
function userList(users: readonly BatchUser[]): string {
  const named = users.slice(0, 10).map((u) => `${printable(userLabel(u.upn, u.displayName))} (line ${u.line})`);
  return users.length > 10 ? `${named.join(', ')} and ${users.length - 10} more` : named.join(', ');
}

function reportBatchEvent(io: CliIo, event: BatchEvent, showSecrets: boolean, command: CliCommand, leftOutSaid: Set<string>): void {
  switch (event.kind) {
    case 'ignored-present':
      io.err(`Leaving alone the key(s) already plugged in: ${event.keys.map((k) => k.name).join(', ')}. To program one, unplug it and plug it in again.`);
      return;
    case 'insert':
      io.err(`Insert key ${event.number} (Ctrl+C to finish)…`);
      return;
    case 'key-added':
      io.err(`Programming ${event.key.name}…`);
      return;
    case 'touch':
      io.err(touchMessage(event.phase, event.key.dialect === 'feitian'));
      return;
    case 'result':
      reportResult(io, event.token, event.result, showSecrets, event.number, command, leftOutSaid);
      return;
    case 'error':
      io.out(`Key ${event.number}: skipped (nothing written): ${event.key.name}: ${event.error.message}`);
      return;
    case 'after-programmed-error': {
      io.out(`Key ${event.number}: programmed serial ${event.token.serial}, but not enrolled in Entra ID: ${event.error.message}`);
      const { hint } = explainForCli(event.error, command);
      if (hint) io.out(`  ${hint}`);
      return;
    }
    case 'remove':
      io.err(`Remove ${event.key.name}.`);
      return;
  }
}

/** `leftOutSaid`: "format serial" pairs already named as left out (a batch); those are not named again. */
function reportResult(io: CliIo, token: ProvisionToken, result: ProgramOneResult, showSecrets: boolean, number?: number, command?: CliCommand, leftOutSaid?: Set<string>): void {
  const prefix = number === undefined ? '' : `Key ${number}: `;
  const outcome = result.outcome;
  // A Feitian key holds one token, named by its serial: no account name to tell.
  const hotpKey = outcome.entry?.key.dialect === 'feitian';
  if (outcome.status === 'programmed') {
    // The account on the key is the UPN; the display name (from a users file) says who that is.
    const forUser = token.displayName !== undefined ? `; for ${userLabel(token.upn, token.displayName)}` : '';
    io.out(
      hotpKey
        ? `${prefix}programmed serial ${token.serial} on ${outcome.entry.key.name}; verified by the code it typed${forUser}.`
        : `${prefix}programmed serial ${token.serial} as "${outcome.credentialId}" on ${outcome.entry.key.name}; verified${forUser}.`,
    );
    if (showSecrets) io.out(`  secret (Base32): ${base32Encode(token.secret)}`);
    for (const file of result.exports) {
      const unsaid = leftOutSaid ? file.skipped.filter((s) => !leftOutSaid.has(`${file.format.name} ${s.serial}`)) : file.skipped;
      for (const s of unsaid) leftOutSaid?.add(`${file.format.name} ${s.serial}`);
      const groups = skippedByReason(unsaid);
      if (file.written) {
        io.err(`  wrote ${basename(file.path)} (${file.format.title}): ${file.tokenCount} token(s)`);
        for (const group of groups) io.err(`    left out ${serialList(group.serials)}: ${group.reason}`);
      } else {
        // No file for these tokens (e.g. the ledger's TOTP tokens in a run writing the HOTP-only hex CSV): say so per format, without naming a file that does not exist.
        for (const group of groups) io.err(`  in no ${file.format.title} file: ${serialList(group.serials)}: ${group.reason}`);
      }
    }
  } else if (number !== undefined) {
    const what =
      outcome.status === 'refused'
        ? 'skipped (nothing written)'
        : outcome.leftOnKey
          ? `failed, and the ${hotpKey ? 'token' : 'account'} may still be on the key`
          : hotpKey
            ? 'failed (erased from the key again)'
            : 'failed (removed from the key again)';
    io.out(`${prefix}${what}: ${outcome.error.message}`);
    const { hint } = explainForCli(outcome.error, command);
    if (hint) io.out(`  ${hint}`);
  }
}

/** A few serials by name, the rest counted: one line per reason even for a large ledger. */
function serialList(serials: readonly string[]): string {
  const named = serials.slice(0, 5).join(', ');
  return serials.length > 5 ? `serials ${named} and ${serials.length - 5} more` : `serial${serials.length > 1 ? 's' : ''} ${named}`;
}

function touchMessage(phase: 'put' | 'verify' | 'delete', hotpKey: boolean): string {
  // A Feitian key has no accounts: the touch programs or erases its one token (it verifies by typing, see typed-code.ts).
  if (hotpKey) return phase === 'delete' ? 'Touch the key while it flashes to erase its HOTP token again…' : 'Touch the key while it flashes to program its HOTP token…';
  return phase === 'put' ? 'Touch your key to confirm storing the token…' : phase === 'verify' ? 'Touch your key to verify the token…' : 'Touch your key to remove the token again…';
}

export function parseFormats(list: string): SeedFormat[] {
  const names = list.split(',').map((n) => n.trim()).filter((n) => n !== '');
  const formats: SeedFormat[] = [];
  for (const name of names) {
    let format: SeedFormat;
    try {
      format = seedFormat(name);
    } catch (error) {
      throw new KeytapError('USAGE', error instanceof Error ? error.message : String(error));
    }
    if (!formats.includes(format)) formats.push(format);
  }
  return formats;
}

export function pskcProtection(passphrase: string | undefined, keyHex: string | undefined): PskcProtection {
  if (passphrase !== undefined) {
    if (passphrase.length === 0) throw new KeytapError('USAGE', 'The PSKC passphrase must not be empty.');
    return { kind: 'passphrase', passphrase };
  }
  if (keyHex !== undefined) {
    let key: Uint8Array;
    try {
      key = hexDecode(keyHex);
    } catch {
      throw new KeytapError('USAGE', 'The PSKC key must be 32 hex digits (16 bytes, AES-128).');
    }
    if (key.length !== 16) throw new KeytapError('USAGE', `The PSKC key must be 16 bytes (32 hex digits), not ${key.length}.`);
    return { kind: 'psk', key };
  }
  return { kind: 'none' };
}

/** The token `--from FILE [--serial S]` names, with the labels given anew. */
async function tokenFromFile(options: ProgramOptions, parameters: TokenParameters): Promise<ProvisionToken> {
  const file = options.from!;
  const key = options.fromKey !== undefined ? hexDecode(options.fromKey) : undefined;
  const format = options.format !== undefined ? seedFormat(options.format) : undefined;
  const tokens = await readSeedFile(file, { passphrase: options.fromPassphrase, key, allowSlowKdf: options.allowSlowKdf === true }, format);
  const choice = chooseToken(tokens, options.serial, options.keyId);
  switch (choice.kind) {
    case 'chosen':
      return replacementToken(choice.token, parameters);
    case 'no-such-serial':
      throw new KeytapError('NOT_FOUND', `${file} has no token with serial ${choice.serial}.`);
    case 'serial-needed':
      throw new KeytapError('USAGE', `${file} holds ${choice.count} tokens; choose one with --serial.`);
    case 'key-id-needed':
      throw new KeytapError('USAGE', `Serial ${choice.serial} in ${file} has ${choice.keyIds.length} keys (Id ${choice.keyIds.join(', ')}); choose one with --key-id.`);
    case 'no-such-key-id':
      throw new KeytapError('NOT_FOUND', `Serial ${choice.serial} in ${file} has no key with Id ${choice.keyId} (it has ${choice.keyIds.join(', ')}).`);
  }
}

export function oneOf(values: readonly number[]): (text: string) => number {
  return (text) => {
    const n = Number(text);
    if (!/^\d+$/u.test(text) || !values.includes(n)) throw new InvalidArgumentError(`must be ${values.join(' or ')}.`);
    return n;
  };
}

function kebab(name: string): string {
  return name.replace(/[A-Z]/gu, (c) => `-${c.toLowerCase()}`);
}
