/**
 * Programming one key: refuse what cannot work before anything is written, record the seed in
 * the ledger, put it on the key, read a code back and compare it with the code computed from the
 * seed, and record the outcome. A mismatch (or a failed read) removes the credential again.
 */
import type { OpenKey } from '../device/open.js';
import type { KeyCredential } from '../device/oath/session.js';
import { OathStatusError } from '../device/oath/status.js';
import { KeytapError, lockedError, isKeytapError } from '../errors.js';
import { formatCredentialId } from '../otp/credential.js';
import { hotp, totp } from '../otp/hotp.js';
import type { KeyIdentity, Ledger, LedgerEntry } from './ledger.js';
import type { StepHook } from './steps.js';
import type { ProvisionToken } from './token.js';
import { credentialFor } from './token.js';

export type TouchPhase = 'put' | 'verify' | 'delete';

export interface ProgramKeyOptions {
  ledger: Ledger;
  /** Replace an account of the same name on the key instead of refusing. */
  replace?: boolean | undefined;
  signal?: AbortSignal | undefined;
  /** The key waits for a touch: tell the user. */
  onTouchNeeded?: ((phase: TouchPhase) => void) | undefined;
  /** Milliseconds since the epoch; Date.now by default (tests pin it). */
  now?: (() => number) | undefined;
  /** The key's position in the run, 1-based (what afterStep is told). */
  keyNumber?: number | undefined;
  /** Called after each durable step (see steps.ts); a seam for the crash-safety tests. */
  afterStep?: StepHook | undefined;
}

export type ProgramOutcome =
  /** On the key, verified, ledger `done`. */
  | { status: 'programmed'; entry: LedgerEntry; credentialId: string }
  /** Nothing was written to the key; `error` says why. */
  | { status: 'refused'; error: KeytapError; entry?: LedgerEntry | undefined }
  /** Written, but it failed; removed again unless `leftOnKey`. */
  | { status: 'failed'; error: KeytapError; entry: LedgerEntry; leftOnKey: boolean };

export function keyIdentity(key: OpenKey): KeyIdentity {
  return { id: key.id, name: key.name, serial: key.session.serial, dialect: key.session.dialect };
}

/**
 * What the key itself must allow, asked before anything is written: an unlocked applet, the
 * hash, a free name (unless replacing), and room (the count against what the dialect holds).
 * Returns the refusal, or null.
 */
export async function preflight(key: OpenKey, token: ProvisionToken, options: { replace?: boolean | undefined; signal?: AbortSignal | undefined } = {}): Promise<KeytapError | null> {
  const session = key.session;
  const caps = session.capabilities;
  if (session.locked) {
    return lockedError(key.name);
  }
  if (!caps.algorithms.includes(token.algorithm)) {
    return new KeytapError('UNSUPPORTED', `${key.name} (${caps.name}) cannot compute ${token.algorithm} codes.`, { hint: `Use ${caps.algorithms.join(' or ')} for this key.` });
  }
  const id = formatCredentialId({ issuer: token.issuer, account: token.account ?? token.serial, period: token.period, type: token.type });
  const existing = await session.list(options.signal);
  const taken = existing.some((c) => c.id === id);
  if (taken && !options.replace) {
    return new KeytapError('EXISTS', `${key.name} already has an account "${id}".`, { detail: { kind: 'exists', id } });
  }
  if (!taken && existing.length >= caps.maxCredentials) {
    return new KeytapError('KEY_FULL', `${key.name} is full: it holds ${existing.length} accounts, the most ${caps.name} takes.`, {
      hint: 'Delete an account it no longer needs, or use another key.',
    });
  }
  return null;
}

export async function programKey(key: OpenKey, token: ProvisionToken, options: ProgramKeyOptions): Promise<ProgramOutcome> {
  const keyNumber = options.keyNumber ?? 1;
  const refusal = await preflight(key, token, options);
  if (refusal) return { status: 'refused', error: refusal };
  const credential = credentialFor(token);
  const credentialId = formatCredentialId(credential);

  // The seed is on disk before it leaves for the key.
  const entry = await options.ledger.appendPending(token, keyIdentity(key), credentialId);
  options.afterStep?.('after-ledger-append', keyNumber);

  let stored: KeyCredential;
  try {
    stored = await key.session.put(credential, { replace: options.replace, signal: options.signal, onTouchNeeded: () => options.onTouchNeeded?.('put') });
  } catch (error) {
    const keytapError = asKeytapError(error, 'Storing the account failed');
    if (error instanceof OathStatusError) {
      // The key answered with an error status: it stored nothing.
      await options.ledger.markFailed(entry, keytapError.message, false);
      const refused = keytapError.code === 'KEY_FULL' || keytapError.code === 'EXISTS' || keytapError.code === 'UNSUPPORTED';
      return refused ? { status: 'refused', error: keytapError, entry } : { status: 'failed', error: keytapError, entry, leftOnKey: false };
    }
    // No answer (removed, timed out, cancelled): it may or may not be there.
    const leftOnKey = !(await removeCredential(key, credentialId, options));
    await options.ledger.markFailed(entry, keytapError.message, leftOnKey);
    return { status: 'failed', error: keytapError, entry, leftOnKey };
  }
  options.afterStep?.('after-put', keyNumber);

  let counterAfter: number | undefined;
  try {
    const timeSeconds = (options.now ?? Date.now)() / 1000;
    const read = await key.session.calculate({ ...stored, touch: credential.touch, digits: credential.digits }, {
      time: timeSeconds,
      signal: options.signal,
      onTouchNeeded: () => options.onTouchNeeded?.('verify'),
    });
    // TOTP at the same time step the key was asked for; HOTP at the stored counter, which the read has just used up.
    const expected =
      token.type === 'TOTP' ? totp(token.secret, timeSeconds, token.period, token.digits, token.algorithm) : hotp(token.secret, token.counter, token.digits, token.algorithm);
    if (read.code !== expected) {
      throw new KeytapError('DEVICE_ERROR', `Verification failed: ${key.name} computes other codes than the seed for "${credentialId}".`, {
        hint: 'The account was removed from the key again. The key may be faulty; try another one.',
      });
    }
    if (token.type === 'HOTP') counterAfter = token.counter + 1;
  } catch (error) {
    const keytapError = asKeytapError(error, 'Verification failed');
    const leftOnKey = !(await removeCredential(key, credentialId, options));
    await options.ledger.markFailed(entry, keytapError.message, leftOnKey);
    const message = keytapError.message.startsWith('Verification failed') ? keytapError.message : `Verification failed: ${keytapError.message}`;
    const hint = leftOnKey ? 'The account could not be removed from the key: it stays in the ledger as "failed, may be on the key".' : (keytapError.hint ?? 'The account was removed from the key again.');
    return { status: 'failed', error: new KeytapError(keytapError.code, message, { hint, cause: error }), entry, leftOnKey };
  }
  options.afterStep?.('after-verify', keyNumber);

  await options.ledger.markDone(entry, counterAfter);
  options.afterStep?.('after-ledger-done', keyNumber);
  return { status: 'programmed', entry, credentialId };
}

/** Deletes the credential; true when it is confirmed gone (deleted, or not there). */
async function removeCredential(key: OpenKey, credentialId: string, options: ProgramKeyOptions): Promise<boolean> {
  try {
    const present = (await key.session.list()).some((c) => c.id === credentialId);
    if (!present) return true;
    // Not options.signal: a Ctrl+C must not leave a half-programmed credential behind.
    await key.session.delete(credentialId, { onTouchNeeded: () => options.onTouchNeeded?.('delete') });
    return true;
  } catch {
    return false;
  }
}

export function asKeytapError(error: unknown, what: string): KeytapError {
  if (isKeytapError(error)) return error;
  return new KeytapError('DEVICE_ERROR', `${what}: ${error instanceof Error ? error.message : String(error)}.`, { cause: error });
}
