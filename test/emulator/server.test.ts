/**
 * Serving a virtual key over a local socket: the frame protocol, one HID open per connection,
 * owner-only socket, stale socket files, announce/withdraw, control requests, the daemon.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { isKeytapError } from '../../src/errors.js';
import { runVirtualKeyServer } from '../../src/emulator/daemon.js';
import { socketPathFor, virtualKeyId } from '../../src/emulator/registry.js';
import { listRunningVirtualKeys } from '../../src/device/discovery/virtual-keys.js';
import type { RunningVirtualKey } from '../../src/device/discovery/virtual-keys.js';
import { serveVirtualKey } from '../../src/emulator/server.js';
import type { VirtualKeyServer } from '../../src/emulator/server.js';
import { FrameType, SocketHidLink, encodeFrame, encodeJsonFrame, sendControl } from '../../src/device/transport/socket-link.js';
import { TouchButton } from '../../src/emulator/touch.js';
import { VirtualKey } from '../../src/emulator/virtual-key.js';
import { CtapHidCommand, INS_TOUCH, StubApplet, initChannel, readMessage, sleep, writeMessage } from './helpers.js';

let runtime: string;
const previousRuntime = process.env.KEYTAP_RUNTIME_DIR;
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  runtime = await mkdtemp(join(tmpdir(), 'keytap-rt-'));
  process.env.KEYTAP_RUNTIME_DIR = runtime;
});
afterAll(async () => {
  if (previousRuntime === undefined) delete process.env.KEYTAP_RUNTIME_DIR;
  else process.env.KEYTAP_RUNTIME_DIR = previousRuntime;
  await rm(runtime, { recursive: true, force: true });
});
beforeEach(() => {
  cleanups.length = 0;
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

let counter = 0;
async function serveStub(): Promise<{ key: VirtualKey; server: VirtualKeyServer; id: string; file: string }> {
  const key = new VirtualKey({ dialect: 'nitrokey3', applet: new StubApplet(), button: new TouchButton({ mode: 'manual' }, 10_000), serial: '0badcafe' });
  const file = join(runtime, `store-${++counter}.json`);
  const id = virtualKeyId(file);
  const server = await serveVirtualKey(key, { id, file, dialect: 'nitrokey3', serial: '0badcafe' });
  cleanups.push(async () => {
    await server.close();
    await key.close();
  });
  return { key, server, id, file };
}

async function linkTo(path: string): Promise<SocketHidLink> {
  const link = await SocketHidLink.connect(path);
  cleanups.push(() => link.close());
  return link;
}

function rawConnection(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

function closed(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) resolve();
    else socket.once('close', () => resolve());
    socket.on('error', () => undefined);
  });
}

const keyRemoved = (e: unknown) => isKeytapError(e, 'KEY_REMOVED');

describe('serveVirtualKey', () => {
  it('listens owner-only, announces itself, serves two HID opens, and withdraws before closing', async () => {
    const { server, id, file } = await serveStub();
    expect(server.socketPath).toBe(socketPathFor(id));
    expect((await stat(server.socketPath)).mode & 0o777).toBe(0o600);
    const running = await listRunningVirtualKeys();
    expect(running).toEqual([
      expect.objectContaining<Partial<RunningVirtualKey>>({ id, file, socket: server.socketPath, pid: process.pid, dialect: 'nitrokey3', serial: '0badcafe' }),
    ]);

    const a = await linkTo(server.socketPath);
    const b = await linkTo(server.socketPath);
    const cidA = await initChannel(a);
    const cidB = await initChannel(b);
    expect(cidA).not.toBe(cidB);
    await writeMessage(a, cidA, CtapHidCommand.PING, Uint8Array.of(1, 2, 3));
    await writeMessage(b, cidB, CtapHidCommand.PING, Uint8Array.of(4, 5));
    expect([...(await readMessage(a, cidA)).payload]).toEqual([1, 2, 3]);
    // Every connection sees every input report: B sees A's answer too, before its own.
    expect([...(await readMessage(b, cidA)).payload]).toEqual([1, 2, 3]);
    expect([...(await readMessage(b, cidB)).payload]).toEqual([4, 5]);

    const status = await sendControl(server.socketPath, { op: 'status' });
    expect(status).toMatchObject({ ok: true, id, dialect: 'nitrokey3', serial: '0badcafe', touch: { mode: 'manual' } });
    expect(status).toHaveProperty('connections', 3); // a, b and the control connection

    while (await a.read(50)); // drain what A has seen so far
    const pending = expect(a.read(5000)).rejects.toSatisfy(keyRemoved);
    await server.close();
    await expect(listRunningVirtualKeys()).resolves.toEqual([]);
    expect(existsSync(server.socketPath)).toBe(false);
    await pending;
    await expect(b.write(new Uint8Array(64))).rejects.toSatisfy(keyRemoved);
    await expect(SocketHidLink.connect(server.socketPath)).rejects.toSatisfy((e: unknown) => isKeytapError(e, 'NO_KEY'));
    await server.close(); // idempotent
  });

  it.each([
    ['an empty frame', Buffer.from([0x00, 0x00])],
    ['a short HID report', encodeFrame(FrameType.REPORT, new Uint8Array(63))],
    ['a long HID report', encodeFrame(FrameType.REPORT, new Uint8Array(65))],
    ['an unknown frame type', encodeFrame(0x7e, Uint8Array.of(1))],
    ['a control answer sent to the server', encodeJsonFrame(FrameType.CONTROL_RESPONSE, { ok: true })],
    ['a control request that is not JSON', encodeFrame(FrameType.CONTROL_REQUEST, Buffer.from('{nope'))],
    ['a control request that is a JSON array', encodeJsonFrame(FrameType.CONTROL_REQUEST, [1])],
  ])('closes only the connection that sends %s', async (_name, frame) => {
    const { server } = await serveStub();
    const good = await linkTo(server.socketPath);
    const cid = await initChannel(good);
    const bad = await rawConnection(server.socketPath);
    const gone = closed(bad);
    bad.write(frame);
    await gone;
    await writeMessage(good, cid, CtapHidCommand.PING, Uint8Array.of(9));
    expect([...(await readMessage(good, cid)).payload]).toEqual([9]);
    expect(server.connections).toBe(1);
  });

  it('survives a client that vanishes mid-frame and clients that come and go', async () => {
    const { server } = await serveStub();
    const half = await rawConnection(server.socketPath);
    half.write(encodeFrame(FrameType.REPORT, new Uint8Array(64)).subarray(0, 20));
    half.destroy();
    for (let i = 0; i < 5; i++) {
      const link = await SocketHidLink.connect(server.socketPath);
      await initChannel(link);
      await link.close();
    }
    await expect.poll(() => server.connections).toBe(0);
    const link = await linkTo(server.socketPath);
    expect(await initChannel(link)).toBeGreaterThan(0);
  });

  it('removes a stale socket file, refuses to start twice, and leaves non-socket files alone', async () => {
    const file = join(runtime, 'stale.json');
    const id = virtualKeyId(file);
    const path = socketPathFor(id);
    // A socket file nobody listens on, as a crashed server leaves behind.
    execFileSync('/usr/bin/python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', path]);
    expect((await stat(path)).isSocket()).toBe(true);
    const key = new VirtualKey({ dialect: 'yubikey', applet: new StubApplet(), button: new TouchButton({ mode: 'manual' }, 1000) });
    const server = await serveVirtualKey(key, { id, file, dialect: 'yubikey' });
    cleanups.push(async () => {
      await server.close();
      await key.close();
    });
    const link = await linkTo(path);
    expect(await initChannel(link)).toBeGreaterThan(0);

    await expect(serveVirtualKey(key, { id, file, dialect: 'yubikey' })).rejects.toSatisfy((e: unknown) => isKeytapError(e, 'BUSY'));
    expect(await initChannel(link)).toBeGreaterThan(0); // the running one is untouched

    const otherId = virtualKeyId(join(runtime, 'not-a-socket.json'));
    await writeFile(socketPathFor(otherId), 'precious');
    await expect(serveVirtualKey(key, { id: otherId, file, dialect: 'yubikey' })).rejects.toSatisfy((e: unknown) => isKeytapError(e, 'USAGE'));
    expect((await stat(socketPathFor(otherId))).isFile()).toBe(true);
  });

  it('answers control requests: touch, set-touch, bad requests, and stop', async () => {
    const { server, key } = await serveStub();
    const link = await linkTo(server.socketPath);
    const cid = await initChannel(link);
    await writeMessage(link, cid, CtapHidCommand.VENDOR_SECRETS, Uint8Array.of(0x00, INS_TOUCH, 0x00, 0x01));
    expect(await link.read(100)).toBeUndefined(); // waiting for a touch, silently (nitrokey3)
    expect(await sendControl(server.socketPath, { op: 'touch' })).toEqual({ ok: true });
    expect([...(await readMessage(link, cid)).payload]).toEqual([0x90, 0x00]);

    expect(await sendControl(server.socketPath, { op: 'set-touch', policy: { mode: 'auto', delayMs: 5 } })).toMatchObject({ ok: true });
    expect(key.touchPolicy).toEqual({ mode: 'auto', delayMs: 5 });
    await writeMessage(link, cid, CtapHidCommand.VENDOR_SECRETS, Uint8Array.of(0x00, INS_TOUCH, 0x00, 0x01));
    expect([...(await readMessage(link, cid)).payload]).toEqual([0x90, 0x00]);

    expect(await sendControl(server.socketPath, { op: 'set-touch', policy: { mode: 'sometimes' } })).toEqual({ ok: false, error: 'invalid touch policy' });
    expect(await sendControl(server.socketPath, { op: 'dance' } as never)).toMatchObject({ ok: false });
    expect(key.touchPolicy).toEqual({ mode: 'auto', delayMs: 5 });

    expect(await sendControl(server.socketPath, { op: 'stop' })).toEqual({ ok: true });
    await expect(link.read(2000)).rejects.toSatisfy(keyRemoved);
    await expect(listRunningVirtualKeys()).resolves.toEqual([]);
  });

  it('sendControl: NO_KEY when nobody listens, TIMEOUT when nobody answers', async () => {
    await expect(sendControl(join(runtime, 'nobody.sock'), { op: 'status' })).rejects.toSatisfy((e: unknown) => isKeytapError(e, 'NO_KEY'));
    const silent = await new Promise<Server>((resolve) => {
      const s = createServer((socket) => socket.resume()); // reads, never answers
      s.listen(join(runtime, 'silent.sock'), () => resolve(s));
    });
    cleanups.push(() => new Promise<void>((resolve) => silent.close(() => resolve())));
    await expect(sendControl(join(runtime, 'silent.sock'), { op: 'status' }, 100)).rejects.toSatisfy((e: unknown) => isKeytapError(e, 'TIMEOUT'));
  });

  it('tells the links when the key is unplugged under the server', async () => {
    const { server, key } = await serveStub();
    const link = await linkTo(server.socketPath);
    await initChannel(link);
    const pending = link.read(5000);
    await key.close();
    await expect(pending).rejects.toSatisfy(keyRemoved);
    // New opens are refused while the key is gone, and the server keeps running.
    const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const again = await SocketHidLink.connect(server.socketPath);
    await expect(again.read(2000)).rejects.toSatisfy(keyRemoved);
    expect(errors).toHaveBeenCalled();
    errors.mockRestore();
  });
});

describe('runVirtualKeyServer', () => {
  it('opens the key, serves and announces it, and stops on a stop request', async () => {
    const file = join(runtime, 'daemon.json');
    let ready: RunningVirtualKey | undefined;
    const lines: string[] = [];
    const run = runVirtualKeyServer({ file, dialect: 'yubikey', demo: true, handleSignals: false, onReady: (info) => (ready = info), log: (l) => lines.push(l) });
    await expect.poll(() => ready, { timeout: 5000 }).toBeDefined();
    expect(await listRunningVirtualKeys()).toEqual([ready]);
    expect(ready).toMatchObject({ id: virtualKeyId(file), dialect: 'yubikey', pid: process.pid });
    expect(await sendControl(ready!.socket, { op: 'status' })).toMatchObject({ ok: true, touch: { mode: 'manual' } });
    const link = await linkTo(ready!.socket);
    expect(await initChannel(link)).toBeGreaterThan(0);
    expect(await sendControl(ready!.socket, { op: 'stop' })).toEqual({ ok: true });
    await run;
    expect(await listRunningVirtualKeys()).toEqual([]);
    expect(existsSync(ready!.socket)).toBe(false);
    expect(lines.join('\n')).toMatch(/listening on .*stopping \(stop request\)/s);
  });

  it('stops on its AbortSignal and on SIGTERM', async () => {
    const file = join(runtime, 'daemon2.json');
    const controller = new AbortController();
    let ready = false;
    const run = runVirtualKeyServer({ file, handleSignals: false, signal: controller.signal, onReady: () => (ready = true) });
    await expect.poll(() => ready, { timeout: 5000 }).toBe(true);
    controller.abort();
    await run;
    expect(await listRunningVirtualKeys()).toEqual([]);

    ready = false;
    const before = process.listenerCount('SIGTERM');
    const run2 = runVirtualKeyServer({ file, onReady: () => (ready = true) });
    await expect.poll(() => ready, { timeout: 5000 }).toBe(true);
    expect(process.listenerCount('SIGTERM')).toBe(before + 1);
    process.emit('SIGTERM', 'SIGTERM');
    await run2;
    expect(process.listenerCount('SIGTERM')).toBe(before);
    expect(await listRunningVirtualKeys()).toEqual([]);
    await sleep(0);
  });
});

describe('liveness of an announcement: a connection that answers, not a pid', () => {
  const announce = async (name: string, socket: string): Promise<string> => {
    const path = join(runtime, `${name}.json`);
    // The pid is this test's: alive, as a reused pid would be.
    const info: RunningVirtualKey = { id: name, file: join(runtime, `${name}-store.json`), socket, pid: process.pid, dialect: 'yubikey', startedAt: new Date().toISOString() };
    await writeFile(path, JSON.stringify(info));
    return path;
  };

  it('an announcement whose socket nobody serves is not listed, and is removed, though its pid lives', async () => {
    const path = await announce('vk-stale000000', join(runtime, 'vk-stale000000.sock'));
    expect(await listRunningVirtualKeys()).toEqual([]);
    expect(existsSync(path)).toBe(false);
  });

  it('one whose socket accepts but never answers (a stopped or hung process) is not listed, and kept', async () => {
    const socketPath = join(runtime, 'vk-silent00000.sock');
    const silent: Server = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(socketPath, resolve));
    cleanups.push(() => new Promise<void>((resolve) => silent.close(() => resolve())));
    const held: Socket[] = [];
    silent.on('connection', (s) => held.push(s));
    cleanups.push(() => {
      for (const s of held) s.destroy();
      return Promise.resolve();
    });
    const path = await announce('vk-silent00000', socketPath);
    const started = Date.now();
    expect(await listRunningVirtualKeys()).toEqual([]);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(existsSync(path)).toBe(true);
    await rm(path);
  });

  it('one that points at the socket of another key is not listed', async () => {
    const { server, id } = await serveStub();
    await announce('vk-borrowed000', server.socketPath);
    expect((await listRunningVirtualKeys()).map((k) => k.id)).toEqual([id]);
  });
});
