/** Picks the start-at-login mechanism of this platform. */
import type { Autostart } from '../platform.js';
import { LaunchAgentAutostart } from './launchagent.js';
import { WindowsRunAutostart } from './windows-run.js';
import { XdgAutostart } from './xdg.js';

export { execLine, quoteExecArgument, desktopEntry, xdgAutostartFile } from './xdg.js';

export function createAutostart(options: { platform?: NodeJS.Platform; env?: NodeJS.ProcessEnv } = {}): Autostart {
  const platform = options.platform ?? process.platform;
  const env = options.env ?? process.env;
  if (platform === 'win32') return new WindowsRunAutostart();
  if (platform === 'darwin') return new LaunchAgentAutostart(env.HOME);
  return new XdgAutostart(env);
}
