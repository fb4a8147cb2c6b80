/**
 * The resident process behind `keytap` (no arguments) and `keytap tray`, put together in one
 * place: one instance per user (the IPC endpoint), the settings, the platform adapters, the key
 * watcher and the controller, and the order they start and stop in. The adapters come as
 * factories, so this module picks no backend itself; the CLI passes the real ones (and the demo
 * virtual key, which is the emulator's, not the app's).
 */
import { join } from 'node:path';
import type { Autostart, Clipboard, GlobalShortcut, Typist } from '../desktop/platform.js';
import type { ScreenCapture } from '../desktop/screen-capture/types.js';
import type { FocusedWindowSource } from '../desktop/focused-window/types.js';
import { ClipboardGuard } from '../desktop/clipboard/guard.js';
import type { KeytapError } from '../errors.js';
import type { Notifier } from '../notify/types.js';
import type { TrayBackend } from '../tray/model.js';
import { ConfigStore, dataDir } from './config.js';
import type { ControllerDeps, KeySource } from './controller.js';
import { Controller } from './controller.js';
import { acquireInstance } from './instance.js';
import { createIpcDispatch } from './ipc-dispatch.js';
import { recentStore } from './recent-store.js';
import type { Logger } from './logger.js';
import { describeUnknown } from './logger.js';
import type { Keyring } from '../desktop/keyring/index.js';
import type { SecretPrompt } from '../desktop/secret-prompt/index.js';
import { ensurePrivateFolder } from '../util/private-folder.js';

/** The platform adapters and the key side, each made by its own factory. */
export interface ResidentAdapters {
  tray: (log: (line: string) => void) => TrayBackend;
  notifier: (onError: (error: KeytapError) => void) => Notifier;
  clipboard: (onError: (error: KeytapError) => void) => Promise<Clipboard>;
  shortcut: (onError: (error: KeytapError) => void) => GlobalShortcut;
  /** Types codes into the focused window ("Type the code"). */
  typist?: (() => Typist) | undefined;
  autostart: () => Autostart;
  keys: () => KeySource;
  open: ControllerDeps['open'];
  /** Opens a file with the desktop's default application. */
  openPath: (path: string) => Promise<void>;
  /** The OS keyring for remembered access keys (src/desktop/keyring). */
  keyring?: (() => Keyring) | undefined;
  /** The secret prompt of "Unlock…" (src/desktop/secret-prompt: a pinentry, else a dialog). */
  secretPrompt?: (() => SecretPrompt) | undefined;
  /** Captures the screen ("Add account from QR code on screen…"). */
  screenCapture?: (() => ScreenCapture) | undefined;
  /** The desktop's finder, for a tray host that cannot show the menu (looked for at each such click). */
  finder?: ControllerDeps['finder'];
  /** Tells which window has the focus when the shortcut is pressed (window rules). */
  focusedWindow?: (() => FocusedWindowSource) | undefined;
  /** Serves the demo virtual key kept in `file` until `signal` aborts (`--demo`). */
  demoKey?: ((file: string, signal: AbortSignal) => Promise<void>) | undefined;
}

export interface ResidentOptions {
  version: string;
  /** When no key is present at start, plug in the demo key. */
  demo?: boolean | undefined;
  /** What "Start at login" runs (argv). */
  autostartCommand: readonly string[];
  /** Writes one line to stderr (the resident process's log). */
  err: (line: string) => void;
}

export async function runResident(options: ResidentOptions, adapters: ResidentAdapters): Promise<void> {
  const logger = timestampedLogger(options.err);
  const ipc = createIpcDispatch({ pid: process.pid, version: options.version });
  let controller: Controller | undefined;

  const instance = await acquireInstance(ipc.handler, { onError: (error) => logger.warn(`IPC: ${error.message}`) });
  if (!instance.primary) {
    options.err(`keytap is already running${instance.pid ? ` (pid ${instance.pid})` : ''}.`);
    return;
  }
  if (instance.replacedStale) logger.info(`replaced a stale socket at ${instance.server.path}`);

  // The resident process must outlive any bug in a callback: log it and go on. (Only here: a CLI
  // command should still fail loudly.)
  const onRejection = (reason: unknown): void => logger.error(`unhandled rejection: ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}`);
  const onException = (error: Error): void => logger.error(`uncaught exception: ${error.stack ?? error.message}`);
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);

  const config = ConfigStore.open({ watch: true });
  const demoAbort = new AbortController();
  let demo: Promise<void> | undefined;
  const quitSignals = (): void => controller?.quit();
  process.on('SIGINT', quitSignals);
  process.on('SIGTERM', quitSignals);
  try {
    const onError = (what: string) => (error: KeytapError) => logger.warn(`${what}: ${describeUnknown(error)}`);
    const clipboard = await adapters.clipboard(onError('clipboard'));
    logger.info(`clipboard: ${clipboard.name}${clipboard.marksSensitive ? ' (copies marked sensitive)' : ' (copies cannot be marked sensitive here)'}`);
    const tray = adapters.tray((line) => logger.info(`tray: ${line}`));
    const focusedWindow = adapters.focusedWindow?.();
    if (focusedWindow) logger.info(`focused window: ${focusedWindow.name === 'none' ? 'cannot be read here (the shortcut ignores window rules)' : focusedWindow.name}`);
    controller = new Controller({
      keys: adapters.keys(),
      open: adapters.open,
      tray,
      notifier: adapters.notifier(onError('notifications')),
      // The delay comes with each copy (from the settings in effect then).
      clipboard: new ClipboardGuard(clipboard, {
        onError: onError('clipboard'),
        onCleared: (outcome) => logger.info(outcome === 'cleared' ? 'clipboard cleared' : 'clipboard left alone: it holds something copied since'),
      }),
      shortcut: adapters.shortcut(onError('shortcut')),
      typist: adapters.typist?.(),
      autostart: adapters.autostart(),
      autostartCommand: options.autostartCommand,
      config,
      openPath: adapters.openPath,
      screenCapture: adapters.screenCapture?.(),
      finder: adapters.finder,
      focusedWindow,
      recent: recentStore(dataDir(), (message) => logger.warn(message)),
      logger,
      version: options.version,
      keyring: adapters.keyring?.(),
      secretPrompt: adapters.secretPrompt,
    });
    await controller.start();
    ipc.ready(controller);
    logger.info(`running (pid ${process.pid}); settings: ${config.path}; IPC: ${instance.server.path}`);

    if (options.demo && adapters.demoKey && controller.state.keys.length === 0) {
      const folder = dataDir();
      const file = join(folder, 'demo-key.json');
      logger.info(`no key present: plugging in the demo key ${file}`);
      const serveDemo = async (): Promise<void> => {
        ensurePrivateFolder(folder, { what: "keytap's data folder", othersMayRead: true, hint: 'Or set KEYTAP_DATA_DIR to a folder of your own.' });
        await adapters.demoKey!(file, demoAbort.signal);
      };
      demo = serveDemo().catch((error: unknown) => logger.error(`the demo key failed: ${describeUnknown(error)}`));
    }

    await controller.quitRequested;
    logger.info('quitting');
  } finally {
    ipc.closed();
    process.off('SIGINT', quitSignals);
    process.off('SIGTERM', quitSignals);
    demoAbort.abort();
    await demo;
    await controller?.stop();
    await instance.server.close();
    config.close();
    process.off('unhandledRejection', onRejection);
    process.off('uncaughtException', onException);
  }
}

/** Log lines with the time, for a process that runs for days. */
export function timestampedLogger(write: (line: string) => void): Logger {
  const line = (level: string, message: string): void => write(`${new Date().toISOString()} keytap${level}: ${message}`);
  return {
    info: (m) => line('', m),
    warn: (m) => line(' warning', m),
    error: (m) => line(' error', m),
  };
}
