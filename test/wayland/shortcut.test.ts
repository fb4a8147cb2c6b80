// The global shortcut in sway, which has no GlobalShortcuts portal: the tray (the single
// executable, as the session's user) says so once — one log line, one toast in mako — with the
// `bindsym` lines for this keytap, and keeps serving; without any portal, and with
// xdg-desktop-portal-wlr running. Then the advice itself: the toast's line, given to sway with
// swaymsg as it stands, and the keys pressed through wayvnc put the running tray's code on the
// Wayland clipboard, equal to oathtool's.
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { missingTool } from '../platform/desktop.js';
import { oathtool } from '../support/cli.js';
import { KEYSYM_ALT_L, KEYSYM_CONTROL_L } from '../support/rfb.js';
import { WAYLAND_TOOLS, WaylandSession, stopChild } from '../support/wayland-session.js';

const missing = process.platform === 'linux' ? missingTool(...WAYLAND_TOOLS, 'mako', 'makoctl', 'wayvnc', 'oathtool', '/usr/libexec/xdg-desktop-portal', '/usr/libexec/xdg-desktop-portal-wlr') : 'Linux';
if (missing) console.warn(`skipping the Wayland shortcut test: ${missing} is missing (see .ci/run)`);

const SECRET_B32 = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
const SECRET_HEX = Buffer.from('12345678901234567890').toString('hex');
const TITLE = 'Shortcut Ctrl+Alt+K is not available here';
const KEYSYM_K = 0x6b;

describe.skipIf(missing !== undefined)('the global shortcut in sway (no GlobalShortcuts portal)', () => {
  const session = new WaylandSession();
  let keyFile = '';
  let tray: ChildProcess | undefined;
  let trayLog = '';

  beforeAll(async () => {
    await session.start();
    await session.startMako();
    keyFile = join(session.folder('keys'), 'shortcut-key.json');
    expect((await session.runKeytap(['add', '--virtual', keyFile, '--issuer', 'WL', '--account', 'alice', '--secret', SECRET_B32])).code).toBe(0);
    expect((await session.runKeytap(['virtual', 'start', keyFile, '--touch', 'auto'])).code).toBe(0);
  }, 60_000);

  afterAll(async () => {
    await stopTray();
    await session.stop();
  });

  async function startTray(): Promise<void> {
    trayLog = '';
    tray = session.spawnKeytap([], { stdio: ['ignore', 'ignore', 'pipe'] });
    tray.stderr!.on('data', (d: Buffer) => (trayLog += d.toString()));
    await session.waitFor(() => trayLog.includes('running (pid'), 'the tray to start', 20_000);
    await session.waitFor(() => trayLog.includes('is not available'), 'the shortcut to be refused', 20_000);
  }

  async function stopTray(): Promise<void> {
    const child = tray;
    tray = undefined;
    await stopChild(child);
  }

  /** What was said, once settled: the log lines and mako's toasts about the shortcut. */
  async function said(): Promise<{ lines: string[]; toasts: { summary: string; body: string }[] }> {
    // A second saying would come right after the first (the type shortcut's try, a re-registration).
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const lines = trayLog.split('\n').filter((line) => line.includes('shortcut') && line.includes('not available'));
    const toasts = (await session.makoNotifications()).filter((n) => n.summary === TITLE);
    return { lines, toasts };
  }

  const bindsym = (args: string): string => `bindsym Ctrl+Mod1+k exec ${session.keytap} ${args}`;

  function expectAdvice(result: { lines: string[]; toasts: { summary: string; body: string }[] }, why: RegExp): void {
    expect(result.lines).toHaveLength(1);
    expect(result.lines[0]).toMatch(why);
    expect(result.lines[0]).toContain(bindsym('code'));
    expect(result.toasts).toHaveLength(1);
    expect(result.toasts[0]!.body).toBe(
      ['Add to ~/.config/sway/config (sway), then reload it:', bindsym('code'), `bindsym Ctrl+Mod1+Shift+k exec ${session.keytap} code --type`].join('\n'),
    );
  }

  async function codeThroughTray(): Promise<void> {
    const period = await awayFromPeriodEnd();
    const result = await session.runKeytap(['code', 'WL']);
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toBe(await oathtool({ hexSecret: SECRET_HEX, type: 'TOTP', time: period }));
    expect(trayLog).toContain('copied the code of WL:alice');
  }

  it('without any portal: said once, with the bindsym lines, and the tray keeps serving', async () => {
    await startTray();
    expectAdvice(await said(), /No XDG desktop portal is running/u);
    await codeThroughTray();
    expect(tray!.exitCode).toBeNull();
    await stopTray();
    await session.run('makoctl', ['dismiss', '--all']);
  }, 60_000);

  it('with xdg-desktop-portal-wlr (no GlobalShortcuts): said once; the line given to sway makes Ctrl+Alt+K copy the code', async () => {
    await session.startPortal();
    await startTray();
    const result = await said();
    expectAdvice(result, /The desktop portal has no GlobalShortcuts interface/u);
    await codeThroughTray();

    // The advice as given: the toast's first binding, word for word.
    const line = result.toasts[0]!.body.split('\n')[1]!;
    const bound = await session.swaymsg(line);
    expect(bound.code, bound.stdout + bound.stderr).toBe(0);
    const input = await session.startInput();
    try {
      await session.copy('not the code');
      await session.waitFor(async () => (await session.paste()) === 'not the code', 'the clipboard to hold something else');
      const period = await awayFromPeriodEnd();
      const copiedBefore = trayLog.split('copied the code of WL:alice').length;
      await input.chord([KEYSYM_CONTROL_L, KEYSYM_ALT_L], KEYSYM_K);
      await session.waitFor(() => trayLog.split('copied the code of WL:alice').length > copiedBefore, 'the tray to copy after the keys', 15_000);
      expect(await session.paste()).toBe(await oathtool({ hexSecret: SECRET_HEX, type: 'TOTP', time: period }));
    } finally {
      input.close();
    }
    // Still once: the press is no reason to say it again.
    expect((await said()).lines).toHaveLength(1);
    expect(tray!.exitCode).toBeNull();
  }, 90_000);
});

/** Waits until at least this many seconds of the period are left; the period's start. */
async function awayFromPeriodEnd(seconds = 8): Promise<number> {
  while (30 - ((Date.now() / 1000) % 30) < seconds) await new Promise((r) => setTimeout(r, 200));
  return Math.floor(Date.now() / 30_000) * 30;
}
