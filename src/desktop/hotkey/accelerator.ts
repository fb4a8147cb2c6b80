/**
 * Accelerators in Electron's notation ("Ctrl+Alt+K", "CommandOrControl+Shift+F1"), parsed into
 * modifiers and one key, and rendered for the backends: uiohook key codes are looked up by the
 * key's name, the XDG GlobalShortcuts portal wants the shortcuts spec's trigger
 * ("CTRL+ALT+k": CTRL, ALT, SHIFT, LOGO and an xkb keysym name).
 */
import { KeytapError } from '../../errors.js';

export interface Modifiers {
  ctrl: boolean;
  alt: boolean;
  shift: boolean;
  /** The Windows/Super key; Command on macOS. */
  meta: boolean;
}

export interface Accelerator {
  modifiers: Modifiers;
  /** Canonical key name: "A"–"Z", "0"–"9", "F1"–"F24", "Space", "Enter", "Up", "Num5", "Minus" … */
  key: string;
}

const MODIFIERS: Record<string, keyof Modifiers | 'commandorcontrol'> = {
  ctrl: 'ctrl',
  control: 'ctrl',
  alt: 'alt',
  option: 'alt',
  shift: 'shift',
  super: 'meta',
  meta: 'meta',
  cmd: 'meta',
  command: 'meta',
  commandorcontrol: 'commandorcontrol',
  cmdorctrl: 'commandorcontrol',
};

/** Named keys: lower-case alias → canonical name. */
const NAMED_KEYS: Record<string, string> = {
  space: 'Space',
  tab: 'Tab',
  enter: 'Enter',
  return: 'Enter',
  backspace: 'Backspace',
  delete: 'Delete',
  insert: 'Insert',
  home: 'Home',
  end: 'End',
  pageup: 'PageUp',
  pagedown: 'PageDown',
  up: 'Up',
  down: 'Down',
  left: 'Left',
  right: 'Right',
  esc: 'Escape',
  escape: 'Escape',
  printscreen: 'PrintScreen',
  plus: 'Plus',
  minus: 'Minus',
  '-': 'Minus',
  '=': 'Equal',
  ',': 'Comma',
  '.': 'Period',
  '/': 'Slash',
  ';': 'Semicolon',
  "'": 'Quote',
  '`': 'Backquote',
  '[': 'BracketLeft',
  ']': 'BracketRight',
  '\\': 'Backslash',
};

const USAGE_HINT = 'Write it like "Ctrl+Alt+K" or "CommandOrControl+Shift+F1": modifiers (Ctrl, Alt, Shift, Super, CommandOrControl) and one key.';

export function parseAccelerator(text: string, platform: NodeJS.Platform = process.platform): Accelerator {
  const modifiers: Modifiers = { ctrl: false, alt: false, shift: false, meta: false };
  // "Ctrl++" means Ctrl and the plus key: split on "+" that separates, keep a trailing "+" as a key.
  const parts = text.trim().endsWith('++') ? [...text.trim().slice(0, -2).split('+'), 'Plus'] : text.trim().split('+');
  let key: string | undefined;
  for (const [index, raw] of parts.entries()) {
    const part = raw.trim();
    if (part === '') throw new KeytapError('USAGE', `The shortcut "${text}" has an empty part.`, { hint: USAGE_HINT });
    const modifier = MODIFIERS[part.toLowerCase()];
    if (modifier && index < parts.length - 1) {
      if (modifier === 'commandorcontrol') modifiers[platform === 'darwin' ? 'meta' : 'ctrl'] = true;
      else modifiers[modifier] = true;
      continue;
    }
    if (index !== parts.length - 1) throw new KeytapError('USAGE', `"${part}" in the shortcut "${text}" is not a modifier.`, { hint: USAGE_HINT });
    key = canonicalKey(part);
    if (!key) throw new KeytapError('USAGE', `"${part}" in the shortcut "${text}" is not a key keytap knows.`, { hint: USAGE_HINT });
  }
  if (!key) throw new KeytapError('USAGE', `The shortcut "${text}" has no key.`, { hint: USAGE_HINT });
  if (!modifiers.ctrl && !modifiers.alt && !modifiers.meta && !/^F\d+$/.test(key)) {
    // A bare letter (or Shift+letter) would fire while the user types.
    throw new KeytapError('USAGE', `The shortcut "${text}" needs Ctrl, Alt or Super (or a function key).`, { hint: USAGE_HINT });
  }
  return { modifiers, key };
}

function canonicalKey(part: string): string | undefined {
  if (/^[a-z0-9]$/i.test(part)) return part.toUpperCase();
  const fn = /^f(\d{1,2})$/i.exec(part);
  if (fn?.[1] && Number(fn[1]) >= 1 && Number(fn[1]) <= 24) return `F${Number(fn[1])}`;
  const num = /^num(\d)$/i.exec(part);
  if (num?.[1]) return `Num${num[1]}`;
  return NAMED_KEYS[part.toLowerCase()];
}

/** The accelerator back in Electron notation, canonical ("Ctrl+Alt+K"). */
export function formatAccelerator(accelerator: Accelerator): string {
  const { modifiers, key } = accelerator;
  return [modifiers.ctrl && 'Ctrl', modifiers.alt && 'Alt', modifiers.shift && 'Shift', modifiers.meta && 'Super', key].filter(Boolean).join('+');
}

const KEYSYMS: Record<string, string> = {
  Space: 'space',
  Tab: 'Tab',
  Enter: 'Return',
  Backspace: 'BackSpace',
  Delete: 'Delete',
  Insert: 'Insert',
  Home: 'Home',
  End: 'End',
  PageUp: 'Page_Up',
  PageDown: 'Page_Down',
  Up: 'Up',
  Down: 'Down',
  Left: 'Left',
  Right: 'Right',
  Escape: 'Escape',
  PrintScreen: 'Print',
  Plus: 'plus',
  Minus: 'minus',
  Equal: 'equal',
  Comma: 'comma',
  Period: 'period',
  Slash: 'slash',
  Semicolon: 'semicolon',
  Quote: 'apostrophe',
  Backquote: 'grave',
  BracketLeft: 'bracketleft',
  BracketRight: 'bracketright',
  Backslash: 'backslash',
};

/** The trigger for the XDG GlobalShortcuts portal ("CTRL+ALT+k"), per the XDG shortcuts spec. */
export function toXdgTrigger(accelerator: Accelerator): string {
  const { modifiers, key } = accelerator;
  let keysym: string;
  if (/^[A-Z]$/.test(key)) keysym = key.toLowerCase();
  else if (/^(\d|F\d+)$/.test(key)) keysym = key;
  else if (/^Num\d$/.test(key)) keysym = `KP_${key.slice(3)}`;
  else keysym = KEYSYMS[key] ?? key;
  return [modifiers.ctrl && 'CTRL', modifiers.alt && 'ALT', modifiers.shift && 'SHIFT', modifiers.meta && 'LOGO', keysym].filter(Boolean).join('+');
}
