/**
 * Where no global-shortcut backend works (sway and the other wlroots compositors have no
 * GlobalShortcuts portal), the desktop itself can run `keytap code` on a key. This module knows
 * each desktop's facts: how to tell it is running, where its bindings live, and its binding syntax.
 * The app core chooses the words around them. One table, DESKTOPS, which the README's "The global
 * shortcut" list repeats (test/platform/desktop-binding.test.ts holds the two together).
 */
import type { DesktopBinding, ShortcutToBind } from '../platform.js';
import type { Accelerator } from './accelerator.js';
import { parseAccelerator, toXdgTrigger } from './accelerator.js';

export type DesktopId = 'sway' | 'hyprland' | 'river' | 'wayfire' | 'labwc' | 'niri' | 'kde' | 'gnome';

interface DesktopFacts {
  name: string;
  /** The file (or settings page) the binding goes into. */
  where: string;
  /** One binding in the desktop's own syntax; absent where bindings are made in a settings dialog. */
  line?: (accelerator: Accelerator, command: string) => string;
}

export const DESKTOPS: Record<DesktopId, DesktopFacts> = {
  sway: {
    name: 'sway',
    where: '~/.config/sway/config',
    line: (a, command) => `bindsym ${swayKeys(a)} exec ${command}`,
  },
  hyprland: {
    name: 'Hyprland',
    where: '~/.config/hypr/hyprland.conf',
    line: (a, command) => `bind = ${hyprlandModifiers(a)}, ${upperLetter(a)}, exec, ${command}`,
  },
  river: {
    name: 'river',
    where: '~/.config/river/init',
    line: (a, command) => `riverctl map normal ${riverModifiers(a)} ${upperLetter(a)} spawn ${shellQuote(command)}`,
  },
  wayfire: {
    name: 'Wayfire',
    where: '~/.config/wayfire.ini, section [command]',
    line: (a, command) => `binding_keytap${a.modifiers.shift ? '_shift' : ''}${keyName(a)} = ${wayfireKeys(a)}\ncommand_keytap${a.modifiers.shift ? '_shift' : ''}${keyName(a)} = ${command}`,
  },
  labwc: {
    name: 'labwc',
    where: '~/.config/labwc/rc.xml, in the keyboard element',
    line: (a, command) => `<keybind key="${labwcKeys(a)}"><action name="Execute" command="${xmlEscape(command)}"/></keybind>`,
  },
  niri: {
    name: 'niri',
    where: '~/.config/niri/config.kdl, in the binds section',
    line: (a, command) => `${niriKeys(a)} { spawn ${splitCommand(command).map((word) => JSON.stringify(word)).join(' ')}; }`,
  },
  kde: { name: 'KDE Plasma', where: 'System Settings → Keyboard → Shortcuts → Add New → Command or Script' },
  gnome: { name: 'GNOME', where: 'Settings → Keyboard → View and Customize Shortcuts → Custom Shortcuts' },
};

/** XDG_CURRENT_DESKTOP's entries (lower-cased) for the desktops keytap knows. */
const BY_XDG_CURRENT_DESKTOP: Partial<Record<string, DesktopId>> = {
  sway: 'sway',
  hyprland: 'hyprland',
  river: 'river',
  wayfire: 'wayfire',
  labwc: 'labwc',
  niri: 'niri',
  kde: 'kde',
  gnome: 'gnome',
};

/** Which desktop this session is, from its environment; undefined when none keytap knows. */
export function detectDesktop(env: NodeJS.ProcessEnv): DesktopId | undefined {
  if (env.SWAYSOCK) return 'sway';
  if (env.HYPRLAND_INSTANCE_SIGNATURE) return 'hyprland';
  if (env.NIRI_SOCKET) return 'niri';
  if (env.WAYFIRE_SOCKET) return 'wayfire';
  if (env.LABWC_PID) return 'labwc';
  // XDG_CURRENT_DESKTOP is a colon-separated list, most specific first ("ubuntu:GNOME").
  for (const entry of (env.XDG_CURRENT_DESKTOP ?? '').toLowerCase().split(':')) {
    const desktop = BY_XDG_CURRENT_DESKTOP[entry];
    if (desktop) return desktop;
  }
  return undefined;
}

/**
 * The bindings for `shortcuts` on `desktop`, each running `command` (this keytap, already quoted
 * for a shell) with the shortcut's arguments. A shortcut whose accelerator does not parse is left
 * out (the settings problem is reported elsewhere).
 */
export function desktopBinding(desktop: DesktopId, shortcuts: readonly ShortcutToBind[], command: string): DesktopBinding {
  const facts = DESKTOPS[desktop];
  const lines: string[] = [];
  const { line } = facts;
  if (line) {
    for (const shortcut of shortcuts) {
      let accelerator: Accelerator;
      try {
        accelerator = parseAccelerator(shortcut.accelerator, 'linux');
      } catch {
        continue;
      }
      lines.push(...line(accelerator, [command, ...shortcut.args].join(' ')).split('\n'));
    }
  }
  return { desktop: facts.name, where: facts.where, lines, commands: shortcuts.map((s) => ({ accelerator: s.accelerator, command: [command, ...s.args].join(' ') })) };
}

/** An argument as a POSIX shell reads it back unchanged (compositors run `exec` through sh -c). */
export function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/u.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/** The xkb keysym of the key, as the compositors that take keysym names want it. */
function xkbKey(a: Accelerator): string {
  return toXdgTrigger({ modifiers: { ctrl: false, alt: false, shift: false, meta: false }, key: a.key });
}

/** Hyprland and river look keysyms up ignoring case; their documentation writes letters upper-case. */
function upperLetter(a: Accelerator): string {
  return /^[A-Z]$/u.test(a.key) ? a.key : xkbKey(a);
}

function keyName(a: Accelerator): string {
  return `_${xkbKey(a).toLowerCase()}`;
}

function swayKeys(a: Accelerator): string {
  const { ctrl, alt, shift, meta } = a.modifiers;
  return [ctrl && 'Ctrl', alt && 'Mod1', shift && 'Shift', meta && 'Mod4', xkbKey(a)].filter(Boolean).join('+');
}

function hyprlandModifiers(a: Accelerator): string {
  const { ctrl, alt, shift, meta } = a.modifiers;
  return [ctrl && 'CTRL', alt && 'ALT', shift && 'SHIFT', meta && 'SUPER'].filter(Boolean).join(' ');
}

function riverModifiers(a: Accelerator): string {
  const { ctrl, alt, shift, meta } = a.modifiers;
  return [ctrl && 'Control', alt && 'Alt', shift && 'Shift', meta && 'Super'].filter(Boolean).join('+') || 'None';
}

/** Linux input-event names (linux/input-event-codes.h) where they differ from the canonical key name upper-cased. */
const EVDEV_NAMES: Record<string, string> = {
  Enter: 'ENTER',
  PageUp: 'PAGEUP',
  PageDown: 'PAGEDOWN',
  Escape: 'ESC',
  PrintScreen: 'SYSRQ',
  Plus: 'KPPLUS',
  Period: 'DOT',
  BracketLeft: 'LEFTBRACE',
  BracketRight: 'RIGHTBRACE',
  Quote: 'APOSTROPHE',
  Backquote: 'GRAVE',
};

function wayfireKeys(a: Accelerator): string {
  const { ctrl, alt, shift, meta } = a.modifiers;
  const key = /^Num\d$/u.test(a.key) ? `KP${a.key.slice(3)}` : (EVDEV_NAMES[a.key] ?? a.key.toUpperCase());
  return [ctrl && '<ctrl>', alt && '<alt>', shift && '<shift>', meta && '<super>'].filter(Boolean).join(' ') + ` KEY_${key}`;
}

function labwcKeys(a: Accelerator): string {
  const { ctrl, alt, shift, meta } = a.modifiers;
  return [ctrl && 'C', alt && 'A', shift && 'S', meta && 'W', xkbKey(a)].filter(Boolean).join('-');
}

function niriKeys(a: Accelerator): string {
  const { ctrl, alt, shift, meta } = a.modifiers;
  return [ctrl && 'Ctrl', alt && 'Alt', shift && 'Shift', meta && 'Super', xkbKey(a)].filter(Boolean).join('+');
}

function xmlEscape(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('"', '&quot;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

/** Undoes shellQuote for niri, which takes the words themselves. */
function splitCommand(command: string): string[] {
  const words: string[] = [];
  for (const match of command.matchAll(/'((?:[^']|'\\'')*)'|(\S+)/gu)) words.push(match[1] !== undefined ? match[1].replaceAll(`'\\''`, "'") : (match[2] ?? ''));
  return words;
}
