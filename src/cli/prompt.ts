/**
 * Questions on the terminal, one per line: the prompt on stderr with the default in brackets,
 * Enter takes the default, an answer that does not parse is asked again with the reason. Lines
 * are queued as they come: readline's question() would drop lines that arrive before it is called
 * (pasted or piped answers), so each question takes the next queued line instead.
 */
import { createInterface } from 'node:readline/promises';
import { KeytapError } from '../errors.js';

export interface Prompter {
  /**
   * Asks `label` and parses the answer; `shown` is the default shown in brackets ('' for none).
   * An empty answer gives undefined (take the default); `parse` returning undefined or throwing
   * asks again.
   */
  question<T>(label: string, shown: string, parse: (text: string) => T | undefined): Promise<T | undefined>;
  close(): void;
}

export interface PrompterStreams {
  input: NodeJS.ReadableStream;
  /** Where the prompts go (stderr: stdout carries the command's result). */
  output: NodeJS.WritableStream;
  /** Says why an answer was not taken. */
  err: (line: string) => void;
}

export function openPrompter(streams: PrompterStreams): Prompter {
  const rl = createInterface({ input: streams.input, output: streams.output });
  const lines: string[] = [];
  let waiting: ((line: string | undefined) => void) | undefined;
  let closed = false;
  rl.on('line', (line) => {
    if (waiting) {
      const resolve = waiting;
      waiting = undefined;
      resolve(line);
    } else lines.push(line);
  });
  rl.on('close', () => {
    closed = true;
    waiting?.(undefined);
  });
  const ended = (): KeytapError => new KeytapError('CANCELLED', 'Cancelled: the input ended before every question was answered.');
  const nextLine = (prompt: string): Promise<string> => {
    rl.setPrompt(prompt);
    rl.prompt();
    const queued = lines.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (closed) return Promise.reject(ended());
    return new Promise((resolve, reject) => {
      waiting = (line) => (line === undefined ? reject(ended()) : resolve(line));
    });
  };
  return {
    async question<T>(label: string, shown: string, parse: (text: string) => T | undefined): Promise<T | undefined> {
      for (;;) {
        const text = (await nextLine(`${label}${shown === '' ? '' : ` [${shown}]`}: `)).trim();
        if (text === '') return undefined;
        try {
          const value = parse(text);
          if (value !== undefined) return value;
        } catch (error) {
          streams.err(`  ${error instanceof Error ? error.message : String(error)}`);
          continue;
        }
        streams.err('  Not a valid answer; try again.');
      }
    },
    close: () => rl.close(),
  };
}

/** y/yes and n/no, in any case; anything else is no answer. */
export function yesNo(text: string): boolean | undefined {
  if (/^(y|yes)$/iu.test(text)) return true;
  if (/^(n|no)$/iu.test(text)) return false;
  return undefined;
}

/**
 * A numbered list to pick one from: `1`…`n`; Enter is no answer (there is no default), so it is
 * asked again like any answer that does not parse.
 */
export async function choice<T>(prompter: Prompter, label: string, items: readonly T[], describe: (item: T) => string, err: (line: string) => void): Promise<T> {
  for (const [index, item] of items.entries()) err(`  ${index + 1}) ${describe(item)}`);
  for (;;) {
    const picked = await prompter.question(`${label} (1-${items.length})`, '', (text) => {
      const n = Number(text);
      if (!/^\d+$/u.test(text) || n < 1 || n > items.length) throw new Error(`Answer a number from 1 to ${items.length}.`);
      return items[n - 1]!;
    });
    if (picked !== undefined) return picked;
    err(`  Answer a number from 1 to ${items.length}.`);
  }
}
