/**
 * Issue 14's figures: the tray in a Wayland session beside the X11 figures of bench/tray.ts, in one
 * run, with the same program (the single executable from `npm run dist`, installed with `install
 * -m 0755` as bench/tray.ts explains), the same virtual key (the demo key, touch after 0 ms) and
 * the same account:
 *
 * - X11: bench/tray.ts's desktop (Xvfb, a private session bus, dunst, status-notifier-watcher);
 * - Wayland: test/support/wayland-session.ts (sway headless with swaybar as the StatusNotifierItem
 *   host, mako), the tray and the key running as the session's user.
 *
 * 1. click → code on the clipboard, 20 clicks after one not counted: from just before the
 *    com.canonical.dbusmenu.Event call, made over a D-Bus connection this process holds open, until
 *    the clipboard holds the new code (checked against oathtool; the clipboard is emptied before
 *    each click, so each one measures its own copy). On X11 the CLIPBOARD selection is polled
 *    every ~1 ms in this process. On Wayland `wl-paste --watch` (as the session's user) tells of
 *    each new selection as it is set: polling with wl-paste would add a process start-up (printed
 *    below, measured) per look.
 *    The Wayland session's bus is the session user's: it lets root in (`busGuests`), so that the
 *    call and both clock readings stay in this process, on one connection made before the clicks,
 *    as on X11; a helper process running as that user would put its own IPC hop inside the figure.
 * 2. the tray's idle RSS (keytap and its descendants, from /proc) and CPU time over 60 s with the
 *    key present, as bench/tray.ts's figures 1 and 2 (the first idle minute).
 *
 * 3. for information, Properties.Get of the item's IconPixmap, timed the same way in both: swaybar
 *    asks for it whenever the icon changes, as it does during a click (strace of the tray showed
 *    two 35 KB IconPixmap replies between the key's request and the tray reading its answer);
 *    the X11 desktop here has a watcher but no host that draws icons, so its clicks do not pay it.
 *
 * The clipboard adapter is whatever the tray picks; the table prints its "clipboard: …" log line.
 * Prints only; asserts nothing. Linux only; as root, the Wayland side runs as keytap-wayland.
 * Run: npm run dist, then npm run bench -- wayland
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Message } from 'dbus-next';
import type { MessageBus } from 'dbus-next';
import { X11Selection } from '../src/desktop/clipboard/x11-selection.js';
import { missingTool } from '../test/platform/desktop.js';
import { artifactPath } from '../test/support/dist.js';
import { WAYLAND_TOOLS, WaylandSession } from '../test/support/wayland-session.js';
import { connect, findMenuItem, waitFor } from '../test/tray/support.js';
import { percentile } from './stats.js';
import type { ClickTiming, ClipboardProbe, TreeSample } from './tray.js';
import {
  ACCOUNT_LABEL,
  BENCH_CONFIG,
  CLICKS,
  IDLE_SECONDS,
  MenuClient,
  X11_TRAY_TOOLS,
  X11TraySession,
  clickToCode,
  clipboardLineOf,
  clockTick,
  cpuBetween,
  firstStart,
  installCopy,
  mb,
  sampleTree,
  sleep,
  x11ClipboardProbe,
} from './tray.js';

interface SessionFigures {
  clipboard: string;
  /** Properties.Get of the item's IconPixmap, what a host drawing the icon asks on each change. */
  iconPixmapMs: number[];
  idle: TreeSample;
  cpu: ReturnType<typeof cpuBetween>;
  firstClickMs: number;
  clicks: ClickTiming[];
}

export async function benchWayland(): Promise<void> {
  if (process.platform !== 'linux') {
    console.log('wayland: skipped (Linux only)');
    return;
  }
  const missing = missingTool(...X11_TRAY_TOOLS, ...WAYLAND_TOOLS, 'mako', 'runuser');
  if (missing) {
    console.log(`wayland: skipped, ${missing} is missing (see .ci/run)`);
    return;
  }
  const executable = artifactPath('linux-x64');
  if (!existsSync(executable)) {
    console.log(`wayland: skipped, ${executable} is missing: run npm run dist first`);
    return;
  }
  console.log(`the tray: ${executable}, installed with install -m 0755, second start in each session`);

  const x11 = await measureX11(executable);
  const wayland = await measureWayland(executable);
  printTable(x11, wayland.figures);
  console.log(`clipboard, X11: ${x11.clipboard}`);
  console.log(`clipboard, Wayland: ${wayland.figures.clipboard}`);
  console.log('X11: clipboard polled every ~1 ms with an in-process X11 client, each code confirmed with xsel -ob.');
  console.log(
    'Icon: this X11 desktop has a StatusNotifierWatcher but no host that draws the icon; swaybar draws it, and asks for IconPixmap again when the icon changes, as it does during a click (each Get is the row above).',
  );
  console.log(
    `Wayland: clipboard watched with \`wl-paste --no-newline --watch sh -c 'cat; echo'\` as the session user, each code confirmed with wl-paste.` +
      ` The watch's own delay: it reported a wl-copy's selection a median ${wayland.watchAfterCopyMs.toFixed(1)} ms after that wl-copy (run directly, ${CALIBRATION_ROUNDS} copies) had set it and exited.` +
      ` For comparison, one wl-paste, start to exit (median of ${CALIBRATION_ROUNDS}): ${wayland.pasteViaRunuserMs.toFixed(1)} ms as the session user through runuser (how a poll from here would run), ${wayland.pasteDirectMs.toFixed(1)} ms run directly.`,
  );
}

// ---- X11 ----

async function measureX11(executable: string): Promise<SessionFigures> {
  const x11 = new X11TraySession();
  let selection: X11Selection | undefined;
  try {
    await x11.start(executable);
    selection = await X11Selection.connect(x11.env.DISPLAY!);
    await x11.plugKey();
    console.log(`X11: idle ${IDLE_SECONDS} s with the key present…`);
    const { idle, cpu } = await idleMinute(x11.trayPid);
    const probe = x11ClipboardProbe(selection, x11.desktop.processEnv());
    const clicks = await clickSeries(x11.menu, probe);
    return { clipboard: x11.clipboardLine, idle, cpu, ...clicks, iconPixmapMs: await iconPixmapTimes(x11.bus!, x11.service) };
  } finally {
    selection?.close();
    await x11.stop();
  }
}

// ---- Wayland ----

const CALIBRATION_ROUNDS = 20;

async function measureWayland(executable: string): Promise<{ figures: SessionFigures; pasteViaRunuserMs: number; pasteDirectMs: number; watchAfterCopyMs: number }> {
  const session = new WaylandSession({ bar: true, busGuests: ['root'] });
  const keyFile = join(session.folder('keys'), 'bench-key.json');
  const keyServer = join(session.dir, 'keytap-key');
  let tray: ChildProcess | undefined;
  let trayExit: Promise<unknown> = Promise.resolve();
  let log = '';
  let bus: MessageBus | undefined;
  let watch: SelectionWatch | undefined;
  try {
    // The session copied the executable in one piece; the installed copy is what is measured.
    rmSync(session.keytap);
    installCopy(executable, session.keytap);
    // The key is served from a file of its own: from the tray's, it would share the tray's mapped
    // pages and halve their share in the tray's PSS (on X11 the bundle serves it, through Node).
    installCopy(executable, keyServer);
    await session.start();
    await session.startMako();
    session.folder('home/.config');
    const config = join(session.folder('home/.config/keytap'), 'config.json');
    writeFileSync(config, JSON.stringify(BENCH_CONFIG), { mode: 0o644 });
    session.own(config);

    const spawnTray = (): ChildProcess => session.spawnKeytap(['tray'], { stdio: ['ignore', 'ignore', 'pipe'] });
    await firstStart(spawnTray);
    tray = spawnTray();
    const started = tray;
    trayExit = new Promise((resolve) => started.once('exit', resolve));
    started.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    const trayPid = Number(await waitFor(() => /running \(pid (\d+)\)/u.exec(log)?.[1], 'the tray to start', 15_000));
    bus = await connect(session.env.DBUS_SESSION_BUS_ADDRESS!);
    const service = `org.kde.StatusNotifierItem-${trayPid}-1`;
    const menu = new MenuClient(bus, service);
    await menu.listen();

    const served = await session.run(keyServer, ['virtual', 'start', keyFile, '--touch', 'auto', '--touch-delay', '0', '--demo'], { timeoutMs: 30_000 });
    if (served.code !== 0) throw new Error(`keytap virtual start exited ${served.code}: ${served.stderr}`);
    await waitFor(async () => findMenuItem(await menu.layout(), ACCOUNT_LABEL), 'the account in the menu', 10_000);
    await sleep(2_000); // start-up work (the connect toast, autostart check) settles, as on X11

    console.log(`Wayland: idle ${IDLE_SECONDS} s with the key present…`);
    const { idle, cpu } = await idleMinute(trayPid);

    // After the idle minute: the watch is a client of the compositor's, not to be counted in it.
    watch = new SelectionWatch(session);
    await watch.ready();
    // wl-copy (2.1, strace) sends set_selection, then forks and its parent exits: run directly, that
    // exit is seen here within a fraction of a millisecond, so the time from it to the watch's
    // report is the watch's own delay, near enough.
    const direct = { XDG_RUNTIME_DIR: session.runtimeDir, WAYLAND_DISPLAY: session.env.WAYLAND_DISPLAY! };
    const afterCopy: number[] = [];
    let text = '';
    for (let i = 0; i < CALIBRATION_ROUNDS; i++) {
      text = `calibration ${i}`;
      const seen = watch.next(watch.count, performance.now());
      await runDirect('wl-copy', ['--type', 'text/plain', text], direct, { detaches: true });
      const copiedAt = performance.now();
      const copy = await seen;
      if (copy.text !== text) throw new Error(`the watch saw ${JSON.stringify(copy.text)}, not ${JSON.stringify(text)}`);
      afterCopy.push(copy.at - copiedAt);
    }
    const expectPasted = (pasted: string): void => {
      if (pasted !== text) throw new Error(`wl-paste says ${JSON.stringify(pasted)}, not ${JSON.stringify(text)}`);
    };
    const pasteViaRunuserMs = median(await timed(CALIBRATION_ROUNDS, async () => expectPasted(await session.paste())));
    const pasteDirectMs = median(await timed(CALIBRATION_ROUNDS, async () => expectPasted(await runDirect('wl-paste', ['--no-newline'], direct))));

    const selectionWatch = watch;
    const probe: ClipboardProbe = {
      clear: async () => {
        const cleared = await session.run('wl-copy', ['--clear'], { detaches: true });
        if (cleared.code !== 0) throw new Error(`wl-copy --clear exited ${cleared.code}`);
        await waitFor(async () => (await session.paste()) === '', 'the clipboard to clear', 5_000);
      },
      arm: () => {
        const mark = selectionWatch.count;
        return (from) => selectionWatch.next(mark, from);
      },
      confirm: async (text) => {
        const pasted = await session.paste();
        if (pasted !== text) throw new Error(`wl-paste says ${JSON.stringify(pasted)}, the watch ${JSON.stringify(text)}`);
      },
    };
    const clicks = await clickSeries(menu, probe);
    if (/uncaught|unhandled/u.test(log)) console.log(`note: the Wayland tray logged an uncaught error:\n${log}`);
    const iconPixmapMs = await iconPixmapTimes(bus, service);
    return { figures: { clipboard: clipboardLineOf(log), idle, cpu, ...clicks, iconPixmapMs }, pasteViaRunuserMs, pasteDirectMs, watchAfterCopyMs: median(afterCopy) };
  } finally {
    watch?.close();
    bus?.disconnect();
    await session.run(keyServer, ['virtual', 'stop', keyFile], { timeoutMs: 30_000 }).catch(() => undefined);
    if (tray && tray.exitCode === null && tray.signalCode === null) {
      tray.kill('SIGTERM');
      await Promise.race([trayExit, sleep(5_000)]);
    }
    await session.stop();
  }
}

/**
 * `wl-paste --watch` in the session: it runs its command on every new selection with the text on
 * stdin; `sh -c 'cat; echo'` ends each with a newline, so each line here is one selection (codes
 * have no newline in them). A cleared clipboard runs nothing.
 */
class SelectionWatch {
  private readonly seen: { text: string; at: number }[] = [];
  private readonly listeners: (() => void)[] = [];
  private readonly child: ChildProcess;
  private pending = '';
  private said = '';

  constructor(session: WaylandSession) {
    this.child = session.spawn('wl-paste', ['--no-newline', '--watch', 'sh', '-c', 'cat; echo'], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stderr!.on('data', (d: Buffer) => (this.said += d.toString()));
    this.child.stdout!.on('data', (d: Buffer) => {
      const at = performance.now();
      this.pending += d.toString('utf8');
      let newline: number;
      while ((newline = this.pending.indexOf('\n')) >= 0) {
        const text = this.pending.slice(0, newline);
        this.pending = this.pending.slice(newline + 1);
        if (text !== '') this.seen.push({ text, at });
      }
      for (const listener of this.listeners.splice(0)) listener();
    });
  }

  get count(): number {
    return this.seen.length;
  }

  /** Ready once it reports a selection: it reports the current one at its start. */
  async ready(): Promise<void> {
    await waitFor(() => {
      if (this.child.exitCode !== null) throw new Error(`wl-paste --watch exited (${this.child.exitCode}): ${this.said}`);
      return this.child.pid !== undefined;
    }, 'wl-paste --watch to start', 5_000);
    await sleep(200);
  }

  /** The first selection reported after `mark` selections (10 s from `from` at most). */
  async next(mark: number, from: number): Promise<{ text: string; at: number }> {
    while (this.seen.length <= mark) {
      const left = from + 10_000 - performance.now();
      if (left <= 0 || this.child.exitCode !== null) throw new Error(`no new selection within 10 s (wl-paste --watch: ${this.said || 'no message'})`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.listeners.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.seen[mark]!;
  }

  close(): void {
    if (this.child.exitCode === null) this.child.kill('SIGTERM');
  }
}

/**
 * Runs `command` as this process's user with only `env` (and PATH); its stdout. `detaches`: for
 * wl-copy, whose serving child would hold a pipe open: the first process's exit is the end.
 */
function runDirect(command: string, args: readonly string[], env: Record<string, string>, options: { detaches?: boolean } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, stdio: ['ignore', options.detaches ? 'ignore' : 'pipe', 'ignore'] });
    let stdout = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.once('error', reject);
    child.once(options.detaches ? 'exit' : 'close', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`${command} exited ${code}`))));
  });
}

// ---- shared ----

async function idleMinute(trayPid: number): Promise<{ idle: TreeSample; cpu: ReturnType<typeof cpuBetween> }> {
  const before = sampleTree(trayPid);
  await sleep(IDLE_SECONDS * 1000);
  const idle = sampleTree(trayPid);
  return { idle, cpu: cpuBetween(before, idle, clockTick()) };
}

async function clickSeries(menu: MenuClient, probe: ClipboardProbe): Promise<{ firstClickMs: number; clicks: ClickTiming[] }> {
  const click = (id: number): Promise<void> => menu.click(id);
  const first = await clickToCode(menu, probe, click); // not counted: the first click after the idle minute
  const clicks: ClickTiming[] = [];
  for (let i = 0; i < CLICKS; i++) clicks.push(await clickToCode(menu, probe, click));
  return { firstClickMs: first.ms, clicks };
}

async function iconPixmapTimes(bus: MessageBus, service: string): Promise<number[]> {
  const get = new Message({ destination: service, path: '/StatusNotifierItem', interface: 'org.freedesktop.DBus.Properties', member: 'Get', signature: 'ss', body: ['org.kde.StatusNotifierItem', 'IconPixmap'] });
  return timed(CALIBRATION_ROUNDS, () => bus.call(get));
}

async function timed(rounds: number, action: () => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const started = performance.now();
    await action();
    out.push(performance.now() - started);
  }
  return out;
}

function median(samples: readonly number[]): number {
  return percentile([...samples].sort((a, b) => a - b), 50);
}

function printTable(x11: SessionFigures, wayland: SessionFigures): void {
  const ms = (v: number): string => `${v.toFixed(1)} ms`;
  const clickRow = (f: SessionFigures, p: number): string => ms(percentile(f.clicks.map((c) => c.ms).sort((a, b) => a - b), p));
  const procs = (f: SessionFigures): string => f.idle.procs.map((p) => `${p.comm} ${mb(p.rssKb)}`).join(', ');
  const rows: [string, (f: SessionFigures) => string][] = [
    [`click → code on the clipboard, median of ${CLICKS}`, (f) => clickRow(f, 50)],
    ['  p90', (f) => clickRow(f, 90)],
    ['  min / max', (f) => `${ms(Math.min(...f.clicks.map((c) => c.ms)))} / ${ms(Math.max(...f.clicks.map((c) => c.ms)))}`],
    ['  Event call returned, median', (f) => ms(median(f.clicks.map((c) => c.callMs)))],
    ['  first click after idle (not counted)', (f) => ms(f.firstClickMs)],
    [`  for information: Get IconPixmap, median of ${CALIBRATION_ROUNDS}`, (f) => ms(median(f.iconPixmapMs))],
    [`RSS after ${IDLE_SECONDS} s idle, keytap + helpers`, (f) => mb(f.idle.rssKb)],
    ['  PSS', (f) => mb(f.idle.pssKb)],
    ['  anonymous / mapped files', (f) => `${mb(f.idle.anonKb)} / ${mb(f.idle.fileKb)}`],
    ['  processes', procs],
    [`CPU over ${IDLE_SECONDS} s idle, utime+stime`, (f) => `${f.cpu.seconds.toFixed(2)} s (reaped children ${f.cpu.childSeconds.toFixed(2)} s)`],
    ['  run time, all threads (schedstat)', (f) => `${f.cpu.runSeconds.toFixed(4)} s`],
    ['  of it the main thread', (f) => `${f.cpu.mainRunSeconds.toFixed(4)} s`],
  ];
  const header: [string, string, string] = ['', 'X11 (Xvfb, dunst)', 'Wayland (sway, swaybar, mako)'];
  const lines: [string, string, string][] = [header, ...rows.map(([label, cell]): [string, string, string] => [label, cell(x11), cell(wayland)])];
  const width = (i: 0 | 1): number => Math.max(...lines.map((l) => l[i].length));
  for (const [label, a, b] of lines) console.log(`${label.padEnd(width(0))}  ${a.padEnd(width(1))}  ${b}`);
}
