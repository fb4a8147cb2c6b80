import type { Command } from 'commander';
import { Option } from 'commander';
import type { CredentialWithSecret, HashAlgorithm, OathType } from '../../otp/credential.js';
import { DEFAULT_PERIOD } from '../../otp/credential.js';
import { parseSecret } from '../../otp/encoding.js';
import { parseOtpauthUri } from '../../otp/otpauth-uri.js';
import { KeytapError } from '../../errors.js';
import type { KeyOptions } from '../key-options.js';
import { addKeyOptions, withKey } from '../key-options.js';
import type { CliIo } from '../output.js';
import { hashAlgorithm, integerIn, oathType, readStdin } from '../parse.js';

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
}

const FIELD_OPTIONS = ['issuer', 'account', 'secret', 'type', 'algorithm', 'digits', 'period', 'counter'] as const;

export function registerAdd(program: Command, io: CliIo): void {
  addKeyOptions(
    program
      .command('add')
      .description('store an account on the key, from options or from an otpauth:// URI')
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
      .addOption(new Option('--replace', 'replace an account of the same name')),
  ).action(async (uri: string | undefined, options: AddOptions, command: Command) => {
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
