/**
 * The questions of an interactive `keytap program`: which key first (its hashes decide what can
 * be asked for), then one question per field the command line left out, each answer checked when
 * it is given and asked again with the reason, in an order where what a check depends on is asked
 * before it (the token's parameters before the seed files that must carry it, the seed files
 * before the user some of them require).
 */
import { existsSync } from 'node:fs';
import { noKeyError } from '../device/open.js';
import type { KeyDescriptor } from '../device/discovery/enumerate.js';
import { capabilitiesOf } from '../device/oath/dialect.js';
import { KeytapError } from '../errors.js';
import type { HashAlgorithm, OathType } from '../otp/credential.js';
import type { ProvisionToken, TokenParameters } from '../provision/token.js';
import { DEFAULT_PARAMETERS, buildToken, checkSerial, credentialFor, formatsNeedingUser, formatsRefusing, generateSecret, parseGivenSecret } from '../provision/token.js';
import type { SeedFormat, SeedToken } from '../seeds/index.js';
import { SEED_FORMAT_NAMES, checkUpn } from '../seeds/index.js';
import { printable } from '../util/printable.js';
import { DEFAULT_FORMATS, DEFAULT_OUT_DIR, oneOf, parseFormats } from './commands/program.js';
import type { KeyOptions } from './key-options.js';
import { connectedKeys, withAnyKey, withConnectedAnyKey, withConnectedKey } from './key-options.js';
import { isOathDialect } from '../device/key-dialect.js';
import type { OpenedKey } from '../device/open.js';
import { FEITIAN_SEED_BYTES, FEITIAN_SERIAL_LENGTH, isFeitianSerial } from '../device/feitian/protocol.js';
import { feitianPeriodRefusal, feitianProgrammedError, feitianRefusal } from '../provision/feitian.js';

/** A Feitian HOTP key computes SHA-1 codes only (docs/protocols.md §4.3). */
const FEITIAN_ALGORITHMS: readonly HashAlgorithm[] = ['SHA1'];
import type { CliIo } from './output.js';
import { hashAlgorithm, integerIn, oathType } from './parse.js';
import type { Prompter } from './prompt.js';
import { choice, openPrompter, yesNo } from './prompt.js';

/** What of `keytap program`'s options the questions read. */
export interface QuestionOptions extends KeyOptions {
  type?: OathType | undefined;
  algorithm?: HashAlgorithm | undefined;
  digits?: number | undefined;
  period?: number | undefined;
  counter?: number | undefined;
  secret?: string | undefined;
  allowShortSecret?: boolean | undefined;
  serial?: string | undefined;
  upn?: string | undefined;
  issuer?: string | undefined;
  account?: string | undefined;
  manufacturer?: string | undefined;
  model?: string | undefined;
  formats?: string | undefined;
  batch?: boolean | undefined;
  from?: string | undefined;
}

export interface Answers {
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

/** The key settled before the first question. */
export interface ChosenKey {
  /** The key picked from those connected (undefined: --virtual or --device says which). */
  descriptor?: KeyDescriptor | undefined;
  /** The hashes the key computes codes with. */
  algorithms: readonly HashAlgorithm[];
  /** Set for a Feitian HOTP key: one HOTP token, SHA-1, counter from 0, so fewer questions; `serial`: the token it holds already. */
  hotpKey?: { name: string; serial?: string | undefined } | undefined;
}

const ALL_ALGORITHMS: readonly HashAlgorithm[] = ['SHA1', 'SHA256', 'SHA512'];

/** The answer that drops the seed files requiring a user, given to the user question. */
export const NO_USER_DROP = '-';

/** A secret as typed (Base32 or hex:…), checked for its encoding and length. */
export function secretAnswer(allowShort: boolean | undefined): (text: string) => string {
  return (text) => (parseGivenSecret(text, { allowShort }), text);
}

/** A hash the key computes codes with. */
export function algorithmAnswer(supported: readonly HashAlgorithm[]): (text: string) => HashAlgorithm {
  return (text) => {
    const algorithm = hashAlgorithm(text);
    if (!supported.includes(algorithm)) throw new KeytapError('BAD_INPUT', `This key does not compute codes with ${algorithm}; choose ${supported.join(' or ')}.`);
    return algorithm;
  };
}

/**
 * A list of seed files that can all carry `sample` (the token as the answers so far make it).
 * Whether they need a user is asked later, with the user: `sample` stands for a token with one.
 */
export function formatsAnswer(sample: SeedToken): (text: string) => string {
  return (text) => {
    const formats = parseFormats(text);
    if (formats.length === 0) throw new KeytapError('USAGE', `Name at least one of ${SEED_FORMAT_NAMES.join(', ')}.`);
    const refusals = formatsRefusing({ ...sample, upn: sample.upn ?? 'user@example.com' }, formats);
    if (refusals.length > 0) throw new KeytapError('BAD_INPUT', refusals.map((r) => `The ${r.format.title} file cannot carry this token: ${r.reason}.`).join(' '));
    return text;
  };
}

/**
 * A label of the token (issuer, account, manufacturer, model) as the token will carry it: the name
 * on the key (its length, no ":" in the issuer) and the seed files asked for. Only the problems
 * this answer brings are refused here; one the other values already have is the run's to tell.
 */
export function labelAnswer(what: string, withLabel: (text: string) => ProvisionToken, formats: readonly SeedFormat[]): (text: string) => string {
  const nameOk = (token: ProvisionToken): boolean => {
    try {
      credentialFor(token);
      return true;
    } catch {
      return false;
    }
  };
  const without = withLabel('');
  const refusedWithout = new Set(formatsRefusing(without, formats).map((r) => r.format));
  return (text) => {
    const token = withLabel(text);
    // credentialFor throws the key's reason (BAD_INPUT) for a name the key cannot store.
    if (nameOk(without)) credentialFor(token);
    const refusals = formatsRefusing(token, formats).filter((r) => !refusedWithout.has(r.format));
    if (refusals.length > 0) throw new KeytapError('BAD_INPUT', refusals.map((r) => `The ${r.format.title} file cannot carry this ${what}: ${r.reason}.`).join(' '));
    return text;
  };
}

export function serialAnswer(text: string): string {
  checkSerial(text);
  return text;
}

export function upnAnswer(text: string): string {
  const problem = checkUpn(text);
  if (problem !== null) throw new KeytapError('BAD_INPUT', `${problem.charAt(0).toUpperCase()}${problem.slice(1)}.`);
  return text;
}

/** How a connected key is shown in the list to pick from. */
export function describeKey(descriptor: KeyDescriptor): string {
  const serial = descriptor.serial ?? descriptor.usbSerial;
  return printable(`${descriptor.name} (serial ${serial ?? 'not announced'}, ${descriptor.dialect ?? 'dialect told when opened'}; id ${descriptor.id})`);
}

/**
 * Which key will be programmed, and the hashes it offers: --virtual/--device name it; otherwise
 * the one connected, or one picked from the list. None: the no-key error, before any question.
 */
async function settleKey(options: QuestionOptions, prompter: Prompter, io: CliIo): Promise<ChosenKey> {
  const keyOf = (opened: OpenedKey): Promise<ChosenKey> =>
    Promise.resolve(
      opened.kind === 'oath'
        ? { algorithms: opened.key.session.capabilities.algorithms }
        : { algorithms: FEITIAN_ALGORITHMS, hotpKey: { name: opened.key.name, serial: opened.key.session.serial } },
    );
  if (options.virtual !== undefined) {
    // A virtual key still to be created answers in the dialect asked for, else a YubiKey's (emulator/store.ts).
    if (!existsSync(options.virtual)) {
      const dialect = options.dialect ?? 'yubikey';
      return isOathDialect(dialect) ? { algorithms: capabilitiesOf(dialect).algorithms } : { algorithms: FEITIAN_ALGORITHMS, hotpKey: { name: `virtual key ${options.virtual}` } };
    }
    return withAnyKey(options, io, keyOf, 'reads');
  }
  if (options.device !== undefined) return withAnyKey(options, io, keyOf, 'reads');
  const descriptors = await connectedKeys(io, options);
  if (descriptors.length === 0) throw noKeyError();
  let descriptor = descriptors[0]!;
  if (descriptors.length > 1) {
    io.err(`${descriptors.length} keys are connected:`);
    descriptor = await choice(prompter, 'Key to program', descriptors, describeKey, (line) => io.err(line));
  }
  if (descriptor.dialect === 'feitian') return { descriptor, ...(await withConnectedAnyKey(descriptor, options, io, keyOf)) };
  return { descriptor, algorithms: await withConnectedKey(descriptor, options, io, (key) => Promise.resolve(key.session.capabilities.algorithms)) };
}

/**
 * Settles the key (not for --batch, which waits for keys), then asks one question per field not
 * given on the command line; Enter takes the default in brackets.
 */
export async function askProgramQuestions(options: QuestionOptions, given: (name: string) => boolean, io: CliIo): Promise<{ answers: Answers; key: ChosenKey | undefined }> {
  const prompter = openPrompter({ input: process.stdin, output: process.stderr, err: (line) => io.err(line) });
  const question = <T>(label: string, shown: string, parse: (text: string) => T | undefined): Promise<T | undefined> => prompter.question(label, shown, parse);
  const answers: Answers = {};
  try {
    const key = options.batch ? undefined : await settleKey(options, prompter, io);
    const fromFile = options.from !== undefined;
    const hotpKey = key?.hotpKey;
    if (hotpKey) {
      refuseForHotpKey(hotpKey, options, given);
      if (!fromFile) io.err('This key holds one HOTP token (SHA-1, counter from 0).');
    }
    const parameters: TokenParameters = { ...DEFAULT_PARAMETERS };
    if (!fromFile) {
      if (hotpKey) {
        answers.type = 'HOTP';
        answers.algorithm = 'SHA1';
      }
      if (!given('type') && !hotpKey) answers.type = await question('Type (totp/hotp)', 'totp', (t) => oathType(t));
      // A batch's keys are not known yet: each is checked when it is inserted.
      const algorithms = key?.algorithms ?? ALL_ALGORITHMS;
      if (!given('algorithm') && !hotpKey) answers.algorithm = await question(`Hash (${algorithms.join('/')})`, 'SHA1', algorithmAnswer(algorithms));
      if (!given('digits')) answers.digits = await question('Digits (6/8)', '6', oneOf([6, 8]));
      parameters.type = answers.type ?? options.type ?? DEFAULT_PARAMETERS.type;
      parameters.algorithm = answers.algorithm ?? options.algorithm ?? DEFAULT_PARAMETERS.algorithm;
      parameters.digits = answers.digits ?? options.digits ?? DEFAULT_PARAMETERS.digits;
      if (parameters.type === 'TOTP' && !given('period')) answers.period = await question('Time interval in seconds (30/60)', '30', oneOf([30, 60]));
      if (parameters.type === 'HOTP' && !given('counter') && !hotpKey) answers.counter = await question('Initial counter', '0', integerIn(0, 0xffffffff));
      parameters.period = answers.period ?? options.period ?? DEFAULT_PARAMETERS.period;
      parameters.counter = answers.counter ?? options.counter ?? DEFAULT_PARAMETERS.counter;
      if (!options.batch && !given('secret')) {
        answers.secret = hotpKey
          ? await question(`Secret (Base32 or hex:…, exactly ${FEITIAN_SEED_BYTES} bytes)`, 'generate', hotpKeySecretAnswer)
          : await question('Secret (Base32 or hex:…)', 'generate', secretAnswer(options.allowShortSecret));
      }
      // Whether the serial is in the ledger is told by the run: the ledger's folder is asked last.
      if (!options.batch && !given('serial')) {
        answers.serial = hotpKey
          ? await question(`Serial number (exactly ${FEITIAN_SERIAL_LENGTH} characters)`, 'generate', hotpKeySerialAnswer)
          : await question('Serial number', 'generate', serialAnswer);
      }
    }
    const secretText = answers.secret ?? (options.secret !== '-' ? options.secret : undefined);
    let sample: SeedToken | undefined;
    if (!fromFile) {
      let secret: Uint8Array;
      try {
        secret = secretText !== undefined ? parseGivenSecret(secretText, { allowShort: true }) : generateSecret(parameters.algorithm);
      } catch {
        // A bad --secret is refused by the run with its reason; the files are checked without it.
        secret = generateSecret(parameters.algorithm);
      }
      sample = buildToken(parameters, secret, 'KT00000000');
    }
    if (!given('formats')) {
      answers.formats = await question(`Seed files (${SEED_FORMAT_NAMES.join(',')})`, DEFAULT_FORMATS, sample ? formatsAnswer(sample) : (t) => (parseFormats(t), t));
    }
    // A batch asks each key's user once the key is in (askKeyUser in program.ts), or takes them from --users.
    if (!given('upn') && !options.batch) answers.upn = await askUser(prompter, answers, options, sample, io);
    // The labels are checked against the token the answers so far make (not for --from: the file's
    // token is checked by the run). Default seed files leave out, with the reason, what cannot carry it.
    const formatList = answers.formats ?? options.formats;
    const chosenFormats = formatList !== undefined ? parseFormats(formatList) : [];
    const label = (what: string, field: 'issuer' | 'account' | 'manufacturer' | 'model'): ((text: string) => string) => {
      if (!sample) return (t) => t;
      const labels = (): TokenParameters => ({
        ...parameters,
        upn: answers.upn ?? options.upn ?? (options.batch ? 'user@example.com' : undefined),
        issuer: answers.issuer ?? options.issuer,
        account: answers.account ?? options.account,
        manufacturer: answers.manufacturer ?? options.manufacturer,
        model: answers.model ?? options.model,
        touch: false,
      });
      return labelAnswer(what, (text) => buildToken({ ...labels(), [field]: text }, sample.secret, sample.serial), chosenFormats);
    };
    // A Feitian key has no account names, and it types a code only when touched.
    if (!hotpKey) {
      if (!given('issuer')) answers.issuer = await question('Issuer on the key', '', label('issuer', 'issuer'));
      if (!given('account')) answers.account = await question('Account on the key', answers.upn ?? options.upn ?? 'the UPN, else the serial', label('account', 'account'));
      if (!given('touch')) answers.touch = await question('Require touch for every code (y/n)', 'n', yesNo);
    }
    if (!given('manufacturer')) answers.manufacturer = await question('Manufacturer (for the seed files)', '', label('manufacturer', 'manufacturer'));
    if (!given('model')) answers.model = await question('Model (for the seed files)', '', label('model', 'model'));
    if (!given('out')) answers.out = await question('Output folder', DEFAULT_OUT_DIR, (t) => t);
    return { answers, key };
  } finally {
    prompter.close();
  }
}

/**
 * What the command line gives that a Feitian key cannot take, refused before the first question
 * (and a key that holds a token already, which takes none until erased).
 */
function refuseForHotpKey(hotpKey: NonNullable<ChosenKey['hotpKey']>, options: QuestionOptions, given: (name: string) => boolean): void {
  if (hotpKey.serial !== undefined) throw feitianProgrammedError(hotpKey.name, hotpKey.serial);
  if (options.from !== undefined) return; // The seed file's token is checked against the key when it is chosen.
  if (given('period')) throw feitianPeriodRefusal(hotpKey.name);
  // The given parameters on a token that is otherwise what the key takes: the first that does not fit is named.
  let secret: Uint8Array = new Uint8Array(FEITIAN_SEED_BYTES);
  if (options.secret !== undefined && options.secret !== '-') secret = parseGivenSecret(options.secret, { allowShort: true });
  const parameters: TokenParameters = { ...DEFAULT_PARAMETERS, type: 'HOTP', algorithm: 'SHA1' };
  if (options.type !== undefined) parameters.type = options.type;
  if (options.algorithm !== undefined) parameters.algorithm = options.algorithm;
  if (options.digits !== undefined) parameters.digits = options.digits;
  if (options.counter !== undefined) parameters.counter = options.counter;
  const refusal = feitianRefusal(buildToken(parameters, secret, options.serial ?? 'KT000000'), hotpKey.name);
  if (refusal) throw refusal;
}

function hotpKeySecretAnswer(text: string): string {
  const secret = parseGivenSecret(text, { allowShort: true });
  if (secret.length !== FEITIAN_SEED_BYTES) {
    throw new KeytapError('BAD_INPUT', `This key takes a seed of exactly ${FEITIAN_SEED_BYTES} bytes (${FEITIAN_SEED_BYTES * 2} hex digits), not ${secret.length}; Enter generates one.`);
  }
  return text;
}

function hotpKeySerialAnswer(text: string): string {
  checkSerial(text);
  if (!isFeitianSerial(text)) throw new KeytapError('BAD_INPUT', `This key takes a serial of exactly ${FEITIAN_SERIAL_LENGTH} letters, digits or signs; Enter generates one.`);
  return text;
}

/**
 * The token's user. Where a chosen seed file gives every token to a user (Entra ID), no answer is
 * asked again, and `-` drops those files instead; a batch asks each key's user later.
 */
async function askUser(prompter: Prompter, answers: Answers, options: QuestionOptions, sample: SeedToken | undefined, io: CliIo): Promise<string | undefined> {
  const list = answers.formats ?? options.formats;
  const needing = sample && list !== undefined ? formatsNeedingUser(sample, parseFormats(list)) : [];
  const label = 'User (UPN, user@domain)';
  if (needing.length === 0) return prompter.question(label, '', upnAnswer);
  const titles = needing.map((format) => format.title).join(' and ');
  for (;;) {
    const upn = await prompter.question(`${label}, or ${NO_USER_DROP} to write no ${titles} file`, '', (t) => (t === NO_USER_DROP ? t : upnAnswer(t)));
    if (upn === NO_USER_DROP) {
      const kept = parseFormats(list!).filter((format) => !needing.includes(format));
      if (kept.length === 0) {
        io.err(`  ${titles} is the only seed file asked for; give a user.`);
        continue;
      }
      answers.formats = kept.map((format) => format.name).join(',');
      io.err(`  Writing ${answers.formats} only.`);
      return undefined;
    }
    if (upn !== undefined) return upn;
    io.err(`  The ${titles} file gives every token to a user: give a UPN, or ${NO_USER_DROP} to write no ${titles} file.`);
  }
}

