/**
 * `keytap pick`'s own finder, for a terminal with no desktop finder: type to filter (the rule is
 * util/fuzzy-match.ts), ↑/↓ (or Ctrl+P/Ctrl+N) to move, Enter to choose, Esc or Ctrl+C to cancel.
 * It draws on stderr (stdout is for the code) below the cursor, and leaves the terminal as it
 * found it: raw mode off, the drawing erased, input paused. Small enough to own; @inquirer's
 * search prompt would need Node 22.
 */
import { emitKeypressEvents } from 'node:readline';
import type { Key } from 'node:readline';
import { KeytapError } from '../errors.js';
import { fuzzyFilter } from '../util/fuzzy-match.js';

export interface TerminalPickerIo {
  input: NodeJS.ReadStream;
  output: NodeJS.WriteStream;
}

/** How many matches are shown at most (fewer on a short terminal). */
const MAX_SHOWN = 12;

/** Resolves with the index of the chosen line; rejects with CANCELLED on Esc / Ctrl+C / end of input. */
export function pickOnTerminal(lines: readonly string[], prompt: string, io: TerminalPickerIo = { input: process.stdin, output: process.stderr }): Promise<number> {
  const { input, output } = io;
  return new Promise((resolve, reject) => {
    let query = '';
    let selected = 0;
    let matches = fuzzyFilter(query, lines);
    const shown = (): number => Math.max(1, Math.min(MAX_SHOWN, (output.rows || 24) - 2));
    const width = (): number => Math.max(20, (output.columns || 80) - 1);
    const clip = (text: string): string => (text.length > width() ? `${text.slice(0, width() - 1)}…` : text);

    // The selection stays on a row that is drawn: a terminal made shorter (SIGWINCH) or a list
    // filtered shorter must not leave it on a row out of sight, which Enter would still choose.
    const clampSelected = (): void => {
      selected = Math.max(0, Math.min(selected, Math.min(matches.length, shown()) - 1));
    };

    const draw = (): void => {
      clampSelected();
      const visible = matches.slice(0, shown());
      const rows = visible.map((m, i) => clip(`${i === selected ? '> ' : '  '}${lines[m.index]!}`));
      if (matches.length > visible.length) rows.push(`  … ${matches.length - visible.length} more`);
      if (matches.length === 0) rows.push('  (no account matches)');
      const head = `${prompt}${query}`;
      // Erase what was drawn from the prompt line down, draw, and put the cursor back after the query.
      let text = `\r\x1b[J${clip(head)}\n${rows.join('\n')}`;
      text += `\x1b[${rows.length}A\r`;
      const column = Math.min(head.length, width());
      if (column > 0) text += `\x1b[${column}C`;
      output.write(text);
    };

    const finish = (result: { index: number } | { error: KeytapError }): void => {
      input.off('keypress', onKey);
      input.off('end', onEnd);
      output.off('resize', draw);
      output.write('\r\x1b[J');
      if (input.isTTY) input.setRawMode(false);
      input.pause();
      if ('index' in result) resolve(result.index);
      else reject(result.error);
    };
    const cancel = (): void => finish({ error: new KeytapError('CANCELLED', 'Cancelled.') });
    const onEnd = (): void => cancel();

    const onKey = (text: string | undefined, key: Key | undefined): void => {
      const name = key?.name;
      if ((key?.ctrl && (name === 'c' || name === 'd')) || name === 'escape') return cancel();
      if (name === 'return' || name === 'enter') {
        const chosen = matches[selected];
        if (chosen) finish({ index: chosen.index });
        return;
      }
      if (name === 'up' || (key?.ctrl && name === 'p')) {
        selected = Math.max(0, selected - 1);
      } else if (name === 'down' || (key?.ctrl && name === 'n')) {
        selected += 1; // draw() keeps it on the last row shown
      } else {
        if (name === 'backspace') query = query.slice(0, -1);
        else if (key?.ctrl && name === 'u') query = '';
        else if (text !== undefined && !key?.ctrl && !key?.meta && /^[^\p{Cc}]+$/u.test(text)) query += text;
        else return;
        matches = fuzzyFilter(query, lines);
        selected = 0;
      }
      draw();
    };

    emitKeypressEvents(input);
    if (input.isTTY) input.setRawMode(true);
    input.on('keypress', onKey);
    input.on('end', onEnd);
    output.on('resize', draw);
    input.resume();
    draw();
  });
}
