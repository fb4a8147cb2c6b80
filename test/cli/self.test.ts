// How keytap runs itself again, decided from injected facts: the "Start at login" entry of a
// packaged keytap (a single executable at /usr/bin/keytap) runs exactly "/usr/bin/keytap tray".
import { describe, expect, it } from 'vitest';
import { autostartCommand, currentProcessFacts, selfCommand } from '../../src/cli/self.js';
import { desktopEntry } from '../../src/desktop/autostart/index.js';
import { launchAgentPlist } from '../../src/desktop/autostart/launchagent.js';
import { windowsCommandLine } from '../../src/desktop/autostart/windows-run.js';

const PACKAGED = { execPath: '/usr/bin/keytap', execArgv: ['--max-semi-space-size=1'], script: 'keytap', singleExecutable: true };
const SOURCE = { execPath: '/usr/bin/node', execArgv: ['--enable-source-maps'], script: '/home/alice/keytap/bin/keytap.cjs', singleExecutable: false };

describe('selfCommand', () => {
  it('a single executable runs itself, with none of its own Node options or start-up name', () => {
    expect(selfCommand(PACKAGED)).toEqual({ command: '/usr/bin/keytap', args: [] });
    expect(selfCommand({ ...PACKAGED, execPath: '/home/alice/Downloads/keytap-0.1.0-linux-x64', script: './keytap-0.1.0-linux-x64' })).toEqual({
      command: '/home/alice/Downloads/keytap-0.1.0-linux-x64',
      args: [],
    });
  });

  it('from a source checkout: node, its options, then the script', () => {
    expect(selfCommand(SOURCE)).toEqual({ command: '/usr/bin/node', args: ['--enable-source-maps', '/home/alice/keytap/bin/keytap.cjs'] });
  });

  it('under vitest (ES modules from source) the process is not a single executable', () => {
    const facts = currentProcessFacts();
    expect(facts.singleExecutable).toBe(false);
    expect(facts.execPath).toBe(process.execPath);
  });
});

describe('the Start at login entry', () => {
  it('of the Debian package runs exactly /usr/bin/keytap tray', () => {
    expect(autostartCommand(PACKAGED)).toEqual(['/usr/bin/keytap', 'tray']);
    const entry = desktopEntry(autostartCommand(PACKAGED));
    expect(entry.split('\n').filter((line) => line.startsWith('Exec='))).toEqual(['Exec=/usr/bin/keytap tray']);
  });

  it('of a downloaded executable runs that file, on every platform', () => {
    expect(desktopEntry(autostartCommand({ ...PACKAGED, execPath: '/opt/key tap/keytap' }))).toContain('\nExec="/opt/key tap/keytap" tray\n');
    expect(windowsCommandLine(autostartCommand({ ...PACKAGED, execPath: 'C:\\Program Files\\keytap\\keytap.exe' }))).toBe('"C:\\Program Files\\keytap\\keytap.exe" tray');
    expect(launchAgentPlist(autostartCommand({ ...PACKAGED, execPath: '/Applications/keytap' }))).toContain(
      '<array>\n    <string>/Applications/keytap</string>\n    <string>tray</string>\n  </array>',
    );
  });

  it('from a source checkout runs node with the script, as before', () => {
    expect(autostartCommand(SOURCE)).toEqual(['/usr/bin/node', '--enable-source-maps', '/home/alice/keytap/bin/keytap.cjs', 'tray']);
    expect(desktopEntry(autostartCommand(SOURCE))).toContain('\nExec=/usr/bin/node --enable-source-maps /home/alice/keytap/bin/keytap.cjs tray\n');
  });
});
