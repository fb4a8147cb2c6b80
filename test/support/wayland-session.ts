/**
 * A throwaway Wayland desktop for the tests: Debian's sway on its headless backend (no GPU, no input
 * devices, pixman rendering), a private session bus, and on request mako (notifications), swaybar
 * (a StatusNotifierItem host: sway's own bar with its tray), wayvnc (the one way to get a pointer
 * and a keyboard into a headless sway: it adds virtual ones, driven here over RFB, see rfb.ts) and
 * xdg-desktop-portal with its wlroots backend.
 *
 * sway refuses to run as root, and CI runs as root: then everything in the session runs as an
 * unprivileged user made for these tests (`keytap-wayland`, no home, no login shell), through
 * runuser, with the session's own XDG_RUNTIME_DIR, HOME and bus. The program under test runs as
 * that user too (its IPC socket lives in that user's runtime folder, where `swaymsg exec` finds
 * it): the single executable from `npm run dist`, copied into the session's folder, since the
 * checkout may sit where that user cannot read (CI clones under /root).
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { artifact } from './dist.js';
import { privateBusConfig } from './private-bus.js';
import { RfbClient } from './rfb.js';
import { waitFor } from '../tray/support.js';

export const WAYLAND_TOOLS = ['sway', 'swaymsg', 'wl-copy', 'wl-paste', 'dbus-daemon', 'gdbus'] as const;
const TEST_USER = 'keytap-wayland';

export interface SessionUser {
  name: string;
  uid: number;
  gid: number;
  /** Whether commands go through runuser (this process is root). */
  switches: boolean;
}

/** The user the session runs as: this one, or (as root) the test user, made on first use. */
export function sessionUser(): SessionUser {
  const uid = process.getuid?.() ?? 0;
  if (uid !== 0) return { name: execFileSync('id', ['-un'], { encoding: 'utf8' }).trim(), uid, gid: process.getgid?.() ?? uid, switches: false };
  const lookup = (): SessionUser | undefined => {
    try {
      const id = Number(execFileSync('id', ['-u', TEST_USER], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
      const gid = Number(execFileSync('id', ['-g', TEST_USER], { encoding: 'utf8' }).trim());
      return { name: TEST_USER, uid: id, gid, switches: true };
    } catch {
      return undefined;
    }
  };
  const known = lookup();
  if (known) return known;
  try {
    execFileSync('useradd', ['--system', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', TEST_USER], { stdio: 'ignore' });
  } catch {
    // Another test file made it at the same moment: the lookup below tells.
  }
  const made = lookup();
  if (!made) throw new Error(`could not create the user ${TEST_USER} the Wayland tests run as (useradd)`);
  return made;
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface WaylandSessionOptions {
  /** The headless output's mode. */
  width?: number;
  height?: number;
  /** Lines added to sway's configuration. */
  swayConfig?: readonly string[];
  /** swaybar at the top, with its tray (a StatusNotifierItem host). */
  bar?: boolean;
  /**
   * Users besides the session's own that may connect to its bus: `['root']` lets this process
   * (as root) talk to the session's services over a connection of its own (bench/wayland.ts).
   */
  busGuests?: readonly string[];
}

/** SIGTERM to a child that is still running, and its exit. */
export async function stopChild(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

export class WaylandSession {
  readonly user = sessionUser();
  readonly dir = mkdtempSync(join(tmpdir(), 'keytap-wayland-'));
  readonly runtimeDir = join(this.dir, 'run');
  readonly home = join(this.dir, 'home');
  /** The single executable under test, as this session's user can run it. */
  readonly keytap = join(this.dir, 'keytap');
  /** WAYLAND_DISPLAY, SWAYSOCK, DBUS_SESSION_BUS_ADDRESS … once started. */
  env: Record<string, string> = {};
  private readonly children: ChildProcess[] = [];
  private busPid: number | undefined;
  swayLog = '';

  constructor(private readonly options: WaylandSessionOptions = {}) {
    chmodSync(this.dir, 0o755);
    for (const [path, mode] of [
      [this.runtimeDir, 0o700],
      [this.home, 0o700],
    ] as const) {
      mkdirSync(path, { mode });
      this.own(path);
    }
    copyFileSync(artifact('linux-x64'), this.keytap);
    chmodSync(this.keytap, 0o755);
  }

  get width(): number {
    return this.options.width ?? 800;
  }

  get height(): number {
    return this.options.height ?? 600;
  }

  /** Makes `path` the session user's. */
  own(path: string): void {
    if (this.user.switches) chownSync(path, this.user.uid, this.user.gid);
  }

  /** A folder of the session user's inside the session folder. */
  folder(name: string): string {
    const path = join(this.dir, name);
    mkdirSync(path, { recursive: true, mode: 0o700 });
    this.own(path);
    return path;
  }

  async start(): Promise<void> {
    this.env = {
      PATH: '/usr/local/bin:/usr/bin:/bin',
      HOME: this.home,
      XDG_RUNTIME_DIR: this.runtimeDir,
      XDG_CONFIG_HOME: join(this.home, '.config'),
      XDG_DATA_HOME: join(this.home, '.local', 'share'),
      XDG_CACHE_HOME: join(this.home, '.cache'),
      XDG_SESSION_TYPE: 'wayland',
      XDG_CURRENT_DESKTOP: 'sway',
      LANG: 'C.UTF-8',
    };
    const busConfig = privateBusConfig(this.dir, `unix:path=${join(this.runtimeDir, 'bus')}`, this.options.busGuests);
    chmodSync(busConfig, 0o644);
    const [address, pid] = execFileSync(...this.argv('dbus-daemon', ['--config-file', busConfig, '--fork', '--print-address=1', '--print-pid=1']), { encoding: 'utf8' }).trim().split('\n');
    this.busPid = Number(pid);
    this.env.DBUS_SESSION_BUS_ADDRESS = address!;

    const config = join(this.dir, 'sway.conf');
    const lines = [
      `output HEADLESS-1 resolution ${this.width}x${this.height} position 0 0`,
      // No decorations to measure around, no gaps: a window's place is where the test put it.
      'default_border none',
      'focus_follows_mouse no',
      ...(this.options.bar ? ['bar {', '  position top', '  tray_output *', '  tray_padding 2', '}'] : []),
      ...(this.options.swayConfig ?? []),
    ];
    writeReadable(config, lines.join('\n') + '\n');
    const sway = this.spawn('sway', ['-c', config], {
      env: { WLR_BACKENDS: 'headless', WLR_LIBINPUT_NO_DEVICES: '1', WLR_RENDERER: 'pixman', WLR_HEADLESS_OUTPUTS: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    sway.stdout!.on('data', (d: Buffer) => (this.swayLog += d.toString()));
    sway.stderr!.on('data', (d: Buffer) => (this.swayLog += d.toString()));
    await this.waitFor(() => {
      if (sway.exitCode !== null) throw new Error(`sway exited (${sway.exitCode}): ${this.swayLog.slice(-2000)}`);
      const names = readdirSync(this.runtimeDir);
      const display = names.find((n) => /^wayland-\d+$/u.test(n));
      const ipc = names.find((n) => /^sway-ipc\..*\.sock$/u.test(n));
      if (!display || !ipc) return false;
      this.env.WAYLAND_DISPLAY = display;
      this.env.SWAYSOCK = join(this.runtimeDir, ipc);
      return true;
    }, 'sway to start');
    await this.waitFor(async () => (await this.run('swaymsg', ['-t', 'get_version'])).code === 0, 'sway to answer on its IPC socket');
  }

  /** The argv that runs `command` as the session user with exactly the session's environment (and `env`). */
  argv(command: string, args: readonly string[], env: Record<string, string> = {}): [string, string[]] {
    const assignments = Object.entries({ ...this.env, ...env }).map(([k, v]) => `${k}=${v}`);
    if (this.user.switches) return ['runuser', ['-u', this.user.name, '--', 'env', '-i', ...assignments, command, ...args]];
    return ['env', ['-i', ...assignments, command, ...args]];
  }

  /** Starts `command` in the session, as its user. */
  spawn(command: string, args: readonly string[], options: Omit<SpawnOptions, 'env'> & { env?: Record<string, string> } = {}): ChildProcess {
    const [cmd, argv] = this.argv(command, args, options.env);
    const child = spawn(cmd, argv, { stdio: 'ignore', ...options, env: process.env });
    this.children.push(child);
    return child;
  }

  /**
   * Runs `command` in the session to its end (10 s at most), output captured. `detaches`: for a
   * tool that forks a child to keep serving (wl-copy), which would hold our pipes open: its output
   * goes nowhere, and its own exit is the end.
   */
  run(command: string, args: readonly string[], options: { input?: string | Buffer; env?: Record<string, string>; timeoutMs?: number; detaches?: boolean } = {}): Promise<RunResult> {
    return new Promise((resolve) => {
      const [cmd, argv] = this.argv(command, args, options.env);
      const output = options.detaches ? 'ignore' : 'pipe';
      const child = spawn(cmd, argv, { stdio: ['pipe', output, output], timeout: options.timeoutMs ?? 10_000 });
      let stdout = '';
      let stderr = '';
      child.stdout?.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
      child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', (error) => resolve({ code: -1, stdout, stderr: stderr + error.message }));
      child.on(options.detaches ? 'exit' : 'close', (code) => resolve({ code, stdout, stderr }));
      child.stdin!.on('error', () => undefined);
      child.stdin!.end(options.input ?? '');
    });
  }

  /** Puts `text` on the Wayland clipboard with wl-copy, as another program would. */
  async copy(text: string): Promise<void> {
    const result = await this.run('wl-copy', ['--type', 'text/plain'], { input: text, detaches: true });
    if (result.code !== 0) throw new Error(`wl-copy failed (${result.code})`);
  }

  /** Runs the executable under test in the session. */
  runKeytap(args: readonly string[], options: { input?: string; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<RunResult> {
    return this.run(this.keytap, args, { timeoutMs: 30_000, ...options });
  }

  spawnKeytap(args: readonly string[], options: Omit<SpawnOptions, 'env'> & { env?: Record<string, string> } = {}): ChildProcess {
    return this.spawn(this.keytap, args, options);
  }

  /** `wl-paste --no-newline`: the clipboard's text, '' when it holds none. */
  async paste(type = 'text'): Promise<string> {
    const result = await this.run('wl-paste', ['--no-newline', '--type', type]);
    return result.code === 0 ? result.stdout : '';
  }

  /** The MIME types the clipboard's owner offers (`wl-paste --list-types`). */
  async clipboardTypes(): Promise<string[]> {
    const result = await this.run('wl-paste', ['--list-types']);
    return result.code === 0 ? result.stdout.split('\n').filter((l) => l !== '') : [];
  }

  async swaymsg(...args: string[]): Promise<RunResult> {
    return this.run('swaymsg', args);
  }

  /** Whether `name` has an owner on the session bus. */
  async busNameOwned(name: string): Promise<boolean> {
    const result = await this.run('gdbus', ['call', '--session', '--dest', 'org.freedesktop.DBus', '--object-path', '/org/freedesktop/DBus', '--method', 'org.freedesktop.DBus.NameHasOwner', name]);
    return result.stdout.includes('true');
  }

  /** Starts mako, a Wayland notification server, and waits until it owns org.freedesktop.Notifications. */
  async startMako(): Promise<void> {
    const config = join(this.dir, 'mako.conf');
    // Long enough to be listed by `makoctl list` when the test looks.
    writeReadable(config, 'default-timeout=60000\nmax-visible=20\n');
    this.spawn('mako', ['--config', config]);
    await this.waitFor(() => this.busNameOwned('org.freedesktop.Notifications'), 'mako to own org.freedesktop.Notifications');
  }

  /** The notifications mako shows now (`makoctl list`), newest first. */
  async makoNotifications(): Promise<{ appName: string; summary: string; body: string }[]> {
    const result = await this.run('makoctl', ['list']);
    if (result.code !== 0) throw new Error(`makoctl list failed: ${result.stderr}`);
    const parsed = JSON.parse(result.stdout) as { data: Record<string, { data: unknown }>[][] };
    return (parsed.data[0] ?? []).map((n) => ({ appName: String(n['app-name']?.data), summary: String(n.summary?.data), body: String(n.body?.data) }));
  }

  /**
   * Starts wayvnc on a free loopback port (it gives the seat a virtual pointer and keyboard) and
   * connects to it: the test's hand on the mouse and keys.
   */
  async startInput(): Promise<RfbClient> {
    const port = await freePort();
    const vnc = this.spawn('wayvnc', ['127.0.0.1', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let said = '';
    vnc.stderr!.on('data', (d: Buffer) => (said += d.toString()));
    const client = await this.waitFor(async () => {
      if (vnc.exitCode !== null) throw new Error(`wayvnc exited (${vnc.exitCode}): ${said}`);
      return RfbClient.open(port).catch(() => undefined);
    }, 'wayvnc to listen');
    await this.waitFor(async () => (await this.run('swaymsg', ['-t', 'get_seats'])).stdout.includes('"capabilities": 3'), 'the virtual pointer and keyboard on the seat');
    return client;
  }

  /**
   * Starts xdg-desktop-portal with its wlroots backend (Screenshot, ScreenCast; no GlobalShortcuts,
   * no RemoteDesktop), PipeWire and the backend first: the private bus activates nothing.
   * xdg-desktop-portal 1.16 offers Screenshot only where some installed backend has Access (the
   * "allow a screenshot?" dialog, not shown for programs outside a sandbox), which -wlr has not:
   * with xdg-desktop-portal-gtk installed (not started) it does, without it not.
   */
  async startPortal(): Promise<void> {
    const config = join(this.home, '.config', 'xdg-desktop-portal-wlr');
    mkdirSync(config, { recursive: true });
    for (const path of [join(this.home, '.config'), config]) this.own(path);
    // The wlroots backend exits at start without a PipeWire daemon to connect to (for ScreenCast);
    // pipewire comes with it (a dependency of xdg-desktop-portal-wlr).
    this.spawn('pipewire', []);
    await this.waitFor(() => readdirSync(this.runtimeDir).includes('pipewire-0'), 'pipewire to listen');
    this.spawn('/usr/libexec/xdg-desktop-portal-wlr', []);
    await this.waitFor(() => this.busNameOwned('org.freedesktop.impl.portal.desktop.wlr'), 'xdg-desktop-portal-wlr on the bus');
    this.spawn('/usr/libexec/xdg-desktop-portal', []);
    await this.waitFor(() => this.busNameOwned('org.freedesktop.portal.Desktop'), 'xdg-desktop-portal on the bus');
  }

  /** A PNG of the whole output (grim). */
  screenshot(): Buffer {
    const [cmd, argv] = this.argv('grim', ['-']);
    return execFileSync(cmd, argv, { maxBuffer: 64 * 1024 * 1024 });
  }

  waitFor<T>(predicate: () => T | undefined | false | Promise<T | undefined | false>, what: string, timeoutMs = 15_000): Promise<T> {
    return waitFor(predicate, what, timeoutMs);
  }

  /** Ends every process of the session (whatever sway started too) and removes its folder. */
  async stop(): Promise<void> {
    const pids = this.sessionProcesses();
    for (const pid of pids) signal(pid, 'SIGTERM');
    const deadline = Date.now() + 3_000;
    while (Date.now() < deadline && this.sessionProcesses().length > 0) await new Promise((r) => setTimeout(r, 50));
    for (const pid of this.sessionProcesses()) signal(pid, 'SIGKILL');
    for (const child of this.children) if (child.exitCode === null) child.kill('SIGKILL');
    if (this.busPid !== undefined) signal(this.busPid, 'SIGTERM');
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** The processes that run in this session: those whose environment names its runtime folder. */
  sessionProcesses(): number[] {
    const marker = `XDG_RUNTIME_DIR=${this.runtimeDir}\0`;
    const found: number[] = [];
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/u.test(entry) || Number(entry) === this.busPid) continue;
      try {
        if (readFileSync(`/proc/${entry}/environ`, 'latin1').includes(marker)) found.push(Number(entry));
      } catch {
        // Gone, or not ours to read.
      }
    }
    return found;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // Already gone.
  }
}

/** Written by this process, readable by the session's user. */
function writeReadable(path: string, text: string): void {
  writeFileSync(path, text, { mode: 0o644 });
  chmodSync(path, 0o644);
}
