/**
 * otpauth:// key URIs (docs/seed-formats.md §4.1), one per line, through src/otp/otpauth-uri.ts. The
 * label is `issuer:account` (account = the token's account, else its UPN, else its serial); the
 * serial travels in a non-standard `serial` parameter that other readers ignore. A reader without
 * it takes the label as the serial. Empty lines and `#` lines are skipped.
 */
import { KeytapError } from '../errors.js';
import type { OathType } from '../otp/credential.js';
import { formatOtpauthUri, parseOtpauthUri } from '../otp/otpauth-uri.js';
import { LineProblems, problemsError } from './entra.js';
import type { SeedFormat, SeedReadOptions, SeedToken } from './token.js';
import { assertWritable, checkToken } from './token.js';
import { controlCharacterProblem, decodeText, eachLine, shownSerial } from './text.js';

export const otpauthFormat: SeedFormat = {
  name: 'otpauth',
  title: 'otpauth URIs',
  defaultFileName: (type: OathType) => (type === 'TOTP' ? 'tseeds-otpauth.txt' : 'hseeds-otpauth.txt'),
  accepts(token) {
    const base = checkToken(token);
    if (base !== null) return base;
    try {
      formatUri(token);
      return null;
    } catch (error) {
      if (error instanceof KeytapError) return error.message.replace(/\.$/u, '');
      throw error;
    }
  },
  write(tokens) {
    assertWritable(otpauthFormat, tokens);
    return Buffer.from(tokens.map((t) => `${formatUri(t)}\n`).join(''), 'utf8');
  },
  read: readOtpauth,
};

function formatUri(token: SeedToken): string {
  const uri = formatOtpauthUri({
    issuer: token.issuer,
    account: token.account ?? token.upn ?? token.serial,
    type: token.type,
    algorithm: token.algorithm,
    digits: token.digits,
    period: token.period,
    counter: token.counter,
    touch: false,
    secret: token.secret,
  });
  return `${uri}&serial=${encodeURIComponent(token.serial)}`;
}

function readOtpauth(bytes: Uint8Array, options: SeedReadOptions = {}): SeedToken[] {
  const text = decodeText(bytes, 'otpauth URI file');
  const problems = new LineProblems();
  const tokens: SeedToken[] = [];
  const seen = new Map<string, number>();
  for (const { number, text: lineText } of eachLine(text)) {
    if (problems.full) break;
    const line = lineText.trim();
    if (line === '' || line.startsWith('#')) continue;
    try {
      const credential = parseOtpauthUri(line);
      const serialParam = /[?&]serial=([^&]*)/iu.exec(line)?.[1];
      let serial: string;
      try {
        serial = serialParam === undefined ? '' : decodeURIComponent(serialParam).trim();
      } catch {
        throw new KeytapError('BAD_INPUT', 'the serial parameter has a broken %-escape');
      }
      const control =
        controlCharacterProblem('serial parameter', serial) ?? controlCharacterProblem('issuer', credential.issuer) ?? controlCharacterProblem('account name', credential.account);
      if (control) {
        problems.add(number, control);
        continue;
      }
      if (serial === '') {
        serial = credential.issuer ? `${credential.issuer}:${credential.account}` : credential.account;
        options.onWarning?.({ line: number, message: 'no serial parameter; the label is used as the serial number' });
      }
      const earlier = seen.get(serial);
      if (earlier !== undefined) {
        problems.add(number, `the serial number ${shownSerial(serial)} repeats line ${earlier}`);
        continue;
      }
      seen.set(serial, number);
      tokens.push({
        serial,
        secret: credential.secret,
        type: credential.type,
        algorithm: credential.algorithm,
        digits: credential.digits,
        period: credential.type === 'TOTP' ? credential.period : 30,
        counter: credential.type === 'HOTP' ? (credential.counter ?? 0) : 0,
        issuer: credential.issuer,
        account: credential.account,
      });
    } catch (error) {
      if (!(error instanceof KeytapError)) throw error;
      // The URI messages never repeat the URI (it holds the secret).
      problems.add(number, error.message.replace(/\.$/u, ''));
    }
  }
  if (tokens.length === 0 && problems.list.length === 0) problems.add(1, 'the file has no otpauth:// URIs');
  if (problems.list.length > 0) throw problemsError('otpauth URI file', problems.list);
  return tokens;
}
