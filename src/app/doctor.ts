/**
 * `keytap doctor`: what the resident process needs from this machine, one line each, with the fix
 * when something is missing. Checks only look (list, open-and-close, ask the bus); nothing is
 * changed. Each check takes its environment from `DoctorEnv`, so tests can stage any machine.
 */
import { constants, existsSync } from 'node:fs';
import { access, open, readdir, readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { arch, release, type as osType } from 'node:os';
import { basename, delimiter, dirname, join } from 'node:path';
import { execFile } from 'node:child_process';
import { createClipboard, isWaylandSession } from '../desktop/clipboard/index.js';
import { bindingAdviser, DESKTOPS, detectDesktop } from '../desktop/hotkey/index.js';
import type { DesktopId } from '../desktop/hotkey/index.js';
import type { KeytapError } from '../errors.js';
import { isKeytapError } from '../errors.js';
import { PACKAGED_UDEV_RULES_PATH, UDEV_RELOAD_COMMAND, UDEV_RULES_PATH } from '../device/discovery/known-keys.js';
import type { SessionBus } from '../util/session-bus.js';
import { connectSessionBus, describeError, sessionBusAddress } from '../util/session-bus.js';
import { ConfigStore, DEFAULT_CONFIG, configDir, configPath } from './config.js';
import { explainDesktopBindingInline } from './explain.js';
import { ipcPath, requestIpc } from './ipc.js';

export type CheckStatus = 'ok' | 'fail' | 'warn' | 'skip';

export interface DoctorCheck {
  name: string;
  status: CheckStatus;
  detail: string;
  fix?: string | undefined;
}

export interface DoctorEnv {
  platform: NodeJS.Platform;
  env: NodeJS.ProcessEnv;
  nodeVersion: string;
  os: string;
  /** Sysfs root for hidraw (tests stage a fake one). */
  sysHidraw: string;
  devDir: string;
  /** udev's rules folders, highest precedence first (a file in an earlier one overrides one of the same name later). */
  udevDirs: string[];
  /** The rules file the keytap package installs (known-keys.ts). */
  packagedUdevRules: string;
  configDir: string;
  /** Finds an executable on PATH. */
  which: (command: string) => Promise<string | undefined>;
  /** Opens the session bus; undefined when there is none. */
  bus: () => Promise<SessionBus | undefined>;
  /** Whether a native module loads (uiohook-napi). */
  canLoad: (module: string) => string | undefined;
  ipcPath: string;
  /** Why the runtime folder (where ipcPath lives) is refused, when it is. */
  runtimeProblem?: KeytapError | undefined;
  /** The clipboard adapter the tray would pick here (Wayland). */
  clipboard: (onPassedOver: (error: KeytapError) => void) => Promise<{ name: string; marksSensitive: boolean }>;
  /** The running compositor's version, where it can be asked (sway's IPC); undefined otherwise. */
  compositorVersion: (desktop: DesktopId) => Promise<string | undefined>;
  /** What a desktop's own shortcut runs to reach this keytap (argv). */
  shortcutCommand: readonly string[];
}

/** Every outside question the doctor asks gets at most this long. */
const ASK_TIMEOUT_MS = 2_000;

export function defaultDoctorEnv(): DoctorEnv {
  return {
    platform: process.platform,
    env: process.env,
    nodeVersion: process.versions.node,
    os: `${osType()} ${release()} (${arch()})`,
    sysHidraw: '/sys/class/hidraw',
    devDir: '/dev',
    udevDirs: ['/etc/udev/rules.d', '/run/udev/rules.d', '/usr/lib/udev/rules.d', '/lib/udev/rules.d'],
    packagedUdevRules: PACKAGED_UDEV_RULES_PATH,
    configDir: configDir(),
    which: (command) => which(command, process.env),
    bus: async () => {
      const address = sessionBusAddress(process.env);
      if (!address) return undefined;
      return connectSessionBus(address, { timeoutMs: 2_000 });
    },
    canLoad: (module) => {
      try {
        // The bundle is CommonJS (__filename is its file, next to node_modules); under tsx/vitest it is not.
        createRequire(typeof __filename === 'string' ? __filename : join(process.cwd(), 'noop.js'))(module);
        return undefined;
      } catch (error) {
        return error instanceof Error ? error.message.split('\n')[0] : String(error);
      }
    },
    ...instanceEndpoint(),
    clipboard: (onPassedOver) => createClipboard({ resident: true, onError: onPassedOver }),
    compositorVersion: (desktop) => (desktop === 'sway' ? swayVersion() : Promise.resolve(undefined)),
    shortcutCommand: ['keytap'],
  };
}

/** `swaymsg -t get_version`'s human_readable, asked over sway's IPC socket (SWAYSOCK). */
function swayVersion(): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile('swaymsg', ['-t', 'get_version'], { timeout: ASK_TIMEOUT_MS, encoding: 'utf8' }, (error, stdout) => {
      if (error) return resolve(undefined);
      try {
        const version = (JSON.parse(stdout) as { human_readable?: unknown }).human_readable;
        resolve(typeof version === 'string' ? version : undefined);
      } catch {
        resolve(undefined);
      }
    });
  });
}

/** The IPC endpoint, or why its folder is refused: a check to report, not the end of the doctor. */
function instanceEndpoint(): Pick<DoctorEnv, 'ipcPath' | 'runtimeProblem'> {
  try {
    return { ipcPath: ipcPath() };
  } catch (error) {
    if (!isKeytapError(error, 'PERMISSION_DENIED')) throw error;
    return { ipcPath: '', runtimeProblem: error };
  }
}

export async function runDoctor(partial: Partial<DoctorEnv> = {}): Promise<DoctorCheck[]> {
  const env: DoctorEnv = { ...defaultDoctorEnv(), ...partial };
  let bus: SessionBus | undefined;
  let busError: string | undefined;
  if (env.platform !== 'win32' && env.platform !== 'darwin') {
    try {
      bus = await env.bus();
    } catch (error) {
      busError = describeError(error);
    }
  }
  try {
    const checks: DoctorCheck[] = [checkNode(env)];
    checks.push(await checkHid(env));
    const wayland = env.platform === 'linux' && isWaylandSession(env.env);
    const portal = wayland ? await portalInterfaces(bus) : undefined;
    if (wayland) {
      checks.push(await checkCompositor(env));
      checks.push(checkPortal(portal, bus, busError));
    }
    checks.push(await checkTrayHost(env, bus, busError));
    checks.push(await checkNotifications(env, bus, busError));
    checks.push(await checkClipboard(env));
    checks.push(await checkShortcut(env, bus));
    checks.push(await checkTyping(env, bus));
    if (wayland) checks.push(await checkScreenCapture(env, portal));
    checks.push(checkConfig(env));
    checks.push(await checkInstance(env));
    return checks;
  } finally {
    bus?.close();
  }
}

export function formatDoctor(checks: DoctorCheck[]): string[] {
  const width = Math.max(...checks.map((c) => c.name.length));
  const lines: string[] = [];
  for (const check of checks) {
    lines.push(`${check.status.toUpperCase().padEnd(4)}  ${check.name.padEnd(width)}  ${check.detail}`);
    if (check.fix && (check.status === 'fail' || check.status === 'warn')) lines.push(`${' '.repeat(6 + width)}  fix: ${check.fix}`);
  }
  return lines;
}

function checkNode(env: DoctorEnv): DoctorCheck {
  const major = Number(env.nodeVersion.split('.')[0]);
  return major >= 20
    ? { name: 'Node and OS', status: 'ok', detail: `Node ${env.nodeVersion} on ${env.os}` }
    : { name: 'Node and OS', status: 'fail', detail: `Node ${env.nodeVersion} on ${env.os}`, fix: 'Install Node.js 20 or newer.' };
}

/** The FIDO usage page 0xF1D0 as a HID report descriptor item: Usage Page (2 bytes) = 06 D0 F1. */
const FIDO_USAGE_PAGE_ITEM = Buffer.from([0x06, 0xd0, 0xf1]);

async function checkHid(env: DoctorEnv): Promise<DoctorCheck> {
  const name = 'HID access';
  if (env.platform === 'win32') {
    return { name, status: 'warn', detail: 'Windows lets only Administrators open FIDO HID devices directly.', fix: 'Run keytap as Administrator for keys read over HID (Nitrokey 3); YubiKeys are read over PC/SC and need no rights.' };
  }
  if (env.platform !== 'linux') return { name, status: 'ok', detail: `${env.platform}: no device permissions to set up` };

  const packaged = await packagedRule(env);
  const rules = packaged?.path ?? (await findUdevRule(env));
  const ruleText = packaged
    ? `udev rule ${packaged.path} from the keytap package${packaged.overriddenBy ? `, overridden by ${packaged.overriddenBy}` : ''}`
    : rules
      ? `udev rule ${rules}`
      : 'no udev rule for security keys found';
  // With the package's rule in place, writing another copy to /etc changes nothing: what is left
  // is that the rule applies on plug-in, and only to the user of the local desktop session.
  const ruleFix = packaged
    ? 'Plug the key in again, and run keytap in the desktop session at this machine: the rule gives the key to the user logged in there (not over SSH, not to other users).'
    : `Save the output of "keytap doctor --udev-rules" as ${UDEV_RULES_PATH}, run "${UDEV_RELOAD_COMMAND}", and plug the key in again.`;
  let nodes: string[];
  try {
    nodes = (await readdir(env.sysHidraw)).filter((n) => n.startsWith('hidraw')).sort();
  } catch {
    nodes = [];
  }
  const fido: string[] = [];
  for (const node of nodes) {
    try {
      const descriptor = await readFile(join(env.sysHidraw, node, 'device', 'report_descriptor'));
      if (descriptor.includes(FIDO_USAGE_PAGE_ITEM)) fido.push(node);
    } catch {
      // not readable: not ours to judge
    }
  }
  if (fido.length === 0) {
    return rules
      ? { name, status: 'ok', detail: `no FIDO key plugged in; ${ruleText}` }
      : { name, status: 'warn', detail: `no FIDO key plugged in, so access could not be tried; ${ruleText}`, fix: ruleFix };
  }
  const denied: string[] = [];
  for (const node of fido) {
    try {
      const handle = await open(join(env.devDir, node), constants.O_RDWR | constants.O_NONBLOCK);
      await handle.close();
    } catch {
      denied.push(node);
    }
  }
  if (denied.length === 0) return { name, status: 'ok', detail: `can open ${fido.map((n) => `/dev/${n}`).join(', ')}; ${ruleText}` };
  return { name, status: 'fail', detail: `cannot open ${denied.map((n) => `/dev/${n}`).join(', ')} (FIDO); ${ruleText}`, fix: ruleFix };
}

/**
 * The keytap package's rules file, if installed, and the file of the same name in a folder of
 * higher precedence that replaces it (a copy the user made in /etc before or after installing).
 */
async function packagedRule(env: DoctorEnv): Promise<{ path: string; overriddenBy: string | undefined } | undefined> {
  if (!(await isFile(env.packagedUdevRules))) return undefined;
  const own = env.udevDirs.indexOf(dirname(env.packagedUdevRules));
  const before = own === -1 ? env.udevDirs : env.udevDirs.slice(0, own);
  for (const dir of before) {
    const candidate = join(dir, basename(env.packagedUdevRules));
    if (await isFile(candidate)) return { path: env.packagedUdevRules, overriddenBy: candidate };
  }
  return { path: env.packagedUdevRules, overriddenBy: undefined };
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** A rule that tags security keys for the logged-in user: ours, or systemd's ID_SECURITY_TOKEN one. */
async function findUdevRule(env: DoctorEnv): Promise<string | undefined> {
  for (const dir of env.udevDirs) {
    let names: string[];
    try {
      names = (await readdir(dir)).filter((n) => n.endsWith('.rules')).sort();
    } catch {
      continue;
    }
    for (const file of names) {
      try {
        const text = await readFile(join(dir, file), 'utf8');
        if (/uaccess/u.test(text) && /(ID_SECURITY_TOKEN|idVendor\}=="(20a0|1050)"|keytap)/u.test(text)) return join(dir, file);
      } catch {
        // unreadable rules file
      }
    }
  }
  return undefined;
}

async function nameHasOwner(bus: SessionBus, name: string): Promise<boolean> {
  const reply = await bus.call({ destination: 'org.freedesktop.DBus', path: '/org/freedesktop/DBus', interface: 'org.freedesktop.DBus', member: 'NameHasOwner', signature: 's', body: [name] }, 2_000);
  return reply.body[0] === true;
}

async function getProperty(bus: SessionBus, destination: string, path: string, iface: string, property: string): Promise<unknown> {
  const reply = await bus.call({ destination, path, interface: 'org.freedesktop.DBus.Properties', member: 'Get', signature: 'ss', body: [iface, property] }, 2_000);
  const variant = reply.body[0] as { value?: unknown } | undefined;
  return variant?.value;
}

function noBus(name: string, busError: string | undefined, fix: string): DoctorCheck {
  return { name, status: 'fail', detail: busError ? `no session bus: ${busError}` : 'no session bus (DBUS_SESSION_BUS_ADDRESS is not set)', fix };
}

async function checkTrayHost(env: DoctorEnv, bus: SessionBus | undefined, busError: string | undefined): Promise<DoctorCheck> {
  const name = 'Tray host';
  if (env.platform === 'win32' || env.platform === 'darwin') return { name, status: 'ok', detail: 'systray2 (the notification area / menu bar is always there)' };
  const fix = 'Use a desktop with a StatusNotifierItem tray (KDE, XFCE, Cinnamon, waybar …); on GNOME install the "AppIndicator and KStatusNotifierItem Support" extension.';
  if (!bus) return noBus(name, busError, 'Start keytap inside a desktop session (it needs the session D-Bus).');
  try {
    if (!(await nameHasOwner(bus, 'org.kde.StatusNotifierWatcher'))) return { name, status: 'fail', detail: 'no StatusNotifierWatcher on the session bus', fix };
    const host = await getProperty(bus, 'org.kde.StatusNotifierWatcher', '/StatusNotifierWatcher', 'org.kde.StatusNotifierWatcher', 'IsStatusNotifierHostRegistered').catch(() => undefined);
    if (host === false) return { name, status: 'warn', detail: 'a StatusNotifierWatcher runs, but no tray host is registered with it', fix };
    return { name, status: 'ok', detail: 'StatusNotifierWatcher with a registered host' };
  } catch (error) {
    return { name, status: 'fail', detail: `asking the session bus failed: ${describeError(error)}`, fix };
  }
}

async function checkNotifications(env: DoctorEnv, bus: SessionBus | undefined, busError: string | undefined): Promise<DoctorCheck> {
  const name = 'Notifications';
  if (env.platform === 'win32' || env.platform === 'darwin') return { name, status: 'ok', detail: 'node-notifier (the system notification centre)' };
  const fix = 'Run a notification server (desktops ship one; on a bare window manager: dunst or mako).';
  if (!bus) return noBus(name, busError, fix);
  try {
    if (!(await nameHasOwner(bus, 'org.freedesktop.Notifications'))) {
      // Many servers are D-Bus activated: not running yet is fine if one is installed.
      const activatable = await bus.call({ destination: 'org.freedesktop.DBus', path: '/org/freedesktop/DBus', interface: 'org.freedesktop.DBus', member: 'ListActivatableNames' }, 2_000);
      const names = (activatable.body[0] as string[] | undefined) ?? [];
      return names.includes('org.freedesktop.Notifications')
        ? { name, status: 'ok', detail: 'a notification server starts on demand (D-Bus activation)' }
        : { name, status: 'fail', detail: 'no org.freedesktop.Notifications server', fix };
    }
    const info = await bus.call({ destination: 'org.freedesktop.Notifications', path: '/org/freedesktop/Notifications', interface: 'org.freedesktop.Notifications', member: 'GetServerInformation' }, 2_000);
    const [server, vendor, version] = info.body as string[];
    return { name, status: 'ok', detail: `org.freedesktop.Notifications: ${server ?? '?'} ${version ?? ''} (${vendor ?? '?'})`.replace(/\s+/gu, ' ') };
  } catch (error) {
    return { name, status: 'fail', detail: `asking the notification server failed: ${describeError(error)}`, fix };
  }
}

async function checkClipboard(env: DoctorEnv): Promise<DoctorCheck> {
  const name = 'Clipboard';
  if (env.platform === 'darwin') return { name, status: 'ok', detail: 'pbcopy/pbpaste (macOS)' };
  if (env.platform === 'win32') return { name, status: 'ok', detail: 'Windows clipboard (PowerShell)' };
  if (env.env.WAYLAND_DISPLAY) {
    const [copy, paste] = [await env.which('wl-copy'), await env.which('wl-paste')];
    if (!copy || !paste) {
      const absent = [!copy && 'wl-copy', !paste && 'wl-paste'].filter(Boolean).join(' and ');
      return { name, status: 'fail', detail: `Wayland session without ${absent}`, fix: 'Install wl-clipboard (apt install wl-clipboard).' };
    }
    let picked: string;
    try {
      // Why a better adapter was passed over (GNOME has no data-control): said with the one picked.
      const passedOver: string[] = [];
      const clipboard = await env.clipboard((error) => passedOver.push(describeError(error)));
      picked = `${clipboard.name}, copies ${clipboard.marksSensitive ? 'marked sensitive' : 'not marked sensitive (clipboard managers may keep them)'}`;
      if (passedOver.length > 0) picked += `. ${passedOver.join(' ')}`;
    } catch (error) {
      picked = `no adapter: ${describeError(error)}`;
    }
    return { name, status: 'ok', detail: `Wayland: ${copy}, ${paste}; ${picked}` };
  }
  if (env.env.DISPLAY) {
    for (const tool of ['xsel', 'xclip']) {
      const path = await env.which(tool);
      if (path) return { name, status: 'ok', detail: `X11 (${env.env.DISPLAY}): ${path}` };
    }
    return { name, status: 'fail', detail: `X11 (${env.env.DISPLAY}) without xsel or xclip`, fix: 'Install xsel (apt install xsel).' };
  }
  return { name, status: 'fail', detail: 'no display (neither WAYLAND_DISPLAY nor DISPLAY is set)', fix: 'Run keytap inside a graphical session.' };
}

async function checkShortcut(env: DoctorEnv, bus: SessionBus | undefined): Promise<DoctorCheck> {
  const name = 'Global shortcut';
  const bindInstead = 'Bind the command "keytap code" to a key in the desktop\'s keyboard settings; it asks the running keytap for the code.';
  if (env.platform === 'linux' && env.env.WAYLAND_DISPLAY) {
    if (bus) {
      try {
        const version = await getProperty(bus, 'org.freedesktop.portal.Desktop', '/org/freedesktop/portal/desktop', 'org.freedesktop.portal.GlobalShortcuts', 'version');
        if (typeof version === 'number') return { name, status: 'ok', detail: `Wayland: XDG GlobalShortcuts portal, version ${version}` };
      } catch {
        // no portal, or no GlobalShortcuts in it
      }
    }
    return { name, status: 'warn', detail: 'Wayland without the XDG GlobalShortcuts portal', fix: desktopBindingFix(env) ?? bindInstead };
  }
  if (env.platform === 'linux' && !env.env.DISPLAY) return { name, status: 'warn', detail: 'no display for a keyboard hook', fix: bindInstead };
  const failure = env.canLoad('uiohook-napi');
  if (failure) return { name, status: 'warn', detail: `uiohook-napi does not load: ${failure}`, fix: bindInstead };
  const note = env.platform === 'darwin' ? ' (needs the Accessibility permission in System Settings → Privacy & Security)' : '';
  return { name, status: 'ok', detail: `uiohook-napi${note}` };
}

/** "Type the code" (README): which backend would type, without typing anything. A warning at most: copying still works. */
async function checkTyping(env: DoctorEnv, bus: SessionBus | undefined): Promise<DoctorCheck> {
  const name = 'Typing codes';
  const paste = 'Leave "Type the code" off and paste the code.';
  if (env.platform === 'win32') return { name, status: 'ok', detail: 'SendInput through uiohook-napi (key positions: on AZERTY the digit row types symbols)' };
  if (env.platform === 'darwin') return { name, status: 'ok', detail: 'CGEvent through uiohook-napi (needs the Accessibility permission in System Settings → Privacy & Security)' };
  if (env.env.WAYLAND_DISPLAY || env.env.XDG_SESSION_TYPE === 'wayland') {
    if (bus) {
      try {
        const version = await getProperty(bus, 'org.freedesktop.portal.Desktop', '/org/freedesktop/portal/desktop', 'org.freedesktop.portal.RemoteDesktop', 'version');
        if (typeof version === 'number') return { name, status: 'ok', detail: `Wayland: XDG RemoteDesktop portal, version ${version} (the desktop asks once for the tray, which remembers the answer)` };
      } catch {
        // no portal, or no RemoteDesktop in it (xdg-desktop-portal-wlr)
      }
    }
    const wtype = await env.which('wtype');
    if (wtype) return { name, status: 'ok', detail: `Wayland: ${wtype} (wlroots compositors: sway, Hyprland)` };
    const ydotool = await env.which('ydotool');
    if (ydotool) return { name, status: 'ok', detail: `Wayland: ${ydotool} (needs ydotoold running and /dev/uinput; US key positions)` };
    return { name, status: 'warn', detail: 'Wayland without the RemoteDesktop portal, wtype or ydotool', fix: `On sway or Hyprland install wtype (apt install wtype); on GNOME and KDE install their xdg-desktop-portal backend. Or: ${paste}` };
  }
  if (env.env.DISPLAY) return { name, status: 'ok', detail: `X11 (${env.env.DISPLAY}): XTEST, keys looked up in the keyboard layout` };
  return { name, status: 'warn', detail: 'no display to type into', fix: paste };
}

const PORTAL_INTERFACES = ['GlobalShortcuts', 'Screenshot', 'RemoteDesktop'] as const;
type PortalInterface = (typeof PORTAL_INTERFACES)[number];

interface PortalInfo {
  running: boolean;
  /** Each interface's version; absent: not offered. */
  versions: Partial<Record<PortalInterface, number>>;
  error?: string | undefined;
}

async function portalInterfaces(bus: SessionBus | undefined): Promise<PortalInfo | undefined> {
  if (!bus) return undefined;
  try {
    if (!(await nameHasOwner(bus, 'org.freedesktop.portal.Desktop'))) return { running: false, versions: {} };
  } catch (error) {
    return { running: false, versions: {}, error: describeError(error) };
  }
  const versions: PortalInfo['versions'] = {};
  for (const iface of PORTAL_INTERFACES) {
    const version = await getProperty(bus, 'org.freedesktop.portal.Desktop', '/org/freedesktop/portal/desktop', `org.freedesktop.portal.${iface}`, 'version').catch(() => undefined);
    if (typeof version === 'number') versions[iface] = version;
  }
  return { running: true, versions };
}

async function checkCompositor(env: DoctorEnv): Promise<DoctorCheck> {
  const name = 'Compositor';
  const desktop = detectDesktop(env.env);
  const told = [env.env.XDG_CURRENT_DESKTOP && `XDG_CURRENT_DESKTOP=${env.env.XDG_CURRENT_DESKTOP}`, env.env.WAYLAND_DISPLAY && `WAYLAND_DISPLAY=${env.env.WAYLAND_DISPLAY}`].filter(Boolean).join(', ');
  if (!desktop) {
    return {
      name,
      status: 'warn',
      detail: `Wayland, a compositor keytap does not know (${told || 'nothing in the environment names it'})`,
      fix: 'keytap gives no binding lines for it: bind "keytap code" to a key in its own settings.',
    };
  }
  const version = await env.compositorVersion(desktop).catch(() => undefined);
  return { name, status: 'ok', detail: `${DESKTOPS[desktop].name}${version ? ` ${version}` : ''} (Wayland; ${told})` };
}

function checkPortal(portal: PortalInfo | undefined, bus: SessionBus | undefined, busError: string | undefined): DoctorCheck {
  const name = 'Desktop portal';
  const fix = "Install and start xdg-desktop-portal with this desktop's backend (xdg-desktop-portal-wlr on sway and other wlroots compositors, -gnome, -kde); keytap then reads QR codes from the screen and, where the backend has it, registers the shortcut.";
  if (!bus || !portal) return noBus(name, busError, 'Start keytap inside a desktop session (it needs the session D-Bus).');
  if (!portal.running) return { name, status: 'warn', detail: `xdg-desktop-portal is not running${portal.error ? ` (${portal.error})` : ''}`, fix };
  const offered = PORTAL_INTERFACES.map((iface) => (portal.versions[iface] === undefined ? `no ${iface}` : `${iface} ${portal.versions[iface]}`)).join(', ');
  return { name, status: 'ok', detail: `xdg-desktop-portal: ${offered}` };
}

/** `keytap add --qr` without a file on Wayland: the Screenshot portal, else grim (src/desktop/screen-capture/index.ts). */
async function checkScreenCapture(env: DoctorEnv, portal: PortalInfo | undefined): Promise<DoctorCheck> {
  const name = 'Screen capture';
  const version = portal?.versions.Screenshot;
  if (version !== undefined) return { name, status: 'ok', detail: `Wayland: XDG Screenshot portal, version ${version} (for "keytap add --qr" without a file)` };
  const grim = await env.which('grim');
  if (grim) return { name, status: 'ok', detail: `Wayland: ${grim}, no XDG Screenshot portal (grim works on wlroots compositors: sway, Hyprland)` };
  return {
    name,
    status: 'warn',
    detail: 'Wayland without the XDG Screenshot portal or grim: "keytap add --qr" cannot read the screen',
    fix: 'Start xdg-desktop-portal with its backend for this desktop (on sway or Hyprland, or install grim), or save the QR code as a PNG/JPEG and run "keytap add --qr FILE".',
  };
}

/** The binding lines for this desktop, on one line: the doctor's fix is one line. */
function desktopBindingFix(env: DoctorEnv): string | undefined {
  const adviser = bindingAdviser(env.env, env.shortcutCommand);
  if (!adviser) return undefined;
  let config: { shortcut: string; typeShortcut: string } = DEFAULT_CONFIG;
  try {
    if (existsSync(configPath(env.configDir))) {
      const store = ConfigStore.open({ dir: env.configDir });
      store.close();
      config = store.current;
    }
  } catch {
    // A broken settings file is the settings check's to report; the defaults are what the tray uses then.
  }
  const binding = adviser([
    { accelerator: config.shortcut, args: ['code'] },
    { accelerator: config.typeShortcut, args: ['code', '--type'] },
  ]);
  return binding ? explainDesktopBindingInline(binding) : undefined;
}

function checkConfig(env: DoctorEnv): DoctorCheck {
  const name = 'Settings file';
  // Look, don't create: the resident process writes the defaults on its first start.
  if (!existsSync(configPath(env.configDir))) return { name, status: 'ok', detail: `${configPath(env.configDir)} (not there yet: created with the defaults at the first start)` };
  const store = ConfigStore.open({ dir: env.configDir });
  store.close();
  if (store.problem) return { name, status: 'fail', detail: store.problem.message, fix: store.problem.hint };
  return { name, status: 'ok', detail: store.path };
}

async function checkInstance(env: DoctorEnv): Promise<DoctorCheck> {
  const name = 'Resident keytap';
  if (env.runtimeProblem) return { name, status: 'fail', detail: env.runtimeProblem.message, fix: env.runtimeProblem.hint };
  try {
    const answer = await requestIpc({ op: 'ping' }, { path: env.ipcPath, connectTimeoutMs: 1_000, answerTimeoutMs: 2_000 });
    if (answer?.ok) return { name, status: 'ok', detail: `running (pid ${String(answer.pid)}), reachable at ${env.ipcPath}` };
  } catch (error) {
    return { name, status: 'warn', detail: `something listens at ${env.ipcPath} but does not answer: ${describeError(error)}`, fix: 'Quit it (or end the process) and start keytap again.' };
  }
  return { name, status: 'skip', detail: `not running (start it with "keytap"; it listens at ${env.ipcPath})` };
}

async function which(command: string, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const path = join(dir, command);
    try {
      await access(path, constants.X_OK);
      if ((await stat(path)).isFile()) return path;
    } catch {
      // not here
    }
  }
  return undefined;
}
