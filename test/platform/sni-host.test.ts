// The SNI backend under a real StatusNotifierItem host: Debian's status-notifier-watcher and
// gtk-sni-tray-standalone (GTK, libdbusmenu) on Xvfb. The watcher must list our item, the host
// must draw it, open its menu on a click (AboutToShow) and send a menu click back to us.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TrayModel } from '../../src/tray/model.js';
import { SniTrayBackend } from '../../src/tray/sni/backend.js';
import { gdbusCall, hasCommand, startDbusDaemon, waitFor, type DbusDaemon } from '../tray/support.js';

const tools = ['dbus-daemon', 'gdbus', 'Xvfb', 'xdotool', 'import', 'status-notifier-watcher', 'gtk-sni-tray-standalone'];
const missing = tools.filter((c) => !hasCommand(c));
const suite = missing.length > 0 ? describe.skip : describe;
if (missing.length > 0) {
  console.warn(`skipping the real SNI host test: ${missing.join(', ')} not installed (apt-get install dbus libglib2.0-bin xvfb xdotool imagemagick haskell-status-notifier-item-utils haskell-gtk-sni-tray-utils)`);
}

const BAR = 32;
const MODEL: TrayModel = {
  icon: 'key',
  tooltip: 'keytap — 1 key',
  menu: [
    { kind: 'item', id: 'key:1', label: 'Nitrokey 3 · 1234', enabled: false },
    { kind: 'item', id: 'code:1:GitHub:alice', label: 'GitHub: alice' },
    { kind: 'separator', id: 'sep' },
    { kind: 'item', id: 'quit', label: 'Quit' },
  ],
};

function startXvfb(): Promise<{ display: string; process: ChildProcess }> {
  // -displayfd: Xvfb picks a free display and writes its number to fd 3.
  const child = spawn('Xvfb', ['-displayfd', '3', '-screen', '0', '640x480x24', '-nolisten', 'tcp'], { stdio: ['ignore', 'ignore', 'ignore', 'pipe'] });
  return new Promise((resolve, reject) => {
    let text = '';
    child.stdio[3]!.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (text.includes('\n')) resolve({ display: `:${text.trim()}`, process: child });
    });
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`Xvfb exited with ${code}`)));
  });
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { env }, (error, stdout, stderr) => (error ? reject(new Error(`${command}: ${stderr || error.message}`)) : resolve(stdout)));
  });
}

suite('a real StatusNotifierItem host (status-notifier-watcher + gtk-sni-tray-standalone on Xvfb)', () => {
  let daemon: DbusDaemon;
  let xvfb: { display: string; process: ChildProcess };
  const children: ChildProcess[] = [];
  let tray: SniTrayBackend;
  let env: NodeJS.ProcessEnv;
  const statuses: string[] = [];
  const clicks: string[] = [];
  let aboutToShow = 0;

  beforeAll(async () => {
    daemon = await startDbusDaemon();
    xvfb = await startXvfb();
    env = { ...process.env, DISPLAY: xvfb.display, DBUS_SESSION_BUS_ADDRESS: daemon.address, NO_AT_BRIDGE: '1' };
    children.push(spawn('status-notifier-watcher', [], { env, stdio: 'ignore' }));
    await waitFor(async () => {
      const [names] = await gdbusCall(daemon.address, 'org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus.ListNames');
      return (names as string[]).includes('org.kde.StatusNotifierWatcher') || undefined;
    }, 'status-notifier-watcher on the bus');
    children.push(spawn('gtk-sni-tray-standalone', ['--top', '--beginning', '--size', String(BAR)], { env, stdio: 'ignore' }));
    tray = new SniTrayBackend({ busAddress: daemon.address, onAboutToShow: () => aboutToShow++, log: () => undefined });
    await tray.render(MODEL);
    await tray.start((id) => clicks.push(id), (status) => statuses.push(status));
  });

  afterAll(async () => {
    await tray?.stop();
    for (const child of children) child.kill();
    xvfb?.process.kill();
    daemon?.cleanup();
  });

  it('is listed by the watcher and drawn in the panel', async () => {
    // A bound on a hang: the GTK host takes seconds to start on a loaded machine.
    await waitFor(() => statuses.at(-1) === 'shown', "'shown'", 20_000);
    const [items] = await gdbusCall(daemon.address, 'org.kde.StatusNotifierWatcher', '/StatusNotifierWatcher', 'org.freedesktop.DBus.Properties.Get', 'org.kde.StatusNotifierWatcher', 'RegisteredStatusNotifierItems');
    expect((items as { variant: string[] }).variant.some((s) => s.startsWith(tray.serviceName))).toBe(true);

    // The host drew our pixmap: blue key pixels in the bar's first icon slot.
    await waitFor(async () => {
      const ppm = await run('import', ['-window', 'root', '-crop', `${BAR}x${BAR}+0+0`, '-depth', '8', 'txt:-'], env);
      const blue = ppm.split('\n').filter((line) => {
        const m = /\((\d+),(\d+),(\d+)/.exec(line);
        return m && Number(m[3]) > 200 && Number(m[1]) < 100;
      });
      return blue.length > 30 || undefined;
    }, 'our icon in the panel', 10_000);
  });

  it('opens the menu on a click and reports a menu click by our id', async () => {
    await run('xdotool', ['mousemove', String(BAR / 2), String(BAR / 2), 'click', '1'], env);
    await waitFor(() => aboutToShow > 0 || undefined, 'AboutToShow from the host', 10_000);
    // Keyboard, not coordinates, so fonts and themes do not matter: Down selects the first enabled
    // item ("GitHub: alice"; the key's title is disabled), Return activates it.
    await new Promise((r) => setTimeout(r, 500));
    await run('xdotool', ['key', 'Down', 'Return'], env);
    await waitFor(() => clicks.length > 0 || undefined, 'the menu click', 10_000);
    expect(clicks).toEqual(['code:1:GitHub:alice']);
  });
});
