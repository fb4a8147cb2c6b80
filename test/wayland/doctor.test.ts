// `keytap doctor` (the single executable) in a headless sway: with everything there (swaybar's
// tray, mako, xdg-desktop-portal-wlr) it names each, with versions; with them missing it names each
// missing part and its fix, and exits 1 as doctor does for a failed check. --json carries the same.
import { afterEach, describe, expect, it } from 'vitest';

import type { DoctorCheck } from '../../src/app/doctor.js';
import { missingTool } from '../platform/desktop.js';
import { WAYLAND_TOOLS, WaylandSession } from '../support/wayland-session.js';

const missing =
  process.platform === 'linux' ? missingTool(...WAYLAND_TOOLS, 'mako', 'swaybar', 'wtype', '/usr/libexec/xdg-desktop-portal', '/usr/libexec/xdg-desktop-portal-wlr') : 'Linux';
if (missing) console.warn(`skipping the Wayland doctor test: ${missing} is missing (see .ci/run)`);

describe.skipIf(missing !== undefined)('keytap doctor in sway', () => {
  let session: WaylandSession | undefined;

  afterEach(async () => {
    await session?.stop();
    session = undefined;
  });

  async function doctor(s: WaylandSession): Promise<{ code: number | null; lines: string[]; checks: Record<string, DoctorCheck>; stderr: string; ms: number }> {
    const started = Date.now();
    const text = await s.runKeytap(['doctor']);
    const ms = Date.now() - started;
    const json = await s.runKeytap(['doctor', '--json']);
    expect(json.code).toBe(text.code);
    const checks = Object.fromEntries((JSON.parse(json.stdout) as DoctorCheck[]).map((c) => [c.name, c]));
    return { code: text.code, lines: text.stdout.split('\n'), checks, stderr: text.stderr, ms };
  }

  /** The line of a check in the text output, and its fix line when it has one. */
  function lineOf(lines: string[], name: string): string {
    const index = lines.findIndex((l) => new RegExp(`^(OK|FAIL|WARN|SKIP)\\s+${name}\\s`, 'u').test(l));
    expect(index, `${name} in:\n${lines.join('\n')}`).toBeGreaterThanOrEqual(0);
    const next = lines[index + 1] ?? '';
    return /^\s+fix: /u.test(next) ? `${lines[index]}\n${next.trim()}` : lines[index]!;
  }

  it('everything there: compositor, portal (with what it offers), tray host, mako, wl-clipboard, wtype', async () => {
    session = new WaylandSession({ bar: true });
    await session.start();
    await session.startMako();
    await session.startPortal();
    await session.waitFor(() => session!.busNameOwned('org.kde.StatusNotifierWatcher'), "swaybar's StatusNotifierWatcher");
    const version = (JSON.parse((await session.swaymsg('-t', 'get_version')).stdout) as { human_readable: string }).human_readable;
    const { code, lines, checks, ms } = await doctor(session);
    console.log(`keytap doctor in sway with everything: ${ms} ms\n${lines.join('\n')}`);

    expect(lineOf(lines, 'Compositor')).toMatch(new RegExp(`^OK\\s+Compositor\\s+sway ${version.replaceAll('.', '\\.')} \\(Wayland; XDG_CURRENT_DESKTOP=sway, WAYLAND_DISPLAY=wayland-\\d+\\)$`, 'u'));
    // What the portal offers, asked with gdbus (Debian 12's xdg-desktop-portal with the wlr backend
    // offers ScreenCast, and Screenshot only with an Access backend installed (-gtk, .ci/run); no
    // GlobalShortcuts, no RemoteDesktop).
    const offered: string[] = [];
    for (const iface of ['GlobalShortcuts', 'Screenshot', 'RemoteDesktop']) {
      const got = await session.run('gdbus', ['call', '--session', '--dest', 'org.freedesktop.portal.Desktop', '--object-path', '/org/freedesktop/portal/desktop', '--method', 'org.freedesktop.DBus.Properties.Get', `org.freedesktop.portal.${iface}`, 'version']);
      const version = /<uint32 (\d+)>/u.exec(got.stdout)?.[1];
      offered.push(version === undefined ? `no ${iface}` : `${iface} ${version}`);
    }
    expect(checks['Desktop portal']).toMatchObject({ status: 'ok', detail: `xdg-desktop-portal: ${offered.join(', ')}` });
    const screenshot = offered.find((o) => o.startsWith('Screenshot '));
    expect(checks['Screen capture']!.detail).toBe(
      screenshot ? `Wayland: XDG Screenshot portal, version ${screenshot.slice(11)} (for "keytap add --qr" without a file)` : 'Wayland: /usr/bin/grim, no XDG Screenshot portal (grim works on wlroots compositors: sway, Hyprland)',
    );
    expect(checks['Tray host']).toMatchObject({ status: 'ok', detail: 'StatusNotifierWatcher with a registered host' });
    expect(checks.Notifications!.detail).toMatch(/^org\.freedesktop\.Notifications: mako /u);
    // sway has wlr-data-control: keytap owns the selection itself and marks copies.
    expect(checks.Clipboard).toMatchObject({ status: 'ok', detail: 'Wayland: /usr/bin/wl-copy, /usr/bin/wl-paste; wlr-data-control (in-process), copies marked sensitive' });
    expect(checks['Typing codes']).toMatchObject({ status: 'ok', detail: 'Wayland: /usr/bin/wtype (wlroots compositors: sway, Hyprland)' });
    // The shortcut: sway's own binding, for this executable.
    const fix = `Add to ~/.config/sway/config (sway), then reload it: bindsym Ctrl+Mod1+k exec ${session.keytap} code; bindsym Ctrl+Mod1+Shift+k exec ${session.keytap} code --type`;
    expect(lineOf(lines, 'Global shortcut')).toMatch(/^WARN\s+Global shortcut\s+Wayland without the XDG GlobalShortcuts portal\nfix: /u);
    expect(lineOf(lines, 'Global shortcut').endsWith(`fix: ${fix}`)).toBe(true);
    expect(checks['Global shortcut']).toMatchObject({ status: 'warn', fix });
    const failed = Object.values(checks).filter((c) => c.status === 'fail');
    expect(failed).toEqual([]);
    expect(code).toBe(0);
  }, 90_000);

  it('no bar, no mako, no portal: each named as missing, with its fix, and exit 1', async () => {
    session = new WaylandSession();
    await session.start();
    const { code, lines, checks, stderr } = await doctor(session);
    console.log(`keytap doctor in a bare sway:\n${lines.join('\n')}`);
    expect(checks.Compositor!.status).toBe('ok');
    expect(lineOf(lines, 'Desktop portal')).toMatch(/^WARN\s+Desktop portal\s+xdg-desktop-portal is not running\n\s*fix: Install and start xdg-desktop-portal with this desktop's backend \(xdg-desktop-portal-wlr on sway/u);
    expect(lineOf(lines, 'Tray host')).toMatch(/^FAIL\s+Tray host\s+no StatusNotifierWatcher on the session bus\n\s*fix: Use a desktop with a StatusNotifierItem tray/u);
    expect(lineOf(lines, 'Notifications')).toMatch(/^FAIL\s+Notifications\s+no org\.freedesktop\.Notifications server\n\s*fix: Run a notification server \(desktops ship one; on a bare window manager: dunst or mako\)\./u);
    // No portal: grim, which the session has (WAYLAND_TOOLS' neighbours in .ci/run).
    expect(lineOf(lines, 'Screen capture')).toMatch(/^OK\s+Screen capture\s+Wayland: \/usr\/bin\/grim, no XDG Screenshot portal/u);
    expect(checks['Global shortcut']!.fix).toContain(`bindsym Ctrl+Mod1+k exec ${session.keytap} code`);
    expect(code).toBe(1);
    expect(stderr).toMatch(/checks failed: Tray host, Notifications\./u);
  }, 60_000);
});
