// End to end on Linux, all real: a session dbus-daemon, Xvfb, dunst, a StatusNotifierWatcher, the
// resident keytap process as a user starts it, and a virtual key served by `keytap virtual start`.
// The menu is read and clicked over com.canonical.dbusmenu as a desktop shell would; the clipboard
// is read with xsel; the toasts are read on the bus (dbus-monitor) and from dunst's history.
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, watch, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Desktop, dunstHistory, missingTool, run } from '../platform/desktop.js';
import { oathtool, runKeytap, spawnKeytap, tempDir } from '../support/cli.js';
import type { MenuTree } from '../tray/support.js';
import { findMenuItem, gdbusCall, toMenuTree, waitFor } from '../tray/support.js';
import { qrPng } from '../support/qr-images.js';

const missing = process.platform === 'linux' ? missingTool('Xvfb', 'dbus-daemon', 'dbus-monitor', 'dunst', 'dunstctl', 'gdbus', 'xsel', 'oathtool', 'status-notifier-watcher') : 'Linux';
if (missing) console.warn(`skipping the tray end-to-end test: ${missing} is missing (see .ci/run)`);

const SECRET_B32 = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
const SECRET_HEX = Buffer.from('12345678901234567890').toString('hex');
const CLEAR_SECONDS = 3;
const MENU_PATH = '/MenuBar';
const { version: VERSION } = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8')) as { version: string };

describe.skipIf(missing !== undefined)('the tray, end to end', () => {
  const desktop = new Desktop();
  const dir = tempDir('keytap-e2e-');
  const keyFile = join(dir, 'e2e-key.json');
  let env: NodeJS.ProcessEnv;
  let watcher: ChildProcess | undefined;
  let monitor: ChildProcess | undefined;
  let busText = '';
  let tray: ChildProcess | undefined;
  let trayLog = '';
  let trayExit: Promise<number | null>;
  let service: string;

  beforeAll(async () => {
    await desktop.startX();
    desktop.startBus();
    await desktop.startDunst();
    env = {
      ...desktop.env,
      WAYLAND_DISPLAY: '',
      KEYTAP_RUNTIME_DIR: join(dir, 'run'),
      KEYTAP_CONFIG_DIR: join(dir, 'config'),
      KEYTAP_DATA_DIR: join(dir, 'data'),
      XDG_CONFIG_HOME: join(dir, 'xdg-config'),
    };
    watcher = spawn('status-notifier-watcher', [], { env: desktop.processEnv(), stdio: 'ignore' });
    await desktop.waitFor(async () => (await run('gdbus', ['call', '--session', '--dest', 'org.freedesktop.DBus', '--object-path', '/org/freedesktop/DBus', '--method', 'org.freedesktop.DBus.NameHasOwner', 'org.kde.StatusNotifierWatcher'], desktop.processEnv())).stdout.includes('true'));
    // Every toast as it is sent, including the touch prompt that "Code copied" replaces in place.
    monitor = spawn('dbus-monitor', ['--address', desktop.env.DBUS_SESSION_BUS_ADDRESS!, "interface='org.freedesktop.Notifications',member='Notify'"], { stdio: ['ignore', 'pipe', 'ignore'] });
    monitor.stdout!.on('data', (d: Buffer) => (busText += d.toString()));

    mkdirSync(join(dir, 'config'), { recursive: true });
    writeFileSync(join(dir, 'config', 'config.json'), JSON.stringify({ clipboardClearSeconds: CLEAR_SECONDS, shortcut: 'Ctrl+Alt+F12' }));
    expect((await runKeytap(['add', '--virtual', keyFile, '--issuer', 'E2E', '--account', 'alice', '--secret', SECRET_B32, '--touch'], { env })).code).toBe(0);

    tray = spawnKeytap([], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    trayExit = new Promise((resolve) => tray!.once('exit', (code) => resolve(code)));
    tray.stderr!.on('data', (d: Buffer) => (trayLog += d.toString()));
    await waitFor(() => trayLog.includes('running (pid'), 'the tray to start', 15_000);
    service = `org.kde.StatusNotifierItem-${tray.pid}-1`;
  });

  afterAll(async () => {
    await runKeytap(['virtual', 'stop', keyFile], { env }).catch(() => undefined);
    if (tray && tray.exitCode === null) {
      tray.kill('SIGTERM');
      await trayExit;
    }
    monitor?.kill();
    watcher?.kill();
    await desktop.stop();
  });

  async function menu(): Promise<MenuTree> {
    const [, layout] = await gdbusCall(env.DBUS_SESSION_BUS_ADDRESS!, service, MENU_PATH, 'com.canonical.dbusmenu.GetLayout', '0', '-1', '[]');
    return toMenuTree(layout);
  }

  const find = findMenuItem;

  async function click(label: string): Promise<void> {
    const item = find(await menu(), label);
    if (!item) throw new Error(`no menu item "${label}"`);
    await gdbusCall(env.DBUS_SESSION_BUS_ADDRESS!, service, MENU_PATH, 'com.canonical.dbusmenu.Event', String(item.id), "'clicked'", '<int32 0>', 'uint32 0');
  }

  /** xsel -ob, without writing to its stdin (it may exit before a write lands: EPIPE). */
  function clipboard(): Promise<string> {
    return new Promise((resolve) => {
      execFile('xsel', ['-ob'], { env: desktop.processEnv(), timeout: 5_000 }, (_error, stdout) => resolve(stdout));
    });
  }

  /** Waits until at least this many seconds of the period are left, so the next-period rule stays out of the way. */
  async function awayFromPeriodEnd(seconds = 8): Promise<number> {
    while (30 - ((Date.now() / 1000) % 30) < seconds) await new Promise((r) => setTimeout(r, 200));
    return Math.floor(Date.now() / 30_000) * 30;
  }

  it('shows the key soon after it appears, with the touch marker', async () => {
    expect(find(await menu(), 'No key: plug one in')).toBeDefined();
    // The moment the key "is plugged in": its announcement appears in the runtime folder.
    let appeared: number | undefined;
    const announcements = watch(env.KEYTAP_RUNTIME_DIR!, (_event, name) => {
      if (appeared === undefined && name !== null && /^vk-.*\.json$/u.test(name.toString())) appeared = Date.now();
    });
    try {
      const starting = runKeytap(['virtual', 'start', keyFile, '--touch', 'auto', '--touch-delay', '300'], { env });
      await waitFor(async () => find(await menu(), 'E2E: alice (touch)'), 'the account in the menu', 5_000);
      const shown = Date.now();
      expect((await starting).code).toBe(0);
      expect(appeared).toBeDefined();
      console.log(`virtual key announced → menu shows it (read back with gdbus): ${shown - appeared!} ms`);
      // The target is 300 ms (bench/ measures it); gdbus polling and a loaded CI box add slack here.
      expect(shown - appeared!).toBeLessThan(1_500);
    } finally {
      announcements.close();
    }
  });

  it('a click: touch toast, code on the clipboard (= oathtool), "Code copied", cleared after the clear time', async () => {
    const period = await awayFromPeriodEnd();
    busText = '';
    await click('E2E: alice (touch)');
    const expected = await oathtool({ hexSecret: SECRET_HEX, type: 'TOTP', time: period });
    await waitFor(async () => ((await clipboard()) === expected ? true : undefined), 'the code on the clipboard', 10_000);
    await waitFor(() => busText.includes('Code copied, valid for'), 'the copied toast', 5_000);
    expect(busText).toContain('Touch your key');
    expect(busText).not.toContain(expected); // the code is not shown unless asked for
    const history = await dunstHistory(desktop.processEnv());
    expect(history.map((h) => h.summary)).toContainEqual(expect.stringMatching(/^Code copied, valid for \d+ s$/u));
    await new Promise((r) => setTimeout(r, (CLEAR_SECONDS + 1.5) * 1000));
    expect(await clipboard()).toBe('');
    // The log lines the README promises, one per event, and never the code.
    expect(trayLog).toMatch(/keytap: key added: virtual key e2e-key\.json /u);
    expect(trayLog).toMatch(/keytap: copied the code of E2E:alice \(virtual key e2e-key\.json\) to the clipboard, valid for \d+ s; clearing it in 3 s\n/u);
    expect(trayLog).toMatch(/keytap: clipboard cleared\n/u);
    expect(trayLog).not.toContain(expected);
  });

  it('keytap code goes through the running keytap and gives the same code', async () => {
    const period = await awayFromPeriodEnd();
    const result = await runKeytap(['code', 'E2E'], { env });
    expect(result.code).toBe(0);
    expect(result.stderr).toContain('Touch your key (E2E:alice)…');
    expect(result.stdout.trim()).toBe(await oathtool({ hexSecret: SECRET_HEX, type: 'TOTP', time: period }));
    expect(trayLog).not.toContain(result.stdout.trim());
  });

  it('keytap pick through the running keytap: the touch toast, the code on the clipboard, "Code copied", then Recent in the menu', async () => {
    // A scripted rofi (this session has a display, so it is the finder found): it logs what it is
    // offered and chooses the E2E line.
    const bin = join(dir, 'finder-bin');
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, 'rofi'), `#!/bin/sh\ncat > "${join(dir, 'finder.stdin')}"\ngrep -m1 E2E "${join(dir, 'finder.stdin')}"\n`, { mode: 0o755 });
    const period = await awayFromPeriodEnd();
    await run('xsel', ['--clipboard', '--clear'], desktop.processEnv()); // the test before left the same code there
    expect(await clipboard()).toBe('');
    busText = '';
    const result = await runKeytap(['pick'], { env: { ...env, PATH: `${bin}:${process.env.PATH ?? ''}` } });
    const expected = await oathtool({ hexSecret: SECRET_HEX, type: 'TOTP', time: period });
    expect(readFileSync(join(dir, 'finder.stdin'), 'utf8')).toBe('E2E: alice (touch)\n');
    expect([result.code, result.stdout]).toEqual([0, `${expected}\n`]);
    expect(result.stderr).toContain('Touch your key (E2E:alice)…');
    expect(await clipboard()).toBe(expected);
    await waitFor(() => busText.includes('Code copied, valid for'), 'the copied toast', 5_000);
    expect(busText).toContain('Touch your key');
    expect(trayLog).not.toContain(expected);
    const shown = await menu();
    expect(find(shown, 'Recent')).toBeDefined();
    expect(JSON.parse(readFileSync(join(env.KEYTAP_DATA_DIR!, 'recent.json'), 'utf8'))).toMatchObject({ recent: [{ credentialId: 'E2E:alice' }] });
  });

  it.skipIf(missingTool('display', 'xdotool') !== undefined)('"Add account from QR code on screen…": the code shown on the X screen goes on the key, and its code is oathtool\'s', async () => {
    const image = join(dir, 'screen-code.png');
    writeFileSync(image, await qrPng(`otpauth://totp/Screen:bob?secret=${SECRET_B32}&issuer=Screen&period=60`, 3));
    const viewer = spawn('display', ['-title', 'keytap-e2e-qr', '-geometry', '+120+80', image], { env: desktop.processEnv(), stdio: 'ignore' });
    try {
      await run('xdotool', ['search', '--sync', '--onlyvisible', '--name', 'keytap-e2e-qr'], desktop.processEnv());
      await new Promise((r) => setTimeout(r, 300)); // the first paint after mapping
      busText = '';
      await click('Add account from QR code on screen…');
      await waitFor(() => (busText.includes('Account added') || busText.includes('Could not add') ? true : undefined), 'the QR code toast', 10_000);
      expect(busText).toContain('Screen: bob (60 s) on Virtual YubiKey 5');
      await waitFor(async () => find(await menu(), 'Screen: bob (60 s)'), 'the new account in the menu', 5_000);
      const result = await runKeytap(['code', 'Screen', '--json'], { env });
      expect(result.code).toBe(0);
      const { code, validFrom } = JSON.parse(result.stdout) as { code: string; validFrom: string };
      expect(code).toBe(await oathtool({ hexSecret: SECRET_HEX, type: 'TOTP', period: 60, time: Date.parse(validFrom) / 1000 }));
      expect(trayLog).toMatch(/keytap: added Screen: bob \(60 s\) from a QR code on the screen to /u);
      expect(trayLog).not.toContain(SECRET_B32);
    } finally {
      viewer.kill('SIGTERM');
    }
  });

  it('the key stopped mid-touch: the right toast, and keytap lives on', async () => {
    expect((await runKeytap(['virtual', 'stop', keyFile], { env })).code).toBe(0);
    await waitFor(async () => find(await menu(), 'No key: plug one in'), 'the section to go', 5_000);
    expect((await runKeytap(['virtual', 'start', keyFile, '--touch', 'manual'], { env })).code).toBe(0);
    await waitFor(async () => find(await menu(), 'E2E: alice (touch)'), 'the account in the menu', 5_000);
    busText = '';
    await click('E2E: alice (touch)');
    await waitFor(() => busText.includes('Touch your key'), 'the touch prompt', 5_000);
    await waitFor(async () => find(await menu(), 'E2E: alice (touch): touch your key…'), 'the pending item', 5_000);
    expect((await runKeytap(['virtual', 'stop', keyFile], { env })).code).toBe(0);
    await waitFor(() => /was removed while reading E2E:alice/u.test(busText), 'the unplug toast', 5_000);
    await waitFor(() => /keytap: key removed: Virtual YubiKey 5 /u.test(trayLog) || undefined, 'the removal in the log', 5_000);
    expect(tray!.exitCode).toBeNull();
    const ping = await runKeytap(['list'], { env });
    expect(ping.code).toBe(3); // no key, answered by the running keytap
    expect(trayLog).not.toMatch(/uncaught|unhandled/u);
  });

  it('About shows the package version', async () => {
    busText = '';
    await click('About keytap');
    await waitFor(() => busText.includes(`"keytap ${VERSION}"`) || undefined, 'the About toast', 5_000);
  });

  it('Quit from the menu ends the process cleanly', async () => {
    await click('Quit');
    expect(await trayExit).toBe(0);
  });
});
