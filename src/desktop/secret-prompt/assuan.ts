/**
 * The few pieces of GnuPG's Assuan protocol a pinentry client needs (libassuan's "Assuan" manual,
 * §3 "Client/Server protocol"): line-based, at most 1000 bytes a line; the server answers every
 * command with `OK [text]` or `ERR <code> [text]`, sends data as `D <escaped>` lines, status as
 * `S <keyword> …`, comments as `# …`, and may ask back with `INQUIRE <keyword>`. In parameters and
 * data, `%`, CR and LF (and any other byte the sender likes) travel as `%XX`.
 */

/** Assuan's line limit, the newline included. */
export const MAX_LINE_BYTES = 1000;

/** GPG_ERR_CANCELED: the user pressed Cancel (or closed the dialog). */
export const GPG_ERR_CANCELED = 99;
/** GPG_ERR_FULLY_CANCELED: as cancelled, and do not ask again. */
export const GPG_ERR_FULLY_CANCELED = 198;
/** GPG_ERR_TIMEOUT: the pinentry's own timeout (SETTIMEOUT) passed. */
export const GPG_ERR_TIMEOUT = 62;
/** The old libassuan's ASSUAN_Canceled, still sent by some pinentries without an error source. */
export const ASSUAN_CANCELED = 111;
/** GPG_ERR_NOT_CONFIRMED: CONFIRM answered "no". */
export const GPG_ERR_NOT_CONFIRMED = 114;

/** Percent-escapes a parameter: `%`, CR and LF must be, other control characters are as well. */
export function escapeParameter(text: string): string {
  let out = '';
  for (const char of text) {
    const code = char.codePointAt(0)!;
    if (char === '%' || code < 0x20 || code === 0x7f) out += `%${code.toString(16).toUpperCase().padStart(2, '0')}`;
    else out += char;
  }
  return out;
}

/** Undoes `%XX` escapes, byte-wise, then reads the bytes as UTF-8. */
export function unescapeData(text: string): Buffer {
  const bytes: number[] = [];
  const raw = Buffer.from(text, 'utf8');
  for (let i = 0; i < raw.length; i++) {
    const byte = raw[i]!;
    if (byte === 0x25 && i + 2 < raw.length && /^[0-9A-Fa-f]{2}$/u.test(raw.subarray(i + 1, i + 3).toString('latin1'))) {
      bytes.push(Number.parseInt(raw.subarray(i + 1, i + 3).toString('latin1'), 16));
      i += 2;
    } else bytes.push(byte);
  }
  return Buffer.from(bytes);
}

/** One line from the server, taken apart. */
export type ServerLine =
  | { kind: 'ok'; text: string }
  | { kind: 'err'; code: number; text: string }
  | { kind: 'data'; data: string }
  | { kind: 'status'; text: string }
  | { kind: 'comment' }
  | { kind: 'inquire'; keyword: string }
  | { kind: 'unknown'; text: string };

export function parseServerLine(line: string): ServerLine {
  const [word = '', rest = ''] = splitFirst(line);
  switch (word) {
    case 'OK':
      return { kind: 'ok', text: rest };
    case 'ERR': {
      const [code = '', text = ''] = splitFirst(rest);
      return { kind: 'err', code: Number.parseInt(code, 10) || 0, text };
    }
    case 'D':
      return { kind: 'data', data: rest };
    case 'S':
      return { kind: 'status', text: rest };
    case 'INQUIRE':
      return { kind: 'inquire', keyword: splitFirst(rest)[0] ?? '' };
    default:
      return word.startsWith('#') ? { kind: 'comment' } : { kind: 'unknown', text: line };
  }
}

/** The error code without its source: libgpg-error puts the source in the top 8 bits (pinentry is 5). */
export function errorCodeOf(code: number): number {
  return code & 0xffff;
}

export function isCancel(code: number): boolean {
  const c = errorCodeOf(code);
  return c === GPG_ERR_CANCELED || c === GPG_ERR_FULLY_CANCELED || c === ASSUAN_CANCELED || c === GPG_ERR_NOT_CONFIRMED;
}

function splitFirst(text: string): [string, string] {
  const space = text.indexOf(' ');
  return space < 0 ? [text, ''] : [text.slice(0, space), text.slice(space + 1)];
}
