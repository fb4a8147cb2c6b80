/**
 * The recording X client (x11-recorder.py, python3-xlib) as the typing tests use it: started on a
 * display, it maps a window, takes the focus and reports every KeyPress with its modifier state.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';

export interface RecordedKey {
  keycode: number;
  state: number;
  keysym: number;
  char: string | null;
}

export const SHIFT_MASK = 1;
export const CONTROL_MASK = 4;
export const MOD1_MASK = 8;

/** Modifier keysyms (Shift_L … Hyper_R, ISO_Level3_Shift): presses of these type nothing. */
export function isModifierKeysym(keysym: number): boolean {
  return (keysym >= 0xffe1 && keysym <= 0xffee) || keysym === 0xfe03;
}

/** The recording client on `env`'s display; resolves once it has the focus. */
export async function startRecorder(env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; keys: RecordedKey[]; waitForKeys(n: number): Promise<RecordedKey[]> }> {
  // waitForKeys(n) waits for n presses that are not modifiers and returns those; every press that
  // is neither a modifier nor one of them fails the test there.
  const child = spawn('/usr/bin/python3', [join(import.meta.dirname, 'x11-recorder.py')], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  const keys: RecordedKey[] = [];
  let buffered = '';
  let ready!: () => void;
  const isReady = new Promise<void>((resolve) => (ready = resolve));
  child.stdout.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    let newline: number;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      if (line === 'ready') ready();
      else if (line.startsWith('{')) keys.push(JSON.parse(line) as RecordedKey);
    }
  });
  await Promise.race([isReady, new Promise((_, reject) => setTimeout(() => reject(new Error('the recorder did not start')), 10_000))]);
  return {
    child,
    keys,
    async waitForKeys(n) {
      const typed = (): RecordedKey[] => keys.filter((k) => !isModifierKeysym(k.keysym));
      const deadline = Date.now() + 10_000;
      while (typed().length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      // A moment more: anything typed beyond n would show up now.
      await new Promise((r) => setTimeout(r, 150));
      return typed();
    },
  };
}

