// The X11 clipboard adapters and the guard on a real X server (Xvfb), read back with xsel/xclip as
// another program would.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ClipboardGuard, createClipboard } from '../../src/desktop/clipboard/index.js';
import { xclipClipboard, xselClipboard } from '../../src/desktop/clipboard/command.js';
import { X11Clipboard } from '../../src/desktop/clipboard/x11.js';
import type { Clipboard } from '../../src/desktop/platform.js';
import type { KeytapError } from '../../src/errors.js';
import { Desktop, missingTool, run, skipMessage } from './desktop.js';

const missing = missingTool('Xvfb', 'xsel', 'xclip');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.skipIf(missing !== undefined)(`X11 clipboard under Xvfb ${skipMessage(missing, 'xvfb, xsel, xclip')}`, () => {
  const desktop = new Desktop();
  let x11: X11Clipboard;
  let env: NodeJS.ProcessEnv;

  /** What another program gets when it pastes. */
  const pasted = async () => (await run('xsel', ['--clipboard', '--output'], env)).stdout;
  const targets = async () => (await run('xclip', ['-selection', 'clipboard', '-o', '-t', 'TARGETS'], env)).stdout.split('\n').filter(Boolean);
  /** A user copying something else, the way a terminal or an editor would. */
  const userCopies = async (text: string) => {
    const result = await run('xsel', ['--clipboard', '--input'], env, text);
    expect(result.code).toBe(0);
  };

  beforeAll(async () => {
    await desktop.startX();
    env = desktop.processEnv();
    x11 = new X11Clipboard(desktop.env.DISPLAY!);
  });
  afterAll(async () => {
    x11?.close();
    await desktop.stop();
  });

  it('in-process owner: text plus x-kde-passwordManagerHint=secret for a sensitive copy', async () => {
    expect(x11.marksSensitive).toBe(true);
    await x11.write('123456', { sensitive: true });
    expect(await pasted()).toBe('123456');
    expect(await targets()).toEqual(
      expect.arrayContaining(['TARGETS', 'UTF8_STRING', 'STRING', 'TEXT', 'text/plain', 'text/plain;charset=utf-8', 'x-kde-passwordManagerHint']),
    );
    expect((await run('xclip', ['-selection', 'clipboard', '-o', '-t', 'x-kde-passwordManagerHint'], env)).stdout).toBe('secret');
    expect((await run('xclip', ['-selection', 'clipboard', '-o', '-t', 'text/plain'], env)).stdout).toBe('123456');
    expect(await x11.read()).toBe('123456');
  });

  it('in-process owner: no hint for an ordinary copy; UTF-8 survives', async () => {
    await x11.write('grüße ✓', { sensitive: false });
    expect(await pasted()).toBe('grüße ✓');
    expect(await targets()).not.toContain('x-kde-passwordManagerHint');
  });

  it('in-process owner: reads another program\'s copy, and clears whoever owns it', async () => {
    await x11.write('111111', { sensitive: true });
    await userCopies('from the user');
    await sleep(50);
    expect(await x11.read()).toBe('from the user');
    await x11.clear();
    expect(await pasted()).toBe('');
    expect(await x11.read()).toBeUndefined();
  });

  it.each([
    ['xsel', () => xselClipboard(undefined, env)],
    ['xclip', () => xclipClipboard(undefined, env)],
  ])('%s: round trip and clear, no marker', async (_name, make) => {
    const clipboard = make();
    expect(clipboard.marksSensitive).toBe(false);
    await clipboard.write('654321', { sensitive: true });
    expect(await pasted()).toBe('654321');
    expect(await clipboard.read()).toBe('654321');
    expect(await targets()).not.toContain('x-kde-passwordManagerHint');
    await clipboard.clear();
    expect(await clipboard.read()).toBeUndefined();
  });

  describe.each([
    ['in-process', () => x11 as Clipboard],
    ['xsel', () => xselClipboard(undefined, env) as Clipboard],
  ])('ClipboardGuard over %s', (_name, make) => {
    it('clears after the delay when the clipboard still holds our code', async () => {
      const errors: KeytapError[] = [];
      const guard = new ClipboardGuard(make(), { clearAfterMs: 300, onError: (e) => errors.push(e) });
      await guard.copy('246810');
      expect(await pasted()).toBe('246810');
      await sleep(600);
      await guard.idle();
      expect(await pasted()).toBe('');
      expect(errors).toEqual([]);
    });

    it("leaves a user's newer copy alone", async () => {
      const guard = new ClipboardGuard(make(), { clearAfterMs: 300 });
      await guard.copy('135790');
      await userCopies('my own text');
      await sleep(600);
      await guard.idle();
      expect(await pasted()).toBe('my own text');
    });

    it('a new copy cancels the previous timer', async () => {
      const guard = new ClipboardGuard(make(), { clearAfterMs: 400 });
      await guard.copy('111111');
      await sleep(250);
      await guard.copy('222222');
      await sleep(250); // the first timer would have fired by now
      expect(await pasted()).toBe('222222');
      await sleep(400);
      await guard.idle();
      expect(await pasted()).toBe('');
    });
  });

  it('createClipboard: in-process owner for the resident process, xsel for a short-lived one', async () => {
    const resident = await createClipboard({ platform: 'linux', env: { PATH: process.env.PATH, DISPLAY: desktop.env.DISPLAY } });
    expect(resident.name).toBe('X11 (in-process)');
    (resident as X11Clipboard).close();
    const shortLived = await createClipboard({ platform: 'linux', env: { PATH: process.env.PATH, DISPLAY: desktop.env.DISPLAY }, resident: false });
    expect(shortLived.name).toBe('xsel');
  });

  it('the X server going away is a rejected call, not a crash', async () => {
    const other = new Desktop();
    await other.startX();
    const clipboard = new X11Clipboard(other.env.DISPLAY!);
    await clipboard.write('999999', { sensitive: true });
    await other.stop();
    await sleep(200);
    await expect(clipboard.write('888888', { sensitive: true })).rejects.toMatchObject({ code: 'UNSUPPORTED' });
    const error = await clipboard.read().catch((e: unknown) => e as KeytapError);
    expect((error as KeytapError).message).not.toMatch(/[89]{6}/);
  });

  it('createClipboard: a display that cannot be reached falls back and says why', async () => {
    const errors: KeytapError[] = [];
    const clipboard = await createClipboard({ platform: 'linux', env: { PATH: process.env.PATH, DISPLAY: ':999' }, onError: (e) => errors.push(e) });
    expect(clipboard.name).toBe('xsel');
    expect(errors[0]?.code).toBe('UNSUPPORTED');
  });
});
