// QR codes on the screen of a real Wayland session, no X anywhere: sway headless shows a QR code
// (an otpauth URI made by the qrcode package) as its wallpaper (swaybg), and keytap (the single
// executable, as the session's user) adds its account — from the tray's "Add account from QR code
// on screen…" (a dbusmenu click) and from `keytap add --qr` — first with no portal running (grim),
// then through xdg-desktop-portal with its wlroots backend (the Screenshot portal). Each time the
// added account's code equals oathtool's for the secret in the URI, zbarimg (the peer) reads the
// same URI from a grim screenshot of the same screen, and with the portal the file it saved (its
// Response names it, seen with dbus-monitor) is gone once keytap read it. A `grim` first on
// keytap's PATH notes each run and runs the real one: keytap runs it without a portal, never with.
// With neither (no portal, no grim on PATH) the CLI and the tray say both reasons, and add nothing.
import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { base32Encode } from '../../src/otp/encoding.js';
import { missingTool } from '../platform/desktop.js';
import { oathtool } from '../support/cli.js';
import { qrPng } from '../support/qr-images.js';
import { WAYLAND_TOOLS, WaylandSession, stopChild } from '../support/wayland-session.js';
import { findMenuItem, parseGVariant, toMenuTree } from '../tray/support.js';

const missing =
  process.platform === 'linux'
    ? missingTool(...WAYLAND_TOOLS, 'grim', 'swaybg', 'zbarimg', 'dbus-monitor', 'oathtool', '/usr/libexec/xdg-desktop-portal', '/usr/libexec/xdg-desktop-portal-wlr')
    : 'Linux';
if (missing) console.warn(`skipping the Wayland QR code test: ${missing} is missing (see .ci/run)`);

const MENU_PATH = '/MenuBar';
const QR_ITEM = 'Add account from QR code on screen…';

/** An account of its own for each way of adding it: a key holds one account of a name. */
function account(issuer: string): { issuer: string; uri: string; hex: string } {
  const secret = Buffer.from(`keytap wayland ${issuer}`.padEnd(20, '.').slice(0, 20));
  return { issuer, uri: `otpauth://totp/${issuer}:alice?secret=${base32Encode(secret)}&issuer=${issuer}`, hex: secret.toString('hex') };
}

describe.skipIf(missing !== undefined)('QR codes on the screen of a Wayland session (sway; grim, then the Screenshot portal)', () => {
  const session = new WaylandSession();
  let servedKey = '';
  let cliKey = '';
  let grimLog = '';
  let env: Record<string, string> = {};
  let tray: ChildProcess | undefined;
  let trayLog = '';
  let service = '';
  let busText = '';

  beforeAll(async () => {
    await session.start();
    const shims = session.folder('shims');
    grimLog = join(shims, 'grim.log');
    writeFileSync(join(shims, 'grim'), `#!/bin/sh\necho "grim $*" >> ${grimLog}\nexec /usr/bin/grim "$@"\n`, { mode: 0o755 });
    writeFileSync(grimLog, '', { mode: 0o666 });
    session.own(grimLog);
    env = { PATH: `${shims}:${session.env.PATH}` };
    const keys = session.folder('keys');
    servedKey = join(keys, 'served.json');
    cliKey = join(keys, 'cli.json');
    // Keys with an account already: the new one is added next to it.
    for (const file of [servedKey, cliKey]) {
      const made = await session.runKeytap(['add', '--virtual', file, '--issuer', 'First', '--account', 'bob', '--secret', 'JBSWY3DPEHPK3PXP']);
      expect(made.code, made.stderr).toBe(0);
    }
    const served = await session.runKeytap(['virtual', 'start', servedKey, '--touch', 'auto']);
    expect(served.code, served.stderr).toBe(0);
    const monitor = session.spawn('dbus-monitor', ["type='signal',interface='org.freedesktop.portal.Request',member='Response'"], { stdio: ['ignore', 'pipe', 'ignore'] });
    monitor.stdout!.on('data', (d: Buffer) => (busText += d.toString()));
  }, 60_000);

  afterAll(async () => {
    await stopTray();
    await session.runKeytap(['virtual', 'stop', servedKey]).catch(() => undefined);
    await session.stop();
  });

  async function startTray(path = env.PATH!): Promise<void> {
    trayLog = '';
    tray = session.spawnKeytap([], { env: { PATH: path }, stdio: ['ignore', 'ignore', 'pipe'] });
    tray.stderr!.on('data', (d: Buffer) => (trayLog += d.toString()));
    await session.waitFor(() => trayLog.includes('running (pid'), 'the tray to start', 20_000);
    service = `org.kde.StatusNotifierItem-${/running \(pid (\d+)/u.exec(trayLog)![1]}-1`;
    await session.waitFor(async () => (await menuItem(QR_ITEM)) !== undefined, 'the QR item in the menu');
  }

  async function stopTray(): Promise<void> {
    const child = tray;
    tray = undefined;
    await stopChild(child);
  }

  async function menuItem(label: string): Promise<number | undefined> {
    const result = await session.run('gdbus', ['call', '--session', '--dest', service, '--object-path', MENU_PATH, '--method', 'com.canonical.dbusmenu.GetLayout', '--', '0', '-1', '[]']);
    if (result.code !== 0) return undefined;
    const [, layout] = parseGVariant(result.stdout.trim()) as unknown[];
    return findMenuItem(toMenuTree(layout), label)?.id;
  }

  const grimRuns = (): number => readFileSync(grimLog, 'utf8').split('\n').filter((l) => l === 'grim -').length;

  /** What zbarimg reads in a grim screenshot of the whole output now. */
  function zbarOnScreen(): string[] {
    const file = join(session.dir, 'zbar-screen.png');
    writeFileSync(file, session.screenshot());
    try {
      return execFileSync('zbarimg', ['--quiet', '--raw', file], { encoding: 'utf8' }).split('\n').filter((l) => l !== '');
    } catch {
      // zbarimg exits 4 when it finds no code.
      return [];
    }
  }

  /** Shows the account's QR code as the wallpaper, and waits until it is on the screen: zbarimg reads it there. */
  async function show(uri: string): Promise<void> {
    const file = join(session.dir, `qr-${Date.now()}.png`);
    writeFileSync(file, await qrPng(uri, 6), { mode: 0o644 });
    const bg = await session.swaymsg('output', 'HEADLESS-1', 'bg', file, 'center', '#ffffff');
    expect(bg.code, bg.stdout + bg.stderr).toBe(0);
    await session.waitFor(() => (zbarOnScreen().join('\n') === uri ? true : undefined), 'the QR code on the screen');
  }

  /** The account's code, read by keytap, is oathtool's; away from a period's end, where keytap gives the next period's code. */
  async function expectCode(issuer: string, hex: string, args: string[]): Promise<void> {
    while (30 - ((Date.now() / 1000) % 30) < 10) await new Promise((r) => setTimeout(r, 200));
    const period = Math.floor(Date.now() / 30_000) * 30;
    const result = await session.runKeytap(['code', issuer, ...args]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trim()).toBe(await oathtool({ hexSecret: hex, type: 'TOTP', time: period }));
  }

  async function addThroughTray(issuer: string): Promise<void> {
    const id = (await menuItem(QR_ITEM))!;
    const clicked = await session.run('gdbus', ['call', '--session', '--dest', service, '--object-path', MENU_PATH, '--method', 'com.canonical.dbusmenu.Event', '--', String(id), "'clicked'", '<int32 0>', 'uint32 0']);
    expect(clicked.code, clicked.stderr).toBe(0);
    const line = await session.waitFor(() => trayLog.split('\n').find((l) => l.includes('from a QR code')), 'the tray to say what it did with the QR code', 20_000);
    expect(line).toMatch(new RegExp(`keytap: added ${issuer}: alice from a QR code on the screen to `, 'u'));
  }

  describe('no portal running: grim', () => {
    it('keytap add --qr (the screen): the account is added, its code is oathtool\'s', async () => {
      const { issuer, uri, hex } = account('GrimCli');
      await show(uri);
      const runs = grimRuns();
      const added = await session.runKeytap(['add', '--virtual', cliKey, '--qr', '--yes'], { env });
      expect(added.code, added.stderr).toBe(0);
      expect(added.stderr).toContain('Looking for QR codes on the screen (xdg-desktop-portal, else grim)…');
      expect(grimRuns()).toBe(runs + 1);
      expect(zbarOnScreen()).toEqual([uri]);
      await expectCode(issuer, hex, ['--virtual', cliKey]);
    });

    it('the tray\'s "Add account from QR code on screen…": the account is on the served key, its code is oathtool\'s', async () => {
      const { issuer, uri, hex } = account('GrimTray');
      await show(uri);
      await startTray();
      const runs = grimRuns();
      await addThroughTray(issuer);
      expect(grimRuns()).toBe(runs + 1);
      expect(zbarOnScreen()).toEqual([uri]);
      await expectCode(issuer, hex, []);
      const listed = await session.runKeytap(['list']);
      expect(listed.stdout).toContain(`${issuer}:alice`);
      await stopTray();
    });

    it('neither a portal nor grim: `keytap add --qr` says both, and what to install; nothing is added', async () => {
      const before = readFileSync(cliKey, 'utf8');
      const result = await session.runKeytap(['add', '--virtual', cliKey, '--qr', '--yes'], { env: { PATH: '/nonexistent' } });
      expect(result.code).not.toBe(0);
      expect(result.stderr).toMatch(/The screen cannot be captured: No XDG desktop portal is running \(.*\)\. grim is not installed\./u);
      expect(result.stderr).toMatch(/xdg-desktop-portal-gnome, -kde; on sway, Hyprland: -wlr, or grim: apt install grim/u);
      expect(readFileSync(cliKey, 'utf8')).toBe(before);
    });

    it('neither, from the tray: its log says both reasons, nothing is added, and it keeps serving', async () => {
      const { issuer, uri } = account('NoCapture');
      await show(uri);
      await startTray('/nonexistent');
      const id = (await menuItem(QR_ITEM))!;
      const clicked = await session.run('gdbus', ['call', '--session', '--dest', service, '--object-path', MENU_PATH, '--method', 'com.canonical.dbusmenu.Event', '--', String(id), "'clicked'", '<int32 0>', 'uint32 0']);
      expect(clicked.code, clicked.stderr).toBe(0);
      const line = await session.waitFor(() => trayLog.split('\n').find((l) => l.includes('from a QR code')), 'the tray to say what it did with the QR code', 20_000);
      expect(line).toMatch(/adding an account from a QR code: UNSUPPORTED: The screen cannot be captured: No XDG desktop portal is running \(.*\)\. grim is not installed\./u);
      // Served by the tray still: the key's accounts, without a new one.
      const listed = await session.runKeytap(['list']);
      expect(listed.code, listed.stderr).toBe(0);
      expect(listed.stdout).toContain('First:bob');
      expect(listed.stdout).not.toContain(issuer);
      expect(tray!.exitCode).toBeNull();
      await stopTray();
    });
  });

  describe('xdg-desktop-portal-wlr running: the Screenshot portal', () => {
    beforeAll(async () => {
      await session.startPortal();
      // xdg-desktop-portal offers Screenshot only with an Access backend installed (wayland-session.ts).
      const offered = await session.run('gdbus', ['call', '--session', '--dest', 'org.freedesktop.portal.Desktop', '--object-path', '/org/freedesktop/portal/desktop', '--method', 'org.freedesktop.DBus.Properties.Get', 'org.freedesktop.portal.Screenshot', 'version']);
      expect(offered.stdout, `no Screenshot portal (is xdg-desktop-portal-gtk installed? see .ci/run): ${offered.stderr}`).toMatch(/<uint32 \d+>/u);
    }, 60_000);

    /** The files the portal said it saved screenshots in, since `since` in the bus log. */
    const savedFiles = (since: number): string[] => [...busText.slice(since).matchAll(/string "(file:[^"]+)"/gu)].map((m) => fileURLToPath(m[1]!));

    it('keytap add --qr: through the portal (not grim); the account\'s code is oathtool\'s; the portal\'s file is deleted', async () => {
      const { issuer, uri, hex } = account('PortalCli');
      await show(uri);
      const runs = grimRuns();
      const since = busText.length;
      const added = await session.runKeytap(['add', '--virtual', cliKey, '--qr', '--yes'], { env });
      expect(added.code, added.stderr).toBe(0);
      expect(grimRuns(), added.stderr).toBe(runs);
      const saved = await session.waitFor(() => (savedFiles(since).length > 0 ? savedFiles(since) : undefined), 'the portal\'s Response on the bus', 5_000);
      expect(saved).toHaveLength(1);
      console.log(`the portal saved its screenshot in ${saved[0]}`);
      expect(existsSync(saved[0]!)).toBe(false);
      expect(zbarOnScreen()).toEqual([uri]);
      await expectCode(issuer, hex, ['--virtual', cliKey]);
    });

    it('the tray\'s "Add account from QR code on screen…": through the portal; the code is oathtool\'s; the portal\'s file is deleted', async () => {
      const { issuer, uri, hex } = account('PortalTray');
      await show(uri);
      await startTray();
      const runs = grimRuns();
      const since = busText.length;
      await addThroughTray(issuer);
      expect(grimRuns()).toBe(runs);
      const saved = await session.waitFor(() => (savedFiles(since).length > 0 ? savedFiles(since) : undefined), 'the portal\'s Response on the bus', 5_000);
      expect(saved).toHaveLength(1);
      expect(existsSync(saved[0]!)).toBe(false);
      expect(zbarOnScreen()).toEqual([uri]);
      await expectCode(issuer, hex, []);
      expect(trayLog).not.toContain(uri.split('secret=')[1]!.split('&')[0]!);
    });
  });
});
