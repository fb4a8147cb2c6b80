/**
 * What the resident process needs of an open key, and nothing more: whether it is locked, its
 * serial, its accounts and one code. The device layer's OathSession has these members, so it fits
 * structurally; the app's tests give fakes of this interface instead of a whole session.
 */
import type { CalculateOptions, KeyCredential, OathCode, PutOptions } from '../device/oath/session.js';
import type { CredentialWithSecret } from '../otp/credential.js';

export interface KeySession {
  /** The OATH application asks for a password before it lists or calculates. */
  readonly locked: boolean;
  /** From SELECT, where the key reports one. */
  readonly serial: string | undefined;
  /** yubikit's OATH device id, from the salt SELECT gives (names the key in the keyring where it has no serial). */
  readonly deviceId?: string | undefined;
  /**
   * The serial where only another application tells it (a YubiKey: Management DEVICE INFO), else
   * `serial`. Before `list()`: it SELECTs OATH again.
   */
  readSerial?(signal?: AbortSignal): Promise<string | undefined>;
  list(signal?: AbortSignal): Promise<KeyCredential[]>;
  /** A YubiKey's access key for a password, and unlocking with it (src/app/unlock.ts). */
  deriveAccessKey?(password: string): Buffer;
  unlockWithAccessKey?(key: Uint8Array, signal?: AbortSignal): Promise<void>;
  /** Nitrokey 3: a PIN is set; every credential, PIN-protected ones too (VERIFY PIN, a touch, then LIST). */
  readonly pinSet?: boolean;
  readonly pinAttemptsLeft?: number | undefined;
  /** `onTouchNeeded`: VERIFY PIN waits for a touch (it always does on a Nitrokey 3). */
  listWithPin?(pin: string, options?: { signal?: AbortSignal | undefined; onTouchNeeded?: (() => void) | undefined }): Promise<KeyCredential[]>;
  calculate(credential: KeyCredential, options?: CalculateOptions): Promise<OathCode>;
  /** Stores an account ("Add account from QR code on screen…"). */
  put?(credential: CredentialWithSecret, options?: PutOptions): Promise<KeyCredential>;
}

/** A key opened for one operation; closed right after. */
export interface OpenedKey {
  session: KeySession;
  /** Human name: "Nitrokey 3", "virtual key demo.json". */
  name: string;
  /** Stable identity: the serial where the key reports one, else the descriptor's id. */
  id: string;
  close(): Promise<void>;
}
