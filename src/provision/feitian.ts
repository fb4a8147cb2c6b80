/**
 * Programming a Feitian/HyperFIDO HOTP key (docs/protocols.md §4): the same steps and ledger
 * records as for an OATH key (programmer.ts), for a key that holds one token and cannot be asked
 * for a code. Refuse what the key cannot take before anything is written; record the seed in the
 * ledger; program (the key waits for a touch); verify with a code the key types when touched —
 * read by the caller (`readTypedCode`: the CLI reads a line on the terminal) and compared with
 * HOTP(seed, counter); record the outcome. A code that does not match erases the key again.
 */
import type { OpenFeitianKey } from '../device/open.js';
import { FEITIAN_DIGITS, FEITIAN_FIRST_COUNTER, FEITIAN_SEED_BYTES, FEITIAN_SERIAL_LENGTH, isFeitianSerial } from '../device/feitian/protocol.js';
import type { HotpKeyParameter } from '../errors.js';
import { KeytapError } from '../errors.js';
import { hotp } from '../otp/hotp.js';
import type { KeyIdentity } from './ledger.js';
import type { ProgramKeyOptions, ProgramOutcome } from './programmer.js';
import { asKeytapError } from './programmer.js';
import type { ProvisionToken } from './token.js';

/**
 * How many codes past the expected one a typed code may be: a touch before the prompt (or a
 * first code typed into another window) has used one up. The ledger then records the counter
 * the key really used.
 */
export const TYPED_CODE_LOOKAHEAD = 4;

/** What the caller is told when the key should type its code. */
export interface TypedCodeRequest {
  keyName: string;
  serial: string;
  digits: number;
  signal?: AbortSignal | undefined;
}

export interface ProgramFeitianOptions extends ProgramKeyOptions {
  /** Gets the code the key typed after the user touched it (the CLI: a line read on the terminal). */
  readTypedCode: (request: TypedCodeRequest) => Promise<string>;
}

/** The token as a Feitian key takes it, or the refusal naming the parameter that does not fit. */
export function feitianRefusal(token: ProvisionToken, keyName: string): KeytapError | null {
  const refuse = (parameter: HotpKeyParameter, why: string): KeytapError =>
    new KeytapError('UNSUPPORTED', `${keyName} cannot take token ${token.serial}: ${why}.`, { detail: { kind: 'hotp-key-cannot-take', parameter } });
  if (token.type !== 'HOTP') return refuse('type', 'it makes HOTP codes only (it has no clock for TOTP)');
  if (token.algorithm !== 'SHA1') return refuse('algorithm', `it computes SHA-1 codes only, not ${token.algorithm}`);
  if (!FEITIAN_DIGITS.includes(token.digits)) return refuse('digits', `it makes codes of 6 or 8 digits, not ${token.digits}`);
  if (token.secret.length !== FEITIAN_SEED_BYTES) return refuse('secret', `it takes a seed of exactly ${FEITIAN_SEED_BYTES} bytes, not ${token.secret.length}`);
  if (!isFeitianSerial(token.serial)) return refuse('serial', `it takes a serial of exactly ${FEITIAN_SERIAL_LENGTH} letters, digits or signs (printable ASCII)`);
  if (token.counter !== FEITIAN_FIRST_COUNTER) return refuse('counter', `it is sent no counter and starts at ${FEITIAN_FIRST_COUNTER}, not ${token.counter}`);
  return null;
}

/** A Feitian key that holds a token takes no other until erased. */
export function feitianProgrammedError(keyName: string, serial: string): KeytapError {
  return new KeytapError('EXISTS', `${keyName} holds an HOTP token already (serial ${serial}); it takes a new one only once erased.`, {
    detail: { kind: 'hotp-key-programmed', serial },
  });
}

/** What given on the command line a Feitian key cannot take, refused before any question: the time step of a TOTP token. */
export function feitianPeriodRefusal(keyName: string): KeytapError {
  return new KeytapError('UNSUPPORTED', `${keyName} cannot take a time step: it makes HOTP codes only (it has no clock for TOTP).`, {
    detail: { kind: 'hotp-key-cannot-take', parameter: 'period' },
  });
}

export function feitianKeyIdentity(key: OpenFeitianKey, serial: string): KeyIdentity {
  return { id: key.id, name: key.name, serial, dialect: 'feitian' };
}

export async function programFeitianKey(key: OpenFeitianKey, token: ProvisionToken, options: ProgramFeitianOptions): Promise<ProgramOutcome> {
  const keyNumber = options.keyNumber ?? 1;
  const session = key.session;
  const refusal = feitianRefusal(token, key.name);
  if (refusal) return { status: 'refused', error: refusal };
  const state = await session.check(options.signal);
  if (state.programmed) return { status: 'refused', error: feitianProgrammedError(key.name, state.serial) };
  // The key holds one token, known by its serial: that is its name in the ledger.
  const credentialId = token.serial;
  const entry = await options.ledger.appendPending(token, feitianKeyIdentity(key, token.serial), credentialId);
  options.afterStep?.('after-ledger-append', keyNumber);

  // The session calls onTouchNeeded just before it sends PROGRAM (09): until then the seed has not left.
  let programSent = false;
  try {
    await session.program(
      { digits: token.digits, seed: token.secret, serial: token.serial },
      {
        signal: options.signal,
        onTouchNeeded: () => {
          programSent = true;
          options.onTouchNeeded?.('put');
        },
      },
    );
  } catch (error) {
    const keytapError = asKeytapError(error, 'Programming the key failed');
    // Only a 69xx answer to PROGRAM, or a failure before it was sent, says nothing of ours is on the
    // key; after anything else (a garbled answer, a failed CHECK after it, a lost key) it may be.
    const storedNothing = !programSent || isProgramRefusal(keytapError);
    const leftOnKey = storedNothing ? false : !(await eraseIfOurs(key, token.serial, options));
    await options.ledger.markFailed(entry, keytapError.message, leftOnKey);
    return { status: 'failed', error: keytapError, entry, leftOnKey };
  }
  options.afterStep?.('after-put', keyNumber);

  let counterAfter: number;
  try {
    const typed = typedCodeDigits(await options.readTypedCode({ keyName: key.name, serial: token.serial, digits: token.digits, signal: options.signal }));
    const used = counterOf(typed, token);
    if (used === undefined) {
      throw new KeytapError('DEVICE_ERROR', `Verification failed: what was typed is not a code of token ${token.serial} (HOTP from counter ${token.counter} to ${token.counter + TYPED_CODE_LOOKAHEAD}).`, {
        hint: 'The key was erased again. Touch the key only when asked, with the cursor at the prompt.',
      });
    }
    counterAfter = used + 1;
  } catch (error) {
    const keytapError = asKeytapError(error, 'Verification failed');
    const leftOnKey = !(await eraseIfOurs(key, token.serial, options));
    await options.ledger.markFailed(entry, keytapError.message, leftOnKey);
    const message = keytapError.message.startsWith('Verification failed') ? keytapError.message : `Verification failed: ${keytapError.message}`;
    const hint = leftOnKey ? 'The token could not be erased from the key: it stays in the ledger as "failed, may be on the key".' : (keytapError.hint ?? 'The key was erased again.');
    return { status: 'failed', error: new KeytapError(keytapError.code, message, { hint, cause: error }), entry, leftOnKey };
  }
  options.afterStep?.('after-verify', keyNumber);

  await options.ledger.markDone(entry, counterAfter);
  options.afterStep?.('after-ledger-done', keyNumber);
  return { status: 'programmed', entry, credentialId };
}

/**
 * The digits of a line the key typed: spaces dropped, and the French AZERTY top row read as the
 * digits it stands for. The key sends keycodes, not characters; the keyboard layout the user has
 * chosen turns the keycodes of 1…0 into & é " ' ( - è _ ç à on AZERTY, and the code must still match.
 */
export function typedCodeDigits(line: string): string {
  return [...line.replace(/\s+/gu, '')].map((char) => AZERTY_TOP_ROW.get(char) ?? char).join('');
}

const AZERTY_TOP_ROW = new Map([...'&é"\'(-è_çà'].map((char, i) => [char, String((i + 1) % 10)]));

/** The counter whose code was typed, within the look-ahead; undefined when none matches. Codes are compared, never shown. */
function counterOf(typed: string, token: ProvisionToken): number | undefined {
  if (!/^\d+$/u.test(typed) || typed.length !== token.digits) return undefined;
  for (let counter = token.counter; counter <= token.counter + TYPED_CODE_LOOKAHEAD; counter++) {
    if (hotp(token.secret, counter, token.digits, 'SHA1') === typed) return counter;
  }
  return undefined;
}

/** The key's own 69xx answer to PROGRAM (session.ts `confirm`): it refused, so it stored nothing. */
function isProgramRefusal(error: KeytapError): boolean {
  return error.code === 'TOUCH_TIMEOUT' && error.detail?.kind === 'status' && error.detail.sw >> 8 === 0x69;
}

/** How long erasing our token again may take: a CHECK, then a touch within the key's own wait. */
export const ERASE_AGAIN_TIMEOUT_MS = 60_000;

/**
 * Erases the key when it holds our token (a touch); true when it is confirmed not to hold it.
 * Not options.signal but a fresh bounded one: after a Ctrl+C that signal is already aborted, and
 * the key would never be checked, leaving an unverified token on it.
 */
async function eraseIfOurs(key: OpenFeitianKey, serial: string, options: ProgramFeitianOptions): Promise<boolean> {
  const signal = AbortSignal.timeout(ERASE_AGAIN_TIMEOUT_MS);
  try {
    const state = await key.session.check(signal);
    if (!state.programmed || state.serial !== serial) return true;
    await key.session.erase({ signal, onTouchNeeded: () => options.onTouchNeeded?.('delete') });
    return true;
  } catch {
    return false;
  }
}
