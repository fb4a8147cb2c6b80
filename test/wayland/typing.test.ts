// "Type the code" in a real Wayland session, no X anywhere: sway headless, wev as the focused
// client that records every key it receives, keytap (the single executable) as the session's user.
// The code typed three ways — `keytap code --type --virtual` with no tray, the tray with "deliver":
// "type" after a dbusmenu click, `keytap code --type` served by the tray — is what oathtool
// computes, and no modifier reaches wev with it while the test holds Ctrl+Alt+Shift through
// wayvnc's keyboard, as the fingers on a shortcut would. sway has no RemoteDesktop portal: keytap
// types through wtype, with no portal running and with xdg-desktop-portal-wlr answering (it has no
// RemoteDesktop). A `wtype` first on PATH notes each run (never its input) and runs the real one.
// test/e2e/typing.test.ts is the X11 version of this test.
import type { ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { missingTool } from '../platform/desktop.js';
import { oathtool } from '../support/cli.js';
import type { RfbClient } from '../support/rfb.js';
import { KEYSYM_ALT_L, KEYSYM_CONTROL_L, KEYSYM_SHIFT_L } from '../support/rfb.js';
import { WAYLAND_TOOLS, WaylandSession, stopChild } from '../support/wayland-session.js';
import type { WevRecorder } from '../support/wev-recorder.js';
import { startWev } from '../support/wev-recorder.js';
import { findMenuItem, parseGVariant, toMenuTree } from '../tray/support.js';

const missing =
  process.platform === 'linux' ? missingTool(...WAYLAND_TOOLS, 'wev', 'wtype', 'stdbuf', 'wayvnc', 'oathtool', '/usr/libexec/xdg-desktop-portal', '/usr/libexec/xdg-desktop-portal-wlr') : 'Linux';
if (missing) console.warn(`skipping the Wayland typing test: ${missing} is missing (see .ci/run)`);

const SECRET_B32 = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
const SECRET_HEX = Buffer.from('12345678901234567890').toString('hex');
const MENU_PATH = '/MenuBar';
/** xkb's Shift, Control and Mod1 (Alt) bits in wl_keyboard.modifiers. */
const SHIFT = 1;
const CONTROL = 4;
const MOD1 = 8;
const HELD = [KEYSYM_CONTROL_L, KEYSYM_ALT_L, KEYSYM_SHIFT_L];

describe.skipIf(missing !== undefined)('typing the code in a Wayland session (sway, wtype, wev)', () => {
  const session = new WaylandSession();
  let input: RfbClient;
  let wev: WevRecorder;
  let keyFile = '';
  let wtypeLog = '';
  let env: Record<string, string> = {};
  let tray: ChildProcess | undefined;
  let trayLog = '';

  beforeAll(async () => {
    await session.start();
    input = await session.startInput();
    const shims = session.folder('shims');
    wtypeLog = join(shims, 'wtype.log');
    writeFileSync(join(shims, 'wtype'), `#!/bin/sh\necho "wtype $*" >> ${wtypeLog}\nexec /usr/bin/wtype "$@"\n`, { mode: 0o755 });
    writeFileSync(wtypeLog, '', { mode: 0o666 });
    session.own(wtypeLog);
    env = { PATH: `${shims}:${session.env.PATH}` };
    session.folder('home/.config');
    const config = session.folder('home/.config/keytap');
    writeFileSync(join(config, 'config.json'), JSON.stringify({ deliver: 'type', notifications: false }), { mode: 0o644 });
    keyFile = join(session.folder('keys'), 'type-key.json');
    const added = await session.runKeytap(['add', '--virtual', keyFile, '--issuer', 'WL', '--account', 'alice', '--secret', SECRET_B32], { env });
    expect(added.code, added.stderr).toBe(0);
    wev = await startWev(session);
  }, 60_000);

  afterAll(async () => {
    input?.close();
    await stopTray();
    await session.runKeytap(['virtual', 'stop', keyFile]).catch(() => undefined);
    await session.stop();
  });

  async function startTray(): Promise<string> {
    trayLog = '';
    tray = session.spawnKeytap([], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    tray.stderr!.on('data', (d: Buffer) => (trayLog += d.toString()));
    await session.waitFor(() => trayLog.includes('running (pid'), 'the tray to start', 20_000);
    const pid = Number(/running \(pid (\d+)/u.exec(trayLog)![1]);
    const service = `org.kde.StatusNotifierItem-${pid}-1`;
    await session.waitFor(async () => (await accountItem(service)) !== undefined, 'the account in the menu');
    return service;
  }

  async function stopTray(): Promise<void> {
    const child = tray;
    tray = undefined;
    await stopChild(child);
  }

  async function gdbus(dest: string, path: string, method: string, ...args: string[]): Promise<unknown[]> {
    const result = await session.run('gdbus', ['call', '--session', '--dest', dest, '--object-path', path, '--method', method, '--', ...args]);
    if (result.code !== 0) throw new Error(`gdbus ${method}: ${result.stderr}`);
    return parseGVariant(result.stdout.trim()) as unknown[];
  }

  async function accountItem(service: string): Promise<number | undefined> {
    try {
      const [, layout] = await gdbus(service, MENU_PATH, 'com.canonical.dbusmenu.GetLayout', '0', '-1', '[]');
      return findMenuItem(toMenuTree(layout), 'WL: alice')?.id;
    } catch {
      return undefined;
    }
  }

  /** Waits until at least this many seconds of the period are left; returns the period's start. */
  async function awayFromPeriodEnd(seconds = 10): Promise<number> {
    while (30 - ((Date.now() / 1000) % 30) < seconds) await new Promise((r) => setTimeout(r, 200));
    return Math.floor(Date.now() / 30_000) * 30;
  }

  const wtypeRuns = (): number => readFileSync(wtypeLog, 'utf8').split('\n').filter((l) => l === 'wtype -').length;

  /**
   * Holds Ctrl+Alt+Shift, has `deliver` type the code, lets go; what wev received then: the text
   * of its keys, the modifiers the compositor reported with each, and whether the hold reached wev.
   */
  async function typedWhileHeld(deliver: () => Promise<void>): Promise<{ text: string; modifiers: number[]; heldSeen: boolean; expected: string; wtype: number }> {
    const runs = wtypeRuns();
    const period = await awayFromPeriodEnd();
    const since = wev.mark();
    await input.hold(...HELD);
    try {
      await session.waitFor(() => wev.keys(since).length >= HELD.length, 'the held modifiers in wev', 5_000);
      await deliver();
      const expected = await oathtool({ hexSecret: SECRET_HEX, type: 'TOTP', time: period });
      const typed = await wev.waitForText(expected.length, since);
      const modifierKeys = wev.keys(since).filter((k) => k.char === '');
      return {
        text: typed.map((k) => k.char).join(''),
        modifiers: typed.map((k) => k.modifiers),
        // wev saw all three down together: the hold is real.
        heldSeen: modifierKeys.some((k) => (k.modifiers & (SHIFT | CONTROL | MOD1)) === (SHIFT | CONTROL | MOD1)),
        expected,
        wtype: wtypeRuns() - runs,
      };
    } finally {
      await input.release(...HELD);
    }
  }

  function expectTyped(result: Awaited<ReturnType<typeof typedWhileHeld>>): void {
    expect(result.heldSeen, JSON.stringify(wev.keys().slice(-12))).toBe(true);
    expect(result.text).toBe(result.expected);
    expect(result.modifiers.every((m) => (m & (SHIFT | CONTROL | MOD1)) === 0), JSON.stringify(result.modifiers)).toBe(true);
    expect(result.wtype).toBe(1);
  }

  describe.each([
    { portal: false, label: 'no portal running' },
    { portal: true, label: 'xdg-desktop-portal-wlr running (no RemoteDesktop)' },
  ])('$label', ({ portal }) => {
    let service = '';

    beforeAll(async () => {
      if (portal) await session.startPortal();
    }, 60_000);

    it('keytap code --type --virtual, no tray: wev receives oathtool\'s code through wtype, no modifier with it', async () => {
      let result = { code: null as number | null, stdout: '', stderr: '' };
      const typed = await typedWhileHeld(async () => {
        result = await session.runKeytap(['code', 'WL', '--type', '--virtual', keyFile], { env });
      });
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      // Typed, not printed: in a focused terminal it would land twice.
      expect(result.stdout).toBe('');
      expectTyped(typed);
    });

    it('the tray ("deliver": "type"), a dbusmenu click on the account: wev receives oathtool\'s code', async () => {
      const served = await session.runKeytap(['virtual', 'start', keyFile, '--touch', 'auto']);
      expect(served.code, served.stderr).toBe(0);
      service = await startTray();
      const id = (await accountItem(service))!;
      const typed = await typedWhileHeld(async () => {
        await gdbus(service, MENU_PATH, 'com.canonical.dbusmenu.Event', String(id), "'clicked'", '<int32 0>', 'uint32 0');
      });
      expectTyped(typed);
      await session.waitFor(() => trayLog.includes('typed the code of'), 'the log line', 5_000);
      expect(trayLog).toMatch(/keytap: typed the code of WL:alice \(virtual key type-key\.json\) into the focused window\n/u);
      expect(trayLog).not.toContain(typed.expected);
    });

    it('keytap code --type asks the running tray, which types it', async () => {
      let result = { code: null as number | null, stdout: '', stderr: '' };
      const typed = await typedWhileHeld(async () => {
        result = await session.runKeytap(['code', 'WL', '--type', '--json'], { env });
      });
      expect(result.code, result.stderr).toBe(0);
      expect(JSON.parse(result.stdout)).toMatchObject({ id: 'WL:alice', code: typed.expected, typed: true, copied: false });
      expectTyped(typed);
      expect(trayLog).not.toContain(typed.expected);
      await stopTray();
      expect((await session.runKeytap(['virtual', 'stop', keyFile])).code).toBe(0);
    });
  });

  it('with no wtype on PATH and no RemoteDesktop: a clear error naming what to install, nothing typed', async () => {
    const since = wev.mark();
    const result = await session.runKeytap(['code', 'WL', '--type', '--virtual', keyFile], { env: { PATH: '/nonexistent' } });
    expect(result.code).not.toBe(0);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/desktop portal has no RemoteDesktop interface/u);
    expect(result.stderr).toMatch(/wtype is not installed/u);
    expect(result.stderr).toMatch(/install wtype/u);
    await new Promise((r) => setTimeout(r, 500));
    expect(wev.keys(since)).toEqual([]);
  });
});
