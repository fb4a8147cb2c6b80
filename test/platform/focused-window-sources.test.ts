// The sway, Windows and macOS focused-window sources behind the one interface, each against a
// fake: a unix socket speaking i3-ipc, fakes of the four Win32 calls, a fake osascript.
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createFocusedWindowSource } from '../../src/desktop/focused-window/index.js';
import { FRONTMOST_SCRIPT, MacFocusedWindow } from '../../src/desktop/focused-window/macos.js';
import { GET_TREE, SwayFocusedWindow, focusedInTree, ipcMessage } from '../../src/desktop/focused-window/sway.js';
import type { Win32Calls } from '../../src/desktop/focused-window/windows.js';
import { WindowsFocusedWindow } from '../../src/desktop/focused-window/windows.js';
import type { CommandRunner } from '../../src/desktop/clipboard/run.js';
import { tempDir } from '../support/cli.js';

const TREE = {
  type: 'root',
  nodes: [
    {
      type: 'output',
      nodes: [
        {
          type: 'workspace',
          name: '1',
          nodes: [
            { type: 'con', name: 'Sign in to GitHub — Mozilla Firefox', app_id: 'firefox', focused: false, nodes: [] },
            { type: 'con', name: 'Microsoft Teams', app_id: null, window_properties: { class: 'teams', instance: 'teams' }, focused: false, nodes: [] },
          ],
          floating_nodes: [{ type: 'floating_con', name: 'vpn-client', app_id: 'vpn-client', focused: false, nodes: [] }],
        },
      ],
    },
  ],
};

function withFocus(path: (tree: typeof TREE) => { focused: boolean }): typeof TREE {
  const tree = structuredClone(TREE);
  path(tree).focused = true;
  return tree;
}

const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
});

/** A sway stand-in on a unix socket: records what it is sent, answers with `reply`. */
async function fakeSway(reply: (request: Buffer, socket: Socket) => void): Promise<{ path: string; requests: Buffer[] }> {
  const path = join(tempDir(), 'sway-ipc.sock');
  const requests: Buffer[] = [];
  const server = createServer((socket) => {
    socket.on('data', (data) => {
      requests.push(data);
      reply(data, socket);
    });
    socket.on('error', () => undefined);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return { path, requests };
}

describe('sway (i3-ipc over $SWAYSOCK)', () => {
  it('sends one GET_TREE in the i3-ipc framing and reads the focused window: name and app_id', async () => {
    const sway = await fakeSway((_request, socket) => socket.write(ipcMessage(GET_TREE, JSON.stringify(withFocus((t) => t.nodes[0]!.nodes[0]!.nodes[0]!)))));
    expect(await new SwayFocusedWindow(sway.path).read()).toEqual({ title: 'Sign in to GitHub — Mozilla Firefox', app: 'firefox' });
    expect(Buffer.concat(sway.requests)).toEqual(Buffer.from([...Buffer.from('i3-ipc'), 0, 0, 0, 0, 4, 0, 0, 0]));
  });

  it('an answer that arrives in pieces; an Xwayland window: its X11 class', async () => {
    const sway = await fakeSway((_request, socket) => {
      const message = ipcMessage(GET_TREE, JSON.stringify(withFocus((t) => t.nodes[0]!.nodes[0]!.nodes[1]!)));
      socket.write(message.subarray(0, 5));
      setTimeout(() => socket.write(message.subarray(5, 40)), 10);
      setTimeout(() => socket.write(message.subarray(40)), 20);
    });
    expect(await new SwayFocusedWindow(sway.path).read()).toEqual({ title: 'Microsoft Teams', app: 'teams' });
  });

  it('a floating window; a focused workspace (no window) is undefined', () => {
    expect(focusedInTree(withFocus((t) => t.nodes[0]!.nodes[0]!.floating_nodes[0]!))).toEqual({ title: 'vpn-client', app: 'vpn-client' });
    expect(focusedInTree(withFocus((t) => t.nodes[0]!.nodes[0]! as unknown as { focused: boolean }))).toBeUndefined();
    expect(focusedInTree(TREE)).toBeUndefined();
  });

  it('no socket, a socket that says nothing, one that closes, one that is not i3-ipc: UNSUPPORTED with the reason, never a title', async () => {
    await expect(new SwayFocusedWindow(join(tempDir(), 'none.sock')).read()).rejects.toMatchObject({ code: 'UNSUPPORTED', message: expect.stringContaining('ENOENT') as string });
    const silent = await fakeSway(() => undefined);
    const started = Date.now();
    await expect(new SwayFocusedWindow(silent.path).read()).rejects.toMatchObject({ message: expect.stringContaining('no answer') as string });
    expect(Date.now() - started).toBeLessThan(2_000);
    const closing = await fakeSway((_r, socket) => socket.end());
    await expect(new SwayFocusedWindow(closing.path).read()).rejects.toMatchObject({ message: expect.stringContaining('closed before the answer') as string });
    const other = await fakeSway((_r, socket) => socket.write('HTTP/1.1 400 Bad Request\r\n\r\n'));
    await expect(new SwayFocusedWindow(other.path).read()).rejects.toMatchObject({ message: expect.stringContaining('does not speak i3-ipc') as string });
    const broken = await fakeSway((_r, socket) => socket.write(ipcMessage(GET_TREE, '{"name": "private title", ')));
    const error = (await new SwayFocusedWindow(broken.path).read().then(() => undefined, (e: unknown) => e)) as Error;
    expect(error.message).toContain('not JSON');
    expect(error.message).not.toContain('private');
  });
});

class FakeWin32 implements Win32Calls {
  window: unknown = { hwnd: 42 };
  title = 'Sign in to GitHub — Microsoft Edge';
  pid = 1234;
  path: string | undefined = 'C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe';
  asked: unknown[] = [];
  foregroundWindow(): unknown {
    return this.window;
  }
  windowText(window: unknown): string {
    this.asked.push(['text', window]);
    return this.title;
  }
  processId(window: unknown): number {
    this.asked.push(['pid', window]);
    return this.pid;
  }
  imagePath(pid: number): string | undefined {
    this.asked.push(['path', pid]);
    return this.path;
  }
}

describe('Windows (the foreground window)', () => {
  it("its title, and its executable's name without .exe as the application", async () => {
    const fake = new FakeWin32();
    expect(await new WindowsFocusedWindow(() => Promise.resolve(fake)).read()).toEqual({ title: 'Sign in to GitHub — Microsoft Edge', app: 'msedge' });
    expect(fake.asked).toEqual([
      ['text', { hwnd: 42 }],
      ['pid', { hwnd: 42 }],
      ['path', 1234],
    ]);
  });

  it('an elevated window (its executable cannot be opened): the title only; no foreground window: undefined', async () => {
    const fake = new FakeWin32();
    fake.path = undefined;
    expect(await new WindowsFocusedWindow(() => Promise.resolve(fake)).read()).toEqual({ title: 'Sign in to GitHub — Microsoft Edge', app: undefined });
    fake.window = null;
    expect(await new WindowsFocusedWindow(() => Promise.resolve(fake)).read()).toBeUndefined();
  });
});

describe('macOS (the frontmost application, through System Events)', () => {
  function fakeOsascript(result: { code: number; stdout: string; stderr: string }): { run: CommandRunner; calls: { command: string; args: readonly string[]; input?: string | undefined }[] } {
    const calls: { command: string; args: readonly string[]; input?: string | undefined }[] = [];
    return {
      calls,
      run: (command, args, options) => {
        calls.push({ command, args, input: options?.input });
        return Promise.resolve(result);
      },
    };
  }

  it('the application on the first line, the window title on the second; the script goes in on stdin', async () => {
    const fake = fakeOsascript({ code: 0, stdout: 'Safari\nSign in to GitHub\n', stderr: '' });
    expect(await new MacFocusedWindow(fake.run).read()).toEqual({ title: 'Sign in to GitHub', app: 'Safari' });
    expect(fake.calls).toEqual([{ command: 'osascript', args: ['-'], input: FRONTMOST_SCRIPT }]);
  });

  it('without the Accessibility permission the title is empty: the application only', async () => {
    expect(await new MacFocusedWindow(fakeOsascript({ code: 0, stdout: 'Microsoft Teams\n\n', stderr: '' }).run).read()).toEqual({ title: undefined, app: 'Microsoft Teams' });
  });

  it('refused (no Automation permission): UNSUPPORTED, with what macOS said and where to allow it', async () => {
    const fake = fakeOsascript({ code: 1, stdout: '', stderr: '0:120: execution error: Not authorized to send Apple events to System Events. (-1743)\n' });
    await expect(new MacFocusedWindow(fake.run).read()).rejects.toMatchObject({
      code: 'UNSUPPORTED',
      message: 'macOS did not say which application is in front (0:120: execution error: Not authorized to send Apple events to System Events. (-1743)).',
      hint: 'Allow keytap to control "System Events" in System Settings → Privacy & Security → Automation.',
    });
  });
});

describe('the source for each session', () => {
  it('Windows, macOS, sway (SWAYSOCK or I3SOCK, before X11: Xwayland has a DISPLAY too), X11, else none', () => {
    expect(createFocusedWindowSource({ platform: 'win32', env: {} }).name).toBe('Windows');
    expect(createFocusedWindowSource({ platform: 'darwin', env: {} }).name).toBe('macOS');
    expect(createFocusedWindowSource({ platform: 'linux', env: { SWAYSOCK: '/run/user/1000/sway-ipc.sock', WAYLAND_DISPLAY: 'wayland-1', DISPLAY: ':0' } }).name).toBe('sway');
    expect(createFocusedWindowSource({ platform: 'linux', env: { I3SOCK: '/run/user/1000/i3/ipc-socket', DISPLAY: ':0' } }).name).toBe('sway');
    expect(createFocusedWindowSource({ platform: 'linux', env: { WAYLAND_DISPLAY: 'wayland-0', XDG_CURRENT_DESKTOP: 'GNOME', DISPLAY: ':0' } }).name).toBe('none');
  });
});
