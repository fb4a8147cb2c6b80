/**
 * Picks the screen capture for this session: Windows through PowerShell/.NET, macOS through
 * `screencapture`, Wayland through the screenshot portal (an X11 capture there would see only
 * Xwayland's windows), or grim where no portal answers with a Screenshot interface (a wlroots
 * compositor without xdg-desktop-portal-wlr), X11 in this process; without any display, none.
 */
import { KeytapError, isKeytapError } from '../../errors.js';
import { sessionBusAddress } from '../../util/session-bus.js';
import { isWaylandSession } from '../clipboard/index.js';
import { MacScreenCapture, WindowsScreenCapture } from './file-capture.js';
import { GrimScreenCapture } from './grim.js';
import { NoScreenshotPortalError, PortalScreenCapture } from './portal.js';
import type { ScreenCapture, ScreenShot } from './types.js';
import { X11ScreenCapture } from './x11.js';

export type { ScreenCapture, ScreenShot } from './types.js';

export function createScreenCapture(options: { platform?: NodeJS.Platform | undefined; env?: NodeJS.ProcessEnv | undefined } = {}): ScreenCapture {
  const platform = options.platform ?? process.platform;
  const env = options.env ?? process.env;
  if (platform === 'win32') return new WindowsScreenCapture();
  if (platform === 'darwin') return new MacScreenCapture();
  if (isWaylandSession(env)) return new PortalOrElseScreenCapture(new PortalScreenCapture({ busAddress: sessionBusAddress(env) }), new GrimScreenCapture({ env }));
  if (env.DISPLAY) return new X11ScreenCapture(env.DISPLAY);
  return {
    name: 'none',
    capture: () =>
      Promise.reject(new KeytapError('UNSUPPORTED', 'There is no screen to capture: neither DISPLAY nor WAYLAND_DISPLAY is set.', { hint: 'Save the QR code as a PNG or JPEG file and read that instead.' })),
  };
}

/**
 * The screenshot portal, and the other capture only where there is no portal to ask: one that is
 * there and fails, or whose dialog the user answered no, is the answer. The portal is asked again
 * each time (a desktop may start it later); asking costs one D-Bus call.
 */
export class PortalOrElseScreenCapture implements ScreenCapture {
  constructor(
    /** Rejects with a NoScreenshotPortalError where there is none to ask. */
    private readonly portal: ScreenCapture,
    private readonly otherwise: ScreenCapture,
  ) {}

  get name(): string {
    return `${this.portal.name}, else ${this.otherwise.name}`;
  }

  async capture(signal?: AbortSignal): Promise<ScreenShot> {
    let noPortal: KeytapError;
    try {
      return await this.portal.capture(signal);
    } catch (error) {
      if (!(error instanceof NoScreenshotPortalError)) throw error;
      noPortal = error;
    }
    try {
      return await this.otherwise.capture(signal);
    } catch (error) {
      if (!isKeytapError(error, 'UNSUPPORTED')) throw error;
      throw new KeytapError('UNSUPPORTED', `The screen cannot be captured: ${noPortal.message} ${error.message}`, {
        hint: `Install xdg-desktop-portal with your desktop's backend (xdg-desktop-portal-gnome, -kde; on sway, Hyprland: -wlr, or grim: apt install grim). Or save the QR code as a PNG or JPEG file and read that instead.`,
      });
    }
  }
}
