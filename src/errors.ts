/**
 * The one error type keytap throws on purpose. `code` says what kind of failure it is (the CLI maps
 * it to an exit code, the tray to a toast), `message` says what went wrong in words a user can act
 * on, and `hint` says what to do about it. Neither may ever contain a secret, a password or a code.
 */
export type ErrorCode =
  /** The command line or an argument is malformed. */
  | 'USAGE'
  /** No key is connected, or the chosen one is not there. */
  | 'NO_KEY'
  /** No credential matches the query. */
  | 'NO_MATCH'
  /** Several credentials match the query. */
  | 'AMBIGUOUS'
  /** The key asked for a touch and none came in time. */
  | 'TOUCH_TIMEOUT'
  /** The key went away in the middle of an operation. */
  | 'KEY_REMOVED'
  /** The OS refused access to the device. */
  | 'PERMISSION_DENIED'
  /** The key did not answer in time. */
  | 'TIMEOUT'
  /** The key or the transport answered something that breaks the protocol. */
  | 'PROTOCOL'
  /** The key is busy with another program. */
  | 'BUSY'
  /** The operation was cancelled by the caller. */
  | 'CANCELLED'
  /** The applet is password-protected and locked. */
  | 'AUTH_REQUIRED'
  /** The password given is wrong. */
  | 'WRONG_PASSWORD'
  /** The key has no room for another credential. */
  | 'KEY_FULL'
  /** A credential with that name already exists. */
  | 'EXISTS'
  /** The key has no credential with that name. */
  | 'NOT_FOUND'
  /** The key (or this dialect) cannot do what was asked. */
  | 'UNSUPPORTED'
  /** Input data (a file, a URI, a secret) is malformed. */
  | 'BAD_INPUT'
  /** The key reported an error that has no more specific code. */
  | 'DEVICE_ERROR';

export interface KeytapErrorOptions {
  /** What the user can do about it. */
  hint?: string;
  cause?: unknown;
}

export class KeytapError extends Error {
  override readonly name: string = 'KeytapError';
  readonly code: ErrorCode;
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, options: KeytapErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.hint = options.hint;
  }
}

export function isKeytapError(error: unknown, code?: ErrorCode): error is KeytapError {
  return error instanceof KeytapError && (code === undefined || error.code === code);
}

/** The error to throw when an AbortSignal fires. */
export function cancelledError(signal?: AbortSignal): KeytapError {
  const reason: unknown = signal?.reason;
  if (reason instanceof KeytapError) return reason;
  return new KeytapError('CANCELLED', 'The operation was cancelled.', { cause: reason });
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw cancelledError(signal);
}
