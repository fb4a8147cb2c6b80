/**
 * Which X11 key to press for a character, from the server's live keyboard mapping
 * (GetKeyboardMapping): a layout-independent lookup, so "1" on a French AZERTY keyboard is typed as
 * Shift+the key that yields "&" unshifted — not as the key that is "1" on a US keyboard. Pure.
 *
 * The core mapping lists, per keycode, keysyms by column: 0 is the key alone, 1 with Shift (X11
 * protocol §5 "Keyboards"; XKB fills columns 0/1 from group 1 levels 1/2). For the printable
 * Latin-1 characters a code is made of, the keysym is the character's code point.
 */
import { KeytapError } from '../../errors.js';

export interface KeyboardMapping {
  /** The display's min_keycode: row i of `keysyms` is keycode minKeycode + i. */
  minKeycode: number;
  keysyms: readonly (readonly number[])[];
}

export interface Keystroke {
  keycode: number;
  shift: boolean;
}

const XK_SHIFT_L = 0xffe1;
const XK_SHIFT_R = 0xffe2;
const XK_CAPS_LOCK = 0xffe5;
const XK_RETURN = 0xff0d;

/** The keysym of a printable ASCII character (0x20–0x7e): its code point; "\n" is Return (the Enter a HOTP key types after its code). */
export function keysymOf(char: string): number | undefined {
  if (char === '\n') return XK_RETURN;
  const code = char.codePointAt(0);
  return char.length === 1 && code !== undefined && code >= 0x20 && code <= 0x7e ? code : undefined;
}

/** The keystrokes that type `text` with this mapping; rejects a character no key yields. */
export function planKeystrokes(text: string, mapping: KeyboardMapping): Keystroke[] {
  const found = new Map<string, Keystroke>();
  return [...text].map((char) => {
    const known = found.get(char);
    if (known) return known;
    const keysym = keysymOf(char);
    const stroke = keysym === undefined ? undefined : (findKeysym(mapping, keysym, 0, false) ?? findKeysym(mapping, keysym, 1, true));
    if (!stroke) {
      // Which character is not said: it is part of a code.
      throw new KeytapError('UNSUPPORTED', 'The keyboard layout in use has no key for a character of this code, so it cannot be typed.', {
        hint: 'Paste the code instead (it is on the clipboard when "Type the code" is set to copy too).',
      });
    }
    found.set(char, stroke);
    return stroke;
  });
}

/** The keycode of a Shift key (for characters in column 1). */
export function shiftKeycode(mapping: KeyboardMapping, modifierRows?: readonly (readonly number[])[]): number | undefined {
  const fromModifiers = modifierRows?.[0]?.find((keycode) => keycode !== 0);
  if (fromModifiers !== undefined) return fromModifiers;
  return findKeysym(mapping, XK_SHIFT_L, 0, false)?.keycode ?? findKeysym(mapping, XK_SHIFT_R, 0, false)?.keycode;
}

/** The keycode of the Caps Lock key (the Lock modifier's first key, else the key yielding Caps_Lock). */
export function capsLockKeycode(mapping: KeyboardMapping, modifierRows?: readonly (readonly number[])[]): number | undefined {
  const fromModifiers = modifierRows?.[1]?.find((keycode) => keycode !== 0);
  if (fromModifiers !== undefined) return fromModifiers;
  return findKeysym(mapping, XK_CAPS_LOCK, 0, false)?.keycode;
}

function findKeysym(mapping: KeyboardMapping, keysym: number, column: number, shift: boolean): Keystroke | undefined {
  for (const [index, row] of mapping.keysyms.entries()) {
    if (row[column] !== keysym) continue;
    // Column 1 empty (NoSymbol) means "the same as column 0 upper-cased"; a row with only a
    // column 0 entry yields it shifted too, so it is found in column 0 first anyway.
    return { keycode: mapping.minKeycode + index, shift };
  }
  return undefined;
}
