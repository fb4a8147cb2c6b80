// The desktop's own binding where no global-shortcut backend works: which desktop this is (from
// its environment), each desktop's syntax for the accelerators keytap takes, the command quoted for
// the shell the compositors run `exec` through, and the README's table said from the same table.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { bindingAdviser, createGlobalShortcut } from '../../src/desktop/hotkey/index.js';
import { DESKTOPS, desktopBinding, detectDesktop, shellQuote } from '../../src/desktop/hotkey/desktop-binding.js';
import type { DesktopId } from '../../src/desktop/hotkey/desktop-binding.js';
import { shortcutCommand } from '../../src/cli/self.js';

const one = (desktop: DesktopId, accelerator: string, command = 'keytap'): string[] => desktopBinding(desktop, [{ accelerator, args: ['code'] }], command).lines;

describe('detectDesktop', () => {
  it.each([
    [{ SWAYSOCK: '/run/user/1000/sway-ipc.sock' }, 'sway'],
    [{ XDG_CURRENT_DESKTOP: 'sway' }, 'sway'],
    [{ HYPRLAND_INSTANCE_SIGNATURE: 'abc_123' }, 'hyprland'],
    [{ XDG_CURRENT_DESKTOP: 'Hyprland' }, 'hyprland'],
    [{ XDG_CURRENT_DESKTOP: 'river' }, 'river'],
    [{ XDG_CURRENT_DESKTOP: 'wayfire' }, 'wayfire'],
    [{ WAYFIRE_SOCKET: '/tmp/wayfire-wayland-1.socket' }, 'wayfire'],
    [{ XDG_CURRENT_DESKTOP: 'labwc:wlroots' }, 'labwc'],
    [{ LABWC_PID: '812' }, 'labwc'],
    [{ XDG_CURRENT_DESKTOP: 'niri' }, 'niri'],
    [{ NIRI_SOCKET: '/run/user/1000/niri.sock' }, 'niri'],
    [{ XDG_CURRENT_DESKTOP: 'KDE' }, 'kde'],
    [{ XDG_CURRENT_DESKTOP: 'ubuntu:GNOME' }, 'gnome'],
    [{ XDG_CURRENT_DESKTOP: 'XFCE' }, undefined],
    [{}, undefined],
  ] as const)('%j → %s', (env, desktop) => {
    expect(detectDesktop(env)).toBe(desktop);
  });
});

describe("each desktop's binding syntax", () => {
  it.each([
    ['Ctrl+Alt+K', 'bindsym Ctrl+Mod1+k exec keytap code'],
    ['Ctrl+Alt+Shift+K', 'bindsym Ctrl+Mod1+Shift+k exec keytap code'],
    ['Super+F5', 'bindsym Mod4+F5 exec keytap code'],
    ['F13', 'bindsym F13 exec keytap code'],
    ['Ctrl+Alt+-', 'bindsym Ctrl+Mod1+minus exec keytap code'],
    ['Ctrl+Alt+/', 'bindsym Ctrl+Mod1+slash exec keytap code'],
    ['Ctrl++', 'bindsym Ctrl+plus exec keytap code'],
    ['Super+Space', 'bindsym Mod4+space exec keytap code'],
    ['Alt+Num5', 'bindsym Mod1+KP_5 exec keytap code'],
  ])('sway: %s', (accelerator, line) => {
    expect(one('sway', accelerator)).toEqual([line]);
  });

  it.each([
    ['Ctrl+Alt+K', 'bind = CTRL ALT, K, exec, keytap code'],
    ['Ctrl+Alt+Shift+K', 'bind = CTRL ALT SHIFT, K, exec, keytap code'],
    ['Super+F5', 'bind = SUPER, F5, exec, keytap code'],
    ['F13', 'bind = , F13, exec, keytap code'],
    ['Ctrl+Alt+[', 'bind = CTRL ALT, bracketleft, exec, keytap code'],
  ])('Hyprland: %s', (accelerator, line) => {
    expect(one('hyprland', accelerator)).toEqual([line]);
  });

  it.each([
    ['river', 'Ctrl+Alt+Shift+K', ["riverctl map normal Control+Alt+Shift K spawn 'keytap code'"]],
    ['river', 'F13', ["riverctl map normal None F13 spawn 'keytap code'"]],
    ['wayfire', 'Super+Shift+F5', ['binding_keytap_shift_f5 = <shift> <super> KEY_F5', 'command_keytap_shift_f5 = keytap code']],
    ['wayfire', 'Ctrl+Alt+K', ['binding_keytap_k = <ctrl> <alt> KEY_K', 'command_keytap_k = keytap code']],
    ['wayfire', 'Super+[', ['binding_keytap_bracketleft = <super> KEY_LEFTBRACE', 'command_keytap_bracketleft = keytap code']],
    ['wayfire', 'Ctrl+Alt+Num5', ['binding_keytap_kp_5 = <ctrl> <alt> KEY_KP5', 'command_keytap_kp_5 = keytap code']],
    ['wayfire', 'Ctrl+Alt+PageUp', ['binding_keytap_page_up = <ctrl> <alt> KEY_PAGEUP', 'command_keytap_page_up = keytap code']],
    ['labwc', 'Ctrl+Alt+Shift+K', ['<keybind key="C-A-S-k"><action name="Execute" command="keytap code"/></keybind>']],
    ['labwc', 'Super+,', ['<keybind key="W-comma"><action name="Execute" command="keytap code"/></keybind>']],
    ['niri', 'Ctrl+Alt+K', ['Ctrl+Alt+k { spawn "keytap" "code"; }']],
    ['niri', 'Super+Shift+=', ['Shift+Super+equal { spawn "keytap" "code"; }']],
  ] as const)('%s: %s', (desktop, accelerator, lines) => {
    expect(one(desktop, accelerator)).toEqual(lines);
  });

  it('GNOME and KDE take the command in a settings page: no lines, the commands and where', () => {
    const gnome = desktopBinding('gnome', [{ accelerator: 'Ctrl+Alt+K', args: ['code'] }, { accelerator: 'Ctrl+Alt+Shift+K', args: ['code', '--type'] }], '/usr/bin/keytap');
    expect(gnome).toEqual({
      desktop: 'GNOME',
      where: 'Settings → Keyboard → View and Customize Shortcuts → Custom Shortcuts',
      lines: [],
      commands: [
        { accelerator: 'Ctrl+Alt+K', command: '/usr/bin/keytap code' },
        { accelerator: 'Ctrl+Alt+Shift+K', command: '/usr/bin/keytap code --type' },
      ],
    });
    expect(desktopBinding('kde', [], 'keytap').where).toBe('System Settings → Keyboard → Shortcuts → Add New → Command or Script');
  });

  it('both shortcuts, the type one with --type; one that does not parse is left out', () => {
    const lines = desktopBinding('sway', [{ accelerator: 'Ctrl+Alt+K', args: ['code'] }, { accelerator: 'Ctrl+Alt+Shift+K', args: ['code', '--type'] }, { accelerator: 'Ctrl+Banana', args: ['code'] }], '/usr/bin/keytap').lines;
    expect(lines).toEqual(['bindsym Ctrl+Mod1+k exec /usr/bin/keytap code', 'bindsym Ctrl+Mod1+Shift+k exec /usr/bin/keytap code --type']);
  });

  it("a path with spaces or quotes survives the shell the compositor runs exec through, and niri's own words", () => {
    const path = "/home/o'neil/my apps/keytap";
    expect(shellQuote(path)).toBe(`'/home/o'\\''neil/my apps/keytap'`);
    expect(execFileSync('sh', ['-c', `printf %s ${shellQuote(path)}`], { encoding: 'utf8' })).toBe(path);
    const [niri] = desktopBinding('niri', [{ accelerator: 'Ctrl+Alt+K', args: ['code'] }], shellQuote(path)).lines;
    expect(niri).toBe(`Ctrl+Alt+k { spawn "/home/o'neil/my apps/keytap" "code"; }`);
    const [labwc] = desktopBinding('labwc', [{ accelerator: 'Ctrl+Alt+K', args: ['code'] }], '/opt/a&b/keytap').lines;
    expect(labwc).toBe('<keybind key="C-A-k"><action name="Execute" command="/opt/a&amp;b/keytap code"/></keybind>');
  });
});

describe('the adapter and the command', () => {
  it('the Wayland backends give the binding of the desktop they run in, quoted; an unknown desktop gives none', () => {
    const env = { WAYLAND_DISPLAY: 'wayland-1', SWAYSOCK: '/tmp/sway.sock' };
    const shortcut = createGlobalShortcut({ platform: 'linux', env, command: ['/opt/key tap/keytap'] });
    expect(shortcut.desktopBinding?.([{ accelerator: 'Ctrl+Alt+K', args: ['code'] }])?.lines).toEqual(["bindsym Ctrl+Mod1+k exec '/opt/key tap/keytap' code"]);
    const noBus = createGlobalShortcut({ platform: 'linux', env: { ...env, DBUS_SESSION_BUS_ADDRESS: '', XDG_RUNTIME_DIR: '/nonexistent' }, command: ['keytap'] });
    expect(noBus.name).toBe('none');
    expect(noBus.desktopBinding?.([{ accelerator: 'Ctrl+Alt+K', args: ['code'] }])?.where).toBe('~/.config/sway/config');
    expect(bindingAdviser({ XDG_CURRENT_DESKTOP: 'XFCE' }, ['keytap'])).toBeUndefined();
  });

  it('the command: the single executable by its path; from source `keytap` when on the PATH, else node and the script', () => {
    const facts = { execPath: '/usr/bin/keytap', execArgv: [], script: 'keytap', singleExecutable: true };
    expect(shortcutCommand(facts, () => true)).toEqual(['/usr/bin/keytap']);
    const source = { execPath: '/usr/bin/node', execArgv: ['--no-warnings'], script: '/src/keytap/bin/keytap.cjs', singleExecutable: false };
    expect(shortcutCommand(source, (name) => name === 'keytap')).toEqual(['keytap']);
    expect(shortcutCommand(source, () => false)).toEqual(['/usr/bin/node', '--no-warnings', '/src/keytap/bin/keytap.cjs']);
  });
});

describe('the README says what the code says', () => {
  it('"The global shortcut" names each desktop with where its bindings go and the default binding', () => {
    const readme = readFileSync(join(import.meta.dirname, '../../README.md'), 'utf8');
    for (const id of Object.keys(DESKTOPS) as DesktopId[]) {
      const facts = DESKTOPS[id];
      const binding = desktopBinding(id, [{ accelerator: 'Ctrl+Alt+K', args: ['code'] }], 'keytap');
      const row = `| ${facts.name} | ${facts.where} | ${binding.lines.length > 0 ? binding.lines.map((line) => `\`${line}\``).join('<br>') : 'command `keytap code`, shortcut Ctrl+Alt+K'} |`;
      expect(readme).toContain(row);
    }
  });
});
