/**
 * Reading the code a Feitian HOTP key types (it is a USB keyboard to the computer): the prompt
 * on stderr, the cursor after it, the user touches the key and the key types the code and Enter
 * into this terminal. Ctrl+C, the end of input or the command's AbortSignal end the wait with
 * CANCELLED; an empty line asks again. What was typed is returned to be compared, never echoed
 * into a message.
 */
import { createInterface } from 'node:readline';
import { KeytapError, cancelledError } from '../errors.js';
import type { TypedCodeRequest } from '../provision/feitian.js';
import type { CliIo } from './output.js';

export const TYPED_CODE_PROMPT = 'Touch the key now; it types its code here: ';

export function readTypedCodeOnTerminal(io: CliIo, input: NodeJS.ReadableStream = process.stdin, output: NodeJS.WritableStream = process.stderr) {
  return (request: TypedCodeRequest): Promise<string> => {
    io.err(`Verifying: ${request.keyName} types a code of ${request.digits} digits when touched.`);
    const rl = createInterface({ input, output });
    return new Promise<string>((resolve, reject) => {
      let done = false;
      const finish = (settle: () => void): void => {
        if (done) return;
        done = true;
        request.signal?.removeEventListener('abort', onAbort);
        rl.close();
        settle();
      };
      const onAbort = (): void => finish(() => reject(cancelledError(request.signal)));
      if (request.signal?.aborted) return onAbort();
      request.signal?.addEventListener('abort', onAbort, { once: true });
      rl.on('SIGINT', () => finish(() => reject(new KeytapError('CANCELLED', 'Interrupted.'))));
      rl.on('close', () => finish(() => reject(new KeytapError('CANCELLED', 'Cancelled: the input ended before the key typed its code.'))));
      rl.on('line', (line) => {
        if (line.trim() === '') {
          rl.prompt();
          return;
        }
        finish(() => resolve(line));
      });
      rl.setPrompt(TYPED_CODE_PROMPT);
      rl.prompt();
    });
  };
}
