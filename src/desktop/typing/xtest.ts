/**
 * Typing on X11 through the XTEST extension (FakeInput), spoken by node-x11 (pure JavaScript, so
 * nothing native to load from the single executable's asset cache). Not uiohook-napi's keyTap:
 * libuiohook turns its own key codes into X keycodes through a fixed table of physical positions, so
 * on a French AZERTY keyboard its "1" arrives as "&". Here the keycode is looked up in the server's
 * live mapping (keymap.ts), with Shift where the layout needs it (docs/desktop.md §2.8).
 *
 * The shortcut's modifiers: XQueryKeymap tells which keys are down. We wait a moment for them to
 * come up (the user's fingers leave the keys; faking a release of a key someone holds fights the
 * keyboard), then send a key-up for each one still down, before the first digit, and never press
 * them again afterwards (xdotool --clearmodifiers does, and leaves keys stuck when the user let go
 * meanwhile).
 */
import { KeytapError } from '../../errors.js';
import { bounded, delay as abortableDelay } from '../../util/abortable.js';
import type { Typist } from '../platform.js';
import type { KeyboardMapping } from './keymap.js';
import { capsLockKeycode, planKeystrokes, shiftKeycode } from './keymap.js';

/** The part of node-x11's client this module uses (callback style). */
interface XClient {
  GetKeyboardMapping(first: number, count: number, callback: (error: Error | null, rows: number[][]) => void): void;
  GetModifierMapping(callback: (error: Error | null, rows: number[][]) => void): void;
  QueryKeymap(callback: (error: Error | null, bits: Buffer) => void): void;
  QueryPointer(window: number, callback: (error: Error | null, pointer: { keyMask?: number } | undefined) => void): void;
  GetInputFocus(callback: (error: Error | null, focus: unknown) => void): void;
  QueryExtension(name: string, callback: (error: Error | null, ext: { present?: number } | undefined) => void): void;
  require(name: 'xtest', callback: (error: Error | null, xtest: XTest) => void): void;
  on(event: 'error' | 'end', listener: (error?: Error) => void): unknown;
  terminate(): void;
}

interface XTest {
  KeyPress: number;
  KeyRelease: number;
  FakeInput(type: number, keycode: number, time: number, window: number, x: number, y: number): void;
}

interface XDisplay {
  client: XClient;
  min_keycode: number;
  max_keycode: number;
  screen: { root: number }[];
}

export interface XtestTypistOptions {
  display?: string | undefined;
  /** How long to wait for held modifiers to come up before releasing them ourselves. */
  releaseWaitMs?: number | undefined;
  /** Between two characters: pages that move the focus from box to box on each input get a moment. */
  keyDelayMs?: number | undefined;
}

const HINT = 'Paste the code instead, or set "Type the code" to copy as well.';

export class XtestTypist implements Typist {
  readonly name = 'XTEST';

  constructor(private readonly options: XtestTypistOptions = {}) {}

  async type(text: string, signal?: AbortSignal): Promise<void> {
    const displayName = this.options.display ?? process.env.DISPLAY;
    if (!displayName) throw new KeytapError('UNSUPPORTED', 'There is no X display ($DISPLAY is not set) to type into.', { hint: HINT });
    if (signal?.aborted) throw cancelled();
    const display = await connect(displayName, signal);
    const X = display.client;
    let lost: Error | undefined;
    X.on('error', (error) => (lost = error ?? new Error('X error')));
    // Every request gets a deadline: a server that stops answering must not hold the resident.
    const call = <T>(what: string, run: (callback: (error: Error | null, value: T) => void) => void): Promise<T> =>
      bounded(
        new Promise<T>((resolve, reject) => run((error, value) => (error ? reject(error) : resolve(value)))),
        Date.now() + REQUEST_TIMEOUT_MS,
        signal,
        () => new KeytapError('UNSUPPORTED', `The X display ${displayName} did not answer ${what}.`, { hint: HINT }),
      );
    try {
      // node-x11's require('xtest') reads ext.present even after a failed QueryExtension, and throws
      // inside its socket handler: ask first.
      const present = await call<{ present?: number } | undefined>('QueryExtension', (cb) => X.QueryExtension('XTEST', cb));
      if (!present?.present) throw new KeytapError('UNSUPPORTED', `The X server ${displayName} has no XTEST extension, so keytap cannot type there.`, { hint: HINT });
      const xtest = await call<XTest>('the XTEST lookup', (cb) => X.require('xtest', cb));
      const count = display.max_keycode - display.min_keycode + 1;
      const rows = await call<number[][]>('GetKeyboardMapping', (cb) => X.GetKeyboardMapping(display.min_keycode, count, cb));
      const modifierRows = await call<number[][]>('GetModifierMapping', (cb) => X.GetModifierMapping(cb));
      const mapping: KeyboardMapping = { minKeycode: display.min_keycode, keysyms: rows };
      const strokes = planKeystrokes(text, mapping);
      const shift = shiftKeycode(mapping, modifierRows);
      if (strokes.some((s) => s.shift) && shift === undefined) throw new KeytapError('UNSUPPORTED', 'The keyboard layout in use has no Shift key, which typing this code needs.', { hint: HINT });
      const root = display.screen[0]?.root ?? 0;
      const modifiers = [...new Set(modifierRows.flat().filter((k) => k !== 0))];

      const held = await this.heldModifiers(() => call<Buffer>('QueryKeymap', (cb) => X.QueryKeymap(cb)), modifiers, signal);
      for (const keycode of held) xtest.FakeInput(xtest.KeyRelease, keycode, 0, root, 0, 0);

      // Caps Lock on: on layouts whose digit row has a type that Lock affects (fr(bepo), and
      // others) Shift+key then gives the symbol, not the digit, and the core mapping cannot tell
      // which keys. So it is turned off for the code and on again afterwards, whatever happens.
      const pointer = await call<{ keyMask?: number } | undefined>('QueryPointer', (cb) => X.QueryPointer(root, cb));
      const capsLock = ((pointer?.keyMask ?? 0) & LOCK_MASK) !== 0 ? capsLockKeycode(mapping, modifierRows) : undefined;
      const toggleCapsLock = (): void => {
        xtest.FakeInput(xtest.KeyPress, capsLock!, 0, root, 0, 0);
        xtest.FakeInput(xtest.KeyRelease, capsLock!, 0, root, 0, 0);
      };
      if (capsLock !== undefined) toggleCapsLock();
      try {
        const delay = this.options.keyDelayMs ?? 12;
        for (const [index, stroke] of strokes.entries()) {
          if (signal?.aborted) throw cancelled();
          if (lost) throw lost;
          if (index > 0 && delay > 0) await abortableDelay(delay, signal);
          if (stroke.shift) xtest.FakeInput(xtest.KeyPress, shift!, 0, root, 0, 0);
          xtest.FakeInput(xtest.KeyPress, stroke.keycode, 0, root, 0, 0);
          xtest.FakeInput(xtest.KeyRelease, stroke.keycode, 0, root, 0, 0);
          if (stroke.shift) xtest.FakeInput(xtest.KeyRelease, shift!, 0, root, 0, 0);
        }
      } finally {
        if (capsLock !== undefined && !lost) toggleCapsLock();
      }
      // A round trip: the server has handled every fake event before we say "typed".
      await call('GetInputFocus', (cb) => X.GetInputFocus(cb));
      if (lost) throw lost;
    } catch (error) {
      if (error instanceof KeytapError) throw error;
      if (signal?.aborted) throw cancelled();
      throw new KeytapError('UNSUPPORTED', `Typing into the X display ${displayName} failed (${error instanceof Error ? error.message : String(error)}).`, { hint: HINT });
    } finally {
      X.terminate();
    }
  }

  /** The modifier keycodes still down after waiting up to releaseWaitMs for them to come up. */
  private async heldModifiers(queryKeymap: () => Promise<Buffer>, modifiers: number[], signal: AbortSignal | undefined): Promise<number[]> {
    const deadline = Date.now() + (this.options.releaseWaitMs ?? 600);
    for (;;) {
      const bits = await queryKeymap();
      const down = modifiers.filter((k) => ((bits[k >> 3] ?? 0) & (1 << (k & 7))) !== 0);
      if (down.length === 0 || Date.now() >= deadline) return down;
      await abortableDelay(25, signal);
    }
  }
}

type X11Module = { createClient(options: { display: string }, callback: (error: Error | null, display: XDisplay) => void): { on(event: 'error', listener: (error: Error) => void): unknown; terminate?(): void } };

const REQUEST_TIMEOUT_MS = 3_000;

/** The Lock bit of the core protocol's key mask (SETofKEYMASK). */
const LOCK_MASK = 2;

async function connect(displayName: string, signal: AbortSignal | undefined): Promise<XDisplay> {
  let x11: X11Module;
  try {
    const module = (await import('x11')) as unknown as X11Module & { default?: X11Module };
    x11 = module.default ?? module;
  } catch (error) {
    throw new KeytapError('UNSUPPORTED', `The X11 client library could not be loaded (${error instanceof Error ? error.message : String(error)}).`, { hint: HINT });
  }
  let client: ReturnType<X11Module['createClient']> | undefined;
  let connected = false;
  const connecting = new Promise<XDisplay>((resolve, reject) => {
    const fail = (error: Error): void => reject(new KeytapError('UNSUPPORTED', `Cannot reach the X display ${displayName} (${error.message}).`, { hint: HINT }));
    try {
      client = x11.createClient({ display: displayName }, (error, display) => {
        if (error) return fail(error);
        connected = true;
        resolve(display);
      });
      client.on('error', fail);
    } catch (error) {
      fail(error instanceof Error ? error : new Error(String(error)));
    }
  });
  try {
    return await bounded(connecting, Date.now() + REQUEST_TIMEOUT_MS, signal, () => new KeytapError('UNSUPPORTED', `The X display ${displayName} did not answer.`, { hint: HINT }));
  } catch (error) {
    // Given up (the deadline, a cancel): the half-open client must not linger with its socket.
    if (!connected) {
      try {
        client?.terminate?.();
      } catch {
        // No socket yet.
      }
    }
    connecting.then((display) => display.client.terminate(), () => undefined);
    throw error;
  }
}

function cancelled(): KeytapError {
  return new KeytapError('CANCELLED', 'Typing the code was cancelled.');
}
