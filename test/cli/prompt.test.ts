import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { openPrompter, yesNo } from '../../src/cli/prompt.js';
import { rejection } from '../support/rejection.js';

function terminal(): { input: PassThrough; output: PassThrough; errors: string[]; prompts: () => string } {
  const input = new PassThrough();
  const output = new PassThrough();
  let written = '';
  output.on('data', (chunk: Buffer) => (written += chunk.toString('utf8')));
  return { input, output, errors: [], prompts: () => written };
}

const digits = (text: string): number | undefined => (/^\d+$/u.test(text) ? Number(text) : undefined);

describe('the prompt engine', () => {
  it('takes answers pasted before the questions, in order; Enter takes the default', async () => {
    const t = terminal();
    const prompter = openPrompter({ input: t.input, output: t.output, err: (line) => t.errors.push(line) });
    t.input.write('8\n\n  alice  \n');
    await new Promise((resolve) => setImmediate(resolve));
    try {
      expect(await prompter.question('Digits (6/8)', '6', digits)).toBe(8);
      expect(await prompter.question('Issuer', '', (x) => x)).toBeUndefined();
      expect(await prompter.question('Account', 'the UPN', (x) => x)).toBe('alice');
    } finally {
      prompter.close();
    }
    expect(t.prompts()).toContain('Digits (6/8) [6]: ');
    expect(t.prompts()).toContain('Issuer: ');
    expect(t.prompts()).toContain('Account [the UPN]: ');
    expect(t.errors).toEqual([]);
  });

  it('asks again after an answer that does not parse, saying why', async () => {
    const t = terminal();
    const prompter = openPrompter({ input: t.input, output: t.output, err: (line) => t.errors.push(line) });
    const answer = prompter.question('Counter', '0', (text) => {
      if (text === 'boom') throw new Error('must be a number.');
      return digits(text);
    });
    t.input.write('boom\n');
    t.input.write('abc\n');
    t.input.write('42\n');
    expect(await answer).toBe(42);
    prompter.close();
    expect(t.errors).toEqual(['  must be a number.', '  Not a valid answer; try again.']);
  });

  it('input that ends before the last question cancels', async () => {
    const t = terminal();
    const prompter = openPrompter({ input: t.input, output: t.output, err: (line) => t.errors.push(line) });
    const first = prompter.question('Type', 'totp', (x) => x);
    t.input.end('hotp\n');
    expect(await first).toBe('hotp');
    const error = await rejection(prompter.question('Hash', 'SHA1', (x) => x));
    expect(error.code).toBe('CANCELLED');
    expect(error.message).toBe('Cancelled: the input ended before every question was answered.');
    // A question already waiting when the input ends is cancelled too.
    const t2 = terminal();
    const second = openPrompter({ input: t2.input, output: t2.output, err: () => undefined });
    const pending = second.question('Type', 'totp', (x) => x);
    t2.input.end();
    expect((await rejection(pending)).code).toBe('CANCELLED');
  });

  it('yesNo reads y/yes/n/no in any case and nothing else', () => {
    expect(['y', 'YES', 'Yes'].map(yesNo)).toEqual([true, true, true]);
    expect(['n', 'No', 'NO'].map(yesNo)).toEqual([false, false, false]);
    expect(['', 'yep', 'nope', '1'].map(yesNo)).toEqual([undefined, undefined, undefined, undefined]);
  });
});
