// A password-protected key in the tray, end to end on Linux: a session dbus-daemon with Xvfb, dunst,
// a StatusNotifierWatcher and gnome-keyring's Secret Service; the resident keytap; a virtual
// YubiKey served by `keytap virtual start`; a scripted pinentry on PATH. "Unlock…" asks (again
// after a wrong password), "Remember on this computer" stores the access key (secret-tool reads it
// back), a replugged key unlocks by itself, "Forget" removes it, and a wrong remembered key is
// forgotten with a toast. Last, an open pinentry is stopped when its key is unplugged and when the
// tray quits.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { pbkdf2Sync } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VirtualKeyStore } from '../../src/emulator/store.js';
import { Desktop, missingTool, run } from '../platform/desktop.js';
import { oathtool, runKeytap, spawnKeytap, tempDir } from '../support/cli.js';
import type { PrivateKeyring, ScriptedPinentry } from '../support/secret-peers.js';
import { HAVE_KEYRING_DAEMON, HAVE_SECRET_TOOL, scriptedPinentry, secretToolLookup, startPrivateKeyring } from '../support/secret-peers.js';
import type { MenuTree } from '../tray/support.js';
import { findMenuItem, gdbusCall, toMenuTree, waitFor } from '../tray/support.js';

const missing =
  process.platform !== 'linux'
    ? 'Linux'
    : (missingTool('Xvfb', 'dbus-daemon', 'dbus-monitor', 'dunst', 'gdbus', 'xsel', 'oathtool', 'status-notifier-watcher') ?? (HAVE_KEYRING_DAEMON && HAVE_SECRET_TOOL ? undefined : 'gnome-keyring-daemon or secret-tool'));
if (missing) console.warn(`skipping the tray unlock test: ${missing} is missing (see .ci/run)`);

const SECRET_B32 = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
const PASSWORD = 'tray password';
const PIN = '13579';
const SECRET_HEX = Buffer.from('12345678901234567890').toString('hex');
const MENU_PATH = '/MenuBar';

describe.skipIf(missing !== undefined)('a password-protected key in the tray', () => {
  const desktop = new Desktop();
  const dir = tempDir('keytap-e2e-unlock-');
  const keyFile = join(dir, 'locked-key.json');
  let pinentry: ScriptedPinentry;
  let keyring: PrivateKeyring;
  let env: NodeJS.ProcessEnv;
  let watcher: ChildProcess | undefined;
  let monitor: ChildProcess | undefined;
  let busText = '';
  let tray: ChildProcess | undefined;
  let trayLog = '';
  let trayExit: Promise<number | null>;
  let service: string;
  let entry: string;
  let accessKeyHex: string;

  beforeAll(async () => {
    await desktop.startX();
    desktop.startBus();
    await desktop.startDunst();
    keyring = await startPrivateKeyring(desktop.env.DBUS_SESSION_BUS_ADDRESS);
    pinentry = scriptedPinentry(['not it', PASSWORD, 'cancel', '999999', PIN, 'hang', 'hang']);
    env = {
      ...desktop.env,
      ...keyring.env,
      PATH: `${pinentry.dir}:${process.env.PATH}`,
      WAYLAND_DISPLAY: '',
      KEYTAP_RUNTIME_DIR: join(dir, 'run'),
      KEYTAP_CONFIG_DIR: join(dir, 'config'),
      KEYTAP_DATA_DIR: join(dir, 'data'),
      XDG_CONFIG_HOME: join(dir, 'xdg-config'),
    };
    watcher = spawn('status-notifier-watcher', [], { env: desktop.processEnv(), stdio: 'ignore' });
    await desktop.waitFor(async () => (await run('gdbus', ['call', '--session', '--dest', 'org.freedesktop.DBus', '--object-path', '/org/freedesktop/DBus', '--method', 'org.freedesktop.DBus.NameHasOwner', 'org.kde.StatusNotifierWatcher'], desktop.processEnv())).stdout.includes('true'));
    monitor = spawn('dbus-monitor', ['--address', desktop.env.DBUS_SESSION_BUS_ADDRESS!, "interface='org.freedesktop.Notifications',member='Notify'"], { stdio: ['ignore', 'pipe', 'ignore'] });
    monitor.stdout!.on('data', (d: Buffer) => (busText += d.toString()));

    expect((await runKeytap(['add', '--virtual', keyFile, '--dialect', 'yubikey', '--issuer', 'Bank', '--account', 'alice', '--secret', SECRET_B32], { env })).code).toBe(0);
    expect((await runKeytap(['password', '--virtual', keyFile, '--new-password', PASSWORD], { env })).code).toBe(0);
    const store = await VirtualKeyStore.open(keyFile);
    entry = `${store.serial}/access-key`;
    accessKeyHex = pbkdf2Sync(Buffer.from(PASSWORD), store.salt, 1000, 16, 'sha1').toString('hex');

    tray = spawnKeytap([], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    trayExit = new Promise((resolve) => tray!.once('exit', (code) => resolve(code)));
    tray.stderr!.on('data', (d: Buffer) => (trayLog += d.toString()));
    await waitFor(() => trayLog.includes('running (pid'), 'the tray to start', 15_000);
    service = `org.kde.StatusNotifierItem-${tray.pid}-1`;
  }, 60_000);

  afterAll(async () => {
    await runKeytap(['virtual', 'stop', keyFile], { env }).catch(() => undefined);
    if (tray && tray.exitCode === null) {
      tray.kill('SIGTERM');
      await trayExit;
    }
    monitor?.kill();
    watcher?.kill();
    await keyring?.stop();
    await desktop.stop();
  });

  async function menu(): Promise<MenuTree> {
    const [, layout] = await gdbusCall(env.DBUS_SESSION_BUS_ADDRESS!, service, MENU_PATH, 'com.canonical.dbusmenu.GetLayout', '0', '-1', '[]');
    return toMenuTree(layout);
  }
  const find = findMenuItem;
  async function click(label: string): Promise<void> {
    const item = await waitFor(async () => find(await menu(), label), `"${label}" in the menu`, 10_000);
    await gdbusCall(env.DBUS_SESSION_BUS_ADDRESS!, service, MENU_PATH, 'com.canonical.dbusmenu.Event', String(item.id), "'clicked'", '<int32 0>', 'uint32 0');
  }
  const shows = (label: string, what = `"${label}" in the menu`): Promise<MenuTree> => waitFor(async () => find(await menu(), label), what, 10_000);
  const plugIn = async (file = keyFile): Promise<void> => expect((await runKeytap(['virtual', 'start', file, '--touch', 'auto', '--touch-delay', '100'], { env })).code).toBe(0);
  const unplug = async (file = keyFile): Promise<void> => expect((await runKeytap(['virtual', 'stop', file], { env })).code).toBe(0);
  const codeOnClipboard = async (label: string): Promise<void> => {
    while (30 - ((Date.now() / 1000) % 30) < 8) await new Promise((r) => setTimeout(r, 200));
    const period = Math.floor(Date.now() / 30_000) * 30;
    await click(label);
    const expected = await oathtool({ hexSecret: SECRET_HEX, type: 'TOTP', time: period });
    await waitFor(async () => ((await run('xsel', ['-ob'], desktop.processEnv())).stdout === expected ? true : undefined), 'the code on the clipboard', 10_000);
  };

  it('shows the locked key with "Unlock…"; unlocking asks the pinentry, again after a wrong password, and the accounts appear', async () => {
    await plugIn();
    await shows('Unlock…');
    expect(find(await menu(), 'Locked with a password')).toBeDefined();
    await click('Unlock…');
    await shows('Bank: alice', 'the account after unlocking');
    const runs = pinentry.runs();
    expect(runs).toHaveLength(2);
    expect(runs[0]!.some((l) => l.startsWith('SETDESC ') && l.includes('password-protected'))).toBe(true);
    expect(runs[1]).toContain('SETERROR Wrong password: try again.');
    // No terminal: no ttyname for a GUI pinentry.
    expect(runs[0]!.some((l) => l.startsWith('OPTION ttyname'))).toBe(false);
    expect(find(await menu(), 'Remember on this computer')).toBeDefined();
    expect(trayLog).not.toContain(PASSWORD);
    // A click reads the code: the key is opened again and unlocked with the access key held in memory.
    await codeOnClipboard('Bank: alice');
  });

  it('"Remember on this computer" stores the access key, not the password; a replugged key unlocks by itself', async () => {
    await click('Remember on this computer');
    await shows('Forget on this computer');
    expect(await secretToolLookup(keyring.env, entry)).toBe(accessKeyHex);
    await unplug();
    await waitFor(async () => find(await menu(), 'No key: plug one in'), 'the key to go', 10_000);
    await plugIn();
    await shows('Bank: alice', 'the account of the replugged key, unlocked from the keyring');
    expect(find(await menu(), 'Unlock…')).toBeUndefined();
    expect(pinentry.runs()).toHaveLength(2);
  });

  it('"Forget on this computer" removes it; a replugged key is locked again; a cancelled prompt is no error toast', async () => {
    await click('Forget on this computer');
    await shows('Remember on this computer');
    expect(await secretToolLookup(keyring.env, entry)).toBe('');
    await unplug();
    await waitFor(async () => find(await menu(), 'No key: plug one in'), 'the key to go', 10_000);
    await plugIn();
    await shows('Unlock…');
    const toastsBefore = busText.length;
    await click('Unlock…');
    await waitFor(() => pinentry.runs().length === 3, 'the cancelled prompt', 10_000);
    await new Promise((r) => setTimeout(r, 500));
    expect(busText.slice(toastsBefore)).not.toMatch(/was not unlocked/u);
    expect(find(await menu(), 'Unlock…')).toBeDefined();
    expect(tray!.exitCode).toBeNull();
  });

  it('a wrong remembered access key is forgotten, with a toast, and the key shows locked', async () => {
    await unplug();
    await waitFor(async () => find(await menu(), 'No key: plug one in'), 'the key to go', 10_000);
    // What an older password left behind.
    expect((await run('sh', ['-c', `printf %s ${'00'.repeat(16)} | secret-tool store --label=keytap service keytap username ${entry}`], { ...process.env, ...keyring.env })).code).toBe(0);
    await plugIn();
    await waitFor(() => busText.includes('was wrong and is forgotten'), 'the toast', 10_000);
    await shows('Unlock…');
    expect(await secretToolLookup(keyring.env, entry)).toBe('');
  });

  it('Nitrokey 3: "Unlock PIN-protected accounts…" asks for the PIN (again after a wrong one); the account appears and reads; remembered, it is back by itself after replugging', async () => {
    await unplug();
    const nk3File = join(dir, 'nk3.json');
    expect((await runKeytap(['add', '--virtual', nk3File, '--dialect', 'nitrokey3', '--account', 'open', '--secret', SECRET_B32], { env })).code).toBe(0);
    const store = await VirtualKeyStore.open(nk3File);
    await store.setPin(Buffer.from(PIN));
    await store.putCredential({ id: Buffer.from('Vault:pinned'), type: 'TOTP', algorithm: 'SHA1', digits: 6, key: Buffer.from(SECRET_HEX, 'hex'), counter: 0, touch: false, increasing: false, pinProtected: true });
    const pinEntry = `${store.serial}/nk3-pin`;
    try {
      await plugIn(nk3File);
      await shows('Unlock PIN-protected accounts…');
      expect(find(await menu(), 'Vault: pinned')).toBeUndefined();
      await click('Unlock PIN-protected accounts…');
      await shows('Vault: pinned', 'the PIN-protected account');
      const runs = pinentry.runs();
      expect(runs).toHaveLength(5);
      expect(runs[3]).toContain('SETPROMPT PIN:');
      expect(runs[4]).toContain('SETERROR Wrong PIN: try again.');
      expect(runs[4]!.some((l) => l.startsWith('SETDESC ') && l.includes('(7 attempts left)'))).toBe(true);
      await codeOnClipboard('Vault: pinned');
      await click('Remember on this computer');
      await shows('Forget on this computer');
      expect(await secretToolLookup(keyring.env, pinEntry)).toBe(PIN);
      await unplug(nk3File);
      await waitFor(async () => find(await menu(), 'No key: plug one in'), 'the key to go', 10_000);
      const toastsBefore = busText.length;
      await plugIn(nk3File);
      await shows('Vault: pinned', 'the PIN-protected account, from the remembered PIN');
      // The remembered PIN's VERIFY PIN waited for a touch: the tray said so.
      await waitFor(() => busText.slice(toastsBefore).includes('to show its PIN-protected accounts'), 'the touch toast', 10_000);
      expect(pinentry.runs()).toHaveLength(5);
      expect(trayLog).not.toContain(PIN);
    } finally {
      await runKeytap(['virtual', 'stop', nk3File], { env }).catch(() => undefined);
    }
  });

  // Last: it quits the tray.
  it('an open pinentry is stopped when the key is unplugged, and when the tray quits', async () => {
    await plugIn();
    await shows('Unlock…');
    await click('Unlock…');
    await waitFor(() => pinentry.runs()[5]?.includes('GETPIN'), 'the pinentry to ask', 10_000);
    await unplug();
    await waitFor(() => pinentry.runs()[5]?.includes('<SIGTERM>'), 'the pinentry to be stopped when the key went', 10_000);
    await waitFor(async () => find(await menu(), 'No key: plug one in'), 'the key to go', 10_000);

    await plugIn();
    await shows('Unlock…');
    await click('Unlock…');
    await waitFor(() => pinentry.runs()[6]?.includes('GETPIN'), 'the pinentry to ask again', 10_000);
    tray!.kill('SIGTERM');
    expect(await trayExit).toBe(0);
    await waitFor(() => pinentry.runs()[6]?.includes('<SIGTERM>'), 'the pinentry to be stopped when the tray quit', 10_000);
    expect(trayLog).not.toMatch(/finishing key operations/u);
  });
});
