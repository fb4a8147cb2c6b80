// Typing through XTEST on Xvfb, checked by a separate X client (python3-xlib) that has the focus
// and records every KeyPress with its modifier state and the keysym the server's mapping gives it.
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { XtestTypist } from '../../src/desktop/typing/xtest.js';
import { Desktop, missingTool, run } from './desktop.js';
import { oathtool } from '../support/cli.js';
import { CONTROL_MASK, MOD1_MASK, SHIFT_MASK, startRecorder } from '../support/x11-recorder.js';

const missing = process.platform === 'linux' ? missingTool('Xvfb', 'xdotool', 'setxkbmap', '/usr/bin/python3') : 'Linux';
const noXlib = missing ? undefined : (() => {
  const probe = spawn('/usr/bin/python3', ['-c', 'import Xlib']);
  return new Promise<boolean>((resolve) => probe.once('exit', (code) => resolve(code !== 0)));
})();
if (missing) console.warn(`skipping the XTEST typing test: ${missing} is missing (see .ci/run)`);

describe.skipIf(missing !== undefined)('typing through XTEST', async () => {
  const skip = (await noXlib) === true;
  if (skip) console.warn('skipping the XTEST typing test: python3-xlib is missing (see .ci/run)');
  const desktop = new Desktop();
  let recorder: Awaited<ReturnType<typeof startRecorder>> | undefined;

  beforeAll(async () => {
    if (!skip) await desktop.startX();
  });
  afterEach(async () => {
    recorder?.child.kill();
    recorder = undefined;
    await run('xdotool', ['keyup', 'ctrl+alt+shift'], desktop.processEnv());
    if (await capsLockOn()) await run('xdotool', ['key', 'Caps_Lock'], desktop.processEnv());
    await run('setxkbmap', ['us'], desktop.processEnv());
  });
  afterAll(() => desktop.stop());

  /** Whether the display's Caps Lock is on: the Lock bit of the pointer's key mask, asked by another client (python3-xlib). */
  const capsLockOn = async (): Promise<boolean> =>
    (await run('/usr/bin/python3', ['-c', 'from Xlib import display; print(display.Display().screen().root.query_pointer().mask & 2)'], desktop.processEnv())).stdout.trim() === '2';

  it.skipIf(skip)('types every digit into the focused window, with no modifier', async () => {
    recorder = await startRecorder(desktop.processEnv());
    await new XtestTypist({ display: desktop.env.DISPLAY }).type('0123456789');
    const keys = await recorder.waitForKeys(10);
    expect(keys.map((k) => k.char).join('')).toBe('0123456789');
    expect(keys.map((k) => k.state)).toEqual(Array(10).fill(0));
  });

  it.skipIf(skip)('releases Ctrl+Alt+Shift held as after the shortcut before the first digit', async () => {
    recorder = await startRecorder(desktop.processEnv());
    expect((await run('xdotool', ['keydown', 'ctrl+alt+shift'], desktop.processEnv())).code).toBe(0);
    const started = Date.now();
    await new XtestTypist({ display: desktop.env.DISPLAY, releaseWaitMs: 300 }).type('482915');
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    const keys = await recorder.waitForKeys(6);
    expect(keys.map((k) => k.char).join('')).toBe('482915');
    for (const key of keys) expect(key.state & (SHIFT_MASK | CONTROL_MASK | MOD1_MASK)).toBe(0);
  });

  it.skipIf(skip)('does not wait when the modifiers come up by themselves', async () => {
    recorder = await startRecorder(desktop.processEnv());
    expect((await run('xdotool', ['keydown', 'ctrl+alt'], desktop.processEnv())).code).toBe(0);
    setTimeout(() => void run('xdotool', ['keyup', 'ctrl+alt'], desktop.processEnv()), 100);
    const started = Date.now();
    await new XtestTypist({ display: desktop.env.DISPLAY, releaseWaitMs: 5_000 }).type('77');
    expect(Date.now() - started).toBeLessThan(3_000);
    const keys = await recorder.waitForKeys(2);
    expect(keys.map((k) => k.char).join('')).toBe('77');
    for (const key of keys) expect(key.state & (CONTROL_MASK | MOD1_MASK)).toBe(0);
  });

  it.skipIf(skip)('types digits, not "à&é", with a French AZERTY layout (Shift where the layout needs it)', async () => {
    // The recorder first: Xvfb resets the keymap when its last client leaves.
    recorder = await startRecorder(desktop.processEnv());
    expect((await run('setxkbmap', ['fr'], desktop.processEnv())).code).toBe(0);
    await new XtestTypist({ display: desktop.env.DISPLAY }).type('0123456789');
    const keys = await recorder.waitForKeys(10);
    expect(keys.map((k) => k.char).join('')).toBe('0123456789');
    // On AZERTY the digits are the Shift level of the top row.
    for (const key of keys) expect(key.state & SHIFT_MASK).toBe(SHIFT_MASK);
  });

  it.skipIf(skip)('types digits with Caps Lock on where it flips the level of the digit row (French bépo), and leaves Caps Lock on', async () => {
    recorder = await startRecorder(desktop.processEnv());
    // fr(bepo): the digits are the Shift level, and with Caps Lock Shift+key gives the symbol ("«").
    expect((await run('setxkbmap', ['fr', 'bepo'], desktop.processEnv())).code).toBe(0);
    expect((await run('xdotool', ['key', 'Caps_Lock'], desktop.processEnv())).code).toBe(0);
    expect(await capsLockOn()).toBe(true);
    const code = await oathtool({ hexSecret: '3132333435363738393031323334353637383930', type: 'TOTP', time: Math.floor(Date.now() / 1000), digits: 8 });
    await new XtestTypist({ display: desktop.env.DISPLAY }).type(code);
    const keys = await recorder.waitForKeys(code.length);
    expect(keys.map((k) => k.char).join('')).toBe(code);
    expect(await capsLockOn()).toBe(true);
  });

  it.skipIf(skip)('types digits with Caps Lock on with the plain French AZERTY layout too', async () => {
    recorder = await startRecorder(desktop.processEnv());
    expect((await run('setxkbmap', ['fr'], desktop.processEnv())).code).toBe(0);
    expect((await run('xdotool', ['key', 'Caps_Lock'], desktop.processEnv())).code).toBe(0);
    const code = await oathtool({ hexSecret: '3132333435363738393031323334353637383930', type: 'HOTP', counter: 7 });
    await new XtestTypist({ display: desktop.env.DISPLAY }).type(code);
    expect((await recorder.waitForKeys(code.length)).map((k) => k.char).join('')).toBe(code);
    expect(await capsLockOn()).toBe(true);
  });

  it.skipIf(skip)('says so when the display cannot be reached', async () => {
    await expect(new XtestTypist({ display: ':987' }).type('1')).rejects.toMatchObject({ code: 'UNSUPPORTED', message: expect.stringContaining(':987') });
    await expect(new XtestTypist({ display: '' }).type('1')).rejects.toMatchObject({ code: 'UNSUPPORTED' });
  });
});

describe.skipIf(missing !== undefined)('XTEST: servers that cannot type', () => {
  it('an X server without XTEST: UNSUPPORTED naming it, and the process carries on', async () => {
    const desktop = new Desktop();
    try {
      await desktop.startX('640x480x24', ['-extension', 'XTEST']);
      await expect(new XtestTypist({ display: desktop.env.DISPLAY, releaseWaitMs: 0 }).type('12')).rejects.toMatchObject({ code: 'UNSUPPORTED', message: expect.stringMatching(/no XTEST extension/u) });
    } finally {
      await desktop.stop();
    }
  });

  it('a display that accepts the connection and never answers: UNSUPPORTED after ~3 s, the socket closed; a cancel ends it at once', async () => {
    const number = 900 + (process.pid % 90);
    mkdirSync('/tmp/.X11-unix', { recursive: true });
    const path = `/tmp/.X11-unix/X${number}`;
    rmSync(path, { force: true });
    const sockets: Socket[] = [];
    const closed: number[] = [];
    const server = createServer((socket) => {
      sockets.push(socket);
      socket.on('data', () => undefined);
      socket.on('close', () => closed.push(Date.now()));
    });
    await new Promise<void>((resolve) => server.listen(path, resolve));
    try {
      const started = Date.now();
      await expect(new XtestTypist({ display: `:${number}` }).type('1')).rejects.toMatchObject({ code: 'UNSUPPORTED', message: expect.stringMatching(/did not answer/u) });
      expect(Date.now() - started).toBeGreaterThanOrEqual(2_900);
      expect(Date.now() - started).toBeLessThan(4_500);
      await until(() => closed.length === 1);

      const abort = new AbortController();
      const typing = new XtestTypist({ display: `:${number}` }).type('1', abort.signal);
      await until(() => sockets.length === 2);
      const cancelledAt = Date.now();
      abort.abort();
      await expect(typing).rejects.toMatchObject({ code: 'CANCELLED' });
      expect(Date.now() - cancelledAt).toBeLessThan(500);
      await until(() => closed.length === 2);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
      rmSync(path, { force: true });
    }
  });
});

async function until(condition: () => boolean, ms = 3_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

