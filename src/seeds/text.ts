/**
 * Text-level helpers the seed readers share: bytes → text (UTF-8 only, with a BOM accepted and
 * UTF-16 / Latin-1 recognised and named), lines with CRLF accepted, one-line CSV fields, the
 * spreadsheet damage Excel does to serials, and what kind of encoding a secret string is in.
 * Pure: no I/O. Nothing here ever puts file content other than serials into a message.
 */
import { badInput } from './token.js';

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Decodes a seed file as UTF-8. A UTF-8 BOM is dropped; UTF-16 (with or without BOM) and bytes
 * that are not UTF-8 (Latin-1 / Windows-1252, as Excel and Notepad save) are BAD_INPUT saying so,
 * with the line of the first bad byte.
 */
export function decodeText(bytes: Uint8Array, what: string): string {
  if (bytes.length === 0) throw badInput(`The ${what} is empty.`);
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

function firstNonUtf8(bytes: Uint8Array): { line: number; byte: number } {
  let line = 1;
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    if (b === 0x0a) line++;
    let need = 0;
    if (b < 0x80) need = 0;
    else if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) need = 2;
    else if (b >= 0xf0 && b <= 0xf4) need = 3;
    else return { line, byte: b };
    const sequence = bytes.subarray(i, i + need + 1);
    if (sequence.length < need + 1) return { line, byte: b };
    try {
      UTF8.decode(sequence);
    } catch {
      return { line, byte: b };
    }
    i += need + 1;
  }
  return { line, byte: 0 };
}

export interface TextLine {
  /** 1-based. */
  number: number;
  text: string;
}

/** Lines, CRLF or LF (a lone CR too); a final empty line after the last line break is dropped. */
export function splitLines(text: string): TextLine[] {
  const parts = text.split(/\r\n|\n|\r/u);
  if (parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
  return parts.map((line, index) => ({ number: index + 1, text: line }));
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

const SCIENTIFIC = /^[+-]?\d+(?:[.,]\d+)?[eE][+-]?\d+$/u;

/** Excel shows long numbers as 1.23E+11 and saves them that way: the serial is gone. */
export function isExcelScientific(serial: string): boolean {
  return SCIENTIFIC.test(serial);
}

export function excelScientificMessage(serial: string): string {
  return `the serial number ${serial} is in scientific notation, which is what Excel does to long numbers: the real serial is lost`;
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
      message: `the serial number ${s.serial} is shorter than ${example.serial} (${example.place}); did Excel drop its leading zeros? The real serial may be ${s.serial.padStart(width, '0')}`,
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
  const unpadded = text.replace(/=+$/u, '');
  if (unpadded.length > 0 && unpadded.length < text.length && BASE32.test(unpadded) && text.length % 8 === 0 && !/[a-z]/u.test(text)) {
    return 'base32-padded';
  }
  if (HEX.test(text)) return 'hex';
  if (BASE64.test(text)) return 'base64';
  // Base32 with more padding than Base64 ever has, but the wrong amount for Base32.
  if (unpadded.length > 0 && BASE32.test(unpadded)) return 'base32-padded';
  return 'invalid';
}

/** Base32 lengths no encoder produces: 1, 3 or 6 characters past a multiple of 8. */
export function isImpossibleBase32Length(length: number): boolean {
  return [1, 3, 6].includes(length % 8);
}

/** Base32 encoders never mix upper and lower case; Base64 always does. */
export function mixesCase(text: string): boolean {
  return /[a-z]/u.test(text) && /[A-Z]/u.test(text);
}
