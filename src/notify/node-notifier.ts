/**
 * Windows and macOS toasts through node-notifier (SnoreToast on Windows 8+, terminal-notifier on
 * macOS). node-notifier is loaded with import() at first use: the bundle keeps it external because
 * it runs helper binaries shipped inside its own package.
 *
 * Windows: a toast carries the AppUserModelID of the app that sent it, and Windows shows the name
 * of the Start-menu shortcut registered for that id. Without one, toasts say "SnoreToast". So on
 * the first toast we make sure a shortcut `keytap.lnk` with AUMID "keytap" exists, using
 * SnoreToast's own installer (`snoretoast.exe -install <name> <exe> <appID>`, which writes
 * %APPDATA%\Microsoft\Windows\Start Menu\Programs\keytap.lnk with System.AppUserModel.ID set);
 * it runs once per user, lazily, and only when the shortcut is missing. An installer (MSI, …)
 * that creates the same shortcut makes this a no-op.
 *
 * Replacing in place: macOS via terminal-notifier's `group` (a new toast in a group removes the
 * old one); Windows via SnoreToast `-id`/`-close` (close the old toast, show the new one).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';

import { KeytapError } from '../errors.js';
import { findIconFile, findStateIconFile } from './icon.js';
import type { Notification, NotificationHandle, Notifier } from './types.js';

export const APP_USER_MODEL_ID = 'keytap';
const SHORTCUT_NAME = 'keytap';

type Callback = (error: Error | null, response: unknown) => void;
interface Backend {
  notify(options: Record<string, unknown>, callback: Callback): unknown;
}
interface NodeNotifierModule {
  WindowsToaster: new (options?: Record<string, unknown>) => Backend;
  NotificationCenter: new (options?: Record<string, unknown>) => Backend;
}

export interface NodeNotifierOptions {
  onError?: ((error: KeytapError) => void) | undefined;
  platform?: NodeJS.Platform | undefined;
  /** For tests: replaces the dynamic import of node-notifier. */
  load?: (() => Promise<NodeNotifierModule>) | undefined;
  /** For tests: replaces the Start-menu shortcut step on Windows. */
  ensureShortcut?: (() => Promise<void>) | undefined;
}

class Handle implements NotificationHandle {
  constructor(readonly id: string) {}
}
const INERT: NotificationHandle = Object.freeze({ id: '' });

export class NodeNotifierNotifier implements Notifier {
  readonly name = 'node-notifier';
  private readonly platform: NodeJS.Platform;
  private readonly onError: (error: KeytapError) => void;
  private backend: Promise<Backend | undefined> | undefined;
  private counter = 0;
  private reported = false;
  private stopped = false;
  private readonly icon = findIconFile();

  constructor(private readonly options: NodeNotifierOptions = {}) {
    this.platform = options.platform ?? process.platform;
    this.onError = options.onError ?? (() => undefined);
  }

  async show(notification: Notification, replaces?: NotificationHandle): Promise<NotificationHandle> {
    if (this.stopped) return INERT;
    const backend = await this.load();
    if (!backend) return INERT;
    const id = `${APP_USER_MODEL_ID}-${process.pid}-${++this.counter}`;
    const options: Record<string, unknown> = { title: notification.title, message: notification.body, wait: false };
    const icon = (notification.icon === undefined ? undefined : findStateIconFile(notification.icon)) ?? this.icon;
    if (icon) options.icon = icon;
    if (this.platform === 'win32') {
      options.appID = APP_USER_MODEL_ID;
      // SnoreToast ids are numbers; keep ours numeric there.
      options.id = this.counter;
      if (replaces instanceof Handle) await this.close(replaces);
      const result = await this.send(backend, options);
      return result ? new Handle(String(this.counter)) : INERT;
    }
    // terminal-notifier: posting into the group of the old toast removes the old one.
    const group = replaces instanceof Handle ? replaces.id : id;
    options.group = group;
    if (notification.timeoutMs !== undefined && !notification.sticky) options.timeout = Math.max(1, Math.round(notification.timeoutMs / 1000));
    const result = await this.send(backend, options);
    return result ? new Handle(group) : INERT;
  }

  async close(handle: NotificationHandle): Promise<void> {
    if (!(handle instanceof Handle) || this.stopped) return;
    const backend = await this.load();
    if (!backend) return;
    const options: Record<string, unknown> =
      this.platform === 'win32' ? { close: Number(handle.id), appID: APP_USER_MODEL_ID } : { remove: handle.id };
    await this.send(backend, options, true);
  }

  stop(): Promise<void> {
    this.stopped = true;
    return Promise.resolve();
  }

  private send(backend: Backend, options: Record<string, unknown>, quiet = false): Promise<boolean> {
    return new Promise((resolvePromise) => {
      try {
        backend.notify(options, (error) => {
          if (error && !quiet) this.report(`A notification could not be shown (${error.message}).`);
          if (!error) this.reported = false;
          resolvePromise(!error);
        });
      } catch (error) {
        if (!quiet) this.report(`A notification could not be shown (${error instanceof Error ? error.message : String(error)}).`);
        resolvePromise(false);
      }
    });
  }

  private load(): Promise<Backend | undefined> {
    this.backend ??= (async () => {
      try {
        const loaded = this.options.load ? await this.options.load() : await importNodeNotifier();
        if (this.platform === 'win32') {
          await (this.options.ensureShortcut ?? ensureStartMenuShortcut)().catch((error: unknown) => {
            // Toasts still show, just under the name "SnoreToast".
            this.onError(
              new KeytapError('UNSUPPORTED', `The Start-menu shortcut for keytap's notifications could not be created (${String(error)}).`, {
                hint: 'Toasts will show as "SnoreToast"; reinstalling keytap or running it once as the same user again retries.',
              }),
            );
          });
          return new loaded.WindowsToaster({ withFallback: false });
        }
        return new loaded.NotificationCenter({ withFallback: false });
      } catch (error) {
        this.report(`node-notifier could not be loaded (${error instanceof Error ? error.message : String(error)}).`);
        return undefined;
      }
    })();
    return this.backend;
  }

  private report(message: string): void {
    if (this.reported) return;
    this.reported = true;
    this.onError(new KeytapError('UNSUPPORTED', message, { hint: 'Check the notification settings of your system for "keytap".' }));
  }
}

async function importNodeNotifier(): Promise<NodeNotifierModule> {
  const module = (await import('node-notifier')) as unknown as { default?: NodeNotifierModule } & NodeNotifierModule;
  return module.default ?? module;
}

/** %APPDATA%\Microsoft\Windows\Start Menu\Programs\keytap.lnk */
export function startMenuShortcutPath(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const appData = env.APPDATA;
  return appData ? join(appData, 'Microsoft', 'Windows', 'Start Menu', 'Programs', `${SHORTCUT_NAME}.lnk`) : undefined;
}

/**
 * The argv of SnoreToast's installer: `-install <shortcut name> <target exe> <appID>`. The target
 * is the running executable (node.exe, or keytap.exe for a single-executable build).
 */
export function snoreToastInstallArgs(execPath: string = process.execPath): string[] {
  return ['-install', SHORTCUT_NAME, execPath, APP_USER_MODEL_ID];
}

async function ensureStartMenuShortcut(): Promise<void> {
  const shortcut = startMenuShortcutPath();
  if (!shortcut || existsSync(shortcut)) return;
  const snoreToast = locateSnoreToast();
  if (!snoreToast) throw new Error('SnoreToast was not found next to node-notifier');
  await new Promise<void>((resolvePromise, reject) => {
    execFile(snoreToast, snoreToastInstallArgs(), { windowsHide: true, timeout: 10_000 }, (error) => {
      if (error) reject(new Error(`SnoreToast -install failed: ${error.message}`));
      else resolvePromise();
    });
  });
}

function locateSnoreToast(): string | undefined {
  try {
    // Resolved from the running script, which works both from the sources and from the CommonJS
    // bundle (where node-notifier stays in node_modules, next to the package).
    const require = createRequire(resolve(process.argv[1] ?? join(process.cwd(), 'keytap.cjs')));
    const packageDir = dirname(require.resolve('node-notifier/package.json'));
    const file = join(packageDir, 'vendor', 'snoreToast', `snoretoast-${process.arch === 'ia32' ? 'x86' : 'x64'}.exe`);
    return existsSync(file) ? file : undefined;
  } catch {
    return undefined;
  }
}
