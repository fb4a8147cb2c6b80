/**
 * The resident process behind `keytap` (no arguments) and `keytap tray`. Wiring only: the platform
 * adapters, the key watcher and the IPC endpoint go into the app controller, which does the work.
 * Loaded only when the tray starts (see tray.ts): it pulls in D-Bus, conf and the tray backends,
 * which other commands should not pay for at start-up.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { ClipboardGuardLike } from '../../app/controller.js';
import type { Logger } from '../../app/logger.js';
import { Controller } from '../../app/controller.js';
import { ConfigStore, dataDir } from '../../app/config.js';
import { acquireInstance } from '../../app/instance.js';
import type { IpcHandler } from '../../app/ipc.js';
import { createAutostart } from '../../desktop/autostart/index.js';
import { ClipboardGuard, createClipboard } from '../../desktop/clipboard/index.js';
import { createGlobalShortcut } from '../../desktop/hotkey/index.js';
import type { Autostart, GlobalShortcut } from '../../desktop/platform.js';
import { openDescriptor } from '../../device/connect.js';
import { KeyWatcher } from '../../device/discovery/watcher.js';
import { runVirtualKeyServer } from '../../device/virtual/daemon.js';
import { KeytapError } from '../../errors.js';
import { createNotifier } from '../../notify/index.js';
import { createTrayBackend } from '../../tray/index.js';
import type { TrayBackend } from '../../tray/model.js';
import type { CliIo } from '../output.js';
import { selfCommand } from '../self.js';

export interface TrayOptions {
  demo?: boolean;
}

/** How long the demo key waits before it "is touched": long enough to see the touch prompt. */
const DEMO_TOUCH_DELAY_MS = 1_500;

export async function runTray(options: TrayOptions, io: CliIo, version: string): Promise<void> {
  const logger = timestampedLogger(io);
  let controller: Controller | undefined;
  let resolveReady!: () => void;
  const ready = new Promise<void>((resolve) => (resolveReady = resolve));

  const handler: IpcHandler = async (request, context) => {
    if (request.op === 'ping') return { pid: process.pid, version };
    await ready;
    if (!controller) throw new KeytapError('DEVICE_ERROR', 'keytap is shutting down.');
    switch (request.op) {
      case 'code': {
        const answer = await controller.requestCode(request.query, {
          signal: context.signal,
          onTouch: (id) => context.send({ event: 'touch', id }),
        });
        return { ...answer };
      }
      case 'list':
        return { keys: await controller.listKeys() };
      case 'quit':
        controller.quit();
        return {};
    }
  };

  const instance = await acquireInstance(handler, { onError: (error) => logger.warn(`IPC: ${error.message}`) });
  if (!instance.primary) {
    io.err(`keytap is already running${instance.pid ? ` (pid ${instance.pid})` : ''}.`);
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
    const platform = await createPlatform(logger);
    const self = selfCommand();
    controller = new Controller({
      keys: new KeyWatcher(),
      open: (descriptor, signal) => openDescriptor(descriptor, signal),
      tray: platform.tray,
      notifier: createNotifier({ onError: (error) => logger.warn(`notifications: ${error.message}${error.hint ? ` ${error.hint}` : ''}`) }),
      clipboard: platform.clipboard,
      shortcut: platform.shortcut,
      autostart: platform.autostart,
      autostartCommand: [self.command, ...self.args, 'tray'],
      config,
      openPath,
      logger,
      version,
    });
    await controller.start();
    resolveReady();
    logger.info(`running (pid ${process.pid}); settings: ${config.path}; IPC: ${instance.server.path}`);

    if (options.demo && controller.state.keys.length === 0) {
      const file = join(dataDir(), 'demo-key.json');
      logger.info(`no key present: plugging in the demo key ${file}`);
      demo = runVirtualKeyServer({
        file,
        demo: true,
        touch: { mode: 'auto', delayMs: DEMO_TOUCH_DELAY_MS },
        handleSignals: false,
        signal: demoAbort.signal,
      }).catch((error: unknown) => logger.error(`the demo key failed: ${error instanceof Error ? error.message : String(error)}`));
    }

    await controller.quitRequested;
    logger.info('quitting');
  } finally {
    resolveReady();
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

function timestampedLogger(io: CliIo): Logger {
  const line = (level: string, message: string): void => io.err(`${new Date().toISOString()} keytap${level}: ${message}`);
  return {
    info: (m) => line('', m),
    warn: (m) => line(' warning', m),
    error: (m) => line(' error', m),
  };
}

/** Opens the settings file with the desktop's default application. */
function openPath(path: string): Promise<void> {
  const [command, args] =
    process.platform === 'darwin' ? ['open', [path]] : process.platform === 'win32' ? ['cmd', ['/c', 'start', '""', path]] : ['xdg-open', [path]];
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { detached: true, stdio: 'ignore', windowsHide: true });
    child.once('error', (error) => reject(new KeytapError('UNSUPPORTED', `${command} failed: ${error.message}`)));
    child.once('spawn', () => {
      child.unref();
      resolve();
    });
  });
}

interface Platform {
  tray: TrayBackend;
  clipboard: ClipboardGuardLike;
  shortcut: GlobalShortcut;
  autostart: Autostart;
}

/** The per-OS adapters, each picked by its own factory. */
async function createPlatform(logger: Logger): Promise<Platform> {
  const clipboard = await createClipboard({
    resident: true,
    onError: (error) => logger.warn(`clipboard: ${error.message}${error.hint ? ` ${error.hint}` : ''}`),
  });
  logger.info(`clipboard: ${clipboard.name}${clipboard.marksSensitive ? ' (copies marked sensitive)' : ' (copies cannot be marked sensitive here)'}`);
  return {
    tray: createTrayBackend({ log: (line) => logger.info(`tray: ${line}`) }),
    // The delay comes with each copy (from the settings in effect then).
    clipboard: new ClipboardGuard(clipboard, {
      onError: (error) => logger.warn(`clipboard: ${error.message}${error.hint ? ` ${error.hint}` : ''}`),
    }),
    shortcut: createGlobalShortcut({ onError: (error) => logger.warn(`shortcut: ${error.message}${error.hint ? ` ${error.hint}` : ''}`) }),
    autostart: createAutostart(),
  };
}
