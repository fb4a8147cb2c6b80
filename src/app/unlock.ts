/**
 * Unlocking a key, the same for the CLI and the tray: a YubiKey's OATH password (the access key
 * derived from it is what is used and remembered, never the password) and a Nitrokey 3's PIN for
 * its PIN-protected accounts. The order: a secret given outright (--password, --pin); else the
 * one remembered in the OS keyring (a wrong one is forgotten, and the user is told); else the
 * secret prompt, asked again on a wrong answer a few times at most. The prompt and the keyring
 * are handed in, so each edge decides whether it may ask at all.
 */
import { createHash } from 'node:crypto';
import { NK3_PIN_ATTEMPTS } from '../device/oath/constants.js';
import { KeytapError, isKeytapError, lockedError } from '../errors.js';
import type { Keyring, SecretKind } from '../desktop/keyring/index.js';
import type { SecretPrompt, SecretRequest } from '../desktop/secret-prompt/index.js';

/** What unlocking needs of an open key (OathSession has it). */
export interface LockableSession {
  readonly locked: boolean;
  readonly serial: string | undefined;
  /** yubikit's OATH device id (from the salt SELECT gives), where the key has one. */
  readonly deviceId?: string | undefined;
  readonly pinSet: boolean;
  readonly pinAttemptsLeft: number | undefined;
  readSerial?(signal?: AbortSignal): Promise<string | undefined>;
  deriveAccessKey(password: string): Buffer;
  unlockWithAccessKey(key: Uint8Array, signal?: AbortSignal): Promise<void>;
}

export interface UnlockContext {
  /** "YubiKey 5 NFC", "virtual key demo.json": named in the prompt. */
  keyName: string;
  /** The keyring entry's name (keyringEntryOf); undefined: the key cannot be told apart, nothing is looked up or remembered. */
  keyId: string | undefined;
  /** Given outright: no keyring read, no prompt. */
  secret?: string | undefined;
  /** The keyring; undefined where there is none or it is not to be used. */
  keyring?: Keyring | undefined;
  /** How to ask; undefined: asking is not possible here (no terminal, no display). Called when needed. */
  prompt?: (() => SecretPrompt) | undefined;
  /** Store what worked in the keyring. */
  remember?: boolean | undefined;
  /** Things the user should know that are not errors ("the remembered password was wrong and is forgotten"). */
  onNote?: ((note: UnlockNote) => void) | undefined;
  signal?: AbortSignal | undefined;
  /** Prompts at most; default 3. */
  attempts?: number | undefined;
  /** Remembered secrets found wrong in this process (the tray keeps one for its lifetime): never tried again. */
  knownWrong?: KnownWrongSecrets | undefined;
}

/**
 * Remembered secrets this process found wrong, so a keyring entry that could not be deleted is not
 * tried again (a Nitrokey 3 PIN tried twice would cost two of its 8 attempts). Kept as the entry
 * and a SHA-256 of the value, never the value: a new secret stored under the same entry is tried.
 */
export class KnownWrongSecrets {
  private readonly wrong = new Set<string>();

  private static tag(entry: string, kind: SecretKind, secret: string): string {
    return `${entry}/${kind}/${createHash('sha256').update(entry).update('\0').update(secret).digest('hex')}`;
  }

  add(entry: string, kind: SecretKind, secret: string): void {
    this.wrong.add(KnownWrongSecrets.tag(entry, kind, secret));
  }

  has(entry: string, kind: SecretKind, secret: string): boolean {
    return this.wrong.has(KnownWrongSecrets.tag(entry, kind, secret));
  }
}

export type UnlockNote =
  | { kind: 'remembered-wrong'; secret: SecretKind }
  /** A remembered Nitrokey 3 PIN left untried: the key's counter says a wrong PIN was given since (attemptsLeft < 8), or this process found it wrong. */
  | { kind: 'remembered-not-tried'; secret: SecretKind; attemptsLeft: number | undefined; knownWrong: boolean }
  | { kind: 'remembered'; secret: SecretKind; keyring: string }
  /** --remember for a key that tells no serial and no OATH device id: nothing to file it under. */
  | { kind: 'cannot-remember'; secret: SecretKind }
  | { kind: 'keyring-unavailable'; error: KeytapError };

export interface UnlockResult {
  /** The access key that opened it (the caller may remember it later); empty when it was not locked. */
  accessKey: Buffer;
  /** Where the secret came from. */
  source: 'none' | 'given' | 'remembered' | 'prompt';
}

const DEFAULT_ATTEMPTS = 3;

/**
 * The name the keyring files a key's secrets under, for the CLI and the tray alike: the key's
 * serial where it is known; else an id derived from the OATH application's salt (yubikit's device
 * id, "oath-" and Base64url), which is the key's own until it is reset. Undefined when the key
 * tells neither: then nothing is remembered for it, since a descriptor or device path is shared by
 * any key plugged in there.
 */
export function keyringEntryOf(identity: { readonly serial: string | undefined; readonly deviceId?: string | undefined }): string | undefined {
  if (identity.serial !== undefined && identity.serial !== '') return identity.serial;
  if (identity.deviceId === undefined || identity.deviceId === '') return undefined;
  return `oath-${identity.deviceId.replace(/\+/gu, '-').replace(/\//gu, '_')}`;
}

/** keyringEntryOf an open key, its serial read first where only another application tells it (before unlocking: it SELECTs). */
export async function keyringIdOf(session: Pick<LockableSession, 'serial' | 'deviceId' | 'readSerial'>, signal?: AbortSignal): Promise<string | undefined> {
  const serial = session.serial ?? (await session.readSerial?.(signal));
  return keyringEntryOf({ serial, deviceId: session.deviceId });
}

async function remembered(context: UnlockContext, kind: SecretKind): Promise<string | undefined> {
  if (!context.keyring || context.keyId === undefined) return undefined;
  try {
    return await context.keyring.get(context.keyId, kind);
  } catch (error) {
    if (!isKeytapError(error)) throw error;
    context.onNote?.({ kind: 'keyring-unavailable', error });
    return undefined;
  }
}

async function forget(context: UnlockContext, kind: SecretKind): Promise<void> {
  if (context.keyId === undefined) return;
  try {
    await context.keyring?.delete(context.keyId, kind);
  } catch (error) {
    if (!isKeytapError(error)) throw error;
    context.onNote?.({ kind: 'keyring-unavailable', error });
  }
}

/** Stores a secret; a keyring that fails is an error. */
export async function rememberSecret(keyring: Keyring, keyId: string, kind: SecretKind, secret: string): Promise<void> {
  await keyring.set(keyId, kind, secret);
}

/** Remembers what worked; a keyring that fails is a note, not a failure of the unlock that succeeded. */
async function rememberQuietly(context: UnlockContext, kind: SecretKind, secret: string): Promise<void> {
  if (!context.keyring) return;
  if (context.keyId === undefined) {
    context.onNote?.({ kind: 'cannot-remember', secret: kind });
    return;
  }
  try {
    await rememberSecret(context.keyring, context.keyId, kind, secret);
    context.onNote?.({ kind: 'remembered', secret: kind, keyring: context.keyring.name });
  } catch (error) {
    if (!isKeytapError(error)) throw error;
    context.onNote?.({ kind: 'keyring-unavailable', error });
  }
}

/** Forgets both kinds for a key; true when there was something to forget. */
export async function forgetKey(keyring: Keyring, keyId: string): Promise<boolean> {
  const accessKey = await keyring.delete(keyId, 'access-key');
  const pin = await keyring.delete(keyId, 'nk3-pin');
  return accessKey || pin;
}

function isWrong(error: unknown): boolean {
  return isKeytapError(error, 'WRONG_PASSWORD') || (isKeytapError(error, 'BAD_INPUT') && error.detail?.kind === 'wrong-password');
}

/** Unlocks a password-protected YubiKey applet; does nothing to one that is not locked. */
export async function unlockSession(session: LockableSession, context: UnlockContext): Promise<UnlockResult> {
  if (!session.locked) return { accessKey: Buffer.alloc(0), source: 'none' };
  const tryKey = async (key: Buffer): Promise<void> => {
    try {
      await session.unlockWithAccessKey(key, context.signal);
    } catch (error) {
      key.fill(0);
      throw error;
    }
  };
  const keep = async (key: Buffer, source: UnlockResult['source']): Promise<UnlockResult> => {
    if (context.remember && context.keyring && source !== 'remembered') await rememberQuietly(context, 'access-key', key.toString('hex'));
    return { accessKey: key, source };
  };

  if (context.secret !== undefined) {
    const key = session.deriveAccessKey(context.secret);
    await tryKey(key);
    return keep(key, 'given');
  }
  const stored = await remembered(context, 'access-key');
  // One this process found wrong (its entry could not be deleted) is not tried again.
  if (stored !== undefined && !(context.keyId !== undefined && context.knownWrong?.has(context.keyId, 'access-key', stored))) {
    const key = /^[0-9a-f]{32}$/iu.test(stored) ? Buffer.from(stored, 'hex') : Buffer.alloc(0);
    try {
      await tryKey(key);
      return { accessKey: key, source: 'remembered' };
    } catch (error) {
      if (!isWrong(error)) throw error;
      if (context.keyId !== undefined) context.knownWrong?.add(context.keyId, 'access-key', stored);
      await forget(context, 'access-key');
      context.onNote?.({ kind: 'remembered-wrong', secret: 'access-key' });
    }
  }
  if (!context.prompt) throw lockedError(context.keyName);
  const prompt = context.prompt();
  let errorText: string | undefined;
  for (let attempt = 0; attempt < (context.attempts ?? DEFAULT_ATTEMPTS); attempt++) {
    const password = await prompt.ask(passwordRequest(context.keyName, errorText), context.signal);
    const key = session.deriveAccessKey(password);
    try {
      await tryKey(key);
      return await keep(key, 'prompt');
    } catch (error) {
      if (!isWrong(error)) throw error;
      errorText = 'Wrong password: try again.';
    }
  }
  throw new KeytapError('WRONG_PASSWORD', 'The password is wrong.', { detail: { kind: 'wrong-password' } });
}

export function passwordRequest(keyName: string, error?: string): SecretRequest {
  return {
    title: 'keytap',
    description: `The OATH application on ${keyName} is password-protected. Enter its password to read its accounts.`,
    prompt: 'Password:',
    error,
    ok: 'Unlock',
  };
}

export function pinRequest(keyName: string, attemptsLeft: number | undefined, error?: string): SecretRequest {
  const left = attemptsLeft === undefined ? '' : ` (${attemptsLeft} attempt${attemptsLeft === 1 ? '' : 's'} left)`;
  const last = attemptsLeft !== undefined && attemptsLeft <= 1 ? ' The next wrong PIN blocks the key: only a reset, which deletes every account, unblocks it.' : '';
  return {
    title: 'keytap',
    description: `Enter the PIN of ${keyName}${left} to use its PIN-protected accounts.${last} The key asks for a touch after each PIN.`,
    prompt: 'PIN:',
    error,
    ok: 'OK',
  };
}

/**
 * Runs `use` with the Nitrokey 3 PIN: given, remembered, or asked. A wrong remembered PIN is
 * forgotten (it cost an attempt; the user is told) and the prompt comes next; a wrong PIN from the
 * prompt is asked again with the attempts left. Returns what `use` returned and the PIN that worked.
 */
export async function withPin<T>(session: LockableSession, context: UnlockContext, use: (pin: string) => Promise<T>): Promise<{ value: T; pin: string; source: UnlockResult['source'] }> {
  const keep = async (value: T, pin: string, source: UnlockResult['source']): Promise<{ value: T; pin: string; source: UnlockResult['source'] }> => {
    if (context.remember && context.keyring && source !== 'remembered') await rememberQuietly(context, 'nk3-pin', pin);
    return { value, pin, source };
  };
  if (context.secret !== undefined) return keep(await use(context.secret), context.secret, 'given');
  const fromKeyring = await withRememberedPin(session, context, use);
  if (fromKeyring.tried) return { value: fromKeyring.value, pin: fromKeyring.pin, source: 'remembered' };
  if (!context.prompt) throw new KeytapError('AUTH_REQUIRED', `${context.keyName} holds PIN-protected accounts, and no PIN was given.`, { detail: { kind: 'pin-required' } });
  const prompt = context.prompt();
  // Say why the remembered PIN was not used, where one was left untried.
  let errorText: string | undefined = fromKeyring.untried === undefined ? undefined : notTriedText(fromKeyring.untried);
  let lastError: unknown;
  for (let attempt = 0; attempt < (context.attempts ?? DEFAULT_ATTEMPTS); attempt++) {
    const pin = await prompt.ask(pinRequest(context.keyName, session.pinAttemptsLeft, errorText), context.signal);
    try {
      return await keep(await use(pin), pin, 'prompt');
    } catch (error) {
      if (!isKeytapError(error, 'WRONG_PASSWORD')) throw error;
      lastError = error;
      errorText = 'Wrong PIN: try again.';
    }
  }
  throw lastError;
}

/**
 * Runs `use` with the Nitrokey 3 PIN remembered in the keyring, where trying it cannot cost more
 * than the one attempt a wrong remembered PIN may cost, ever: not when the key's counter is below
 * its full 8 (a wrong PIN was given since the PIN that was remembered last worked, possibly this
 * very one, whose forgetting failed), and not when this process already found it wrong. A wrong
 * one is marked known wrong, forgotten, and noted. `tried: false`: go on without it; `untried`:
 * there was one, left alone for those reasons.
 */
export async function withRememberedPin<T>(
  session: { readonly pinAttemptsLeft?: number | undefined },
  context: UnlockContext,
  use: (pin: string) => Promise<T>,
): Promise<{ tried: true; value: T; pin: string } | { tried: false; untried?: 'known-wrong' | 'counter' | undefined }> {
  const stored = await remembered(context, 'nk3-pin');
  if (stored === undefined || context.keyId === undefined) return { tried: false };
  const attemptsLeft = session.pinAttemptsLeft;
  const knownWrong = context.knownWrong?.has(context.keyId, 'nk3-pin', stored) === true;
  if (knownWrong || (attemptsLeft !== undefined && attemptsLeft < NK3_PIN_ATTEMPTS)) {
    context.onNote?.({ kind: 'remembered-not-tried', secret: 'nk3-pin', attemptsLeft, knownWrong });
    return { tried: false, untried: knownWrong ? 'known-wrong' : 'counter' };
  }
  try {
    return { tried: true, value: await use(stored), pin: stored };
  } catch (error) {
    if (!isKeytapError(error, 'WRONG_PASSWORD')) throw error;
    context.knownWrong?.add(context.keyId, 'nk3-pin', stored);
    await forget(context, 'nk3-pin');
    context.onNote?.({ kind: 'remembered-wrong', secret: 'nk3-pin' });
    return { tried: false };
  }
}

/** The prompt's first line when a remembered PIN was left untried. */
function notTriedText(why: 'known-wrong' | 'counter'): string {
  return why === 'known-wrong' ? 'The remembered PIN is wrong; it was not tried again.' : 'The remembered PIN was not tried: a wrong PIN was entered since it last worked.';
}
