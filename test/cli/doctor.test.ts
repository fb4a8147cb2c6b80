import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { DoctorCheck, DoctorEnv } from '../../src/app/doctor.js';
import { formatDoctor, runDoctor } from '../../src/app/doctor.js';
import { KeytapError } from '../../src/errors.js';
import { runKeytap, tempDir } from '../support/cli.js';

/**
 * A staged Linux machine: one FIDO hidraw node (openable or not), udev rules (one written by hand,
 * the keytap package's, a copy of that in /etc), a config folder.
 */
function machine(options: { openable: boolean; rule: boolean; packaged?: boolean; etcCopy?: boolean; config?: string }): Partial<DoctorEnv> {
  const root = tempDir();
  const sys = join(root, 'sys');
  const dev = join(root, 'dev');
  const udev = join(root, 'udev');
  mkdirSync(join(sys, 'hidraw0', 'device'), { recursive: true });
  mkdirSync(join(sys, 'hidraw1', 'device'), { recursive: true });
  // hidraw0: a FIDO interface (Usage Page 0xF1D0); hidraw1: a keyboard
  writeFileSync(join(sys, 'hidraw0', 'device', 'report_descriptor'), Buffer.from([0x06, 0xd0, 0xf1, 0x09, 0x01, 0xa1, 0x01]));
  writeFileSync(join(sys, 'hidraw1', 'device', 'report_descriptor'), Buffer.from([0x05, 0x01, 0x09, 0x06]));
  mkdirSync(dev);
  if (options.openable) writeFileSync(join(dev, 'hidraw0'), '');
  mkdirSync(udev);
  const rule = 'KERNEL=="hidraw*", SUBSYSTEM=="hidraw", ATTRS{idVendor}=="20a0", ATTRS{idProduct}=="42b2", TAG+="uaccess"\n';
  if (options.rule) writeFileSync(join(udev, '70-keytap.rules'), rule);
  const etc = join(root, 'etc-udev');
  const usrLib = join(root, 'usr-lib-udev');
  mkdirSync(etc);
  mkdirSync(usrLib);
  if (options.packaged) writeFileSync(join(usrLib, '70-keytap.rules'), rule);
  if (options.etcCopy) writeFileSync(join(etc, '70-keytap.rules'), rule);
  const configDir = join(root, 'config');
  if (options.config !== undefined) {
    mkdirSync(configDir);
    writeFileSync(join(configDir, 'config.json'), options.config);
  }
  return {
    platform: 'linux',
    env: { DISPLAY: ':7' },
    nodeVersion: '20.19.0',
    os: 'Linux 6.1 (x64)',
    sysHidraw: sys,
    devDir: dev,
    udevDirs: [etc, udev, usrLib],
    packagedUdevRules: join(usrLib, '70-keytap.rules'),
    configDir,
    which: (command) => Promise.resolve(command === 'xsel' ? '/usr/bin/xsel' : undefined),
    bus: () => Promise.resolve(undefined),
    canLoad: () => undefined,
    ipcPath: join(root, 'none.sock'),
  };
}

function byName(checks: DoctorCheck[]): Record<string, DoctorCheck> {
  return Object.fromEntries(checks.map((c) => [c.name, c]));
}

describe('keytap doctor', () => {
  it('a machine with everything but a session bus', async () => {
    const checks = byName(await runDoctor(machine({ openable: true, rule: true })));
    expect(checks['Node and OS']).toMatchObject({ status: 'ok', detail: 'Node 20.19.0 on Linux 6.1 (x64)' });
    expect(checks['HID access']!.status).toBe('ok');
    expect(checks['HID access']!.detail).toContain('hidraw0');
    expect(checks['HID access']!.detail).not.toContain('hidraw1');
    expect(checks['HID access']!.detail).toContain('70-keytap.rules');
    expect(checks['Tray host']).toMatchObject({ status: 'fail' });
    expect(checks['Tray host']!.fix).toBeTruthy();
    expect(checks.Notifications).toMatchObject({ status: 'fail' });
    expect(checks.Clipboard).toMatchObject({ status: 'ok', detail: 'X11 (:7): /usr/bin/xsel' });
    expect(checks['Global shortcut']).toMatchObject({ status: 'ok', detail: 'uiohook-napi' });
    expect(checks['Typing codes']).toMatchObject({ status: 'ok', detail: 'X11 (:7): XTEST, keys looked up in the keyboard layout' });
    expect(checks['Settings file']!.status).toBe('ok');
    expect(checks['Resident keytap']!.status).toBe('skip');
  });

  it('no access to the key and no rule: FAIL with the udev fix', async () => {
    const checks = byName(await runDoctor(machine({ openable: false, rule: false })));
    expect(checks['HID access']).toMatchObject({ status: 'fail' });
    expect(checks['HID access']!.detail).toContain('cannot open');
    expect(checks['HID access']!.fix).toContain('keytap doctor --udev-rules');
  });

  it('with the keytap package\'s rule: names it, and the fix no longer says to write one to /etc', async () => {
    const denied = byName(await runDoctor(machine({ openable: false, rule: false, packaged: true })))['HID access']!;
    expect(denied.status).toBe('fail');
    expect(denied.detail).toMatch(/udev rule \S+usr-lib-udev\/70-keytap\.rules from the keytap package$/u);
    expect(denied.fix).toContain('Plug the key in again');
    expect(denied.fix).not.toContain('/etc/udev');
    expect(denied.fix).not.toContain('--udev-rules');

    const fine = byName(await runDoctor(machine({ openable: true, rule: false, packaged: true })))['HID access']!;
    expect(fine.status).toBe('ok');
    expect(fine.detail).toContain('from the keytap package');
  });

  it('says when a file of the same name in a folder of higher precedence overrides the package\'s rule', async () => {
    const check = byName(await runDoctor(machine({ openable: true, rule: false, packaged: true, etcCopy: true })))['HID access']!;
    expect(check.status).toBe('ok');
    expect(check.detail).toMatch(/usr-lib-udev\/70-keytap\.rules from the keytap package, overridden by \S+etc-udev\/70-keytap\.rules$/u);
  });

  it('Wayland without wl-copy or the shortcut portal; old Node; broken settings', async () => {
    const env = { ...machine({ openable: true, rule: true, config: '{nope' }), env: { WAYLAND_DISPLAY: 'wayland-0' }, nodeVersion: '18.20.0' };
    const checks = byName(await runDoctor(env));
    expect(checks['Node and OS']!.status).toBe('fail');
    expect(checks.Clipboard).toMatchObject({ status: 'fail', fix: 'Install wl-clipboard (apt install wl-clipboard).' });
    expect(checks['Global shortcut']!.status).toBe('warn');
    expect(checks['Global shortcut']!.fix).toContain('keytap code');
    expect(checks['Typing codes']).toMatchObject({ status: 'warn', fix: expect.stringContaining('install wtype') });
    expect(checks['Settings file']!.status).toBe('fail');
    expect(checks['Settings file']!.detail).toContain('config.json');
  });

  it('typing on Wayland: wtype when there is no RemoteDesktop portal', async () => {
    const env = { ...machine({ openable: true, rule: true }), env: { WAYLAND_DISPLAY: 'wayland-1' }, which: (command: string) => Promise.resolve(command === 'wtype' ? '/usr/bin/wtype' : undefined) };
    expect(byName(await runDoctor(env))['Typing codes']).toMatchObject({ status: 'ok', detail: 'Wayland: /usr/bin/wtype (wlroots compositors: sway, Hyprland)' });
  });

  it('in sway: the compositor and its version, the clipboard adapter picked, and the bindsym lines for the configured shortcuts as the fix', async () => {
    const env = {
      ...machine({ openable: true, rule: true, config: JSON.stringify({ shortcut: 'Super+F5' }) }),
      env: { WAYLAND_DISPLAY: 'wayland-1', SWAYSOCK: '/run/sway.sock', XDG_CURRENT_DESKTOP: 'sway' },
      which: (command: string) => Promise.resolve(['wl-copy', 'wl-paste'].includes(command) ? `/usr/bin/${command}` : undefined),
      clipboard: () => Promise.resolve({ name: 'wl-copy', marksSensitive: false }),
      compositorVersion: (desktop: string) => Promise.resolve(desktop === 'sway' ? '1.7' : undefined),
      shortcutCommand: ['/opt/key tap/keytap'],
    };
    const checks = byName(await runDoctor(env));
    expect(checks.Compositor).toEqual({ name: 'Compositor', status: 'ok', detail: 'sway 1.7 (Wayland; XDG_CURRENT_DESKTOP=sway, WAYLAND_DISPLAY=wayland-1)' });
    expect(checks.Clipboard).toMatchObject({ status: 'ok', detail: 'Wayland: /usr/bin/wl-copy, /usr/bin/wl-paste; wl-copy, copies not marked sensitive (clipboard managers may keep them)' });
    expect(checks['Global shortcut']).toMatchObject({
      status: 'warn',
      fix: "Add to ~/.config/sway/config (sway), then reload it: bindsym Mod4+F5 exec '/opt/key tap/keytap' code; bindsym Ctrl+Mod1+Shift+k exec '/opt/key tap/keytap' code --type",
    });
    expect(checks['Desktop portal']).toMatchObject({ status: 'fail', detail: 'no session bus (DBUS_SESSION_BUS_ADDRESS is not set)' });
    expect(checks['Screen capture']).toMatchObject({ status: 'warn', detail: 'Wayland without the XDG Screenshot portal or grim: "keytap add --qr" cannot read the screen', fix: expect.stringContaining('keytap add --qr FILE') });
    expect(checks['Screen capture']!.fix).toContain('install grim');
    const withGrim = { ...env, which: (command: string) => Promise.resolve(['wl-copy', 'wl-paste', 'grim'].includes(command) ? `/usr/bin/${command}` : undefined) };
    expect(byName(await runDoctor(withGrim))['Screen capture']).toEqual({ name: 'Screen capture', status: 'ok', detail: 'Wayland: /usr/bin/grim, no XDG Screenshot portal (grim works on wlroots compositors: sway, Hyprland)' });
    // A compositor without data-control (GNOME): the reason keytap fell back is said with the adapter.
    const gnome = byName(
      await runDoctor({
        ...env,
        clipboard: (passedOver: (error: KeytapError) => void) => {
          passedOver(new KeytapError('UNSUPPORTED', 'This Wayland compositor offers no data-control protocol.'));
          return Promise.resolve({ name: 'wl-copy', marksSensitive: false });
        },
      }),
    );
    expect(gnome.Clipboard!.detail).toBe(
      'Wayland: /usr/bin/wl-copy, /usr/bin/wl-paste; wl-copy, copies not marked sensitive (clipboard managers may keep them). This Wayland compositor offers no data-control protocol.',
    );
    const unknown = byName(await runDoctor({ ...env, env: { WAYLAND_DISPLAY: 'wayland-1', XDG_CURRENT_DESKTOP: 'XFCE' } }));
    expect(unknown.Compositor).toMatchObject({ status: 'warn', detail: 'Wayland, a compositor keytap does not know (XDG_CURRENT_DESKTOP=XFCE, WAYLAND_DISPLAY=wayland-1)' });
    expect(unknown['Global shortcut']!.fix).toBe('Bind the command "keytap code" to a key in the desktop\'s keyboard settings; it asks the running keytap for the code.');
    expect(byName(await runDoctor(machine({ openable: true, rule: true }))).Compositor).toBeUndefined();
  });

  it('formats one line per check, fixes indented below failures', () => {
    const lines = formatDoctor([
      { name: 'A', status: 'ok', detail: 'fine' },
      { name: 'Longer', status: 'fail', detail: 'broken', fix: 'do this' },
    ]);
    expect(lines).toEqual(['OK    A       fine', 'FAIL  Longer  broken', '              fix: do this']);
  });

  it('the command prints the udev rules', async () => {
    const result = await runKeytap(['doctor', '--udev-rules']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('TAG+="uaccess"');
  });
});
