/**
 * Text-level helpers the seed readers share: bytes → text (UTF-8 only, with a BOM accepted and
 * UTF-16 / Latin-1 recognised and named), lines with CRLF accepted, one-line CSV fields, the
 * spreadsheet damage Excel does to serials, and what kind of encoding a secret string is in.
 * Pure: no I/O. What a message may show of a file's content is decided here (shown, shownSerial).
 */
import { controlCharacterIn, printable } from '../util/printable.js';
import { badInput } from './token.js';

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const UTF8_REPLACING = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

/**
 * The largest seed file keytap reads: 32 MiB. The largest real ones are a few megabytes (10,000
 * tokens are 0.9 MB as an Entra CSV and 12 MB as an encrypted PSKC file); a bigger file is a wrong
 * file, and refusing it up front keeps a damaged or hostile one from costing gigabytes of memory.
 */
export const MAX_SEED_FILE_BYTES = 32 * 1024 * 1024;

/** BAD_INPUT for a seed file of `size` bytes when that is above MAX_SEED_FILE_BYTES. */
export function checkSeedFileSize(size: number, what: string): void {
  if (size > MAX_SEED_FILE_BYTES) {
    throw badInput(
      `The ${what} is ${(Math.ceil((size / 2 ** 20) * 10) / 10).toFixed(1)} MB; keytap reads seed files of up to ${MAX_SEED_FILE_BYTES / 2 ** 20} MB (real ones are a few MB at most).`,
      'Check that this is the seed file meant; a batch that really is this large can be split into several files.',
    );
  }
}

/**
 * Decodes a seed file as UTF-8. A UTF-8 BOM is dropped; UTF-16 (with or without BOM) and bytes
 * that are not UTF-8 (Latin-1 / Windows-1252, as Excel and Notepad save) are BAD_INPUT saying so,
 * with the line of the first bad byte. Files above MAX_SEED_FILE_BYTES are refused before decoding.
 */
export function decodeText(bytes: Uint8Array, what: string): string {
  if (bytes.length === 0) throw badInput(`The ${what} is empty.`);
  checkSeedFileSize(bytes.length, what);
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) {
    throw badInput(`The ${what} is UTF-16 (it starts with a UTF-16 byte order mark); keytap reads UTF-8.`, 'Save the file as "UTF-8" (in Excel: "CSV UTF-8"; in Notepad: Encoding → UTF-8).');
  }
  if (looksLikeUtf16WithoutBom(bytes)) {
    throw badInput(`The ${what} looks like UTF-16 (every other byte is zero); keytap reads UTF-8.`, 'Save the file as "UTF-8".');
  }
  let start = 0;
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) start = 3;
  const body = bytes.subarray(start);
  try {
    return UTF8.decode(body);
  } catch {
    const { line, byte } = firstNonUtf8(body);
    const latin = byte >= 0x80 ? ' (it looks like Latin-1 / Windows-1252, as older Excel and Notepad save)' : '';
    throw badInput(`The ${what} is not UTF-8: line ${line} has a byte that is not valid UTF-8${latin}.`, 'Save the file as "UTF-8" and try again.');
  }
}

function looksLikeUtf16WithoutBom(bytes: Uint8Array): boolean {
  const n = Math.min(bytes.length, 64);
  if (n < 4) return false;
  let evenZeros = 0;
  let oddZeros = 0;
  for (let i = 0; i < n; i++) {
    if (bytes[i] === 0) {
      if (i % 2 === 0) evenZeros++;
      else oddZeros++;
    }
  }
  const pairs = Math.floor(n / 2);
  return evenZeros >= pairs * 0.8 || oddZeros >= pairs * 0.8;
}

/**
 * The line and value of the first byte that is not UTF-8, for a body the strict decoder refused.
 * One lenient decode: everything before the first U+FFFD it made is valid UTF-8, so its length in
 * bytes says where that U+FFFD came from; one that the file really holds (EF BF BD) is skipped.
 */
function firstNonUtf8(bytes: Uint8Array): { line: number; byte: number } {
  const text = UTF8_REPLACING.decode(bytes);
  let line = 1;
  let charIndex = 0;
  let byteIndex = 0;
  for (let replacement = text.indexOf('\uFFFD'); replacement >= 0; replacement = text.indexOf('\uFFFD', charIndex)) {
    const before = text.slice(charIndex, replacement);
    line += countLineFeeds(before);
    byteIndex += Buffer.byteLength(before, 'utf8');
    if (bytes[byteIndex] !== 0xef || bytes[byteIndex + 1] !== 0xbf || bytes[byteIndex + 2] !== 0xbd) return { line, byte: bytes[byteIndex] ?? 0 };
    charIndex = replacement + 1;
    byteIndex += 3;
  }
  return { line, byte: 0 };
}

function countLineFeeds(text: string): number {
  let count = 0;
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) count++;
  return count;
}

export interface TextLine {
  /** 1-based. */
  number: number;
  text: string;
}

/**
 * Lines, CRLF or LF (a lone CR too); a final empty line after the last line break is dropped.
 * One at a time: a file of millions of empty lines must not become millions of objects at once.
 */
export function* eachLine(text: string): Generator<TextLine, void, undefined> {
  let number = 1;
  let start = 0;
  const breaks = /\r\n|\n|\r/gu;
  for (let match = breaks.exec(text); match; match = breaks.exec(text)) {
    yield { number, text: text.slice(start, match.index) };
    number++;
    start = breaks.lastIndex;
  }
  if (start < text.length || number === 1) yield { number, text: text.slice(start) };
}

/** The number of fields `line` has when split at `separator`, without splitting it. */
export function fieldCount(line: string, separator = ','): number {
  let count = 1;
  for (let i = line.indexOf(separator); i >= 0; i = line.indexOf(separator, i + separator.length)) count++;
  return count;
}

/**
 * The fields of a line without CSV quoting, trimmed; null when there are more than `max` (a line
 * of millions of commas is counted, not split into millions of strings).
 */
export function splitFields(line: string, max: number): string[] | null {
  if (fieldCount(line) > max) return null;
  return line.split(',').map((f) => f.trim());
}

/**
 * One CSV record on one line (RFC 4180 quoting: "a,b" and "" inside quotes). Returns null when a
 * quote is left open: a quoted field running over the line end is not something a seed file needs.
 */
export function parseCsvLine(line: string, separator = ','): string[] | null {
  if (!line.includes('"')) return line.split(separator);
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    // Spaces before an opening quote are tolerated (", "x"").
    let j = i;
    while (line[j] === ' ') j++;
    if (line[j] === '"') {
      j++;
      for (;;) {
        const quote = line.indexOf('"', j);
        if (quote < 0) return null;
        field += line.slice(j, quote);
        if (line[quote + 1] === '"') {
          field += '"';
          j = quote + 2;
          continue;
        }
        j = quote + 1;
        break;
      }
      const next = line.indexOf(separator, j);
      field += next < 0 ? line.slice(j) : line.slice(j, next);
      fields.push(field);
      if (next < 0) return fields;
      i = next + 1;
    } else {
      const next = line.indexOf(separator, i);
      fields.push(next < 0 ? line.slice(i) : line.slice(i, next));
      if (next < 0) return fields;
      i = next + 1;
    }
  }
}

/**
 * The longest value from a seed file a message shows. Damage to a file (a deleted comma, a shifted
 * column, a missing ">") can put a secret in any field, so no field is shown whole when longer:
 * a secret of 16 bytes or more (RFC 4226's minimum) is at least 22 characters in Base64, 26 in
 * Base32 and 32 in hex.
 */
const SHOWN_MAX = 20;

/** A value from a non-secret field as a message shows it: quoted and printable, or only its length. */
export function shown(value: string): string {
  return value.length <= SHOWN_MAX ? `"${printable(value)}"` : `${value.length} characters long`;
}

/** A serial as messages show it: as it is when plain, quoted when it has odd characters, its length when long. */
export function shownSerial(serial: string): string {
  if (/^[A-Za-z0-9._+-]{1,20}$/u.test(serial)) return serial;
  return serial.length <= SHOWN_MAX ? shown(serial) : `(${serial.length} characters)`;
}

/** A URI (an algorithm, a namespace) as messages show it: its last part ("…:ocra") when short, else its length. */
export function shownUri(uri: string): string {
  if (uri === '') return '(none)';
  if (uri.length <= SHOWN_MAX) return printable(uri);
  const cut = Math.max(uri.lastIndexOf(':'), uri.lastIndexOf('#'), uri.lastIndexOf('/'));
  const tail = uri.slice(cut);
  return cut >= 0 && tail.length > 1 && tail.length <= SHOWN_MAX ? `…${printable(tail)}` : `(a URI ${uri.length} characters long)`;
}

/** The words for a control character in a text field ("the serial number"), or null when there is none. */
export function controlCharacterProblem(field: string, value: string | undefined): string | null {
  const char = value === undefined ? undefined : controlCharacterIn(value);
  return char ? `the ${field} contains a control character (${char}); remove it (it may be a terminal escape sequence)` : null;
}

const SCIENTIFIC = /^[+-]?\d+(?:[.,]\d+)?[eE][+-]?\d+$/u;

/** Excel shows long numbers as 1.23E+11 and saves them that way: the serial is gone. */
export function isExcelScientific(serial: string): boolean {
  return SCIENTIFIC.test(serial);
}

export function excelScientificMessage(serial: string): string {
  return `the serial number ${shownSerial(serial)} is in scientific notation, which is what Excel does to long numbers: the real serial is lost`;
}

export interface SerialPlace {
  serial: string;
  /** "line 4", "KeyPackage[2]". */
  place: string;
}

/**
 * Leading zeros lost to Excel: numeric serials where some start with 0 and others of the same
 * family are shorter. Returns one message per suspicious serial (without secrets).
 */
export function findLostLeadingZeros(serials: readonly SerialPlace[]): { place: string; message: string }[] {
  const numeric = serials.filter((s) => /^\d+$/u.test(s.serial));
  const zeroPadded = numeric.filter((s) => s.serial.length > 1 && s.serial.startsWith('0'));
  if (zeroPadded.length === 0) return [];
  const width = Math.max(...zeroPadded.map((s) => s.serial.length));
  const example = zeroPadded.find((s) => s.serial.length === width)!;
  return numeric
    .filter((s) => s.serial.length < width && !s.serial.startsWith('0'))
    .map((s) => ({
      place: s.place,
      message: `the serial number ${shownSerial(s.serial)} is shorter than ${shownSerial(example.serial)} (${example.place}); did Excel drop its leading zeros?${width <= SHOWN_MAX ? ` The real serial may be ${s.serial.padStart(width, '0')}` : ''}`,
    }));
}

export type SecretKind =
  /** Base32 alphabet only, upper or lower case, no padding. */
  | 'base32'
  /** Base32 with `=` padding to a multiple of 8. */
  | 'base32-padded'
  /** Hex digits with at least one 0, 1, 8 or 9: cannot be Base32. */
  | 'hex'
  /** Has `+`, `/`, Base64 padding, or digits and letters only Base64 combines. */
  | 'base64'
  | 'empty'
  /** Something else (spaces, punctuation). */
  | 'invalid';

const BASE32 = /^[A-Za-z2-7]+$/u;
const HEX = /^[0-9A-Fa-f]+$/u;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/u;

/** What a secret string most likely is (docs/seed-formats.md §1.2): Base32 wins whenever it fits. */
export function classifySecret(text: string): SecretKind {
  if (text.length === 0) return 'empty';
  if (BASE32.test(text)) return 'base32';
  const unpadded = withoutPadding(text);
  if (unpadded.length > 0 && unpadded.length < text.length && BASE32.test(unpadded) && text.length % 8 === 0 && !/[a-z]/u.test(text)) {
    return 'base32-padded';
  }
  if (HEX.test(text)) return 'hex';
  if (BASE64.test(text)) return 'base64';
  // Base32 with more padding than Base64 ever has, but the wrong amount for Base32.
  if (unpadded.length > 0 && BASE32.test(unpadded)) return 'base32-padded';
  return 'invalid';
}

/**
 * `text` without its trailing `=` padding. Not `replace(/=+$/)`: a regular expression tries that
 * at every `=` of a long run, which is quadratic in the run's length.
 */
export function withoutPadding(text: string): string {
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === 0x3d) end--;
  return end === text.length ? text : text.slice(0, end);
}

/** What is wrong with a hex seed column, in words that never repeat it; null when it is hex. */
export function hexSeedProblem(seed: string): string | null {
  if (/^(?:[0-9A-Fa-f]{2})+$/u.test(seed)) return null;
  const kind = classifySecret(seed);
  if (seed === '') return 'the seed is empty';
  if (kind === 'base32' || kind === 'base32-padded') return 'the seed looks like Base32; this file carries hex seeds';
  if (kind === 'base64') return 'the seed looks like Base64; this file carries hex seeds';
  if (/^[0-9A-Fa-f]+$/u.test(seed)) return `the seed has an odd number of hex digits (${seed.length}; cut short?)`;
  return 'the seed is not hex';
}

/** Base32 lengths no encoder produces: 1, 3 or 6 characters past a multiple of 8. */
export function isImpossibleBase32Length(length: number): boolean {
  return [1, 3, 6].includes(length % 8);
}

/** Base32 encoders never mix upper and lower case; Base64 always does. */
export function mixesCase(text: string): boolean {
  return /[a-z]/u.test(text) && /[A-Z]/u.test(text);
}
