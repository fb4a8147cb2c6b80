/**
 * Base32 (RFC 4648) and hex for OATH secrets. Reading is tolerant the way users paste secrets
 * (lower case, spaces, dashes, `=` padding); writing is upper case without padding.
 */
import { KeytapError } from '../errors.js';

const BASE32_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const BASE32_VALUES = new Map([...BASE32_ALPHABET].map((c, i) => [c, i]));

export function base32Encode(bytes: Uint8Array): string {
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = ((buffer << 8) | byte) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      out += BASE32_ALPHABET[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32_ALPHABET[(buffer << (5 - bits)) & 31];
  return out;
}

/**
 * Decodes Base32, ignoring case, white space, dashes and trailing `=` padding. Throws BAD_INPUT
 * naming the first bad character's position (never the secret itself).
 */
export function base32Decode(text: string): Uint8Array {
  // Everything from here on is padding or separators; `=` anywhere before it is an error. A loop,
  // not text.search(/[=\s-]*$/): that regular expression is tried at every `=` of a long run, which
  // is quadratic in the run's length.
  let end = text.length;
  while (end > 0 && /[=\s-]/u.test(text[end - 1]!)) end--;
  const out: number[] = [];
  let buffer = 0;
  let bits = 0;
  for (let i = 0; i < end; i++) {
    const char = text[i]!;
    if (/[\s-]/u.test(char)) continue;
    // Upper-case ASCII only: String#toUpperCase turns "ß" into "SS" and "ı" into "I", which would
    // let text that is not Base32 decode to a wrong secret.
    const value = BASE32_VALUES.get(char >= 'a' && char <= 'z' ? char.toUpperCase() : char);
    if (value === undefined) {
      throw new KeytapError('BAD_INPUT', `The secret is not valid Base32: character ${i + 1} is not A–Z or 2–7.`, {
        hint: char === '=' ? 'Padding "=" may only stand at the end.' : 'Base32 uses the letters A–Z and the digits 2–7 only; 0, 1, 8 and 9 are not part of it. If this is a hex secret, write it as hex:….',
      });
    }
    buffer = ((buffer << 5) | value) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out.push((buffer >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  // Five or more leftover bits mean a length no encoder produces (1, 3 or 6 mod 8): the text was
  // cut short. Non-zero leftover bits are dropped, as other readers do: secret generators that pick
  // random Base32 characters produce them.
  if (bits >= 5) {
    throw new KeytapError('BAD_INPUT', 'The secret is not valid Base32: its length or last character is wrong (was it cut short?).');
  }
  return Uint8Array.from(out);
}

export function hexEncode(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** Decodes hex, ignoring white space, colons and a leading `0x`. */
export function hexDecode(text: string): Uint8Array {
  // White space first, so that a pasted " 0x…" still loses its prefix.
  const cleaned = text.replace(/[\s:]/gu, '').replace(/^0x/iu, '');
  if (cleaned.length % 2 !== 0 || !/^[0-9a-f]*$/iu.test(cleaned)) {
    throw new KeytapError('BAD_INPUT', 'The secret is not valid hex: it must be an even number of characters 0–9 and a–f.');
  }
  return Uint8Array.from(Buffer.from(cleaned, 'hex'));
}

/** A secret as a user writes it: `hex:…` for hex, Base32 otherwise. */
export function parseSecret(text: string): Uint8Array {
  const secret = /^hex:/iu.test(text) ? hexDecode(text.slice(4)) : base32Decode(text);
  if (secret.length === 0) throw new KeytapError('BAD_INPUT', 'The secret is empty.');
  return secret;
}
