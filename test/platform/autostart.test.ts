// Start at login: the XDG entry and the LaunchAgent in a temporary HOME (content, quoting,
// enable/disable/isEnabled), checked with desktop-file-validate and Python's plistlib where
// installed; the Windows Run key through a recorded reg.exe.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { createAutostart, execLine, quoteExecArgument } from '../../src/desktop/autostart/index.js';
import type { LaunchAgentAutostart} from '../../src/desktop/autostart/launchagent.js';
import { LAUNCH_AGENT_LABEL } from '../../src/desktop/autostart/launchagent.js';
import { RUN_KEY, WindowsRunAutostart, quoteWindowsArgument, windowsCommandLine } from '../../src/desktop/autostart/windows-run.js';
import { XdgAutostart } from '../../src/desktop/autostart/xdg.js';
import type { CommandRunner } from '../../src/desktop/clipboard/run.js';
import { missingTool } from './desktop.js';

/**
 * The reading side of the Desktop Entry spec, written from the spec: undo the string escapes,
 * then split on unquoted spaces, undoing the quoting and %%.
 */
function parseExec(value: string): string[] {
  const unescaped = value.replace(/\\(.)/g, (_m, c: string) => ({ s: ' ', n: '\n', t: '\t', r: '\r', '\\': '\\' })[c] ?? `\\${c}`);
  const args: string[] = [];
  let current = '';
  let quoted = false;
  let started = false;
  for (let i = 0; i < unescaped.length; i++) {
    const c = unescaped[i]!;
    if (quoted) {
      if (c === '\\' && /["`$\\]/.test(unescaped[i + 1] ?? '')) current += unescaped[++i];
      else if (c === '"') quoted = false;
      else current += c;
    } else if (c === '"') {
      quoted = true;
      started = true;
    } else if (c === ' ') {
      if (started || current) args.push(current);
      current = '';
      started = false;
    } else current += c;
  }
  if (started || current) args.push(current);
  return args.map((arg) => arg.replace(/%%/g, '%'));
}

const homes: string[] = [];
function tempHome(): string {
  const home = mkdtempSync(join(tmpdir(), 'keytap-home-'));
  homes.push(home);
  return home;
}
afterEach(() => {
  for (const home of homes.splice(0)) rmSync(home, { recursive: true, force: true });
});

const AWKWARD = [
  '/opt/My Apps/node',
  '/home/a b/keytap/bin/keytap.cjs',
  'tray',
  '--label=100% "quoted" $HOME `cmd` back\\slash',
  'tab\there',
  '',
];

describe('XDG autostart entry', () => {
  it('quotes Exec arguments per the Desktop Entry spec', () => {
    expect(quoteExecArgument('/usr/bin/node')).toBe('/usr/bin/node');
    expect(quoteExecArgument('a b')).toBe('"a b"');
    expect(quoteExecArgument('50%')).toBe('50%%');
    expect(quoteExecArgument('say "hi" $x `y` \\z')).toBe('"say \\"hi\\" \\$x \\`y\\` \\\\z"');
    expect(quoteExecArgument('')).toBe('""');
    // The string escape on top: a literal backslash in a quoted argument becomes four.
    expect(execLine(['a\\b c'])).toBe('"a\\\\\\\\b c"');
    expect(parseExec(execLine(AWKWARD))).toEqual(AWKWARD);
  });

  it('enable writes $XDG_CONFIG_HOME/autostart/keytap.desktop atomically; isEnabled/disable', async () => {
    const home = tempHome();
    const config = join(home, 'cfg');
    const autostart = createAutostart({ platform: 'linux', env: { HOME: home, XDG_CONFIG_HOME: config } });
    expect(autostart.name).toBe('XDG autostart');
    expect(await autostart.isEnabled()).toBe(false);
    await autostart.enable(AWKWARD);
    const file = join(config, 'autostart', 'keytap.desktop');
    const text = readFileSync(file, 'utf8');
    expect(text).toMatch(/^\[Desktop Entry\]\n/);
    expect(text).toContain('\nType=Application\n');
    expect(text).toContain('\nX-GNOME-Autostart-enabled=true\n');
    const exec = /^Exec=(.*)$/m.exec(text)![1]!;
    expect(parseExec(exec)).toEqual(AWKWARD);
    expect(readdirSync(join(config, 'autostart'))).toEqual(['keytap.desktop']); // no temporary files left
    expect(statSync(file).mode & 0o777).toBe(0o644);
    expect(await autostart.isEnabled()).toBe(true);
    await autostart.enable(['/usr/bin/keytap']);
    expect(readFileSync(file, 'utf8')).toContain('\nExec=/usr/bin/keytap\n');
    await autostart.disable();
    expect(await autostart.isEnabled()).toBe(false);
    await autostart.disable(); // idempotent
  });

  it('falls back to ~/.config when XDG_CONFIG_HOME is unset or relative; honours Hidden=true', async () => {
    const home = tempHome();
    const autostart = new XdgAutostart({ HOME: home, XDG_CONFIG_HOME: 'relative/path' });
    expect(autostart.file).toBe(join(home, '.config', 'autostart', 'keytap.desktop'));
    await autostart.enable(['/usr/bin/keytap']);
    writeFileSync(autostart.file, `${readFileSync(autostart.file, 'utf8')}Hidden=true\n`);
    expect(await autostart.isEnabled()).toBe(false);
  });

  it.skipIf(missingTool('desktop-file-validate') !== undefined)('desktop-file-validate accepts the entry (Debian package desktop-file-utils)', async () => {
    const home = tempHome();
    const autostart = new XdgAutostart({ HOME: home });
    await autostart.enable(AWKWARD);
    expect(() => execFileSync('desktop-file-validate', [autostart.file], { encoding: 'utf8' })).not.toThrow();
    expect(execFileSync('desktop-file-validate', [autostart.file], { encoding: 'utf8' })).toBe('');
  });
});

describe('macOS LaunchAgent', () => {
  it('writes ~/Library/LaunchAgents/<label>.plist with ProgramArguments and RunAtLoad', async () => {
    const home = tempHome();
    const autostart = createAutostart({ platform: 'darwin', env: { HOME: home } }) as LaunchAgentAutostart;
    expect(autostart.name).toBe('LaunchAgent');
    expect(autostart.file).toBe(join(home, 'Library', 'LaunchAgents', `${LAUNCH_AGENT_LABEL}.plist`));
    expect(await autostart.isEnabled()).toBe(false);
    const argv = ['/Applications/keytap & co/keytap', '--x=<y>', 'tray'];
    await autostart.enable(argv);
    expect(await autostart.isEnabled()).toBe(true);
    const text = readFileSync(autostart.file, 'utf8');
    expect(text).toContain('<string>/Applications/keytap &amp; co/keytap</string>');
    expect(text).toContain('<string>--x=&lt;y&gt;</string>');
    if (missingTool('python3') === undefined) {
      const parsed = JSON.parse(
        execFileSync('python3', ['-c', 'import json, plistlib, sys; print(json.dumps(plistlib.load(open(sys.argv[1], "rb"))))', autostart.file], { encoding: 'utf8' }),
      ) as Record<string, unknown>;
      expect(parsed).toEqual({ Label: LAUNCH_AGENT_LABEL, ProgramArguments: argv, RunAtLoad: true, KeepAlive: false, ProcessType: 'Interactive' });
    }
    await autostart.disable();
    expect(await autostart.isEnabled()).toBe(false);
  });
});

describe('Windows HKCU Run key', () => {
  it('quotes like CommandLineToArgvW expects', () => {
    expect(quoteWindowsArgument('C:\\keytap\\keytap.exe')).toBe('C:\\keytap\\keytap.exe');
    expect(quoteWindowsArgument('C:\\Program Files\\keytap\\keytap.exe')).toBe('"C:\\Program Files\\keytap\\keytap.exe"');
    expect(quoteWindowsArgument('a "b"')).toBe('"a \\"b\\""');
    expect(quoteWindowsArgument('C:\\dir with space\\')).toBe('"C:\\dir with space\\\\"');
    expect(quoteWindowsArgument('')).toBe('""');
    expect(windowsCommandLine(['C:\\Program Files\\nodejs\\node.exe', 'C:\\k\\keytap.cjs', 'tray'])).toBe('"C:\\Program Files\\nodejs\\node.exe" C:\\k\\keytap.cjs tray');
  });

  it('enable/isEnabled/disable through reg.exe, never a shell', async () => {
    const calls: { command: string; args: readonly string[] }[] = [];
    let value: string | undefined;
    const run: CommandRunner = (command, args) => {
      calls.push({ command, args });
      const [verb] = args;
      if (verb === 'add') value = args[args.indexOf('/d') + 1];
      if (verb === 'delete') value = undefined;
      const code = verb === 'query' && value === undefined ? 1 : 0;
      return Promise.resolve({ code, stdout: '', stderr: '' });
    };
    const autostart = new WindowsRunAutostart(run);
    expect(await autostart.isEnabled()).toBe(false);
    await autostart.enable(['C:\\Program Files\\keytap\\keytap.exe', 'tray']);
    expect(calls.at(-1)).toEqual({
      command: 'reg.exe',
      args: ['add', RUN_KEY, '/v', 'keytap', '/t', 'REG_SZ', '/d', '"C:\\Program Files\\keytap\\keytap.exe" tray', '/f'],
    });
    expect(await autostart.isEnabled()).toBe(true);
    await autostart.disable();
    expect(calls.at(-1)?.args.slice(0, 4)).toEqual(['delete', RUN_KEY, '/v', 'keytap']);
    expect(await autostart.isEnabled()).toBe(false);
    await autostart.disable(); // nothing to delete: no error
    expect(createAutostart({ platform: 'win32' }).name).toBe('HKCU Run');
  });

  it('a refused write is PERMISSION_DENIED with a hint', async () => {
    const autostart = new WindowsRunAutostart((_c, args) => Promise.resolve({ code: args[0] === 'add' ? 1 : 0, stdout: '', stderr: 'ERROR: Access is denied.' }));
    await expect(autostart.enable(['keytap.exe'])).rejects.toMatchObject({ code: 'PERMISSION_DENIED', hint: expect.stringMatching(/Startup folder/) });
  });
});
