/**
 * The tray's settings, kept with conf: one JSON file, validated against a JSON schema, written
 * atomically with mode 0600. A file that cannot be read or fails the schema never stops the app:
 * it runs with the defaults, says which file is wrong and why, and leaves the file alone (the
 * user's edit is theirs to fix), picking it up again as soon as it is valid.
 */
import { chmodSync, readFileSync, watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import Conf from 'conf';
import { KeytapError, isKeytapError } from '../errors.js';
import { ensurePrivateFolder } from '../util/private-folder.js';

export interface DefaultAccount {
  /** The key's serial where it has one, else its id (see `accountKeyRef` in state.ts). */
  keyId: string;
  credentialId: string;
}

/** What happens to a code once read: copied, typed into the focused window, or both. */
export type Deliver = 'copy' | 'type' | 'both';
export const DELIVER_CHOICES: readonly Deliver[] = ['copy', 'type', 'both'];

/** One account's own choice, keyed like defaultAccount. */
export interface AccountDeliver {
  keyId: string;
  credentialId: string;
  deliver: Deliver;
}

/**
 * Which account the shortcut reads while a window is focused: every condition given must hold
 * (at least one is). The title is compared case-insensitively, the application by its name.
 */
export interface WindowRule {
  /** The key's serial where it has one, else its id; absent: the account on whichever key holds it. */
  keyId?: string | undefined;
  credentialId: string;
  /** A part of the window's title. */
  title?: string | undefined;
  /** A regular expression (JavaScript's) the title matches, case-insensitive. */
  titlePattern?: string | undefined;
  /** The application: WM_CLASS on X11, app_id on Wayland, the executable's name on Windows, the application's name on macOS. */
  app?: string | undefined;
}

export interface AppConfig {
  /** Global shortcut, Electron-style ("Ctrl+Alt+K"). */
  shortcut: string;
  /** The second shortcut: reads the default account and types its code. */
  typeShortcut: string;
  /** What a read does with the code, unless the account has its own choice in deliverFor. */
  deliver: Deliver;
  deliverFor: AccountDeliver[];
  /** Seconds until the clipboard is cleared (if it still holds our code); 0 = never. */
  clipboardClearSeconds: number;
  /** All toasts. Off: the icon and the tooltip still tell, errors still go to the log. */
  notifications: boolean;
  /** "Key connected, N accounts". */
  notifyOnConnect: boolean;
  /** Off by default: screens get shared. */
  showCodeInNotification: boolean;
  /** What the global shortcut reads; null: the only account there is. */
  defaultAccount: DefaultAccount | null;
  /** How long to wait for a touch before giving up. */
  touchTimeoutSeconds: number;
  /** The focused window's choice of account for the shortcut (window-rules.ts). */
  windowRules: WindowRule[];
}

export const DEFAULT_CONFIG: Readonly<AppConfig> = Object.freeze({
  shortcut: 'Ctrl+Alt+K',
  typeShortcut: 'Ctrl+Alt+Shift+K',
  deliver: 'copy',
  deliverFor: [] as AccountDeliver[],
  clipboardClearSeconds: 20,
  notifications: true,
  notifyOnConnect: true,
  showCodeInNotification: false,
  defaultAccount: null,
  touchTimeoutSeconds: 30,
  windowRules: [] as WindowRule[],
});

/** conf takes the properties of the root object; draft 2020-12 (ajv). */
export const CONFIG_SCHEMA = {
  shortcut: { type: 'string', minLength: 1, maxLength: 100, default: DEFAULT_CONFIG.shortcut },
  typeShortcut: { type: 'string', minLength: 1, maxLength: 100, default: DEFAULT_CONFIG.typeShortcut },
  deliver: { enum: DELIVER_CHOICES, default: DEFAULT_CONFIG.deliver },
  deliverFor: {
    type: 'array',
    maxItems: 1000,
    items: {
      type: 'object',
      properties: { keyId: { type: 'string', minLength: 1 }, credentialId: { type: 'string', minLength: 1 }, deliver: { enum: DELIVER_CHOICES } },
      required: ['keyId', 'credentialId', 'deliver'],
      additionalProperties: false,
    },
    default: [],
  },
  clipboardClearSeconds: { type: 'integer', minimum: 0, maximum: 3600, default: DEFAULT_CONFIG.clipboardClearSeconds },
  notifications: { type: 'boolean', default: DEFAULT_CONFIG.notifications },
  notifyOnConnect: { type: 'boolean', default: DEFAULT_CONFIG.notifyOnConnect },
  showCodeInNotification: { type: 'boolean', default: DEFAULT_CONFIG.showCodeInNotification },
  defaultAccount: {
    anyOf: [
      { type: 'null' },
      {
        type: 'object',
        properties: { keyId: { type: 'string', minLength: 1 }, credentialId: { type: 'string', minLength: 1 } },
        required: ['keyId', 'credentialId'],
        additionalProperties: false,
      },
    ],
    default: null,
  },
  touchTimeoutSeconds: { type: 'integer', minimum: 5, maximum: 120, default: DEFAULT_CONFIG.touchTimeoutSeconds },
  windowRules: {
    type: 'array',
    maxItems: 1000,
    items: {
      type: 'object',
      properties: {
        keyId: { type: 'string', minLength: 1 },
        credentialId: { type: 'string', minLength: 1 },
        title: { type: 'string', minLength: 1, maxLength: 500 },
        titlePattern: { type: 'string', minLength: 1, maxLength: 500, format: 'regex' },
        app: { type: 'string', minLength: 1, maxLength: 200 },
      },
      required: ['credentialId'],
      // A rule with no condition would match every window.
      anyOf: [{ required: ['title'] }, { required: ['titlePattern'] }, { required: ['app'] }],
      additionalProperties: false,
    },
    default: [],
  },
} as const;

/** `$KEYTAP_CONFIG_DIR`, else the OS convention: ~/.config/keytap, ~/Library/Preferences/keytap, %APPDATA%\keytap\Config. */
export function configDir(): string {
  if (process.env.KEYTAP_CONFIG_DIR) return process.env.KEYTAP_CONFIG_DIR;
  const home = homedir();
  if (process.platform === 'darwin') return join(home, 'Library', 'Preferences', 'keytap');
  if (process.platform === 'win32') return join(process.env.APPDATA ?? join(home, 'AppData', 'Roaming'), 'keytap', 'Config');
  return join(process.env.XDG_CONFIG_HOME ?? join(home, '.config'), 'keytap');
}

/** Where user data lives (the demo key): `$KEYTAP_DATA_DIR`, else ~/.local/share/keytap and the like. */
export function dataDir(): string {
  if (process.env.KEYTAP_DATA_DIR) return process.env.KEYTAP_DATA_DIR;
  const home = homedir();
  if (process.platform === 'darwin') return join(home, 'Library', 'Application Support', 'keytap');
  if (process.platform === 'win32') return join(process.env.LOCALAPPDATA ?? join(home, 'AppData', 'Local'), 'keytap', 'Data');
  return join(process.env.XDG_DATA_HOME ?? join(home, '.local', 'share'), 'keytap');
}

export function configPath(dir = configDir()): string {
  return join(dir, 'config.json');
}

export interface ConfigStoreOptions {
  /** Folder of config.json; default configDir(). */
  dir?: string | undefined;
  /** Re-read the file when it changes on disk (the resident process). Default false. */
  watch?: boolean | undefined;
}

type Listener = (config: AppConfig, previous: AppConfig) => void;

export class ConfigStore {
  readonly path: string;
  private conf: Conf<AppConfig> | undefined;
  private value: AppConfig;
  private problemValue: KeytapError | undefined;
  private readonly listeners = new Set<Listener>();
  private watcher: FSWatcher | undefined;
  private reloadTimer: NodeJS.Timeout | undefined;
  private readonly onProblem = new Set<(problem: KeytapError | undefined) => void>();

  private constructor(path: string) {
    this.path = path;
    this.value = { ...DEFAULT_CONFIG };
  }

  /**
   * Opens (creating with defaults) the settings file. Never throws for a bad file: see `problem`.
   */
  static open(options: ConfigStoreOptions = {}): ConfigStore {
    const dir = options.dir ?? configDir();
    const store = new ConfigStore(configPath(dir));
    store.load();
    if (options.watch) store.startWatching();
    return store;
  }

  /** The settings in effect now (a copy). */
  get current(): AppConfig {
    return { ...this.value, defaultAccount: this.value.defaultAccount ? { ...this.value.defaultAccount } : null, deliverFor: this.value.deliverFor.map((d) => ({ ...d })), windowRules: this.value.windowRules.map((r) => ({ ...r })) };
  }

  /** Why the file is not in effect (the app then runs with defaults), or undefined when it is. */
  get problem(): KeytapError | undefined {
    return this.problemValue;
  }

  /** Changes one setting and saves it. While the file is broken the change lives in memory only. */
  set<K extends keyof AppConfig>(key: K, value: AppConfig[K]): void {
    const previous = this.current;
    this.value = { ...this.value, [key]: value };
    if (this.conf && !this.problemValue) {
      try {
        this.conf.set(key, value);
      } catch (error) {
        this.setProblem(invalidFile(this.path, error));
      }
    }
    this.notify(previous);
  }

  onChange(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Called when the file turns bad or good again (undefined). */
  onProblemChange(listener: (problem: KeytapError | undefined) => void): () => void {
    this.onProblem.add(listener);
    return () => this.onProblem.delete(listener);
  }

  /** Re-reads the file (after the user edited it). */
  reload(): void {
    const previous = this.current;
    this.load();
    this.notify(previous);
  }

  close(): void {
    this.watcher?.close();
    this.watcher = undefined;
    clearTimeout(this.reloadTimer);
  }

  private load(): void {
    const dir = dirname(this.path);
    try {
      ensurePrivateFolder(dir, { what: "keytap's settings folder", othersMayRead: true, hint: 'Or set KEYTAP_CONFIG_DIR to a folder of your own.' });
      // conf validates (and fills in defaults) on construction and writes the file when it was
      // missing or incomplete; an unreadable file or a schema violation throws.
      this.conf ??= new Conf<AppConfig>({
        cwd: dir,
        projectName: 'keytap',
        configName: basename(this.path, '.json'),
        configFileMode: 0o600,
        schema: CONFIG_SCHEMA,
        defaults: { ...DEFAULT_CONFIG },
        clearInvalidConfig: false,
      });
      const store = this.conf.store;
      this.value = pick(store);
      tightenMode(this.path);
      this.setProblem(undefined);
    } catch (error) {
      this.value = { ...DEFAULT_CONFIG };
      this.setProblem(isKeytapError(error, 'PERMISSION_DENIED') ? unusableFolder(error) : invalidFile(this.path, error));
    }
  }

  private setProblem(problem: KeytapError | undefined): void {
    const before = this.problemValue?.message;
    this.problemValue = problem;
    if (before === problem?.message) return;
    for (const listener of this.onProblem) {
      try {
        listener(problem);
      } catch {
        // a listener's failure is not the config's
      }
    }
  }

  private notify(previous: AppConfig): void {
    const now = this.current;
    if (JSON.stringify(now) === JSON.stringify(previous)) return;
    for (const listener of this.listeners) {
      try {
        listener(now, previous);
      } catch {
        // a listener's failure is not the config's
      }
    }
  }

  /**
   * Watches the folder rather than the file: editors and conf itself replace the file by renaming,
   * which a watch on the file would lose. inotify-driven, no polling.
   */
  private startWatching(): void {
    const name = basename(this.path);
    try {
      this.watcher = watch(dirname(this.path), { persistent: false }, (_event, file) => {
        if (file !== null && file.toString() !== name) return;
        clearTimeout(this.reloadTimer);
        this.reloadTimer = setTimeout(() => this.reloadIfChanged(), 150);
        this.reloadTimer.unref();
      });
      this.watcher.on('error', () => {
        // The folder went away; changes made from the menu still work, edits are picked up on restart.
        this.watcher?.close();
        this.watcher = undefined;
      });
    } catch {
      this.watcher = undefined;
    }
  }

  private reloadIfChanged(): void {
    let text: string | undefined;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch {
      text = undefined;
    }
    // Our own writes come back as events too; only a real change is a reload.
    if (text !== undefined && !this.problemValue && this.conf) {
      try {
        if (JSON.stringify(pick(JSON.parse(text) as Partial<AppConfig>)) === JSON.stringify(this.value)) return;
      } catch {
        // unparsable: reload() reports it
      }
    }
    this.reload();
  }
}

/** Only the known keys, with defaults for what is missing. */
function pick(raw: Partial<AppConfig>): AppConfig {
  const out: AppConfig = { ...DEFAULT_CONFIG };
  for (const key of Object.keys(DEFAULT_CONFIG) as (keyof AppConfig)[]) {
    if (raw[key] !== undefined) (out as unknown as Record<string, unknown>)[key] = raw[key];
  }
  return out;
}

/** conf applies the mode on its own writes only; a file created by hand keeps its mode otherwise. */
function tightenMode(path: string): void {
  if (process.platform === 'win32') return;
  try {
    chmodSync(path, 0o600);
  } catch {
    // not ours to fix (read-only file system)
  }
}

function unusableFolder(error: KeytapError): KeytapError {
  return new KeytapError(error.code, `${error.message} keytap runs with the default settings.`, { hint: error.hint, cause: error });
}

function invalidFile(path: string, error: unknown): KeytapError {
  const detail = error instanceof Error ? error.message.replace(/^Config schema violation: /u, '') : String(error);
  return new KeytapError('BAD_INPUT', `The settings file ${path} is invalid (${detail}); keytap runs with the default settings until it is fixed.`, {
    hint: 'Fix or delete the file; keytap picks it up again as soon as it is valid.',
    cause: error,
  });
}
