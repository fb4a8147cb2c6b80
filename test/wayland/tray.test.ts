// The tray end to end in a real Wayland session, no X anywhere: sway headless with swaybar as the
// StatusNotifierItem host, mako for the toasts, wayvnc as the mouse and keyboard, fuzzel as the
// finder, wl-clipboard to read the clipboard back. keytap (the single executable) and a virtual
// key run as the session's user. swaybar cannot show dbusmenu menus: a left click on the icon
// calls ContextMenu, and keytap offers the accounts in fuzzel. test/e2e/tray.test.ts is the X11
// version of this test.
import type { ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { missingTool } from '../platform/desktop.js';
import { oathtool } from '../support/cli.js';
import type { RfbClient } from '../support/rfb.js';
import { WAYLAND_TOOLS, WaylandSession } from '../support/wayland-session.js';
import type { MenuTree } from '../tray/support.js';
import { findMenuItem, parseGVariant, toMenuTree } from '../tray/support.js';

const missing = process.platform === 'linux' ? missingTool(...WAYLAND_TOOLS, 'mako', 'makoctl', 'wayvnc', 'grim', 'fuzzel', 'oathtool') : 'Linux';
if (missing) console.warn(`skipping the Wayland tray test: ${missing} is missing (see .ci/run)`);

const SECRET_B32 = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
const SECRET_HEX = Buffer.from('12345678901234567890').toString('hex');
const CLEAR_SECONDS = 3;
const WATCHER = 'org.kde.StatusNotifierWatcher';
const MENU_PATH = '/MenuBar';
/** The key icon's blue (icons/key-*.png, build/icons.mjs). */
const KEY_BLUE = [37, 124, 240] as const;

describe.skipIf(missing !== undefined)('the tray in a Wayland session (sway, swaybar, mako, fuzzel)', () => {
  const session = new WaylandSession({ bar: true });
  let input: RfbClient;
  let keyFile: string;
  let tray: ChildProcess | undefined;
  let trayLog = '';
  let trayExit: Promise<number | null>;
  let service: string;
  /** Every toast as it is sent, including the touch prompt that "Code copied" replaces in place (mako lists only the current one). */
  let busText = '';

  beforeAll(async () => {
    await session.start();
    await session.startMako();
    input = await session.startInput();
    const monitor = session.spawn('dbus-monitor', ["interface='org.freedesktop.Notifications',member='Notify'"], { stdio: ['ignore', 'pipe', 'ignore'] });
    monitor.stdout!.on('data', (d: Buffer) => (busText += d.toString()));
    // The settings where keytap looks for them in this session (no KEYTAP_* variables: `swaymsg
    // exec` below starts `keytap code` with sway's environment alone).
    session.folder('home/.config');
    const config = session.folder('home/.config/keytap');
    writeFileSync(join(config, 'config.json'), JSON.stringify({ clipboardClearSeconds: CLEAR_SECONDS }), { mode: 0o644 });
    session.own(join(config, 'config.json'));
    keyFile = join(session.folder('keys'), 'wl-key.json');
    const added = await session.runKeytap(['add', '--virtual', keyFile, '--issuer', 'E2E', '--account', 'alice', '--secret', SECRET_B32, '--touch']);
    expect(added.code, added.stderr).toBe(0);
    const served = await session.runKeytap(['virtual', 'start', keyFile, '--touch', 'auto', '--touch-delay', '1500']);
    expect(served.code, served.stderr).toBe(0);

    tray = session.spawnKeytap([], { stdio: ['ignore', 'ignore', 'pipe'] });
    trayExit = new Promise((resolve) => tray!.once('exit', (code) => resolve(code)));
    tray.stderr!.on('data', (d: Buffer) => (trayLog += d.toString()));
    await session.waitFor(() => trayLog.includes('running (pid'), 'the tray to start');
    const pid = await session.waitFor(() => session.sessionProcesses().find((p) => commandOf(p) === 'keytap' && argsOf(p).length === 1), 'the tray process');
    service = `org.kde.StatusNotifierItem-${pid}-1`;
    await session.waitFor(async () => (await accountItem()) !== undefined, 'the account in the menu');
  }, 60_000);

  afterAll(async () => {
    input?.close();
    await session.runKeytap(['virtual', 'stop', keyFile]).catch(() => undefined);
    if (tray && tray.exitCode === null) {
      tray.kill('SIGTERM');
      await trayExit;
    }
    await session.stop();
  });

  async function gdbus(dest: string, path: string, method: string, ...args: string[]): Promise<unknown[]> {
    const result = await session.run('gdbus', ['call', '--session', '--dest', dest, '--object-path', path, '--method', method, '--', ...args]);
    if (result.code !== 0) throw new Error(`gdbus ${method}: ${result.stderr}`);
    return parseGVariant(result.stdout.trim()) as unknown[];
  }

  async function watcherProperty(name: string): Promise<unknown> {
    const [value] = (await gdbus(WATCHER, '/StatusNotifierWatcher', 'org.freedesktop.DBus.Properties.Get', WATCHER, name)) as [{ variant: unknown }];
    return value.variant;
  }

  async function accountItem(): Promise<MenuTree | undefined> {
    try {
      const [, layout] = await gdbus(service, MENU_PATH, 'com.canonical.dbusmenu.GetLayout', '0', '-1', '[]');
      return find(toMenuTree(layout), 'E2E: alice (touch)');
    } catch {
      return undefined;
    }
  }

  /** Waits until at least this many seconds of the period are left, so the next-period rule stays out of the way. */
  async function awayFromPeriodEnd(seconds = 10): Promise<number> {
    while (30 - ((Date.now() / 1000) % 30) < seconds) await new Promise((r) => setTimeout(r, 200));
    return Math.floor(Date.now() / 30_000) * 30;
  }

  const expectedCode = (period: number): Promise<string> => oathtool({ hexSecret: SECRET_HEX, type: 'TOTP', time: period });
  const copiedLines = (): number => trayLog.match(/keytap: copied the code of E2E:alice /gu)?.length ?? 0;

  /** The account's menu item clicked over dbusmenu; resolves with oathtool's code once it is on the clipboard. */
  async function clickThroughDbusmenu(): Promise<string> {
    const period = await awayFromPeriodEnd();
    const item = (await accountItem())!;
    const copied = copiedLines();
    await gdbus(service, MENU_PATH, 'com.canonical.dbusmenu.Event', String(item.id), "'clicked'", '<int32 0>', 'uint32 0');
    const expected = await expectedCode(period);
    // This copy's own log line first: the clipboard may still hold the same code from before.
    await session.waitFor(() => copiedLines() > copied, 'the copy in the log', 10_000);
    await session.waitFor(async () => (await session.paste()) === expected, 'the code on the Wayland clipboard', 10_000);
    return expected;
  }

  /** The key icon in swaybar: the centre of its blue pixels in the bar's right half. */
  function iconInBar(shot: PNG): { x: number; y: number; pixels: number } | undefined {
    let xs = 0;
    let ys = 0;
    let pixels = 0;
    for (let y = 0; y < 40; y++) {
      for (let x = Math.floor(shot.width / 2); x < shot.width; x++) {
        const i = (y * shot.width + x) * 4;
        const near = KEY_BLUE.every((c, k) => Math.abs(shot.data[i + k]! - c) <= 12);
        if (!near) continue;
        xs += x;
        ys += y;
        pixels++;
      }
    }
    return pixels > 20 ? { x: Math.round(xs / pixels), y: Math.round(ys / pixels), pixels } : undefined;
  }

  it('has no X display anywhere: not in the session, not in the tray process', () => {
    expect(session.env).not.toHaveProperty('DISPLAY');
    expect(session.env.WAYLAND_DISPLAY).toMatch(/^wayland-\d+$/u);
    const trayPid = Number(service.split('-')[1]);
    expect(readFileSync(`/proc/${trayPid}/environ`, 'latin1').split('\0').filter((v) => v.startsWith('DISPLAY='))).toEqual([]);
  });

  it("registers with swaybar's watcher, and swaybar draws the icon at the bar's right end", async () => {
    expect(await watcherProperty('IsStatusNotifierHostRegistered')).toBe(true);
    const items = (await watcherProperty('RegisteredStatusNotifierItems')) as string[];
    expect(items.some((item) => item.startsWith(service)), `${service} in ${JSON.stringify(items)}`).toBe(true);
    const icon = await session.waitFor(() => iconInBar(PNG.sync.read(session.screenshot())), 'the key icon in the bar');
    expect(icon.x).toBeGreaterThan(session.width * 0.8);
  });

  it('a real click on the icon opens fuzzel; choosing the account puts oathtool\'s code on the clipboard, with the touch and copied toasts from mako; cleared after the clear time', async () => {
    const icon = iconInBar(PNG.sync.read(session.screenshot()))!;
    const period = await awayFromPeriodEnd();
    const before = PNG.sync.read(session.screenshot());
    busText = '';
    await input.click(icon.x, icon.y);
    await session.waitFor(() => session.sessionProcesses().some((p) => commandOf(p) === 'fuzzel'), 'fuzzel to start', 5_000);
    // Its layer surface drawn: the middle of the screen changes.
    await session.waitFor(() => differs(before, PNG.sync.read(session.screenshot())), 'fuzzel to show', 5_000);
    await input.type('alice', true);
    // The key "is touched" 1.5 s after it asks: long enough to see the prompt in mako before "Code copied" replaces it.
    await session.waitFor(async () => (await session.makoNotifications()).some((n) => n.summary === 'Touch your key'), 'the touch prompt in mako', 5_000);
    const expected = await expectedCode(period);
    await session.waitFor(async () => (await session.paste()) === expected, 'the code on the Wayland clipboard', 10_000);
    // keytap owns the selection itself (sway has wlr-data-control), so the copy carries KDE's password marker.
    expect(await session.clipboardTypes()).toEqual(expect.arrayContaining(['text/plain', 'UTF8_STRING', 'x-kde-passwordManagerHint']));
    expect(await session.paste('x-kde-passwordManagerHint')).toBe('secret');
    expect(trayLog).toContain('keytap: clipboard: wlr-data-control (in-process) (copies marked sensitive)\n');
    const toasts = await session.waitFor(async () => {
      const shown = await session.makoNotifications();
      return shown.some((n) => /^Code copied, valid for \d+ s$/u.test(n.summary)) ? shown : undefined;
    }, 'the copied toast in mako', 5_000);
    expect(busText).toContain('"Touch your key"');
    expect(busText).toMatch(/"Code copied, valid for \d+ s"/u);
    expect(busText).not.toContain(expected);
    expect(JSON.stringify(toasts)).not.toContain(expected);
    await new Promise((r) => setTimeout(r, (CLEAR_SECONDS + 1.5) * 1000));
    expect(await session.paste()).toBe('');
    expect(trayLog).toMatch(/keytap: copied the code of E2E:alice \(virtual key wl-key\.json\) to the clipboard, valid for \d+ s; clearing it in 3 s\n/u);
    expect(trayLog).toMatch(/keytap: clipboard cleared\n/u);
    expect(trayLog).not.toContain(expected);
  });

  it('a click through dbusmenu gives the code too; copied over in between, the clipboard keeps what was copied', async () => {
    const expected = await clickThroughDbusmenu();
    await session.copy('something else');
    await new Promise((r) => setTimeout(r, (CLEAR_SECONDS + 1.5) * 1000));
    expect(await session.paste(), trayLog).toBe('something else');
    expect(trayLog, trayLog).toMatch(/keytap: clipboard left alone: it holds something copied since\n/u);
    expect(trayLog).not.toContain(expected);
  });

  it('`keytap code` started as a compositor binding starts it (swaymsg exec) is served by the running tray, onto the clipboard', async () => {
    const out = session.folder('exec');
    const period = await awayFromPeriodEnd();
    const served = copiedLines();
    // What a binding runs is `keytap code E2E`; the script only keeps its output and exit code for the test.
    const script = join(out, 'code.sh');
    writeFileSync(script, `#!/bin/sh\n${session.keytap} code E2E > ${out}/stdout 2> ${out}/stderr\necho $? > ${out}/rc\n`, { mode: 0o755 });
    const exec = await session.swaymsg('exec', script);
    expect(exec.code, exec.stderr).toBe(0);
    const rc = await session.waitFor(() => readIfThere(join(out, 'rc')), '`keytap code` to end', 15_000);
    const expected = await expectedCode(period);
    expect([rc.trim(), readFileSync(join(out, 'stdout'), 'utf8').trim()], readFileSync(join(out, 'stderr'), 'utf8')).toEqual(['0', expected]);
    expect(await session.paste()).toBe(expected);
    expect(copiedLines()).toBe(served + 1);
    expect(trayLog).not.toContain(expected);
  });

  it('quits on SIGTERM while it owns the clipboard: clears it, hangs up, and exits', async () => {
    await clickThroughDbusmenu();
    // The tray itself, not runuser in front of it (which gives its child 2 s, then kills it).
    process.kill(Number(service.split('-')[1]), 'SIGTERM');
    expect(await trayExit).toBe(0);
    expect(trayLog).toMatch(/keytap: quitting\n.*keytap: clipboard cleared\n/u);
    expect(await session.paste()).toBe('');
  });
});

const find = findMenuItem;

function commandOf(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function argsOf(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
  } catch {
    return [];
  }
}

function readIfThere(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Whether the middle third of two screenshots differs in more than a few pixels. */
function differs(a: PNG, b: PNG): boolean {
  let changed = 0;
  for (let y = Math.floor(a.height / 3); y < (2 * a.height) / 3; y++) {
    for (let x = Math.floor(a.width / 3); x < (2 * a.width) / 3; x++) {
      const i = (y * a.width + x) * 4;
      if (a.data[i] !== b.data[i] || a.data[i + 1] !== b.data[i + 1] || a.data[i + 2] !== b.data[i + 2]) changed++;
    }
  }
  return changed > 100;
}
