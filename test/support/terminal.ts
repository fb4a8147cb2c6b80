// Runs a command on a pseudo-terminal (util-linux `script`), as a user at a terminal would, and
// tells its own exit code.
//
// `script` runs the command through `sh -c`, and the shell shares the command's process group, so
// a Ctrl+C typed on the terminal (SIGINT from the line discipline) reaches the shell too. Without a
// trap the shell may end on it before it prints the command's exit code, and `script` then reports
// 130 for a command that ended well: the shell traps INT, and the code is the one it prints.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

export const HAVE_SCRIPT = existsSync('/usr/bin/script');

const END_MARK = '__terminal-ended=';

export interface TerminalRun {
  /** Everything the terminal showed, the end mark taken out. */
  output: string;
  /** The command's exit code (from the shell), or null if the shell never said. */
  code: number | null;
}

export interface TerminalSession {
  /** Types on the terminal ('\r' is Enter, '\x03' Ctrl+C). */
  type(text: string): void;
  /** What the terminal has shown so far. */
  readonly output: string;
  readonly ended: Promise<TerminalRun>;
}

export interface TerminalOptions {
  env?: NodeJS.ProcessEnv;
  /** Called after each piece of output with everything shown so far. */
  onOutput?: (output: string, session: TerminalSession) => void;
}

/**
 * What a terminal showed, without the control sequences that move the cursor (readline, the
 * picker) or switch character sets and keypad modes (pinentry-curses).
 */
export function stripAnsi(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\x1b[=>]/gu, '');
}

/** A word for `sh -c`: single-quoted unless it is plainly safe. */
export function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/u.test(word) ? word : `'${word.replace(/'/gu, `'\\''`)}'`;
}

export function startOnTerminal(command: string, args: readonly string[], options: TerminalOptions = {}): TerminalSession {
  const line = `trap : INT; ${[command, ...args].map(shellWord).join(' ')}; echo ${END_MARK}$?`;
  // `script` lives as long as its input: the input is closed only once the shell has said the code.
  const child = spawn('script', ['-qfec', line, '/dev/null'], { env: { ...process.env, ...options.env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let text = '';
  const session: TerminalSession = {
    type: (input) => {
      if (child.stdin.writable) child.stdin.write(input);
    },
    get output() {
      return text;
    },
    ended: new Promise<TerminalRun>((resolve, reject) => {
      child.on('error', reject);
      child.on('exit', () => {
        const match = new RegExp(`${END_MARK}(\\d+)`, 'u').exec(text);
        resolve({ output: match ? text.slice(0, match.index) : text, code: match ? Number(match[1]) : null });
      });
    }),
  };
  child.stdout.on('data', (d: Buffer) => {
    text += d.toString();
    if (new RegExp(`${END_MARK}\\d+`, 'u').test(text)) child.stdin.end();
    else options.onOutput?.(text, session);
  });
  return session;
}
