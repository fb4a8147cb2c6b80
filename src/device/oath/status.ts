/**
 * Status words → KeytapErrors with messages a user can act on. The same SW means different things
 * for different instructions (6984 is "no such credential" for CALCULATE but "wrong response" for
 * SET CODE), so the mapping takes the operation into account (docs/protocols.md §1.13, §2.11). Every error
 * carries a structured detail (the SW, or what it means: locked, no such account, name taken) and
 * no advice that names a command: the CLI and the tray word that themselves.
 */
import type { ErrorCode, ErrorDetail } from '../../errors.js';
import { KeytapError } from '../../errors.js';
import { formatSw } from '../transport/types.js';
import { Sw } from './constants.js';

export type OathOperation =
  | 'select'
  | 'list'
  | 'calculate'
  | 'calculate-all'
  | 'put'
  | 'delete'
  | 'rename'
  | 'reset'
  | 'set-code'
  | 'validate'
  | 'verify-pin'
  | 'send-remaining';

const OPERATION_WORDS: Record<OathOperation, string> = {
  select: 'opening the OATH application',
  list: 'listing the accounts',
  calculate: 'reading a code',
  'calculate-all': 'reading the codes',
  put: 'storing the account',
  delete: 'deleting the account',
  rename: 'renaming the account',
  reset: 'resetting the OATH application',
  'set-code': 'setting the password',
  validate: 'checking the password',
  'verify-pin': 'checking the PIN',
  'send-remaining': 'reading the rest of an answer',
};

/** An error status word from the key, with the SW kept for callers that branch on it. */
export class OathStatusError extends KeytapError {
  override readonly name = 'OathStatusError';
  readonly sw: number;
  readonly operation: OathOperation;

  constructor(code: ErrorCode, sw: number, operation: OathOperation, message: string, hint?: string, detail?: ErrorDetail) {
    super(code, message, { hint, detail: detail ?? { kind: 'status', sw, doing: OPERATION_WORDS[operation] } });
    this.sw = sw;
    this.operation = operation;
  }
}

export interface StatusContext {
  /** The credential concerned, for messages ("GitHub:alice"). Ids are not secret. */
  credentialId?: string | undefined;
  /** The session is unlocked (no password, or VALIDATE succeeded), so 6982 cannot mean "locked". */
  unlocked?: boolean | undefined;
  /** Milliseconds the key took to answer: a 6982 after a long wait is a touch timeout. */
  elapsedMs?: number | undefined;
  /** The credential needs a touch (or may: HOTP). */
  mayNeedTouch?: boolean | undefined;
}

/** Yubico's iOS SDK treats 6982 after ≥ 10 s as a touch timeout (docs/protocols.md §1.12). */
export const TOUCH_TIMEOUT_THRESHOLD_MS = 10_000;

export function statusError(sw: number, operation: OathOperation, context: StatusContext = {}): OathStatusError {
  const doing = OPERATION_WORDS[operation];
  const name = context.credentialId === undefined ? 'that account' : `"${context.credentialId}"`;
  const make = (code: ErrorCode, message: string, hint?: string, detail?: ErrorDetail): OathStatusError =>
    new OathStatusError(code, sw, operation, message, hint, detail);
  const notFound: ErrorDetail = { kind: 'not-found', id: context.credentialId };

  switch (sw) {
    case Sw.SECURITY_STATUS: {
      const touchTimedOut =
        (context.elapsedMs ?? 0) >= TOUCH_TIMEOUT_THRESHOLD_MS ||
        (context.unlocked === true && (operation === 'calculate' || operation === 'delete' || operation === 'reset' || operation === 'put'));
      if (touchTimedOut || (context.mayNeedTouch === true && context.unlocked !== false)) {
        return make('TOUCH_TIMEOUT', `The key was not touched in time while ${doing}.`, 'Touch the key when it flashes, then try again.');
      }
      return make('AUTH_REQUIRED', `The key's OATH application is password-protected and locked (${formatSw(sw)} while ${doing}).`, undefined, { kind: 'locked' });
    }
    case Sw.NO_SUCH_OBJECT:
      if (operation === 'set-code') return make('PROTOCOL', 'The key rejected the new password (its check value did not match).');
      if (operation === 'validate') return make('WRONG_PASSWORD', 'The key has no password set, so there is nothing to unlock.');
      return make('NOT_FOUND', `The key has no account ${name}.`, undefined, notFound);
    case Sw.NOT_FOUND:
      if (operation === 'select') {
        return make('NO_KEY', 'This key has no OATH application.', 'keytap works with keys that store TOTP/HOTP accounts (Nitrokey 3, YubiKey 5, …).');
      }
      return make('NOT_FOUND', `The key has no account ${name} (or it is PIN-protected and locked).`, undefined, notFound);
    case Sw.WRONG_DATA:
      if (operation === 'validate') return make('WRONG_PASSWORD', 'The password is wrong.', undefined, { kind: 'wrong-password' });
      return make('PROTOCOL', `The key rejected the command as malformed (${formatSw(sw)} while ${doing}).`);
    case Sw.NO_SPACE:
      return make('KEY_FULL', 'The key is full: it has no room for another account.', 'Delete an account you no longer need, then try again.');
    case Sw.UNKNOWN:
      if (operation === 'put') {
        return make('KEY_FULL', 'The key refused to store the account (6F00); it is probably full.', 'Delete an account you no longer need, then try again.');
      }
      return make('DEVICE_ERROR', `The key reported an unspecified error (6F00) while ${doing}.`);
    case Sw.OPERATION_BLOCKED:
      return make('EXISTS', `The key already has an account ${name}.`, undefined, { kind: 'exists', id: context.credentialId ?? '' });
    case Sw.FUNCTION_NOT_SUPPORTED:
      return make('UNSUPPORTED', `This key does not support the hash algorithm of ${name}.`, 'Use SHA1 or SHA256 on this key.');
    case Sw.INS_NOT_SUPPORTED:
    case Sw.CLA_NOT_SUPPORTED:
    case Sw.WRONG_P1P2:
      if (operation === 'select') return make('NO_KEY', 'This key has no OATH application.');
      return make('UNSUPPORTED', `This key does not support ${doing} (${formatSw(sw)}).`);
    case Sw.CHAINING_NOT_SUPPORTED:
    case Sw.WRONG_LENGTH:
      return make('PROTOCOL', `The key rejected the length of the command (${formatSw(sw)} while ${doing}).`);
    case Sw.CONDITIONS_OF_USE:
      return make('DEVICE_ERROR', `The key refused ${doing}: conditions of use not satisfied (6985).`);
    case Sw.VERIFICATION_FAILED:
      return make('DEVICE_ERROR', `The key reported a failed verification (6300) while ${doing}.`);
    case Sw.MEMORY_FAILURE:
    case Sw.EXEC_ERROR_NONPERSISTENT:
    case Sw.EXEC_ERROR_PERSISTENT:
      return make('DEVICE_ERROR', `The key reported an internal error (${formatSw(sw)}) while ${doing}.`, 'Unplug the key, plug it in again and retry.');
    default:
      return make('DEVICE_ERROR', `The key answered with status ${formatSw(sw)} while ${doing}.`);
  }
}
