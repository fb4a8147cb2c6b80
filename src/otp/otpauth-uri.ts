/**
 * Google Authenticator `otpauth://` key URIs (docs/seed-formats.md §4.1), read and written through the
 * otpauth package. What keytap adds on top: tolerant secrets (lower case, padding, spaces), `%20`
 * after the label colon, the ranges a key accepts, a non-standard `touch` flag, default parameters
 * left out when writing, and errors that name the problem without ever repeating the URI (it holds
 * the secret). Pure: no I/O.
 *
 * The 64-byte credential id limit is not checked here: a URI may name a longer account, and the
 * caller that writes it to a key decides what to do about that.
 */
import { HOTP, Secret, TOTP, URI } from 'otpauth';
import { KeytapError } from '../errors.js';
import type { CredentialWithSecret, HashAlgorithm, OathType } from './credential.js';
import { DEFAULT_PERIOD, HASH_ALGORITHMS, MAX_COUNTER, MAX_DIGITS, MAX_KEY_COUNTER, MAX_PERIOD, MIN_DIGITS } from './credential.js';
import { base32Decode, base32Encode } from './encoding.js';

const DEFAULT_ALGORITHM: HashAlgorithm = 'SHA1';
const DEFAULT_DIGITS = 6;
const WHOLE_NUMBER = /^\d+$/u;
/** Parameter names an error message may repeat; any other text from the URI might be the secret. */
const KNOWN_PARAMS = new Set(['secret', 'issuer', 'algorithm', 'digits', 'period', 'counter', 'touch']);

/** Reads an `otpauth://totp/…` or `otpauth://hotp/…` URI. Throws BAD_INPUT naming the problem. */
export function parseOtpauthUri(uri: string): CredentialWithSecret {
  const text = uri.trim();
  const scheme = /^otpauth:\/\//iu.exec(text);
  if (!scheme) throw badInput('This is not an otpauth:// URI.');
  const rest = text.slice(scheme[0].length);
  const slash = rest.indexOf('/');
  const typeName = (slash < 0 ? '' : rest.slice(0, slash)).toLowerCase();
  if (typeName !== 'totp' && typeName !== 'hotp') {
    throw badInput('The otpauth URI has an unknown type; it must start with otpauth://totp/ or otpauth://hotp/.');
  }
  const type: OathType = typeName === 'totp' ? 'TOTP' : 'HOTP';
  const question = rest.indexOf('?', slash);
  if (question < 0) throw badInput('The otpauth URI has no parameters; it needs at least a secret.');
  const label = rest.slice(slash + 1, question);
  if (label.length === 0) throw badInput('The otpauth URI has no account name.');
  const decodedLabel = decodeComponent(label, 'the label');
  // "Issuer:" with nothing after the colon: the package would keep "Issuer:" as the account name.
  if (/^[^:]*: *$/u.test(decodedLabel)) throw badInput('The otpauth URI has no account name.');
  const labelHasIssuer = decodedLabel.includes(':');

  const rawParams = rest
    .slice(question + 1)
    .split('&')
    .filter((pair) => pair.length > 0);
  const params = new Map<string, string>();
  for (const pair of rawParams) {
    const equals = pair.indexOf('=');
    const key = (equals < 0 ? pair : pair.slice(0, equals)).toLowerCase();
    params.set(key, decodeComponent(equals < 0 ? '' : pair.slice(equals + 1), KNOWN_PARAMS.has(key) ? `the ${key} parameter` : 'a parameter'));
  }

  const secretText = params.get('secret');
  if (secretText === undefined || secretText.trim() === '') throw badInput('The otpauth URI has no secret parameter.');
  let secret: Uint8Array;
  try {
    secret = base32Decode(secretText);
  } catch (error) {
    if (error instanceof KeytapError) {
      // Not the decoder's hint: it suggests a hex: prefix, which a URI cannot use.
      throw new KeytapError('BAD_INPUT', `The otpauth URI's secret parameter is not valid Base32.`, {
        hint: 'A key URI carries the secret in Base32: the letters A–Z and the digits 2–7, nothing else.',
      });
    }
    throw error;
  }
  if (secret.length === 0) throw badInput('The otpauth URI has an empty secret.');

  const algorithm = readAlgorithm(params.get('algorithm'));
  const digits = readWholeNumber(params.get('digits'), 'digits', DEFAULT_DIGITS, MIN_DIGITS, MAX_DIGITS);
  // The period means nothing for HOTP and the counter nothing for TOTP; the spec lets both be absent.
  const period = type === 'TOTP' ? readWholeNumber(params.get('period'), 'period', DEFAULT_PERIOD, 1, MAX_PERIOD) : DEFAULT_PERIOD;
  let counter: number | undefined;
  if (type === 'HOTP') {
    if (!params.has('counter')) throw badInput('An HOTP otpauth URI needs a counter parameter.');
    counter = readWholeNumber(params.get('counter'), 'counter', 0, 0, MAX_KEY_COUNTER);
  }
  const touch = readTouch(params.get('touch'));

  // The otpauth package splits the label and decides between label prefix and issuer parameter.
  // It gets only what it needs for that, re-encoded: it wants a strict Base32 secret, and it
  // rejects the whole URI over any odd extra parameter (an unescaped image URL, say).
  const query = [`secret=${base32Encode(secret)}`];
  const issuerParam = params.get('issuer');
  if (issuerParam !== undefined) query.push(`issuer=${encodeURIComponent(issuerParam)}`);
  if (counter !== undefined) query.push(`counter=${counter}`);
  let otp: HOTP | TOTP;
  try {
    otp = URI.parse(`otpauth://${typeName}/${label}?${query.join('&')}`);
  } catch {
    // Its messages are not worth passing on, and some of them quote the input.
    throw badInput('The otpauth URI is malformed; it should look like otpauth://totp/Issuer:account?secret=…&issuer=Issuer.');
  }
  // The spec allows spaces after the label's colon; the package strips literal ones, not `%20`.
  const account = labelHasIssuer ? otp.label.replace(/^ +/u, '') : otp.label;
  if (account.length === 0) throw badInput('The otpauth URI has no account name.');
  const issuer = otp.issuer === '' ? undefined : otp.issuer;
  if (issuer?.includes(':')) throw badInput('The issuer in the otpauth URI must not contain ":".');

  return {
    issuer,
    account,
    type,
    algorithm,
    digits,
    period,
    counter,
    touch,
    secret,
  };
}

/**
 * Writes a credential as an otpauth URI: Base32 without padding, the issuer both in the label and
 * as a parameter, algorithm/digits/period only when they differ from SHA1/6/30, `touch=1` only for
 * a credential that needs a touch. Throws BAD_INPUT for what a URI cannot carry.
 */
export function formatOtpauthUri(credential: CredentialWithSecret): string {
  const { type, algorithm, digits, period, secret } = credential;
  if (type !== 'TOTP' && type !== 'HOTP') throw badInput(`Unknown OATH type "${String(type)}"; use TOTP or HOTP.`);
  if (!HASH_ALGORITHMS.includes(algorithm)) {
    throw badInput(`Unknown hash algorithm "${String(algorithm)}"; use SHA1, SHA256 or SHA512.`);
  }
  if (!Number.isInteger(digits) || digits < MIN_DIGITS || digits > MAX_DIGITS) {
    throw badInput(`The number of digits must be ${MIN_DIGITS} to ${MAX_DIGITS}, not ${digits}.`);
  }
  if (type === 'TOTP' && (!Number.isInteger(period) || period < 1 || period > MAX_PERIOD)) {
    throw badInput(`The TOTP period must be a whole number of seconds from 1 to ${MAX_PERIOD}, not ${period}.`);
  }
  const counter = credential.counter ?? 0;
  if (type === 'HOTP' && (!Number.isInteger(counter) || counter < 0 || counter > MAX_COUNTER)) {
    throw badInput(`The HOTP counter must be a whole number from 0 to ${MAX_COUNTER}, not ${counter}.`);
  }
  if (secret.length === 0) throw badInput('The secret is empty.');
  const issuer = credential.issuer ?? '';
  const { account } = credential;
  if (account.length === 0) throw badInput('The account name must not be empty.');
  if (issuer.includes(':')) throw badInput('The issuer must not contain ":".');
  if (issuer === '' && account.includes(':')) {
    // Readers would take the text before the colon for the issuer.
    throw badInput('Without an issuer, the account name must not contain ":".');
  }
  if (issuer !== '' && account.startsWith(' ')) {
    // Spaces after the label's colon are a separator, so readers would drop them.
    throw badInput('The account name must not start with a space.');
  }

  const options = {
    issuer,
    label: account,
    secret: new Secret({ buffer: Uint8Array.from(secret).buffer }),
    algorithm,
    digits,
  };
  let written: string;
  try {
    written = type === 'TOTP' ? new TOTP({ ...options, period }).toString() : new HOTP({ ...options, counter }).toString();
  } catch {
    // encodeURIComponent throws on lone UTF-16 surrogates.
    throw badInput('The issuer or account name contains text that cannot be written in a URI.');
  }

  // The package always writes algorithm, digits and period; the key URI format says to leave out defaults.
  const question = written.indexOf('?');
  const defaults = new Set([`algorithm=${DEFAULT_ALGORITHM}`, `digits=${DEFAULT_DIGITS}`, `period=${DEFAULT_PERIOD}`]);
  const params = written
    .slice(question + 1)
    .split('&')
    .filter((pair) => !defaults.has(pair));
  if (credential.touch) params.push('touch=1');
  return `${written.slice(0, question)}?${params.join('&')}`;
}

function readAlgorithm(text: string | undefined): HashAlgorithm {
  if (text === undefined) return DEFAULT_ALGORITHM;
  const algorithm = HASH_ALGORITHMS.find((name) => name === text.toUpperCase());
  if (algorithm === undefined) {
    throw badInput('The algorithm parameter of the otpauth URI must be SHA1, SHA256 or SHA512.');
  }
  return algorithm;
}

function readWholeNumber(text: string | undefined, name: string, fallback: number, min: number, max: number): number {
  if (text === undefined) return fallback;
  const value = WHOLE_NUMBER.test(text) ? Number.parseInt(text, 10) : Number.NaN;
  if (!(value >= min && value <= max)) {
    throw badInput(`The ${name} parameter of the otpauth URI must be a whole number from ${min} to ${max}.`);
  }
  return value;
}

function readTouch(text: string | undefined): boolean {
  if (text === undefined) return false;
  const value = text.toLowerCase();
  if (value === '1' || value === 'true') return true;
  if (value === '0' || value === 'false' || value === '') return false;
  throw badInput('The touch parameter of the otpauth URI must be 1, true, 0 or false.');
}

function decodeComponent(text: string, what: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw badInput(`The otpauth URI has a broken %-escape in ${what}.`);
  }
}

function badInput(message: string): KeytapError {
  return new KeytapError('BAD_INPUT', message);
}
