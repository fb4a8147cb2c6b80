/**
 * Picks the screen capture for this session: Windows through PowerShell/.NET, macOS through
 * `screencapture`, Wayland through the screenshot portal (an X11 capture there would see only
 * Xwayland's windows), X11 in this process; without any display, none.
 */
import { KeytapError } from '../../errors.js';
import { sessionBusAddress } from '../../util/session-bus.js';
import { isWaylandSession } from '../clipboard/index.js';
import { MacScreenCapture, WindowsScreenCapture } from './file-capture.js';
import { PortalScreenCapture } from './portal.js';
import type { ScreenCapture } from './types.js';
import { X11ScreenCapture } from './x11.js';

export type { ScreenCapture, ScreenShot } from './types.js';

export function createScreenCapture(options: { platform?: NodeJS.Platform | undefined; env?: NodeJS.ProcessEnv | undefined } = {}): ScreenCapture {
  const platform = options.platform ?? process.platform;
  const env = options.env ?? process.env;
  if (platform === 'win32') return new WindowsScreenCapture();
  if (platform === 'darwin') return new MacScreenCapture();
  if (isWaylandSession(env)) return new PortalScreenCapture({ busAddress: sessionBusAddress(env) });
  if (env.DISPLAY) return new X11ScreenCapture(env.DISPLAY);
  return {
    name: 'none',
    capture: () =>
      Promise.reject(new KeytapError('UNSUPPORTED', 'There is no screen to capture: neither DISPLAY nor WAYLAND_DISPLAY is set.', { hint: 'Save the QR code as a PNG or JPEG file and read that instead.' })),
  };
}
