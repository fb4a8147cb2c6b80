/**
 * The "general purpose" hex CSV of vendor programming tools (docs/seed-formats.md §3.2, §6.4):
 * `hseeds.csv`, one HOTP token per line as `serial,hexseed,counter`, no header. Duo, PingID,
 * privacyIDEA and NetIQ all read `serial,hex` first. There is no column for the hash or the number
 * of digits, so the format carries HOTP, SHA-1, 6 digits only; a reader takes a missing counter
 * as 0 and skips a header line and `#` comments.
 */
import type { OathType } from '../otp/credential.js';
import { hexEncode } from '../otp/encoding.js';
import type { LineProblem } from './entra.js';
import { problemsError } from './entra.js';
import type { SeedFormat, SeedReadOptions, SeedToken } from './token.js';
import { MAX_COUNTER, assertWritable, checkToken } from './token.js';
import { classifySecret, decodeText, excelScientificMessage, findLostLeadingZeros, isExcelScientific, splitLines } from './text.js';

export const hexCsvFormat: SeedFormat = {
  name: 'hexcsv',
  title: 'hex CSV',
  defaultFileName: (type: OathType) => (type === 'HOTP' ? 'hseeds.csv' : 'tseeds-hex.csv'),
  accepts(token) {
    const base = checkToken(token);
    if (base !== null) return base;
    if (token.type !== 'HOTP') return 'the hex CSV (serial,hexseed,counter) carries HOTP tokens only';
    if (token.algorithm !== 'SHA1') return 'the hex CSV has no column for the hash, so it carries SHA-1 tokens only';
    if (token.digits !== 6) return 'the hex CSV has no column for the number of digits, so it carries 6-digit tokens only';
    if (/[,"#]/u.test(token.serial)) return 'the serial number contains a comma, a quote or "#", which the hex CSV cannot carry';
    return null;
  },
  write(tokens) {
    assertWritable(hexCsvFormat, tokens);
    return Buffer.from(tokens.map((t) => `${t.serial},${hexEncode(t.secret)},${t.counter}\r\n`).join(''), 'utf8');
  },
  read: readHexCsv,
};

const HEX = /^(?:[0-9A-Fa-f]{2})+$/u;

function readHexCsv(bytes: Uint8Array, _options: SeedReadOptions = {}): SeedToken[] {
  const lines = splitLines(decodeText(bytes, 'hex CSV file'));
  const problems: LineProblem[] = [];
  const tokens: SeedToken[] = [];
  const seen = new Map<string, number>();
  const serials: { serial: string; place: string }[] = [];
  for (const { number, text } of lines) {
    if (text.trim() === '' || text.trimStart().startsWith('#')) continue;
    const fields = text.split(',').map((f) => f.trim());
    if (tokens.length === 0 && problems.length === 0 && fields.length >= 2 && !HEX.test(fields[1]!) && /seed|secret|key|serial/iu.test(text)) continue; // header
    if (fields.length < 2 || fields.length > 3) {
      const cut = fields.length < 2 && number === lines.length ? ' (is the file cut short?)' : '';
      problems.push({ line: number, message: `the line has ${fields.length} field${fields.length === 1 ? '' : 's'}; it needs serial,hexseed[,counter]${cut}` });
      continue;
    }
    const [serial, seed, counterText] = fields as [string, string, string | undefined];
    let ok = true;
    const problem = (message: string): void => {
      problems.push({ line: number, message });
      ok = false;
    };
    if (serial === '') problem('the serial number is empty');
    else if (isExcelScientific(serial)) problem(excelScientificMessage(serial));
    else {
      const earlier = seen.get(serial);
      if (earlier !== undefined) problem(`the serial number ${serial} repeats line ${earlier}`);
      else seen.set(serial, number);
      serials.push({ serial, place: `line ${number}` });
    }
    if (!HEX.test(seed)) {
      const kind = classifySecret(seed);
      if (seed === '') problem('the seed is empty');
      else if (kind === 'base32' || kind === 'base32-padded') problem('the seed looks like Base32; this file carries hex seeds');
      else if (kind === 'base64') problem('the seed looks like Base64; this file carries hex seeds');
      else if (/^[0-9A-Fa-f]+$/u.test(seed)) problem(`the seed has an odd number of hex digits (${seed.length}; cut short?)`);
      else problem('the seed is not hex');
    }
    let counter = 0;
    if (counterText !== undefined && counterText !== '') {
      counter = /^\d{1,16}$/u.test(counterText) ? Number(counterText) : Number.NaN;
      if (!(counter <= MAX_COUNTER)) problem(`the counter must be a whole number from 0 to ${MAX_COUNTER}`);
    }
    if (ok) {
      tokens.push({ serial, secret: Uint8Array.from(Buffer.from(seed, 'hex')), type: 'HOTP', algorithm: 'SHA1', digits: 6, period: 30, counter });
    }
  }
  for (const lost of findLostLeadingZeros(serials)) problems.push({ line: Number(lost.place.slice(5)), message: lost.message });
  if (tokens.length === 0 && problems.length === 0) problems.push({ line: 1, message: 'the file has no tokens' });
  if (problems.length > 0) throw problemsError('hex CSV file', problems.sort((a, b) => a.line - b.line));
  return tokens;
}
