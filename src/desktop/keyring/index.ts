/**
 * The OS keyring through @napi-rs/keyring (keyring-rs): the Secret Service on Linux (GNOME
 * Keyring, KWallet's, KeePassXC), the login Keychain on macOS, the Credential Manager on Windows.
 * Service "keytap", one entry per key and kind: `<key id>/access-key` holds a YubiKey's 16-byte
 * access key in hex (never the password), `<key id>/nk3-pin` a Nitrokey 3's PIN itself (the NK3
 * derives nothing a client could keep instead). On Linux the Secret Service is required: the
 * library's fallback, the kernel keyring, forgets everything at logout, which is not "remember".
 * The native module is loaded only when the keyring is first used.
 */
import { KeytapError } from '../../errors.js';

export const KEYRING_SERVICE = 'keytap';

export type SecretKind = 'access-key' | 'nk3-pin';

export interface Keyring {
  readonly name: string;
  get(keyId: string, kind: SecretKind): Promise<string | undefined>;
  set(keyId: string, kind: SecretKind, secret: string): Promise<void>;
  /** True when there was an entry to delete. */
  delete(keyId: string, kind: SecretKind): Promise<boolean>;
}

interface AsyncEntryLike {
  getPassword(): Promise<string | null | undefined>;
  setPassword(password: string): Promise<void>;
  deleteCredential(): Promise<boolean>;
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

function noKeyring(reason: string): KeytapError {
  return new KeytapError('UNSUPPORTED', `The keyring of this computer cannot be used: ${reason}.`, { detail: { kind: 'no-keyring', reason } });
}

/** keyring-rs's errors say what failed (a D-Bus error, a locked store); they never hold the secret. */
function keyringError(error: unknown): KeytapError {
  const text = error instanceof Error ? error.message : String(error);
  if (/DBus|Secret Service|platform|no result|locked|NoStorageAccess/iu.test(text)) return noKeyring(text.replace(/\s+/gu, ' ').trim());
  return noKeyring(text);
}

export function entryName(keyId: string, kind: SecretKind): string {
  return `${keyId}/${kind}`;
}

export function osKeyring(platform: NodeJS.Platform = process.platform): Keyring {
  const entry = async (keyId: string, kind: SecretKind): Promise<AsyncEntryLike> => {
    const { AsyncEntry } = await loadModule();
    return new AsyncEntry(KEYRING_SERVICE, entryName(keyId, kind), platform === 'linux' ? { linux: { store: 'secret-service' } } : undefined);
  };
  const call = async <T>(run: () => Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (error) {
      throw error instanceof KeytapError ? error : keyringError(error);
    }
  };
  return {
    name: platform === 'darwin' ? 'Keychain' : platform === 'win32' ? 'Credential Manager' : 'Secret Service',
    get: (keyId, kind) => call(async () => (await (await entry(keyId, kind)).getPassword()) ?? undefined),
    set: (keyId, kind, secret) => call(async () => (await entry(keyId, kind)).setPassword(secret)),
    delete: (keyId, kind) => call(async () => (await entry(keyId, kind)).deleteCredential()),
  };
}
