/**
 * Re-programming a (replacement) key with a token from a seed file: reading the file in whatever
 * format it is, choosing the one token meant, and taking the labels given anew. The seed and its
 * parameters always come from the file. How the choice is made (a serial) is the caller's; which
 * option names it is the CLI's, so a failed choice comes back as a typed result, not as words.
 */
import type { SeedReadOptions, SeedToken } from '../seeds/index.js';
import { detectFormat } from '../seeds/index.js';
import { readInputFile } from '../util/input-file.js';
import type { ProvisionToken, TokenParameters } from './token.js';

/** The secret protecting an encrypted PSKC file, if any. */
export type SeedFileSecret = Pick<SeedReadOptions, 'passphrase' | 'key'>;

/** Every token in `file`, its format recognised from its content (and name). */
export async function readSeedFile(file: string, secret: SeedFileSecret = {}): Promise<SeedToken[]> {
  const bytes = await readInputFile(file);
  const format = detectFormat(bytes, file);
  const options: SeedReadOptions = {
    ...(secret.passphrase !== undefined ? { passphrase: secret.passphrase } : {}),
    ...(secret.key !== undefined ? { key: secret.key } : {}),
  };
  return format.read(bytes, options);
}

export type TokenChoice =
  | { kind: 'chosen'; token: SeedToken }
  /** No token in the file has the serial asked for. */
  | { kind: 'no-such-serial'; serial: string }
  /** No serial was given, and the file does not hold exactly one token. */
  | { kind: 'serial-needed'; count: number };

/** The token with `serial`; without a serial, the only token of the file. */
export function chooseToken(tokens: readonly SeedToken[], serial: string | undefined): TokenChoice {
  if (serial !== undefined) {
    const token = tokens.find((t) => t.serial === serial);
    return token ? { kind: 'chosen', token } : { kind: 'no-such-serial', serial };
  }
  return tokens.length === 1 ? { kind: 'chosen', token: tokens[0]! } : { kind: 'serial-needed', count: tokens.length };
}

/** The labels that may be given anew for a token from a file. */
export type ReplacementLabels = Pick<TokenParameters, 'upn' | 'issuer' | 'account' | 'manufacturer' | 'model' | 'touch'>;

/** The token to program: the file's seed and parameters, with the labels given anew where given. */
export function replacementToken(token: SeedToken, given: ReplacementLabels): ProvisionToken {
  return {
    ...token,
    upn: given.upn ?? token.upn,
    issuer: given.issuer ?? token.issuer,
    account: given.account ?? token.account ?? given.upn ?? token.upn ?? token.serial,
    manufacturer: given.manufacturer ?? token.manufacturer,
    model: given.model ?? token.model,
    touch: given.touch,
  };
}
