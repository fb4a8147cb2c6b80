/**
 * The focused Wayland client that records what it receives: `wev` (it maps a window, which sway
 * focuses, and prints every Wayland event it gets). Its key events are read back from its output:
 * each pressed key with the text it gives (`utf8: '1'`) and the modifiers depressed at that moment,
 * as the compositor last told this client (`modifiers: … depressed: 00000004`). Nothing here knows
 * what keytap meant to type.
 */
import type { ChildProcess } from 'node:child_process';
import type { WaylandSession } from './wayland-session.js';

export interface ReceivedKey {
  /** What the key gives in the keymap the compositor sent ('' for a modifier). */
  char: string;
  /** The depressed-modifiers mask (xkb: Shift 1, Control 4, Mod1 8) when it was pressed. */
  modifiers: number;
  /** Where in wev's output the key came: compare with mark(). */
  at: number;
}

export interface WevRecorder {
  child: ChildProcess;
  /** A point in the output: keys() after it only. */
  mark(): number;
  /** The pressed keys wev reported after `since`. */
  keys(since?: number): ReceivedKey[];
  /** Waits until `count` keys that give text came after `since`; those keys. */
  waitForText(count: number, since?: number, timeoutMs?: number): Promise<ReceivedKey[]>;
  /** wev's whole output (for a failing test's message: it never holds more than the test typed). */
  readonly output: string;
}

/** Starts wev in the session and waits until sway has given it the keyboard focus. */
export async function startWev(session: WaylandSession): Promise<WevRecorder> {
  // Line-buffered: wev uses stdio, which would hold its output back from a pipe.
  const child = session.spawn('stdbuf', ['-oL', 'wev'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString('utf8')));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString('utf8')));
  await session.waitFor(() => {
    if (child.exitCode !== null) throw new Error(`wev exited (${child.exitCode}): ${output}`);
    return /wl_keyboard\] enter:/u.test(output);
  }, 'wev to get the keyboard focus');
  const keys = (since = 0): ReceivedKey[] => parseWevKeys(output).filter((k) => k.at >= since);
  return {
    child,
    mark: () => output.length,
    keys,
    get output() {
      return output;
    },
    waitForText: (count, since = 0, timeoutMs = 10_000) =>
      session.waitFor(
        () => {
          const typed = keys(since).filter((k) => k.char !== '');
          return typed.length >= count ? typed : undefined;
        },
        `${count} keys in wev`,
        timeoutMs,
      ),
  };
}

/** wev's wl_keyboard events, in order: the pressed keys, each with the modifiers then depressed. */
export function parseWevKeys(output: string): ReceivedKey[] {
  const keys: ReceivedKey[] = [];
  let modifiers = 0;
  const event = /\] (modifiers|key): ([^\n]*)\n([^[]*)/gu;
  for (const match of output.matchAll(event)) {
    const [, kind, line, rest] = match;
    if (kind === 'modifiers') {
      const depressed = /depressed: ([0-9a-f]+)/iu.exec(rest!);
      if (depressed) modifiers = parseInt(depressed[1]!, 16);
      continue;
    }
    if (!/state: 1 \(pressed\)/u.test(line!)) continue;
    const utf8 = /utf8: '([^']*)'/u.exec(rest!);
    keys.push({ char: utf8?.[1] ?? '', modifiers, at: match.index });
  }
  return keys;
}
