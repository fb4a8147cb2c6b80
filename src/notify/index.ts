/**
 * Picks the notifier for this platform: org.freedesktop.Notifications on Linux and the BSDs (the
 * server may be absent or come later; that adapter copes), node-notifier on Windows and macOS,
 * and `none` elsewhere or when asked. None of them ever rejects.
 */
import type { KeytapError } from '../errors.js';
import { sessionBusAddress } from '../util/session-bus.js';
import { FreedesktopNotifier } from './freedesktop.js';
import { NodeNotifierNotifier } from './node-notifier.js';
import { NoneNotifier } from './none.js';
import type { Notifier } from './types.js';

export type { Notification, NotificationHandle, Notifier } from './types.js';

export interface CreateNotifierOptions {
  /** Hears of failures (no server, a lost connection), at most once per outage. */
  onError?: ((error: KeytapError) => void) | undefined;
  /** Toasts turned off in the settings. */
  disabled?: boolean | undefined;
  platform?: NodeJS.Platform | undefined;
  env?: NodeJS.ProcessEnv | undefined;
}

export function createNotifier(options: CreateNotifierOptions = {}): Notifier {
  const platform = options.platform ?? process.platform;
  const env = options.env ?? process.env;
  if (options.disabled) return new NoneNotifier();
  if (platform === 'win32' || platform === 'darwin') return new NodeNotifierNotifier({ onError: options.onError, platform });
  // Without a session bus there is nobody to talk to; don't report a failure on every toast.
  const busAddress = sessionBusAddress(env);
  if (!busAddress) return new NoneNotifier();
  return new FreedesktopNotifier({ onError: options.onError, busAddress });
}
