/**
 * Re-programming a (replacement) key with a token from a seed file: reading the file in whatever
 * format it is, choosing the one token meant, and taking the labels given anew. The seed and its
 * parameters always come from the file. How the choice is made (a serial) is the caller's; which
 * option names it is the CLI's, so a failed choice comes back as a typed result, not as words.
 */
import type { SeedFormat, SeedReadOptions, SeedToken } from '../seeds/index.js';
import { checkSeedFileSize, detectFormat, readAs } from '../seeds/index.js';
import { readInputFile } from '../util/input-file.js';
import type { ProvisionToken, TokenParameters } from './token.js';

/** How to read a seed file: the secret protecting an encrypted PSKC file, consent to a slow KDF, where warnings go. */
export type SeedFileOptions = Pick<SeedReadOptions, 'passphrase' | 'key' | 'allowSlowKdf' | 'onWarning'>;

/** A seed file's bytes; one larger than any real seed file is refused from its size, before it is read. */
export function readSeedFileBytes(file: string): Promise<Buffer> {
  return readInputFile(file, undefined, (size) => checkSeedFileSize(size, `seed file ${file}`));
}

/** Every token in `file`, in `format`, or else the format recognised from its content (and name). */
export async function readSeedFile(file: string, read: SeedFileOptions = {}, format?: SeedFormat): Promise<SeedToken[]> {
  const bytes = await readSeedFileBytes(file);
  const options: SeedReadOptions = {
    ...(read.passphrase !== undefined ? { passphrase: read.passphrase } : {}),
    ...(read.key !== undefined ? { key: read.key } : {}),
    allowSlowKdf: read.allowSlowKdf === true,
    ...(read.onWarning !== undefined ? { onWarning: read.onWarning } : {}),
  };
  return format ? readAs(format, bytes, file, options) : detectFormat(bytes, file).read(bytes, options);
}

export type TokenChoice =
  | { kind: 'chosen'; token: SeedToken }
  /** No token in the file has the serial asked for. */
  | { kind: 'no-such-serial'; serial: string }
  /** No serial was given, and the file does not hold exactly one token. */
  | { kind: 'serial-needed'; count: number }
  /** The serial is a device with several keys (RFC 6030 Figure 10); their ids. */
  | { kind: 'key-id-needed'; serial: string; keyIds: string[] }
  /** None of the serial's keys has this id. */
  | { kind: 'no-such-key-id'; serial: string; keyId: string; keyIds: string[] };

/**
 * The token with `serial` (and, for a device with several keys, `keyId`); a key id alone when it
 * names one token; without either, the only token of the file.
 */
export function chooseToken(tokens: readonly SeedToken[], serial: string | undefined, keyId?: string): TokenChoice {
  const idOf = (t: SeedToken): string => t.keyId ?? t.serial;
  if (serial === undefined && keyId !== undefined) {
    const withId = tokens.filter((t) => idOf(t) === keyId);
    if (withId.length === 1) return { kind: 'chosen', token: withId[0]! };
  }
  if (serial !== undefined) {
    const ofSerial = tokens.filter((t) => t.serial === serial);
    if (ofSerial.length === 0) return { kind: 'no-such-serial', serial };
    if (keyId === undefined) return ofSerial.length === 1 ? { kind: 'chosen', token: ofSerial[0]! } : { kind: 'key-id-needed', serial, keyIds: ofSerial.map(idOf) };
    const token = ofSerial.find((t) => idOf(t) === keyId);
    return token ? { kind: 'chosen', token } : { kind: 'no-such-key-id', serial, keyId, keyIds: ofSerial.map(idOf) };
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
