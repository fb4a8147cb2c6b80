/**
 * Picks the clipboard adapter for this session, best first:
 *
 * - Wayland (WAYLAND_DISPLAY, or XDG_SESSION_TYPE=wayland): for the resident process, the
 *   in-process data-control owner where the compositor offers that protocol (marks copies with
 *   `x-kde-passwordManagerHint`; wl-paste reads); else wl-copy/wl-paste, marked sensitive only by
 *   wl-clipboard 2.3 and later (`--sensitive`);
 * - X11 (DISPLAY): the in-process selection owner, which marks copies with
 *   `x-kde-passwordManagerHint`; then xsel, then xclip (no marker);
 * - macOS: NSPasteboard through osascript (concealed + transient markers);
 * - Windows: PowerShell/WinForms (excluded from history and cloud sync);
 * - anything else, or when the above are missing: clipboardy (no marker).
 */
import type { KeytapError } from '../../errors.js';
import type { Clipboard } from '../platform.js';
import { ClipboardyClipboard } from './clipboardy.js';
import { waylandClipboard, waylandCopyMarksSensitive, xclipClipboard, xselClipboard } from './command.js';
import { MacClipboard } from './macos.js';
import { commandExists, runCommand } from './run.js';
import type { CommandRunner } from './run.js';
import { WaylandDataControlClipboard, findDataControl } from './wayland-data-control.js';
import type { DataControlManager } from './wayland-data-control.js';
import { WindowsClipboard } from './windows.js';
import { X11Clipboard } from './x11.js';

export { ClipboardGuard } from './guard.js';
export type { ClipboardGuardOptions } from './guard.js';

export interface CreateClipboardOptions {
  platform?: NodeJS.Platform | undefined;
  env?: NodeJS.ProcessEnv | undefined;
  /**
   * false for short-lived processes (`keytap code` without a running instance): the in-process
   * X11 owner would take the clipboard with it on exit, so a forking tool (xsel) serves instead.
   */
  resident?: boolean | undefined;
  /** Told why a better adapter was passed over (e.g. the X display refused us). */
  onError?: ((error: KeytapError) => void) | undefined;
  run?: CommandRunner | undefined;
  /** Which data-control manager the Wayland compositor offers (rejects when none); tests pass a fake. */
  findDataControl?: ((env: NodeJS.ProcessEnv) => Promise<DataControlManager>) | undefined;
}

export function isWaylandSession(env: NodeJS.ProcessEnv): boolean {
  return Boolean(env.WAYLAND_DISPLAY) || env.XDG_SESSION_TYPE === 'wayland';
}

export async function createClipboard(options: CreateClipboardOptions = {}): Promise<Clipboard> {
  const platform = options.platform ?? process.platform;
  const env = options.env ?? process.env;
  const run = options.run ?? runCommand;
  if (platform === 'win32') return new WindowsClipboard(run);
  if (platform === 'darwin') return new MacClipboard(run);

  if (isWaylandSession(env) && (await commandExists('wl-copy', run)) && (await commandExists('wl-paste', run))) {
    if (options.resident !== false) {
      try {
        const manager = await (options.findDataControl ?? findDataControl)(env);
        return new WaylandDataControlClipboard(manager, env, waylandClipboard(run, env));
      } catch (error) {
        // GNOME (no data-control), or keytap cannot speak Wayland here: wl-copy serves.
        options.onError?.(error as KeytapError);
      }
    }
    return waylandClipboard(run, env, await waylandCopyMarksSensitive(run, env));
  }
  if (env.DISPLAY) {
    if (options.resident !== false) {
      const x11 = new X11Clipboard(env.DISPLAY);
      try {
        await x11.probe();
        return x11;
      } catch (error) {
        // Usually a remote or unusual DISPLAY (ssh -X, a TCP display): the tools below cope.
        options.onError?.(error as KeytapError);
      }
    }
    if (await commandExists('xsel', run)) return xselClipboard(run, env);
    if (await commandExists('xclip', run)) return xclipClipboard(run, env);
  }
  // Without any display (ssh, a service, a container) clipboardy may still have a way (WSL's
  // clip.exe, Termux); when it fails, the missing display is the cause to name.
  return new ClipboardyClipboard(undefined, { noDisplay: !env.DISPLAY && !isWaylandSession(env) });
}
