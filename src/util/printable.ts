/**
 * Text from a file or a peer, made safe to print on a terminal: control characters (C0, DEL, C1)
 * and the invisible characters that reorder or split lines (bidi controls, U+2028/2029) are shown
 * as escapes (`\u001b`, `\u202e`) instead of being sent to the terminal, where ESC ] 0; … would
 * retitle the window and ESC [ … could rewrite what is on the screen. The `\u` form because it
 * means the same character inside a JSON string, so printed JSON stays valid.
 */

// eslint-disable-next-line no-control-regex -- control characters are exactly what it looks for
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/gu;
// eslint-disable-next-line no-control-regex -- control characters are exactly what it looks for
const UNPRINTABLE_BUT_LINE_FEED = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/gu;

function escape(char: string): string {
  return `\\u${char.codePointAt(0)!.toString(16).padStart(4, '0')}`;
}

/** One line of text with every unprintable character escaped (line breaks too). */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, escape);
}

/** Several lines: as printable(), but line feeds stay line feeds. */
export function printableLines(text: string): string {
  return text.replace(UNPRINTABLE_BUT_LINE_FEED, escape);
}

/** The first C0/C1 control character or DEL in `text`, as "U+001B", or undefined. */
export function controlCharacterIn(text: string): string | undefined {
  // eslint-disable-next-line no-control-regex -- control characters are exactly what it looks for
  const match = /[\u0000-\u001f\u007f-\u009f]/u.exec(text);
  return match ? `U+${match[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}` : undefined;
}
