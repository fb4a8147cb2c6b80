/**
 * Picks the focused-window source for this session: X11 in this process. A Wayland session has no
 * common way to ask (each compositor has its own, and GNOME's Shell has no public one); there the
 * source is 'none' and the shortcut reads as it does without window rules.
 */
import type { FocusedWindow, FocusedWindowSource } from './types.js';
import { X11FocusedWindow } from './x11.js';

export type { FocusedWindow, FocusedWindowSource } from './types.js';

export interface FocusedWindowOptions {
  platform?: NodeJS.Platform | undefined;
  env?: NodeJS.ProcessEnv | undefined;
}

export function createFocusedWindowSource(options: FocusedWindowOptions = {}): FocusedWindowSource {
  const env = options.env ?? process.env;
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
