// The pure keycode lookup behind XTEST typing (src/desktop/typing/keymap.ts), on hand-written
// core keyboard mappings shaped like the US and French AZERTY ones (xmodmap -pke of each).
import { describe, expect, it } from 'vitest';
import { planKeystrokes, shiftKeycode } from '../../src/desktop/typing/keymap.js';

const ch = (c: string) => c.codePointAt(0)!;
// Keycodes 10–19: the top row. US: "1" / "!"; French AZERTY: "&" / "1", "é" / "2" …
const US = { minKeycode: 10, keysyms: ['1!', '2@', '3#', '4$', '5%', '6^', '7&', '8*', '9(', '0)'].map((pair) => [ch(pair[0]!), ch(pair[1]!)]) };
const FR = {
  minKeycode: 10,
  keysyms: [
    [0x26, ch('1')],
    [0xe9, ch('2')],
    [0x22, ch('3')],
    [0x27, ch('4')],
    [0x28, ch('5')],
    [0x2d, ch('6')],
    [0xe8, ch('7')],
    [0x5f, ch('8')],
    [0xe7, ch('9')],
    [0xe0, ch('0')],
    [0xffe1, 0], // keycode 20: Shift_L
  ],
};

describe('planKeystrokes', () => {
  it('US: the digit keys alone', () => {
    expect(planKeystrokes('1290', US)).toEqual([
      { keycode: 10, shift: false },
      { keycode: 11, shift: false },
      { keycode: 18, shift: false },
      { keycode: 19, shift: false },
    ]);
  });

  it('AZERTY: the same keys with Shift, and the Shift keycode from the mapping when the modifier map has none', () => {
    expect(planKeystrokes('10', FR)).toEqual([
      { keycode: 10, shift: true },
      { keycode: 19, shift: true },
    ]);
    expect(shiftKeycode(FR)).toBe(20);
    expect(shiftKeycode(FR, [[50, 62], [], []])).toBe(50);
  });

  it('a character no key yields: UNSUPPORTED, and the message does not name it (it is part of a code)', () => {
    let error: unknown;
    try {
      planKeystrokes('12Z4', US);
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: 'UNSUPPORTED' });
    expect(String((error as Error).message)).not.toContain('Z');
  });
});
