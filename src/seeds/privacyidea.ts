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
import { LineProblems, problemsError } from './entra.js';
import type { SeedFormat, SeedReadOptions, SeedToken } from './token.js';
import { MAX_COUNTER, assertWritable, checkToken } from './token.js';
import { controlCharacterProblem, decodeText, eachLine, excelScientificMessage, fieldCount, findLostLeadingZeros, hexSeedProblem, isExcelScientific, shown, shownSerial, splitFields } from './text.js';

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

/** The token types privacyIDEA's OATH CSV knows; a type column holding anything else is not shown (it may be a shifted seed). */
const KNOWN_TYPES = new Set(['totp', 'hotp', 'ocra', 'tan']);

function readPrivacyIdea(bytes: Uint8Array, _options: SeedReadOptions = {}): SeedToken[] {
  const text = decodeText(bytes, 'privacyIDEA CSV file');
  const problems = new LineProblems();
  const tokens: SeedToken[] = [];
  const seen = new Map<string, number>();
  const serials: { serial: string; place: string }[] = [];
  let version2 = false;
  for (const { number, text: line } of eachLine(text)) {
    if (problems.full) break;
    if (number === 1 && /^#\s*version:\s*2\s*$/iu.test(line)) version2 = true;
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue;
    let fields = splitFields(line, version2 ? 8 : 5) ?? [];
    const count = fields.length > 0 ? fields.length : fieldCount(line);
    let upn: string | undefined;
    if (version2) {
      if (count < 5) {
        problems.add(number, 'a version 2 line needs user, resolver, realm, serial and seed');
        continue;
      }
      upn = fields[0] || undefined;
      fields = fields.slice(3);
    }
    const own = version2 ? count - 3 : count;
    if (own < 2 || own > 5) {
      problems.add(number, `the line has ${count} field${count === 1 ? '' : 's'}; it needs ${version2 ? 'user, resolver, realm, ' : ''}serial, seed[, type[, otplen[, timestep or counter]]]`);
      continue;
    }
    const [serial, seed, typeText = 'hotp', lengthText = '', fifth = ''] = fields as [string, string, string?, string?, string?];
    let ok = true;
    const problem = (message: string): void => {
      problems.add(number, message);
      ok = false;
    };
    const typeName = typeText.toLowerCase() || 'hotp';
    if (typeName !== 'totp' && typeName !== 'hotp') {
      problems.add(number, KNOWN_TYPES.has(typeName) ? `the token type is ${typeName.toUpperCase()}; keytap programs only TOTP and HOTP` : 'the token type (the third column) is not TOTP or HOTP; is a column missing or one too many?');
      continue;
    }
    const type: OathType = typeName === 'totp' ? 'TOTP' : 'HOTP';
    for (const [field, value] of [['user', upn], ['serial number', serial]] as const) {
      const control = controlCharacterProblem(field, value);
      if (control) problem(control);
    }
    if (serial === '') problem('the serial number is empty');
    else if (isExcelScientific(serial)) problem(excelScientificMessage(serial));
    else {
      const earlier = seen.get(serial);
      if (earlier !== undefined) problem(`the serial number ${shownSerial(serial)} repeats line ${earlier}`);
      else seen.set(serial, number);
      serials.push({ serial, place: `line ${number}` });
    }
    let algorithm: HashAlgorithm = 'SHA1';
    const seedProblem = hexSeedProblem(seed);
    if (seedProblem) problem(seedProblem);
    else {
      const inferred = privacyIdeaHash(seed.length / 2);
      if (inferred === 'SHA224' || inferred === 'SHA384') problem(`privacyIDEA reads a ${seed.length / 2}-byte seed as ${inferred}, which keys do not support`);
      else algorithm = inferred;
    }
    const digits = lengthText === '' ? 6 : Number(lengthText);
    if (digits !== 6 && digits !== 8) problem(`the OTP length is ${shown(lengthText)}; it must be 6 or 8`);
    let period = 30;
    let counter = 0;
    if (type === 'TOTP' && fifth !== '') {
      period = Number(fifth);
      if (period !== 30 && period !== 60) problem(`the time step is ${shown(fifth)}; it must be 30 or 60`);
    }
    if (type === 'HOTP' && fifth !== '') {
      counter = /^\d{1,16}$/u.test(fifth) ? Number(fifth) : Number.NaN;
      if (!(counter <= MAX_COUNTER)) problem(`the counter must be a whole number from 0 to ${MAX_COUNTER}`);
    }
    if (ok) tokens.push({ serial, secret: Uint8Array.from(Buffer.from(seed, 'hex')), type, algorithm, digits, period, counter, upn });
  }
  for (const lost of findLostLeadingZeros(serials)) problems.add(Number(lost.place.slice(5)), lost.message);
  if (tokens.length === 0 && problems.list.length === 0) problems.add(1, 'the file has no tokens');
  if (problems.list.length > 0) throw problemsError('privacyIDEA CSV file', problems.list.sort((a, b) => a.line - b.line));
  return tokens;
}
