/**
 * Reading the code a Feitian HOTP key types (it is a USB keyboard to the computer): the prompt
 * on stderr, the cursor after it, the user touches the key and the key types the code and Enter
 * into this terminal. Ctrl+C, the end of input or the command's AbortSignal end the wait with
 * CANCELLED; an empty line asks again. What was typed is returned to be compared, never echoed
 * into a message. A key never touched ends the wait after typedCodeTimeoutMs() with TIMEOUT: the
 * caller erases the key again, and a batch is not held up by a key nobody touches.
 */
import { createInterface } from 'node:readline';
import { KeytapError, cancelledError } from '../errors.js';
import type { TypedCodeRequest } from '../provision/feitian.js';
import { typedCodeDigits } from '../provision/feitian.js';
import type { CliIo } from './output.js';

/** Short enough that the prompt and an 8-digit code fit an 80-column terminal (readline redraws a wrapped line). */
export const TYPED_CODE_PROMPT = 'Touch the key; it types its code here (press Enter if it does not): ';

/** A line that is not a code of the right length is asked for again this many times (a stray key, a half-typed code). */
export const TYPED_CODE_RETRIES = 2;

/** How long the prompt waits for the key's code by default: time to find the key and touch it. */
export const TYPED_CODE_TIMEOUT_SECONDS = 60;
/** Sets another wait, in seconds (the tests use a short one). */
export const TYPED_CODE_TIMEOUT_ENV = 'KEYTAP_TYPED_CODE_TIMEOUT';

/** The wait for a typed code: the default, or KEYTAP_TYPED_CODE_TIMEOUT's seconds, checked. */
export function typedCodeTimeoutMs(env: NodeJS.ProcessEnv = process.env): number {
  const text = env[TYPED_CODE_TIMEOUT_ENV];
  if (text === undefined || text === '') return TYPED_CODE_TIMEOUT_SECONDS * 1000;
  const seconds = Number(text);
  if (!/^\d+(\.\d+)?$/u.test(text) || seconds <= 0 || seconds > 3600) {
    throw new KeytapError('USAGE', `${TYPED_CODE_TIMEOUT_ENV} must be a number of seconds from more than 0 to 3600, not "${text}".`);
  }
  return Math.round(seconds * 1000);
}

export function readTypedCodeOnTerminal(io: CliIo, input: NodeJS.ReadableStream = process.stdin, output: NodeJS.WritableStream = process.stderr) {
  // Checked when the command starts, not after the key has been programmed.
  const timeoutMs = typedCodeTimeoutMs();
  return (request: TypedCodeRequest): Promise<string> => {
    io.err(`Verifying: ${request.keyName} types a code of ${request.digits} digits when touched.`);
    const rl = createInterface({ input, output });
    return new Promise<string>((resolve, reject) => {
      let done = false;
      const timer = setTimeout(() => {
        const waited = `${timeoutMs / 1000} s`;
        finish(() =>
          reject(
            new KeytapError('TIMEOUT', `no code arrived within ${waited}.`, {
              hint: `The key was erased again. Program it again and touch the key within ${waited} of the prompt, with the cursor at the prompt: the key types into the window that has the focus.`,
            }),
          ),
        );
      }, timeoutMs);
      const finish = (settle: () => void): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        request.signal?.removeEventListener('abort', onAbort);
        rl.close();
        settle();
      };
      const onAbort = (): void => finish(() => reject(cancelledError(request.signal)));
      if (request.signal?.aborted) return onAbort();
      request.signal?.addEventListener('abort', onAbort, { once: true });
      rl.on('SIGINT', () => finish(() => reject(new KeytapError('CANCELLED', 'Interrupted.'))));
      rl.on('close', () => finish(() => reject(new KeytapError('CANCELLED', 'Cancelled: the input ended before the key typed its code.'))));
      let retriesLeft = TYPED_CODE_RETRIES;
      rl.on('line', (line) => {
        if (line.trim() === '') {
          rl.prompt();
          return;
        }
        // Not a code at all: ask again rather than erase the key; a wrong code of the right length
        // is returned, and is the caller's to judge against the look-ahead.
        const digits = typedCodeDigits(line);
        if (!/^\d+$/u.test(digits) || digits.length !== request.digits) {
          if (retriesLeft > 0) {
            retriesLeft--;
            io.err(`That is not a code of ${request.digits} digits; touch the key again, with the cursor at the prompt.`);
            rl.prompt();
            return;
          }
        }
        finish(() => resolve(line));
      });
      rl.setPrompt(TYPED_CODE_PROMPT);
      rl.prompt();
    });
  };
}
