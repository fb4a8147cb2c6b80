/**
 * Platform seams of the resident process, each with per-OS adapters behind it (clipboardy/conf
 * style: one job each, a tiny uniform interface).
 */

export interface Clipboard {
  /** "xsel", "wl-copy", "pbcopy", "PowerShell". */
  readonly name: string;
  /** Whether `write(…, { sensitive: true })` can mark the copy so clipboard managers and history skip it. */
  readonly marksSensitive: boolean;
  write(text: string, options: { sensitive: boolean }): Promise<void>;
  /** The current text, or undefined when the clipboard holds no text. */
  read(): Promise<string | undefined>;
  clear(): Promise<void>;
}

/** A further shortcut registered along with the first one (the type shortcut). */
export interface ShortcutBinding {
  /** Stable id ("keytap-type"): what the XDG portal knows the shortcut by. */
  id: string;
  accelerator: string;
  /** What it does, in the desktop's shortcut dialog. */
  description: string;
  onPress: () => void;
}

export interface GlobalShortcut {
  /** "uiohook", "xdg-desktop-portal", "none". */
  readonly name: string;
  /**
   * Registers `accelerator` ("Ctrl+Alt+K", Electron-style names) and calls `onPress` on every
   * press, and the shortcuts in `also` with theirs (all in one go: the portal binds them in one
   * BindShortcuts call, one dialog). Rejects with KeytapError UNSUPPORTED when this backend cannot
   * work here (Wayland without the portal, no display, no Accessibility permission …), with a hint
   * on what to do; then none of them is registered.
   */
  register(accelerator: string, onPress: () => void, also?: readonly ShortcutBinding[]): Promise<void>;
  unregister(): Promise<void>;
  /**
   * Where register() cannot work: how to bind these shortcuts in this desktop instead (its name,
   * where bindings go, the lines in its syntax); undefined when keytap does not know this desktop.
   */
  desktopBinding?(shortcuts: readonly ShortcutToBind[]): DesktopBinding | undefined;
}

/** A shortcut for the desktop to bind: the accelerator and the arguments of `keytap` it runs. */
export interface ShortcutToBind {
  accelerator: string;
  args: readonly string[];
}

export interface DesktopBinding {
  /** "sway", "GNOME". */
  desktop: string;
  /** The file or settings page the bindings go into. */
  where: string;
  /** The lines to add there, in the desktop's syntax; empty where a settings dialog takes them. */
  lines: string[];
  /** What each shortcut runs ("/usr/bin/keytap code"), with its accelerator as configured. */
  commands: { accelerator: string; command: string }[];
}

export interface Autostart {
  /** "XDG autostart", "LaunchAgent", "HKCU Run". */
  readonly name: string;
  isEnabled(): Promise<boolean>;
  /** Starts `command` (argv) at login. */
  enable(command: readonly string[]): Promise<void>;
  disable(): Promise<void>;
}

export interface Typist {
  /** "XTEST", "RemoteDesktop portal", "wtype", "ydotool", "SendInput", "CGEvent", "none". */
  readonly name: string;
  /**
   * Types `text` (a code: digits, maybe letters) into the window that has the keyboard focus, after
   * the modifier keys of a shortcut that may still be held are up. Rejects with KeytapError
   * UNSUPPORTED when this backend cannot type here (no display, no program, no permission), with
   * a hint on what to do, and CANCELLED when `signal` aborts; never logs the text.
   */
  type(text: string, signal?: AbortSignal): Promise<void>;
}
