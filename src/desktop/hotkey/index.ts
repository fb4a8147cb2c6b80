/**
 * Picks the global-shortcut backend for this session:
 *
 * - Wayland (WAYLAND_DISPLAY or XDG_SESSION_TYPE=wayland): the XDG GlobalShortcuts portal;
 * - X11 (DISPLAY), Windows, macOS: uiohook-napi;
 * - otherwise (a console, an ssh session): `none`.
 *
 * The result falls back on its own: if the chosen backend's register() rejects UNSUPPORTED, the
 * caller gets that rejection with its hint ("bind `keytap code` …") — which is the `none` answer —
 * so the app core has one code path: try register(), toast the hint once on UNSUPPORTED.
 */
import type { KeytapError } from '../../errors.js';
import { sessionBusAddress } from '../../util/session-bus.js';
import type { GlobalShortcut } from '../platform.js';
import { NoneShortcut } from './none.js';
import { PortalShortcut } from './portal.js';
import { UiohookShortcut } from './uiohook.js';

export { parseAccelerator, formatAccelerator, toXdgTrigger } from './accelerator.js';
export type { Accelerator, Modifiers } from './accelerator.js';
export { BIND_KEYTAP_CODE_HINT } from './none.js';

export interface CreateGlobalShortcutOptions {
  platform?: NodeJS.Platform | undefined;
  env?: NodeJS.ProcessEnv | undefined;
  onError?: ((error: KeytapError) => void) | undefined;
}

export function createGlobalShortcut(options: CreateGlobalShortcutOptions = {}): GlobalShortcut {
  const platform = options.platform ?? process.platform;
  const env = options.env ?? process.env;
  if (platform === 'win32' || platform === 'darwin') return new UiohookShortcut({ platform, env });
  const wayland = Boolean(env.WAYLAND_DISPLAY) || env.XDG_SESSION_TYPE === 'wayland';
  if (wayland) {
    const busAddress = sessionBusAddress(env);
    if (!busAddress) return new NoneShortcut('This Wayland session has no D-Bus session bus, so the shortcut portal cannot be reached.');
    return new PortalShortcut({ busAddress, onError: options.onError });
  }
  if (env.DISPLAY) return new UiohookShortcut({ platform, env });
  return new NoneShortcut('There is no graphical session to register a global shortcut in.');
}
