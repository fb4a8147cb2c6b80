/**
 * Picks the focused-window source for this session: Windows' foreground window (user32 through
 * koffi), macOS's frontmost application (osascript and System Events), sway's (or i3's) IPC
 * socket, X11 in this process. Other Wayland compositors have no common way to ask: GNOME Shell
 * has no public one (its Eval on D-Bus is closed to all but its own tools since GNOME 41), KWin
 * only through a script loaded over D-Bus whose answer comes back on the journal or a D-Bus call of
 * its own; there the source is 'none' and the shortcut reads as it does without window rules.
 */
import { MacFocusedWindow } from './macos.js';
import { SwayFocusedWindow } from './sway.js';
import type { FocusedWindow, FocusedWindowSource } from './types.js';
import { WindowsFocusedWindow } from './windows.js';
import { X11FocusedWindow } from './x11.js';

export type { FocusedWindow, FocusedWindowSource } from './types.js';

export interface FocusedWindowOptions {
  platform?: NodeJS.Platform | undefined;
  env?: NodeJS.ProcessEnv | undefined;
}

export function createFocusedWindowSource(options: FocusedWindowOptions = {}): FocusedWindowSource {
  const env = options.env ?? process.env;
  const platform = options.platform ?? process.platform;
  if (platform === 'win32') return new WindowsFocusedWindow();
  if (platform === 'darwin') return new MacFocusedWindow();
  const swaySocket = env.SWAYSOCK || env.I3SOCK;
  if (swaySocket) return new SwayFocusedWindow(swaySocket);
  const wayland = Boolean(env.WAYLAND_DISPLAY) || env.XDG_SESSION_TYPE === 'wayland';
  // Under Wayland, X11 sees only Xwayland's windows: its answer would be wrong, not merely partial.
  if (!wayland && env.DISPLAY) return new X11FocusedWindow(env.DISPLAY);
  return NO_SOURCE;
}

/** Where keytap cannot tell which window has the focus. */
export const NO_SOURCE: FocusedWindowSource = {
  name: 'none',
  read: (): Promise<FocusedWindow | undefined> => Promise.resolve(undefined),
};
