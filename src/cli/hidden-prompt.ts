/**
 * The CLI's own hidden question on its terminal, for where no pinentry is installed: raw mode,
 * nothing echoed, Enter ends, Backspace erases, Ctrl+C or Ctrl+D on an empty line cancels.
 */
import { KeytapError } from '../errors.js';
import type { SecretPrompt, SecretRequest } from '../desktop/secret-prompt/index.js';

export function terminalPrompt(input: NodeJS.ReadStream = process.stdin, output: NodeJS.WritableStream = process.stderr): SecretPrompt {
  return {
    name: 'terminal',
    ask: (request: SecretRequest, signal?: AbortSignal) =>
      new Promise<string>((resolve, reject) => {
        // Echo goes off before the question shows: what is typed as soon as it appears is not echoed.
        const wasRaw = input.isRaw;
        input.setRawMode?.(true);
        if (request.error !== undefined) output.write(`${request.error}\n`);
        output.write(`${request.description}\n${request.prompt} `);
        let typed = '';
        input.resume();
        const done = (error?: KeytapError): void => {
          input.off('data', onData);
          signal?.removeEventListener('abort', onAbort);
          input.setRawMode?.(wasRaw);
          input.pause();
          output.write('\n');
          if (error) reject(error);
          else resolve(typed);
        };
        const cancelled = (): KeytapError => new KeytapError('CANCELLED', 'The question was cancelled.');
        const onAbort = (): void => done(cancelled());
        const onData = (chunk: Buffer): void => {
          const text = chunk.toString('utf8');
          // The bytes typed are a piece of the secret: not left in the stream's buffer.
          chunk.fill(0);
          for (const char of text) {
            if (char === '\r' || char === '\n') return done();
            if (char === '\u0003' || (char === '\u0004' && typed === '')) return done(cancelled());
            if (char === '\u007f' || char === '\b') typed = [...typed].slice(0, -1).join('');
            else if (char >= ' ') typed += char;
          }
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        input.on('data', onData);
      }),
  };
}
