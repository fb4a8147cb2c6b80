/**
 * Picks the global-shortcut backend for this session:
 *
 * - Wayland (WAYLAND_DISPLAY or XDG_SESSION_TYPE=wayland): the XDG GlobalShortcuts portal;
 * - X11 (DISPLAY), Windows, macOS: uiohook-napi;
 * - otherwise (a console, an ssh session): `none`.
 *
 * The result falls back on its own: if the chosen backend's register() rejects UNSUPPORTED, the
 * caller gets that rejection with its hint ("bind `keytap code` …") — which is the `none` answer —
 * so the app core has one code path: try register(), toast the hint once on UNSUPPORTED. On
 * Wayland the backends also know this desktop's own binding syntax (desktop-binding.ts), which the
 * toast gives instead of the hint where keytap knows the desktop.
 */
import type { KeytapError } from '../../errors.js';
import { sessionBusAddress } from '../../util/session-bus.js';
import type { DesktopBinding, GlobalShortcut, ShortcutToBind } from '../platform.js';
import { desktopBinding, detectDesktop, shellQuote } from './desktop-binding.js';
import { NoneShortcut } from './none.js';
import { PortalShortcut } from './portal.js';
import { UiohookShortcut } from './uiohook.js';

export { parseAccelerator, formatAccelerator, toXdgTrigger } from './accelerator.js';
export type { Accelerator, Modifiers } from './accelerator.js';
export { BIND_KEYTAP_CODE_HINT } from './none.js';
export { DESKTOPS, desktopBinding, detectDesktop, shellQuote } from './desktop-binding.js';
export type { DesktopId } from './desktop-binding.js';

export interface CreateGlobalShortcutOptions {
  platform?: NodeJS.Platform | undefined;
  env?: NodeJS.ProcessEnv | undefined;
  onError?: ((error: KeytapError) => void) | undefined;
  /** The argv that starts this keytap, for the bindings a desktop without a backend needs ("keytap"). */
  command?: readonly string[] | undefined;
}

export function createGlobalShortcut(options: CreateGlobalShortcutOptions = {}): GlobalShortcut {
  const platform = options.platform ?? process.platform;
  const env = options.env ?? process.env;
  if (platform === 'win32' || platform === 'darwin') return new UiohookShortcut({ platform, env });
  const wayland = Boolean(env.WAYLAND_DISPLAY) || env.XDG_SESSION_TYPE === 'wayland';
  if (wayland) {
    const adviser = bindingAdviser(env, options.command ?? ['keytap']);
    const busAddress = sessionBusAddress(env);
    if (!busAddress) return new NoneShortcut('This Wayland session has no D-Bus session bus, so the shortcut portal cannot be reached.', adviser);
    return new PortalShortcut({ busAddress, onError: options.onError, desktopBinding: adviser });
  }
  if (env.DISPLAY) return new UiohookShortcut({ platform, env });
  return new NoneShortcut('There is no graphical session to register a global shortcut in.');
}

/** The desktop's own bindings for this session's desktop, when keytap knows it. */
export function bindingAdviser(env: NodeJS.ProcessEnv, command: readonly string[]): ((shortcuts: readonly ShortcutToBind[]) => DesktopBinding | undefined) | undefined {
  const desktop = detectDesktop(env);
  if (desktop === undefined) return undefined;
  const quoted = command.map(shellQuote).join(' ');
  return (shortcuts) => desktopBinding(desktop, shortcuts, quoted);
}
