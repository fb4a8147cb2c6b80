import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import type { CredentialWithSecret, HashAlgorithm, OathType } from '../../otp/credential.js';
import { DEFAULT_PERIOD } from '../../otp/credential.js';
import { parseSecret } from '../../otp/encoding.js';
import { parseOtpauthUri } from '../../otp/otpauth-uri.js';
import { KeytapError } from '../../errors.js';
import type { KeyOptions } from '../key-options.js';
import { addKeyOptions, withKey } from '../key-options.js';
import type { CliIo } from '../output.js';
import { hashAlgorithm, integerIn, oathType, readStdin } from '../parse.js';
import { chooseQrAccounts, scanQr } from '../qr-accounts.js';

interface AddOptions extends KeyOptions {
  issuer?: string;
  account?: string;
  secret?: string;
  type?: OathType;
  algorithm?: HashAlgorithm;
  digits?: number;
  period?: number;
  counter?: number;
  touch?: boolean;
  replace?: boolean;
  qr?: string | true;
  pick?: number[];
  all?: boolean;
  yes?: boolean;
}

const FIELD_OPTIONS = ['issuer', 'account', 'secret', 'type', 'algorithm', 'digits', 'period', 'counter'] as const;

export function registerAdd(program: Command, io: CliIo): void {
  addKeyOptions(
    program
      .command('add')
      .description('store an account on the key, from options, an otpauth:// URI, or a QR code (an image file, or the screen)')
      .argument('[uri]', 'an otpauth://totp/… or otpauth://hotp/… URI ("-" reads it from standard input)')
      .addOption(new Option('--issuer <issuer>', 'issuer, e.g. GitHub'))
      .addOption(new Option('--account <account>', 'account name, e.g. alice@example.com'))
      .addOption(new Option('--secret <base32>', 'the shared secret in Base32, or hex:… ("-" reads it from standard input)'))
      .addOption(new Option('--type <type>', 'totp or hotp').argParser(oathType).default('TOTP', 'totp'))
      .addOption(new Option('--algorithm <hash>', 'SHA1, SHA256 or SHA512').argParser(hashAlgorithm).default('SHA1'))
      .addOption(new Option('--digits <n>', 'code length, 6 to 8').argParser(integerIn(6, 8)).default(6))
      .addOption(new Option('--period <seconds>', 'TOTP time step').argParser(integerIn(1, 65535)).default(DEFAULT_PERIOD))
      .addOption(new Option('--counter <n>', 'initial HOTP counter').argParser(integerIn(0, 0xffffffff)))
      .addOption(new Option('--touch', 'every code needs a touch of the key'))
      .addOption(new Option('--replace', 'replace an account of the same name'))
      .addOption(new Option('--qr [image]', 'read the account from a QR code in a PNG or JPEG file, or on the screen without one (also Google Authenticator exports)'))
      .addOption(new Option('--pick <n,…>', 'with --qr: add the account(s) numbered so in the list of those found').argParser(pickList))
      .addOption(new Option('--all', 'with --qr: add every account found'))
      .addOption(new Option('--yes', 'with --qr: write without showing the account and asking first')),
  ).action(async (uri: string | undefined, options: AddOptions, command: Command) => {
    if (options.qr !== undefined) {
      await addFromQr(uri, options, command, io);
      return;
    }
    const qrOnly = (['pick', 'all', 'yes'] as const).filter((name) => options[name] !== undefined);
    if (qrOnly.length > 0) throw new KeytapError('USAGE', `--${qrOnly.join(', --')} only appl${qrOnly.length === 1 ? 'ies' : 'y'} with --qr.`);
    const credential = await credentialFrom(uri, options, command);
    await withKey(options, io, async (key, signal) => {
      const stored = await key.session.put(credential, {
        replace: options.replace,
        signal,
        onTouchNeeded: () => io.err('Touch your key to confirm…'),
      });
      credential.secret.fill(0);
      io.err(`Added ${stored.id} to ${key.name}.`);
    }, 'writes');
  });
}

async function addFromQr(uri: string | undefined, options: AddOptions, command: Command, io: CliIo): Promise<void> {
  if (uri !== undefined) throw new KeytapError('USAGE', 'Give either an otpauth:// URI or --qr, not both.');
  const given = FIELD_OPTIONS.filter((name) => command.getOptionValueSource(name) === 'cli');
  if (given.length > 0) throw new KeytapError('USAGE', `The QR code says everything about the account; leave out --${given.join(', --')}.`);
  if (options.all && options.pick !== undefined) throw new KeytapError('USAGE', 'Use either --pick or --all, not both.');
  const scan = await scanQr(options.qr === true ? undefined : options.qr, io);
  try {
    const credentials = await chooseQrAccounts(scan, { pick: options.pick, all: options.all, yes: options.yes }, io);
    await withKey(options, io, async (key, signal) => {
      for (const credential of credentials) {
        const stored = await key.session.put(options.touch ? { ...credential, touch: true } : credential, {
          replace: options.replace,
          signal,
          onTouchNeeded: () => io.err('Touch your key to confirm…'),
        });
        io.err(`Added ${stored.id} to ${key.name}.`);
      }
    }, 'writes');
  } finally {
    for (const account of scan.accounts) account.credential.secret.fill(0);
  }
}

/** "2" or "1,3": account numbers, from 1. */
function pickList(value: string): number[] {
  if (!/^\d+(,\d+)*$/u.test(value)) throw new InvalidArgumentError('must be a number from the list, or several separated by commas (1,3).');
  const numbers = value.split(',').map(Number);
  if (numbers.some((n) => n < 1)) throw new InvalidArgumentError('the list starts at 1.');
  return numbers;
}

async function credentialFrom(uri: string | undefined, options: AddOptions, command: Command): Promise<CredentialWithSecret> {
  if (uri !== undefined) {
    const given = FIELD_OPTIONS.filter((name) => command.getOptionValueSource(name) === 'cli');
    if (given.length > 0) {
      throw new KeytapError('USAGE', `An otpauth:// URI already says everything; leave out --${given.join(', --')}.`);
    }
    const credential = parseOtpauthUri(uri === '-' ? await readStdin() : uri);
    return { ...credential, touch: credential.touch || options.touch === true };
  }
  if (options.account === undefined || options.secret === undefined) {
    throw new KeytapError('USAGE', 'Give an otpauth:// URI, or at least --account and --secret.');
  }
  const type = options.type ?? 'TOTP';
  if (type === 'TOTP' && options.counter !== undefined) throw new KeytapError('USAGE', '--counter only applies to --type hotp.');
  return {
    issuer: options.issuer,
    account: options.account,
    secret: parseSecret(options.secret === '-' ? await readStdin() : options.secret),
    type,
    algorithm: options.algorithm ?? 'SHA1',
    digits: options.digits ?? 6,
    period: options.period ?? DEFAULT_PERIOD,
    counter: options.counter,
    touch: options.touch === true,
  };
}
