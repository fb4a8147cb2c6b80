/**
 * `keytap program`: put an OATH token on a key (or, with --batch, on one key after another),
 * verify it, keep its seed in the ledger and write the seed files. The command's options, the
 * questions for what they leave out (asked through ../prompt.ts) and the report; the work, the
 * choice of a token from a seed file included, is in src/provision.
 */
import { basename, resolve } from 'node:path';
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import { openOathSession } from '../../device/open.js';
import { KeyWatcher } from '../../device/discovery/watcher.js';
import { KeytapError } from '../../errors.js';
import type { HashAlgorithm, OathType } from '../../otp/credential.js';
import { base32Encode, hexDecode } from '../../otp/encoding.js';
import type { BatchEvent } from '../../provision/batch.js';
import { chooseToken, readSeedFile, replacementToken } from '../../provision/from-file.js';
import { runBatch } from '../../provision/batch.js';
import type { BatchOptions } from '../../provision/batch.js';
import { ProvisionRun } from '../../provision/run.js';
import type { StepHook } from '../../provision/steps.js';
import type { ProgramOneResult } from '../../provision/run.js';
import type { ProvisionToken, TokenParameters } from '../../provision/token.js';
import { DEFAULT_PARAMETERS, buildToken, checkSerial, generateSecret, parseGivenSecret } from '../../provision/token.js';
import type { PskcProtection, SeedFormat } from '../../seeds/index.js';
import { PSKC_MAX_ITERATIONS, SEED_FORMAT_NAMES, seedFormat } from '../../seeds/index.js';
import type { CliCommand } from '../explain.js';
import { cliCommand, explainForCli } from '../explain.js';
import type { EntraSignInOptions } from './entra.js';
import { addEntraSignInOptions, entraBatchHook } from './entra.js';
import type { KeyOptions } from '../key-options.js';
import { addKeyOptions, withKey } from '../key-options.js';
import type { CliIo } from '../output.js';
import { hashAlgorithm, integerIn, oathType, readStdin } from '../parse.js';
import { openPrompter, yesNo } from '../prompt.js';

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
  entra?: boolean;
  entraActivate?: boolean;
}

export const DEFAULT_OUT_DIR = './keytap-seeds';
export const DEFAULT_FORMATS = 'pskc';
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
      .addOption(new Option('--serial-prefix <prefix>', 'prefix of generated serials (default KT)'))
      .addOption(new Option('--upn <upn>', 'the user the token is for (user@domain; Entra needs it)'))
      .addOption(new Option('--issuer <issuer>', 'issuer of the account on the key'))
      .addOption(new Option('--account <account>', 'account name on the key (default: the UPN, else the serial)'))
      .addOption(new Option('--touch', 'every code needs a touch of the key'))
      .addOption(new Option('--manufacturer <text>', 'manufacturer written to the seed files'))
      .addOption(new Option('--model <text>', 'model written to the seed files'))
      .addOption(new Option('--out <dir>', `folder for the ledger and the seed files (default ${DEFAULT_OUT_DIR})`))
      .addOption(new Option('--formats <list>', `seed files to write, comma-separated: ${SEED_FORMAT_NAMES.join(',')} (default ${DEFAULT_FORMATS})`))
      .addOption(new Option('--pskc-passphrase <passphrase>', 'encrypt PSKC files with a key derived from this passphrase (PBKDF2)').env('KEYTAP_PSKC_PASSPHRASE'))
      .addOption(new Option('--pskc-key <hex>', 'encrypt PSKC files with this pre-shared 16-byte AES key').env('KEYTAP_PSKC_KEY'))
      .addOption(new Option('--ledger-passphrase <passphrase>', 'encrypt the ledger (a new one) / open an encrypted ledger').env('KEYTAP_LEDGER_PASSPHRASE'))
      .addOption(new Option('--replace', 'replace an account of the same name on the key'))
      .addOption(new Option('--force', 'overwrite seed files in the folder that hold tokens the ledger does not know'))
      .addOption(new Option('--yes', 'take the defaults for everything not given; ask nothing'))
      .addOption(new Option('--batch', 'program one key after another: insert, wait, remove, next; Ctrl+C to finish'))
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
  } else if (options.count !== undefined) {
    throw new KeytapError('USAGE', '--count only applies together with --batch.');
  }
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

  const interactive = process.stdin.isTTY === true && !options.yes;
  const secretFromStdin = options.secret === '-' ? await readStdin() : undefined;
  const answers = interactive ? await ask(options, given, io) : {};
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
  const formats = parseFormats(answers.formats ?? options.formats ?? DEFAULT_FORMATS);
  const outDir = resolve(answers.out ?? options.out ?? DEFAULT_OUT_DIR);
  const pskc = pskcProtection(options.pskcPassphrase, options.pskcKey);
  const secretText = secretFromStdin ?? answers.secret ?? options.secret;
  const serialGiven = answers.serial ?? options.serial;

  // Everything that needs no key is checked before the ledger is opened or a key is touched.
  let fromToken: ProvisionToken | undefined;
  if (options.from !== undefined) fromToken = await tokenFromFile(options, parameters);
  const secret = secretText !== undefined ? parseGivenSecret(secretText, { allowShort: options.allowShortSecret }) : undefined;
  if (serialGiven !== undefined && fromToken === undefined) checkSerial(serialGiven);

  const run = await ProvisionRun.start({
    outDir,
    formats,
    pskc,
    force: options.force,
    serialPrefix: options.serialPrefix,
    allowShortSecret: options.allowShortSecret,
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
    if (options.batch) {
      const afterProgrammed = options.entra ? await entraBatchHook({ ...options, activate: options.entraActivate }, io) : undefined;
      await programBatch(run, parameters, options, io, cliCommand(command), afterProgrammed);
    } else {
      let token: ProvisionToken;
      if (fromToken) {
        token = fromToken;
      } else {
        const serial = serialGiven ?? run.serials.next();
        if (serialGiven !== undefined) run.serials.claim(serialGiven);
        token = buildToken(parameters, secret ?? generateSecret(parameters.algorithm), serial);
      }
      run.check(token);
      const result = await withKey(
        options,
        io,
        (key, signal) => run.programOne(key, token, { replace: options.replace, signal, onTouchNeeded: (phase) => io.err(touchMessage(phase)) }),
        'writes',
      );
      reportResult(io, token, result, options.showSecrets === true);
      const outcome = result.outcome;
      if (outcome.status !== 'programmed') throw outcome.error;
    }
  } finally {
    await run.close();
  }
}

async function programBatch(
  run: ProvisionRun,
  parameters: TokenParameters,
  options: ProgramOptions,
  io: CliIo,
  command: CliCommand,
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
    // Check the parameters once with a sample token, so that a refused format stops the batch before the first key.
    run.check(buildToken(parameters, generateSecret(parameters.algorithm), 'KT00000000'));
    const summary = await runBatch({
      source: new KeyWatcher(),
      run,
      open: async (descriptor, signal) => {
        const key = await openOathSession(descriptor, signal);
        try {
          if (key.session.locked && options.password !== undefined) await key.session.unlock(options.password, signal);
        } catch (error) {
          await key.close().catch(() => undefined);
          throw error;
        }
        return key;
      },
      nextToken: () => buildToken(parameters, generateSecret(parameters.algorithm), run.serials.next()),
      afterProgrammed,
      stop: stop.signal,
      abort: abort.signal,
      replace: options.replace,
      count: options.count,
      report: (event) => reportBatchEvent(io, event, options.showSecrets === true, command),
    });
    io.out(`Summary: ${summary.programmed} programmed, ${summary.failed} failed, ${summary.skipped} skipped. Ledger and seed files in ${run.outDir}.`);
    if (summary.failed > 0) throw new KeytapError('DEVICE_ERROR', `${summary.failed} key(s) failed; see above.`);
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
  }
}

function reportBatchEvent(io: CliIo, event: BatchEvent, showSecrets: boolean, command: CliCommand): void {
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
      io.err(touchMessage(event.phase));
      return;
    case 'result':
      reportResult(io, event.token, event.result, showSecrets, event.number, command);
      return;
    case 'error':
      io.out(`Key ${event.number}: skipped (nothing written): ${event.key.name}: ${event.error.message}`);
      return;
    case 'after-programmed-error': {
      io.out(`Key ${event.number}: programmed serial ${event.token.serial}, but the follow-up failed: ${event.error.message}`);
      const { hint } = explainForCli(event.error, command);
      if (hint) io.out(`  ${hint}`);
      return;
    }
    case 'remove':
      io.err(`Remove ${event.key.name}.`);
      return;
  }
}

function reportResult(io: CliIo, token: ProvisionToken, result: ProgramOneResult, showSecrets: boolean, number?: number, command?: CliCommand): void {
  const prefix = number === undefined ? '' : `Key ${number}: `;
  const outcome = result.outcome;
  if (outcome.status === 'programmed') {
    io.out(`${prefix}programmed serial ${token.serial} as "${outcome.credentialId}" on ${outcome.entry.key.name}; verified.`);
    if (showSecrets) io.out(`  secret (Base32): ${base32Encode(token.secret)}`);
    for (const file of result.exports) {
      const skipped = file.skipped.length > 0 ? ` (${file.skipped.length} token(s) it cannot carry left out)` : '';
      io.err(`  wrote ${basename(file.path)}: ${file.tokenCount} token(s)${skipped}`);
    }
  } else if (number !== undefined) {
    const what = outcome.status === 'refused' ? 'skipped (nothing written)' : outcome.leftOnKey ? 'failed, and the account may still be on the key' : 'failed (removed from the key again)';
    io.out(`${prefix}${what}: ${outcome.error.message}`);
    const { hint } = explainForCli(outcome.error, command);
    if (hint) io.out(`  ${hint}`);
  }
}

function touchMessage(phase: 'put' | 'verify' | 'delete'): string {
  return phase === 'put' ? 'Touch your key to confirm storing the account…' : phase === 'verify' ? 'Touch your key to verify the account…' : 'Touch your key to remove the account again…';
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

interface Answers {
  type?: OathType;
  algorithm?: HashAlgorithm;
  digits?: number;
  period?: number;
  counter?: number;
  secret?: string;
  serial?: string;
  upn?: string;
  issuer?: string;
  account?: string;
  touch?: boolean;
  manufacturer?: string;
  model?: string;
  formats?: string;
  out?: string;
}

/** One question per field not given on the command line; Enter takes the default in brackets. */
async function ask(options: ProgramOptions, given: (name: string) => boolean, io: CliIo): Promise<Answers> {
  const prompter = openPrompter({ input: process.stdin, output: process.stderr, err: (line) => io.err(line) });
  const question = <T>(label: string, shown: string, parse: (text: string) => T | undefined): Promise<T | undefined> => prompter.question(label, shown, parse);
  const answers: Answers = {};
  try {
    const fromFile = options.from !== undefined;
    if (!fromFile) {
      if (!given('type')) answers.type = await question('Type (totp/hotp)', 'totp', (t) => oathType(t));
      if (!given('algorithm')) answers.algorithm = await question('Hash (SHA1/SHA256/SHA512)', 'SHA1', (t) => hashAlgorithm(t));
      if (!given('digits')) answers.digits = await question('Digits (6/8)', '6', oneOf([6, 8]));
      const type = answers.type ?? options.type ?? 'TOTP';
      if (type === 'TOTP' && !given('period')) answers.period = await question('Time interval in seconds (30/60)', '30', oneOf([30, 60]));
      if (type === 'HOTP' && !given('counter')) answers.counter = await question('Initial counter', '0', integerIn(0, 0xffffffff));
      if (!options.batch && !given('secret')) answers.secret = await question('Secret (Base32 or hex:…)', 'generate', (t) => t);
      if (!options.batch && !given('serial')) answers.serial = await question('Serial number', 'generate', (t) => (checkSerial(t), t));
    }
    if (!given('upn')) answers.upn = await question('User (UPN, user@domain)', '', (t) => t);
    if (!given('issuer')) answers.issuer = await question('Issuer on the key', '', (t) => t);
    if (!given('account')) answers.account = await question('Account on the key', answers.upn ?? options.upn ?? 'the UPN, else the serial', (t) => t);
    if (!given('touch')) answers.touch = await question('Require touch for every code (y/n)', 'n', yesNo);
    if (!given('manufacturer')) answers.manufacturer = await question('Manufacturer (for the seed files)', '', (t) => t);
    if (!given('model')) answers.model = await question('Model (for the seed files)', '', (t) => t);
    if (!given('formats')) answers.formats = await question(`Seed files (${SEED_FORMAT_NAMES.join(',')})`, DEFAULT_FORMATS, (t) => (parseFormats(t), t));
    if (!given('out')) answers.out = await question('Output folder', DEFAULT_OUT_DIR, (t) => t);
  } finally {
    prompter.close();
  }
  return answers;
}

function oneOf(values: readonly number[]): (text: string) => number {
  return (text) => {
    const n = Number(text);
    if (!/^\d+$/u.test(text) || !values.includes(n)) throw new InvalidArgumentError(`must be ${values.join(' or ')}.`);
    return n;
  };
}

function kebab(name: string): string {
  return name.replace(/[A-Z]/gu, (c) => `-${c.toLowerCase()}`);
}
