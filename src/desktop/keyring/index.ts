/**
 * The OS keyring through @napi-rs/keyring (keyring-rs): the Secret Service on Linux (GNOME
 * Keyring, KWallet's, KeePassXC), the login Keychain on macOS, the Credential Manager on Windows.
 * Service "keytap", one entry per key and kind: `<key id>/access-key` holds a YubiKey's 16-byte
 * access key in hex (never the password), `<key id>/nk3-pin` a Nitrokey 3's PIN itself (the NK3
 * derives nothing a client could keep instead). On Linux the Secret Service is required: the
 * library's fallback, the kernel keyring, forgets everything at logout, which is not "remember".
 * The native module is loaded only when the keyring is first used. Every call has a time limit
 * (10 s): a Secret Service that owns its bus name but never answers (hung, or waiting on an unlock
 * dialog nobody sees) is an error that says so, not a hang of the tray or the CLI.
 */
import { KeytapError } from '../../errors.js';

export const KEYRING_SERVICE = 'keytap';

/** How long one keyring call may take. */
export const KEYRING_TIMEOUT_MS = 10_000;

export type SecretKind = 'access-key' | 'nk3-pin';

export interface Keyring {
  readonly name: string;
  get(keyId: string, kind: SecretKind): Promise<string | undefined>;
  set(keyId: string, kind: SecretKind, secret: string): Promise<void>;
  /** True when there was an entry to delete. */
  delete(keyId: string, kind: SecretKind): Promise<boolean>;
}

interface AsyncEntryLike {
  getPassword(signal?: AbortSignal): Promise<string | null | undefined>;
  setPassword(password: string, signal?: AbortSignal): Promise<void>;
  deleteCredential(signal?: AbortSignal): Promise<boolean>;
}
interface KeyringModule {
  AsyncEntry: new (service: string, user: string, options?: { linux?: { store?: 'secret-service' | 'keyutils' } }) => AsyncEntryLike;
}

let loaded: KeyringModule | undefined;

async function loadModule(): Promise<KeyringModule> {
  if (loaded) return loaded;
  try {
    // Loaded on first use, so only a process that uses the keyring loads its native. In the
    // CommonJS bundle require(); from the TypeScript source (ESM) import().
    if (typeof require === 'function') {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      loaded = require('@napi-rs/keyring') as KeyringModule;
    } else {
      const imported = (await import('@napi-rs/keyring')) as unknown as KeyringModule & { default?: KeyringModule };
      loaded = imported.AsyncEntry ? imported : imported.default!;
    }
  } catch (error) {
    throw noKeyring(`its native module did not load (${error instanceof Error ? error.message.split('\n')[0] : String(error)})`);
  }
  return loaded;
}

function noKeyring(reason: string, code: 'UNSUPPORTED' | 'TIMEOUT' = 'UNSUPPORTED'): KeytapError {
  return new KeytapError(code, `The keyring of this computer cannot be used: ${reason}.`, { detail: { kind: 'no-keyring', reason } });
}

/** Why a keyring that takes too long is no keyring, and what helps. */
function notAnswering(name: string, within: string): KeytapError {
  return noKeyring(`the ${name} did not answer${within} (its daemon hangs, or waits for an unlock nobody sees; restarting it helps)`, 'TIMEOUT');
}

/** keyring-rs's errors say what failed (a D-Bus error, a locked store); they never hold the secret. */
function keyringError(error: unknown, name: string): KeytapError {
  const text = error instanceof Error ? error.message : String(error);
  // libdbus's DBUS_ERROR_NO_REPLY: the name is owned, its owner does not answer (keyring-rs gives up after its own D-Bus timeout).
  if (/Did not receive a reply|reply timeout|timed? ?out/iu.test(text)) return notAnswering(name, ' in time');
  if (/DBus|Secret Service|platform|no result|locked|NoStorageAccess/iu.test(text)) return noKeyring(text.replace(/\s+/gu, ' ').trim());
  return noKeyring(text);
}

export function entryName(keyId: string, kind: SecretKind): string {
  return `${keyId}/${kind}`;
}

export function osKeyring(platform: NodeJS.Platform = process.platform, options: { timeoutMs?: number | undefined } = {}): Keyring {
  const name = platform === 'darwin' ? 'Keychain' : platform === 'win32' ? 'Credential Manager' : 'Secret Service';
  const timeoutMs = options.timeoutMs ?? KEYRING_TIMEOUT_MS;
  const entry = async (keyId: string, kind: SecretKind): Promise<AsyncEntryLike> => {
    const { AsyncEntry } = await loadModule();
    return new AsyncEntry(KEYRING_SERVICE, entryName(keyId, kind), platform === 'linux' ? { linux: { store: 'secret-service' } } : undefined);
  };
  const call = async <T>(run: (signal: AbortSignal) => Promise<T>): Promise<T> => {
    const abort = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    // The signal only stops a call that has not started in the native thread yet; one blocked on
    // D-Bus is left behind (its own D-Bus timeout ends it), so the answer is raced, not awaited.
    // (Connecting happens in AsyncEntry's constructor, synchronously: keyring-rs's own 2 s D-Bus
    // timeout bounds that part, and its "Did not receive a reply" becomes the same error.)
    const timedOut = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        // Settled before the abort, so the race ends with this error and not the abort's.
        reject(notAnswering(name, ` within ${Math.round(timeoutMs / 1000)} s`));
        abort.abort();
      }, timeoutMs);
    });
    try {
      return await Promise.race([run(abort.signal), timedOut]);
    } catch (error) {
      throw error instanceof KeytapError ? error : keyringError(error, name);
    } finally {
      clearTimeout(timer);
    }
  };
  return {
    name,
    get: (keyId, kind) => call(async (signal) => (await (await entry(keyId, kind)).getPassword(signal)) ?? undefined),
    set: (keyId, kind, secret) => call(async (signal) => (await entry(keyId, kind)).setPassword(secret, signal)),
    delete: (keyId, kind) => call(async (signal) => (await entry(keyId, kind)).deleteCredential(signal)),
  };
}
