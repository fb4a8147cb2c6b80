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
import { LineProblems, problemsError } from './entra.js';
import type { SeedFormat, SeedReadOptions, SeedToken } from './token.js';
import { MAX_COUNTER, assertWritable, checkToken } from './token.js';
import { controlCharacterProblem, decodeText, eachLine, excelScientificMessage, fieldCount, findLostLeadingZeros, hexSeedProblem, isExcelScientific, shownSerial, splitFields } from './text.js';

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
  const text = decodeText(bytes, 'hex CSV file');
  const problems = new LineProblems();
  const tokens: SeedToken[] = [];
  const seen = new Map<string, number>();
  const serials: { serial: string; place: string }[] = [];
  let lastLine = 0;
  let shortLine: LineProblem | undefined;
  for (const { number, text: line } of eachLine(text)) {
    lastLine = number;
    if (problems.full) break;
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue;
    const fields = splitFields(line, 3);
    if (tokens.length === 0 && problems.list.length === 0 && fields && fields.length >= 2 && !HEX.test(fields[1]!) && /seed|secret|key|serial/iu.test(line)) continue; // header
    if (!fields || fields.length < 2) {
      const count = fieldCount(line);
      problems.add(number, `the line has ${count} field${count === 1 ? '' : 's'}; it needs serial,hexseed[,counter]`);
      if (count < 2) shortLine = problems.list[problems.list.length - 1];
      continue;
    }
    const [serial, seed, counterText] = fields as [string, string, string | undefined];
    let ok = true;
    const problem = (message: string): void => {
      problems.add(number, message);
      ok = false;
    };
    const control = controlCharacterProblem('serial number', serial);
    if (control) problem(control);
    else if (serial === '') problem('the serial number is empty');
    else if (isExcelScientific(serial)) problem(excelScientificMessage(serial));
    else {
      const earlier = seen.get(serial);
      if (earlier !== undefined) problem(`the serial number ${shownSerial(serial)} repeats line ${earlier}`);
      else seen.set(serial, number);
      serials.push({ serial, place: `line ${number}` });
    }
    const seedProblem = hexSeedProblem(seed);
    if (seedProblem) problem(seedProblem);
    let counter = 0;
    if (counterText !== undefined && counterText !== '') {
      counter = /^\d{1,16}$/u.test(counterText) ? Number(counterText) : Number.NaN;
      if (!(counter <= MAX_COUNTER)) problem(`the counter must be a whole number from 0 to ${MAX_COUNTER}`);
    }
    if (ok) {
      tokens.push({ serial, secret: Uint8Array.from(Buffer.from(seed, 'hex')), type: 'HOTP', algorithm: 'SHA1', digits: 6, period: 30, counter });
    }
  }
  if (shortLine?.line === lastLine) shortLine.message += ' (is the file cut short?)';
  for (const lost of findLostLeadingZeros(serials)) problems.add(Number(lost.place.slice(5)), lost.message);
  if (tokens.length === 0 && problems.list.length === 0) problems.add(1, 'the file has no tokens');
  if (problems.list.length > 0) throw problemsError('hex CSV file', problems.list.sort((a, b) => a.line - b.line));
  return tokens;
}
