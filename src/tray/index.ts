/**
 * The tray backend for this platform: StatusNotifierItem over D-Bus on Linux and the BSDs (what
 * KDE, GNOME with the AppIndicator extension, XFCE, Cinnamon and wlroots bars host), systray2 on
 * Windows and macOS. systray2's Linux helper needs libappindicator3, which current Debian and
 * Ubuntu do not ship, so it is never used there.
 */
import type { TrayBackend } from './model.js';
import { SniTrayBackend, type SniOptions } from './sni/backend.js';
import { Systray2TrayBackend, type Systray2Options } from './systray2.js';

export type { TrayBackend, TrayModel, MenuNode, MenuItem, MenuSeparator, TrayIconName } from './model.js';

export interface TrayBackendOptions {
  platform?: NodeJS.Platform;
  log?: (line: string) => void;
  sni?: SniOptions;
  systray2?: Systray2Options;
}

export function createTrayBackend(options: TrayBackendOptions = {}): TrayBackend {
  const platform = options.platform ?? process.platform;
  if (platform === 'win32' || platform === 'darwin') {
    return new Systray2TrayBackend({ platform, ...(options.log ? { log: options.log } : {}), ...options.systray2 });
  }
  return new SniTrayBackend({ ...(options.log ? { log: options.log } : {}), ...options.sni });
}
