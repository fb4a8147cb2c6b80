/**
 * The one error type keytap throws on purpose. `code` says what kind of failure it is (the CLI maps
 * it to an exit code, the tray to a toast), `message` says what went wrong in neutral words, and
 * `detail` says it in structure, so that the edges can say what to do about it in their own terms:
 * src/cli/explain.ts names the running command's own options, src/app/explain.ts says what to do in
 * the tray. Lower layers (device, seeds, provision, otp) never name a CLI option or command; `hint`
 * is for advice that holds everywhere ("Save the file as UTF-8") and for the edges themselves.
 * None of message, hint or detail may ever contain a secret, a password or a code.
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
  /** An input file is missing or cannot be read (the path, and the system's reason in words). */
  | 'INPUT_FILE'
  /** The code was read but not put where it was to go (the clipboard); the message says why. */
  | 'NOT_DELIVERED'
  /** The key reported an error that has no more specific code. */
  | 'DEVICE_ERROR';

/**
 * What went wrong, in structure. Every field is safe to show: names, ids, paths, serials, status
 * words; never a secret, a password, a passphrase or a code.
 */
export type ErrorDetail =
  /** The OATH application is password-protected and not unlocked (the key's name when known). */
  | { kind: 'locked'; keyName?: string | undefined }
  /** The password (or a remembered access key) does not unlock the OATH application. */
  | { kind: 'wrong-password' }
  /** Nitrokey 3: the PIN is wrong; this many attempts are left before it blocks. */
  | { kind: 'wrong-pin'; attemptsLeft: number }
  /** Nitrokey 3: the PIN has no attempts left. */
  | { kind: 'pin-blocked' }
  /** Nitrokey 3: the account is PIN-protected and no PIN was given. */
  | { kind: 'pin-required' }
  /** Nitrokey 3: a PIN was asked for, and the key has none. */
  | { kind: 'no-pin' }
  /** The OS keyring cannot be reached (no Secret Service on the session bus, no keyring daemon, a locked keychain). */
  | { kind: 'no-keyring'; reason: string }
  /** A secret is not remembered for a key that tells neither a serial nor an OATH device id: another key could get it. */
  | { kind: 'cannot-remember' }
  /** Nothing on this computer can ask for a secret (no pinentry, no fallback, no terminal). */
  | { kind: 'no-secret-prompt'; platform: string; tried: readonly string[] }
  /** The program asking for a secret failed or broke its protocol (its name; the reason). */
  | { kind: 'secret-prompt-failed'; program: string; reason: string }
  /** The key answered a status word that has no more specific kind (the raw SW, and what keytap was doing). */
  | { kind: 'status'; sw: number; doing: string }
  /** No key is connected. */
  | { kind: 'no-key' }
  /** The key holds no accounts at all. */
  | { kind: 'no-accounts' }
  /** The key already has an account with this id. */
  | { kind: 'exists'; id: string }
  /** The key has no account with this id (undefined: the one asked for). */
  | { kind: 'not-found'; id?: string | undefined }
  /** A file given as a seed file is something else: a keytap ledger (in `dir`). */
  | { kind: 'not-a-seed-file'; found: 'ledger'; dir: string }
  /** The format of a seed file cannot be told from its content. */
  | { kind: 'seed-format-unknown'; formats: readonly string[] }
  /** An encrypted PSKC file needs its passphrase or pre-shared key to be read. */
  | { kind: 'pskc-secret-needed'; need: 'passphrase' | 'key'; keyName?: string | undefined }
  /** A PSKC file asks for more PBKDF2 iterations than keytap derives without consent. */
  | { kind: 'slow-kdf'; iterations: number; cap: number }
  /** The PSKC passphrase or pre-shared key given does not open the file. */
  | { kind: 'pskc-secret-wrong'; need: 'passphrase' | 'key'; maybeAltered: boolean }
  /** A seed file (or a value in it) is malformed; the message says where and what. */
  | { kind: 'invalid-seed-file'; line?: number | undefined; field?: string | undefined }
  /** There is no ledger in this folder. */
  | { kind: 'ledger-missing'; dir: string }
  /** The ledger is encrypted and no passphrase was given. */
  | { kind: 'ledger-encrypted'; path: string }
  /** Another programmer holds the ledger's lock. */
  | { kind: 'ledger-busy'; pid: number; dir: string }
  /** Writing the seed files failed after the keys were programmed; the ledger still has every seed. */
  | { kind: 'seed-files-not-written'; ledgerDir: string }
  /** A file keytap would write is there and holds something else. */
  | { kind: 'file-exists'; path: string }
  /** A given secret is shorter than RFC 4226 asks for. */
  | { kind: 'short-secret'; bytes: number; minimum: number }
  /** A serial is already in the ledger. */
  | { kind: 'serial-taken'; serial: string }
  /** No free serial with this prefix. */
  | { kind: 'serials-exhausted'; prefix: string }
  /** A seed format cannot carry a token (the reason names the parameter, never the secret). */
  | { kind: 'format-cannot-carry'; format: string; reason: string; needsUser?: boolean | undefined }
  /** A PC/SC reader that was listed is not connected any more. */
  | { kind: 'reader-missing'; reader: string }
  /** Different accounts on different keys match the query: the keys, each with what chooses it (a serial, else the id). */
  | { kind: 'ambiguous-keys'; keys: readonly { name: string; device: string }[] }
  /** There is no virtual key in this file (and the command was not asked to create one). */
  | { kind: 'no-virtual-key'; file: string }
  /** No virtual key answers on this socket. */
  | { kind: 'virtual-key-not-running'; socket: string }
  /** A served or in-process virtual key went away in the middle of an operation. */
  | { kind: 'virtual-key-gone' }
  /** A virtual key is already served from this file by another process. */
  | { kind: 'virtual-key-running' }
  /** A vpcd address is not HOST:PORT. */
  | { kind: 'bad-vpcd-address' }
  /** A Feitian/HyperFIDO HOTP key holds a token already (its serial): it takes a new one only once erased. */
  | { kind: 'hotp-key-programmed'; serial: string }
  /** A Feitian/HyperFIDO HOTP key cannot take the token: which parameter (HOTP, SHA-1, 6 or 8 digits, a 20-byte seed, an 8-character serial). */
  | { kind: 'hotp-key-cannot-take'; parameter: HotpKeyParameter }
  /** The key is a Feitian/HyperFIDO HOTP key: it has no OATH accounts to list, read or change. */
  | { kind: 'hotp-only-key'; keyName: string }
  /**
   * Windows opens FIDO HID interfaces only for processes run as Administrator, and the key could be
   * reached no other way now (`smartCard`: it can be reached over CCID too, had PC/SC found it).
   */
  | { kind: 'hid-needs-elevation'; keyName: string; smartCard: boolean }
  /**
   * Microsoft Graph refused a request (the HTTP status, Graph's error code, the token's serial and
   * user when it was about one, the permission it needs when that was the cause, the request id).
   */
  | {
      kind: 'graph';
      problem: GraphProblem;
      status: number;
      graphCode?: string | undefined;
      serial?: string | undefined;
      upn?: string | undefined;
      permission?: string | undefined;
      requestId?: string | undefined;
    };

/** What a Feitian HOTP key needs of a token: HOTP, SHA-1, 6 or 8 digits, a 20-byte seed, an 8-character serial, counter 0. */
export type HotpKeyParameter = 'type' | 'algorithm' | 'digits' | 'secret' | 'serial' | 'counter' | 'period';

/** What a Graph refusal was about, as far as keytap can tell. */
export type GraphProblem =
  | 'permission'
  | 'policy-disabled'
  | 'user-not-found'
  | 'invalid-code'
  | 'duplicate-serial'
  | 'assigned-elsewhere'
  | 'unsupported-token'
  | 'sign-in'
  | 'throttled'
  | 'unreachable'
  | 'other';

export type ErrorDetailKind = ErrorDetail['kind'];

/** Every kind once, for code that must handle them all (the renderers' tests, IPC's check of an answer). */
export const ERROR_DETAIL_KINDS = [
  'locked',
  'wrong-password',
  'wrong-pin',
  'pin-blocked',
  'pin-required',
  'no-pin',
  'no-keyring',
  'cannot-remember',
  'no-secret-prompt',
  'secret-prompt-failed',
  'status',
  'no-key',
  'no-accounts',
  'exists',
  'not-found',
  'not-a-seed-file',
  'seed-format-unknown',
  'pskc-secret-needed',
  'pskc-secret-wrong',
  'slow-kdf',
  'invalid-seed-file',
  'ledger-missing',
  'ledger-encrypted',
  'ledger-busy',
  'seed-files-not-written',
  'file-exists',
  'short-secret',
  'serial-taken',
  'serials-exhausted',
  'format-cannot-carry',
  'reader-missing',
  'ambiguous-keys',
  'no-virtual-key',
  'virtual-key-not-running',
  'virtual-key-gone',
  'virtual-key-running',
  'bad-vpcd-address',
  'hotp-key-programmed',
  'hotp-key-cannot-take',
  'hotp-only-key',
  'hid-needs-elevation',
  'graph',
] as const satisfies readonly ErrorDetailKind[];

// A kind added to ErrorDetail but not to the list above fails to compile here.
const everyKindListed: Exclude<ErrorDetailKind, (typeof ERROR_DETAIL_KINDS)[number]> extends never ? true : never = true;
void everyKindListed;

export function isErrorDetailKind(value: unknown): value is ErrorDetailKind {
  return (ERROR_DETAIL_KINDS as readonly unknown[]).includes(value);
}

export interface KeytapErrorOptions {
  /** Advice that holds wherever the error is shown; never names a CLI option or command below the edges. */
  hint?: string | undefined;
  /** What went wrong, in structure, for the edges to put in their own words. */
  detail?: ErrorDetail | undefined;
  cause?: unknown;
}

export class KeytapError extends Error {
  override readonly name: string = 'KeytapError';
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly detail: ErrorDetail | undefined;

  constructor(code: ErrorCode, message: string, options: KeytapErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.hint = options.hint;
    this.detail = options.detail;
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

/** A locked OATH application, the same words wherever it is found; the edges add what to do. */
export function lockedError(keyName: string): KeytapError {
  return new KeytapError('AUTH_REQUIRED', `The OATH application on ${keyName} is password-protected.`, { detail: { kind: 'locked', keyName } });
}
