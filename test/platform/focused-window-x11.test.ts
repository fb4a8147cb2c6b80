// The X11 focused-window source against a fake node-x11 client: a window tree with properties,
// the window manager's _NET_ACTIVE_WINDOW or only the input focus, and a server that errs or
// stops answering. (test/e2e/focused-window.test.ts reads real windows on Xvfb.)
import { describe, expect, it } from 'vitest';
import type { ConnectX, FocusXClient } from '../../src/desktop/focused-window/x11.js';
import { X11FocusedWindow } from '../../src/desktop/focused-window/x11.js';
import { createFocusedWindowSource } from '../../src/desktop/focused-window/index.js';

const ROOT = 0x100;
const ATOMS: Record<string, number> = { _NET_ACTIVE_WINDOW: 300, _NET_WM_NAME: 301, UTF8_STRING: 302 };
const WM_NAME = 39;
const WM_CLASS = 67;
const STRING = 31;

interface FakeWindow {
  parent: number;
  props: Map<number, { type: number; data: Buffer }>;
}

class FakeServer {
  windows = new Map<number, FakeWindow>([[ROOT, { parent: 0, props: new Map() }]]);
  focus = 1; // PointerRoot
  /** Atoms the server does not know (InternAtom only-if-exists answers None). */
  unknownAtoms = new Set<string>();
  silent = false;
  failOn: string | undefined;
  terminated = 0;

  window(id: number, parent: number, props: { title?: string; netTitle?: string; wmClass?: string } = {}): void {
    const map = new Map<number, { type: number; data: Buffer }>();
    if (props.title !== undefined) map.set(WM_NAME, { type: STRING, data: Buffer.from(props.title, 'latin1') });
    if (props.netTitle !== undefined) map.set(ATOMS._NET_WM_NAME!, { type: ATOMS.UTF8_STRING!, data: Buffer.from(props.netTitle, 'utf8') });
    if (props.wmClass !== undefined) map.set(WM_CLASS, { type: STRING, data: Buffer.from(props.wmClass, 'latin1') });
    this.windows.set(id, { parent, props: map });
  }

  active(id: number): void {
    const data = Buffer.alloc(4);
    data.writeUInt32LE(id);
    this.windows.get(ROOT)!.props.set(ATOMS._NET_ACTIVE_WINDOW!, { type: 33, data });
  }

  connect: ConnectX = () => {
    const answer = <T>(what: string, callback: (error: Error | null, value: T) => void, value: () => T): void => {
      if (this.silent) return;
      setImmediate(() => (this.failOn === what ? callback(new Error(`Bad${what}`), undefined as T) : callback(null, value())));
    };
    const client: FocusXClient = {
      InternAtom: (_onlyIfExists, name, cb) => answer('InternAtom', cb, () => (this.unknownAtoms.has(name) ? 0 : (ATOMS[name] ?? 0))),
      GetProperty: (_del, window, property, type, _offset, _length, cb) =>
        answer('GetProperty', cb, () => {
          const prop = this.windows.get(window)?.props.get(property);
          if (!prop || (type !== 0 && prop.type !== type)) return { type: 0, data: Buffer.alloc(0) };
          return prop;
        }),
      GetInputFocus: (cb) => answer('GetInputFocus', cb, () => ({ focus: this.focus })),
      QueryTree: (window, cb) => answer('QueryTree', cb, () => ({ root: ROOT, parent: this.windows.get(window)?.parent ?? 0, children: [] })),
      on: () => client,
      terminate: () => {
        this.terminated++;
      },
    };
    return Promise.resolve({ client, screen: [{ root: ROOT }] });
  };
}

describe('the X11 focused window', () => {
  it("the window manager's active window: _NET_WM_NAME (UTF-8) and WM_CLASS's class", async () => {
    const server = new FakeServer();
    server.window(0x200, ROOT, { title: 'ignored Latin-1', netTitle: 'GitHub · Sign in — Mozilla Firefox', wmClass: 'Navigator\0firefox\0' });
    server.active(0x200);
    server.focus = 0x999; // the input focus is on something else: the window manager knows better
    expect(await new X11FocusedWindow(':9', server.connect).read()).toEqual({ title: 'GitHub · Sign in — Mozilla Firefox', app: 'firefox' });
    expect(server.terminated).toBe(1);
  });

  it('no window manager: the input focus, walked up to the window with WM_CLASS; WM_NAME when there is no _NET_WM_NAME', async () => {
    const server = new FakeServer();
    server.unknownAtoms.add('_NET_ACTIVE_WINDOW');
    server.window(0x300, ROOT, { title: 'vpn-client', wmClass: 'vpnc\0VPN-Client\0' });
    server.window(0x301, 0x300);
    server.window(0x302, 0x301);
    server.focus = 0x302;
    expect(await new X11FocusedWindow(':9', server.connect).read()).toEqual({ title: 'vpn-client', app: 'VPN-Client' });
  });

  it('an active window of 0 (the desktop has it) falls back to the input focus; an instance without a class is the app', async () => {
    const server = new FakeServer();
    server.active(0);
    server.window(0x400, ROOT, { netTitle: 'Microsoft Teams', wmClass: 'teams\0' });
    server.focus = 0x400;
    expect(await new X11FocusedWindow(':9', server.connect).read()).toEqual({ title: 'Microsoft Teams', app: 'teams' });
  });

  it('nobody has the focus (PointerRoot, None, the root): undefined', async () => {
    for (const focus of [0, 1, ROOT]) {
      const server = new FakeServer();
      server.unknownAtoms.add('_NET_ACTIVE_WINDOW');
      server.focus = focus;
      expect(await new X11FocusedWindow(':9', server.connect).read()).toBeUndefined();
    }
  });

  it('a window with neither title nor class: both undefined', async () => {
    const server = new FakeServer();
    server.window(0x500, ROOT);
    server.active(0x500);
    expect(await new X11FocusedWindow(':9', server.connect).read()).toEqual({ title: undefined, app: undefined });
  });

  it('an X error (the window went away): UNSUPPORTED naming the display, never a title', async () => {
    const server = new FakeServer();
    server.window(0x600, ROOT, { netTitle: 'private title', wmClass: 'a\0b\0' });
    server.active(0x600);
    server.failOn = 'QueryTree';
    // WM_CLASS is on the window itself: no QueryTree is needed, so this one succeeds…
    expect(await new X11FocusedWindow(':9', server.connect).read()).toMatchObject({ app: 'b' });
    server.failOn = 'GetProperty';
    const error = await new X11FocusedWindow(':9', server.connect).read().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'UNSUPPORTED', message: 'Reading the focused window from the X display :9 failed (BadGetProperty).' });
    expect(String((error as Error).message)).not.toContain('private');
    expect(server.terminated).toBe(2);
  });

  it('a server that stops answering: UNSUPPORTED within about a second, and the connection is closed', async () => {
    const server = new FakeServer();
    server.silent = true;
    const started = Date.now();
    await expect(new X11FocusedWindow(':9', server.connect).read()).rejects.toMatchObject({ code: 'UNSUPPORTED', message: 'The X display :9 did not say which window has the focus in time.' });
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(server.terminated).toBe(1);
  });

  it('a display that cannot be reached: the real connect says so', async () => {
    await expect(new X11FocusedWindow('unix:/nonexistent/socket').read()).rejects.toMatchObject({ code: 'UNSUPPORTED' });
  });

  it('the source for a session: X11 with DISPLAY, none under Wayland or without a display', () => {
    expect(createFocusedWindowSource({ platform: 'linux', env: { DISPLAY: ':0' } }).name).toBe('X11');
    expect(createFocusedWindowSource({ platform: 'linux', env: { DISPLAY: ':0', WAYLAND_DISPLAY: 'wayland-1' } }).name).toBe('none');
    expect(createFocusedWindowSource({ platform: 'linux', env: {} }).name).toBe('none');
  });
});
