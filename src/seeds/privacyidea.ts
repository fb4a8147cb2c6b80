/**
 * privacyIDEA "OATH CSV" (docs/seed-formats.md §4.2), the family LinOTP and NetIQ also read:
 *
 *   <serial>, <seed-hex>, TOTP, <otplen>, <timestep>
 *   <serial>, <seed-hex>[, HOTP[, <otplen>[, <counter>]]]
 *
 * No quoting; `#` lines and empty lines are skipped; `# version: 2` on the first line adds three
 * leading columns user, resolver, realm (the user is read as the UPN; the writer writes version 1).
 * privacyIDEA infers the hash from the seed length (40 hex → SHA-1, 64 → SHA-256, 128 → SHA-512,
 * 56/96 → SHA-224/384, anything else SHA-1), so the writer refuses a token whose seed length
 * would be read as another hash — for example a 32-byte SHA-1 seed.
 */
import type { HashAlgorithm, OathType } from '../otp/credential.js';
import { hexEncode } from '../otp/encoding.js';
import type { LineProblem } from './entra.js';
import { problemsError } from './entra.js';
import type { SeedFormat, SeedReadOptions, SeedToken } from './token.js';
import { MAX_COUNTER, assertWritable, checkToken } from './token.js';
import { classifySecret, decodeText, excelScientificMessage, findLostLeadingZeros, isExcelScientific, splitLines } from './text.js';

/** The hash privacyIDEA infers from a seed of this many bytes. */
export function privacyIdeaHash(seedBytes: number): HashAlgorithm | 'SHA224' | 'SHA384' {
  switch (seedBytes) {
    case 28:
      return 'SHA224';
    case 32:
      return 'SHA256';
    case 48:
      return 'SHA384';
    case 64:
      return 'SHA512';
    default:
      return 'SHA1';
  }
}

export const privacyIdeaFormat: SeedFormat = {
  name: 'privacyidea',
  title: 'privacyIDEA OATH CSV',
  defaultFileName: (type: OathType) => (type === 'TOTP' ? 'tseeds-privacyidea.csv' : 'hseeds-privacyidea.csv'),
  accepts(token) {
    const base = checkToken(token);
    if (base !== null) return base;
    if (token.digits !== 6 && token.digits !== 8) return `privacyIDEA tokens have 6 or 8 digits, not ${token.digits}`;
    if (token.type === 'TOTP' && token.period !== 30 && token.period !== 60) return `privacyIDEA TOTP tokens have a time step of 30 or 60 s, not ${token.period}`;
    const inferred = privacyIdeaHash(token.secret.length);
    if (inferred !== token.algorithm) {
      return `privacyIDEA infers the hash from the seed length, and would read this ${token.secret.length}-byte seed as ${inferred}, not ${token.algorithm} (use 20 bytes for SHA-1, 32 for SHA-256, 64 for SHA-512)`;
    }
    if (/[,#]/u.test(token.serial)) return 'the serial number contains a comma or "#", which the privacyIDEA CSV cannot carry';
    return null;
  },
  write(tokens) {
    assertWritable(privacyIdeaFormat, tokens);
    const lines = tokens.map((t) =>
      t.type === 'TOTP' ? `${t.serial}, ${hexEncode(t.secret)}, totp, ${t.digits}, ${t.period}` : `${t.serial}, ${hexEncode(t.secret)}, hotp, ${t.digits}, ${t.counter}`,
    );
    return Buffer.from(lines.map((l) => `${l}\r\n`).join(''), 'utf8');
  },
  read: readPrivacyIdea,
};

const HEX = /^(?:[0-9A-Fa-f]{2})+$/u;

function readPrivacyIdea(bytes: Uint8Array, _options: SeedReadOptions = {}): SeedToken[] {
  const lines = splitLines(decodeText(bytes, 'privacyIDEA CSV file'));
  const version2 = /^#\s*version:\s*2\s*$/iu.test(lines[0]?.text ?? '');
  const problems: LineProblem[] = [];
  const tokens: SeedToken[] = [];
  const seen = new Map<string, number>();
  const serials: { serial: string; place: string }[] = [];
  for (const { number, text } of lines) {
    if (text.trim() === '' || text.trimStart().startsWith('#')) continue;
    let fields = text.split(',').map((f) => f.trim());
    let upn: string | undefined;
    if (version2) {
      if (fields.length < 5) {
        problems.push({ line: number, message: 'a version 2 line needs user, resolver, realm, serial and seed' });
        continue;
      }
      upn = fields[0] || undefined;
      fields = fields.slice(3);
    }
    if (fields.length < 2 || fields.length > 5) {
      problems.push({ line: number, message: `the line has ${fields.length} field${fields.length === 1 ? '' : 's'}; it needs serial, seed[, type[, otplen[, timestep or counter]]]` });
      continue;
    }
    const [serial, seed, typeText = 'hotp', lengthText = '', fifth = ''] = fields as [string, string, string?, string?, string?];
    let ok = true;
    const problem = (message: string): void => {
      problems.push({ line: number, message });
      ok = false;
    };
    const typeName = typeText.toLowerCase() || 'hotp';
    if (typeName !== 'totp' && typeName !== 'hotp') {
      problems.push({ line: number, message: `the token type is ${typeText.toUpperCase().slice(0, 10)}; keytap programs only TOTP and HOTP` });
      continue;
    }
    const type: OathType = typeName === 'totp' ? 'TOTP' : 'HOTP';
    if (serial === '') problem('the serial number is empty');
    else if (isExcelScientific(serial)) problem(excelScientificMessage(serial));
    else {
      const earlier = seen.get(serial);
      if (earlier !== undefined) problem(`the serial number ${serial} repeats line ${earlier}`);
      else seen.set(serial, number);
      serials.push({ serial, place: `line ${number}` });
    }
    let algorithm: HashAlgorithm = 'SHA1';
    if (!HEX.test(seed)) {
      const kind = classifySecret(seed);
      if (seed === '') problem('the seed is empty');
      else if (kind === 'base32' || kind === 'base32-padded') problem('the seed looks like Base32; this file carries hex seeds');
      else if (kind === 'base64') problem('the seed looks like Base64; this file carries hex seeds');
      else if (/^[0-9A-Fa-f]+$/u.test(seed)) problem(`the seed has an odd number of hex digits (${seed.length}; cut short?)`);
      else problem('the seed is not hex');
    } else {
      const inferred = privacyIdeaHash(seed.length / 2);
      if (inferred === 'SHA224' || inferred === 'SHA384') problem(`privacyIDEA reads a ${seed.length / 2}-byte seed as ${inferred}, which keys do not support`);
      else algorithm = inferred;
    }
    const digits = lengthText === '' ? 6 : Number(lengthText);
    if (digits !== 6 && digits !== 8) problem(`the OTP length is "${lengthText.slice(0, 10)}"; it must be 6 or 8`);
    let period = 30;
    let counter = 0;
    if (type === 'TOTP' && fifth !== '') {
      period = Number(fifth);
      if (period !== 30 && period !== 60) problem(`the time step is "${fifth.slice(0, 10)}"; it must be 30 or 60`);
    }
    if (type === 'HOTP' && fifth !== '') {
      counter = /^\d{1,16}$/u.test(fifth) ? Number(fifth) : Number.NaN;
      if (!(counter <= MAX_COUNTER)) problem(`the counter must be a whole number from 0 to ${MAX_COUNTER}`);
    }
    if (ok) tokens.push({ serial, secret: Uint8Array.from(Buffer.from(seed, 'hex')), type, algorithm, digits, period, counter, upn });
  }
  for (const lost of findLostLeadingZeros(serials)) problems.push({ line: Number(lost.place.slice(5)), message: lost.message });
  if (tokens.length === 0 && problems.length === 0) problems.push({ line: 1, message: 'the file has no tokens' });
  if (problems.length > 0) throw problemsError('privacyIDEA CSV file', problems.sort((a, b) => a.line - b.line));
  return tokens;
}
