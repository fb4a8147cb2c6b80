/**
 * The focused X11 window through node-x11 (pure JavaScript, so nothing native to load): the window
 * manager's _NET_ACTIVE_WINDOW on the root window (EWMH: every current window manager keeps it),
 * else the input focus (no window manager, or an old one), walked up to the top-level window that
 * carries WM_CLASS, since the focus is often on a child of the application's window. Its title is
 * _NET_WM_NAME (UTF-8), else WM_NAME (Latin-1); its application is WM_CLASS's class ("Firefox" of
 * "Navigator\0Firefox\0"), else its instance. One short connection a read: a press costs a handful
 * of round trips, and no socket stays open between presses.
 */
import { KeytapError } from '../../errors.js';
import { bounded } from '../../util/abortable.js';
import type { FocusedWindow, FocusedWindowSource } from './types.js';

/** The part of node-x11's client this module uses (callback style). */
export interface FocusXClient {
  InternAtom(onlyIfExists: boolean, name: string, callback: (error: Error | null, atom: number) => void): void;
  GetProperty(
    del: number,
    window: number,
    property: number,
    type: number,
    longOffset: number,
    longLength: number,
    callback: (error: Error | null, property: { type: number; format?: number; data: Buffer } | undefined) => void,
  ): void;
  GetInputFocus(callback: (error: Error | null, focus: { focus: number } | undefined) => void): void;
  QueryTree(window: number, callback: (error: Error | null, tree: { root: number; parent: number; children: number[] } | undefined) => void): void;
  on(event: 'error' | 'end', listener: (error?: Error) => void): unknown;
  terminate(): void;
}

export interface FocusXDisplay {
  client: FocusXClient;
  screen: { root: number }[];
}

/** Connects to an X display (node-x11's createClient, or a fake). */
export type ConnectX = (display: string) => Promise<FocusXDisplay>;

// Predefined atoms of the core protocol.
const ATOM_WM_NAME = 39;
const ATOM_WM_CLASS = 67;
const ATOM_WINDOW = 33;
const ANY_PROPERTY_TYPE = 0;
/** PointerRoot and None as GetInputFocus answers them: no window of anyone's has the focus. */
const NO_FOCUS = new Set([0, 1]);
/** Window managers nest a client a few frames deep at most; a loop in a broken tree ends here. */
const MAX_DEPTH = 16;
/** Long enough for a busy server, short enough that a press never waits on a hung one. */
const REQUEST_TIMEOUT_MS = 1_000;
/** Titles are cut here (4-byte units): a title is a line, not a document. */
const MAX_TITLE_LONGS = 256;

export class X11FocusedWindow implements FocusedWindowSource {
  readonly name = 'X11';

  constructor(
    private readonly display: string,
    private readonly connect: ConnectX = connectNodeX11,
  ) {}

  async read(signal?: AbortSignal): Promise<FocusedWindow | undefined> {
    const deadline = Date.now() + REQUEST_TIMEOUT_MS;
    const unanswered = (): KeytapError => new KeytapError('UNSUPPORTED', `The X display ${this.display} did not say which window has the focus in time.`);
    const connecting = this.connect(this.display);
    let opened: FocusXDisplay;
    try {
      opened = await bounded(connecting, deadline, signal, unanswered);
    } catch (error) {
      // Given up (the deadline, a cancel): a connection that opens later must not linger.
      connecting.then((late) => late.client.terminate(), () => undefined);
      throw error;
    }
    const { client: X, screen } = opened;
    let lost: Error | undefined;
    X.on('error', (error) => (lost = error ?? new Error('X error')));
    const call = <T>(run: (callback: (error: Error | null, value: T) => void) => void): Promise<T> =>
      bounded(
        new Promise<T>((resolve, reject) => run((error, value) => (error ? reject(error) : resolve(value)))),
        deadline,
        signal,
        unanswered,
      );
    try {
      const root = screen[0]?.root ?? 0;
      const netActive = await call<number>((cb) => X.InternAtom(true, '_NET_ACTIVE_WINDOW', cb));
      let window = 0;
      if (netActive) {
        const active = await call<{ type: number; data: Buffer } | undefined>((cb) => X.GetProperty(0, root, netActive, ATOM_WINDOW, 0, 1, cb));
        if (active && active.data.length >= 4) window = active.data.readUInt32LE(0);
      }
      if (window === 0) {
        const focus = await call<{ focus: number } | undefined>((cb) => X.GetInputFocus(cb));
        window = focus?.focus ?? 0;
      }
      if (NO_FOCUS.has(window) || window === root) return undefined;

      const netName = await call<number>((cb) => X.InternAtom(true, '_NET_WM_NAME', cb));
      const utf8 = await call<number>((cb) => X.InternAtom(true, 'UTF8_STRING', cb));
      const property = async (of: number, atom: number, type: number): Promise<Buffer | undefined> => {
        const value = await call<{ type: number; data: Buffer } | undefined>((cb) => X.GetProperty(0, of, atom, type, 0, MAX_TITLE_LONGS, cb));
        return value && value.type !== 0 ? value.data : undefined;
      };
      // Up from the focus to the application's window: the first one with WM_CLASS, else the focus itself.
      let client = window;
      let wmClass: Buffer | undefined;
      for (let at = window, depth = 0; at !== 0 && at !== root && depth < MAX_DEPTH; depth++) {
        wmClass = await property(at, ATOM_WM_CLASS, ANY_PROPERTY_TYPE);
        if (wmClass) {
          client = at;
          break;
        }
        const tree = await call<{ parent: number } | undefined>((cb) => X.QueryTree(at, cb));
        at = tree?.parent ?? 0;
      }
      const netTitle = netName && utf8 ? await property(client, netName, utf8) : undefined;
      const title = netTitle ? netTitle.toString('utf8') : (await property(client, ATOM_WM_NAME, ANY_PROPERTY_TYPE))?.toString('latin1');
      const [instance, className] = (wmClass?.toString('latin1') ?? '').split('\0');
      const app = className || instance || undefined;
      if (lost) throw lost;
      return { title: title || undefined, app };
    } catch (error) {
      if (error instanceof KeytapError) throw error;
      // The message names the display and the failure, never a title.
      throw new KeytapError('UNSUPPORTED', `Reading the focused window from the X display ${this.display} failed (${error instanceof Error ? error.message : String(error)}).`);
    } finally {
      X.terminate();
    }
  }
}

type X11Module = {
  createClient(options: { display: string }, callback: (error: Error | null, display: FocusXDisplay) => void): { on(event: 'error', listener: (error: Error) => void): unknown } | undefined;
};

/** node-x11's createClient as a promise; a failure to connect is UNSUPPORTED, naming the display. */
export async function connectNodeX11(display: string): Promise<FocusXDisplay> {
  let x11: X11Module;
  try {
    const module = (await import('x11')) as unknown as X11Module & { default?: X11Module };
    x11 = module.default ?? module;
  } catch (error) {
    throw new KeytapError('UNSUPPORTED', `The X11 client library could not be loaded (${error instanceof Error ? error.message : String(error)}).`);
  }
  return new Promise<FocusXDisplay>((resolve, reject) => {
    const fail = (error: Error): void => reject(new KeytapError('UNSUPPORTED', `Cannot reach the X display ${display} (${error.message}).`));
    try {
      const client = x11.createClient({ display }, (error, opened) => (error ? fail(error) : resolve(opened)));
      client?.on('error', fail);
    } catch (error) {
      fail(error instanceof Error ? error : new Error(String(error)));
    }
  });
}
