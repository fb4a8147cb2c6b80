/**
 * Picks the typing backend for this session (README "Type the code", docs/desktop.md §2.8):
 *
 * - X11 (DISPLAY, no Wayland): XTEST (xtest.ts);
 * - Wayland: the RemoteDesktop portal (GNOME, KDE), else wtype (wlroots: sway, Hyprland), else
 *   ydotool (any compositor, with ydotoold and /dev/uinput) — the first that works is kept;
 * - Windows, macOS: uiohook-napi's keyTap (SendInput, CGEvent; macOS needs Accessibility);
 * - otherwise (a console, an ssh session): none, which says why.
 */
import { KeytapError, isKeytapError } from '../../errors.js';
import { sessionBusAddress } from '../../util/session-bus.js';
import { runCommand } from '../clipboard/run.js';
import type { Typist } from '../platform.js';
import { WtypeTypist, YdotoolTypist } from './command.js';
import { PortalTypist } from './portal.js';
import type { RestoreTokenStore } from './restore-token.js';
import { UiohookTypist } from './uiohook.js';
import { XtestTypist } from './xtest.js';

export interface CreateTypistOptions {
  platform?: NodeJS.Platform | undefined;
  env?: NodeJS.ProcessEnv | undefined;
  /** Where the RemoteDesktop portal's restore token is kept, so the desktop asks once (in memory without). */
  restoreToken?: RestoreTokenStore | undefined;
}

export function createTypist(options: CreateTypistOptions = {}): Typist {
  const platform = options.platform ?? process.platform;
  const env = options.env ?? process.env;
  if (platform === 'win32') return new UiohookTypist({ platform, env });
  if (platform === 'darwin') return new UiohookTypist({ platform, env, trusted: () => macAccessibilityTrusted(env) });
  const wayland = Boolean(env.WAYLAND_DISPLAY) || env.XDG_SESSION_TYPE === 'wayland';
  if (wayland) {
    const busAddress = sessionBusAddress(env);
    const backends: Typist[] = [];
    if (busAddress) {
      backends.push(new PortalTypist({ busAddress, restoreToken: options.restoreToken }));
    }
    backends.push(new WtypeTypist({ env }), new YdotoolTypist({ env }));
    return new FirstWorkingTypist(backends);
  }
  if (env.DISPLAY) return new XtestTypist({ display: env.DISPLAY });
  return new NoneTypist('There is no graphical session to type into.');
}

/** Where nothing can type: type() says why. */
export class NoneTypist implements Typist {
  readonly name = 'none';
  constructor(private readonly reason: string) {}
  type(): Promise<void> {
    return Promise.reject(new KeytapError('UNSUPPORTED', this.reason, { hint: 'Paste the code instead.' }));
  }
}

/**
 * Tries its backends in order until one types; the one that worked is tried first from then on.
 * A backend that refuses with UNSUPPORTED passes the turn; any other refusal (the user said no in
 * the desktop's dialog, a cancel, NOT_DELIVERED after some keys went out) is the answer. A backend
 * must say UNSUPPORTED only before its first key: the next one would type the whole code again.
 */
export class FirstWorkingTypist implements Typist {
  private working: Typist | undefined;

  constructor(private readonly backends: readonly Typist[]) {}

  get name(): string {
    return this.working?.name ?? this.backends.map((b) => b.name).join(', then ');
  }

  async type(text: string, signal?: AbortSignal): Promise<void> {
    const order = this.working ? [this.working, ...this.backends.filter((b) => b !== this.working)] : this.backends;
    const refusals: KeytapError[] = [];
    for (const backend of order) {
      try {
        await backend.type(text, signal);
        this.working = backend;
        return;
      } catch (error) {
        if (!isKeytapError(error, 'UNSUPPORTED')) throw error;
        refusals.push(error);
      }
    }
    this.working = undefined;
    throw new KeytapError('UNSUPPORTED', `Nothing here can type the code: ${refusals.map((e) => e.message).join(' ')}`, {
      hint: 'On GNOME and KDE keytap types through the RemoteDesktop portal (xdg-desktop-portal-gnome or -kde); on sway or Hyprland install wtype. Or paste the code.',
    });
  }
}

/**
 * Whether macOS lets this process post key events. A child process is judged by the permission of
 * the program responsible for it (keytap, or the terminal running it), so osascript asks for us.
 */
async function macAccessibilityTrusted(env: NodeJS.ProcessEnv): Promise<boolean> {
  try {
    const result = await runCommand('osascript', ['-l', 'JavaScript', '-e', "ObjC.import('ApplicationServices'); $.AXIsProcessTrusted()"], { env, timeoutMs: 5_000 });
    return result.code !== 0 || result.stdout.trim() !== 'false';
  } catch {
    // Cannot ask: try, and let the system drop the keys if it must.
    return true;
  }
}
