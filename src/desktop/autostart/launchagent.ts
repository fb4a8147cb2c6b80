/**
 * Start at login on macOS: a per-user LaunchAgent, ~/Library/LaunchAgents/org.keytap.keytap.plist,
 * with RunAtLoad (launchd starts it at login). We only write or remove the file: `launchctl
 * bootstrap` would start a second instance now, and `bootout` would stop the running one.
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

import { KeytapError } from '../../errors.js';
import { AutostartFile } from './file-entry.js';

export const LAUNCH_AGENT_LABEL = 'org.keytap.keytap';

function xmlEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

export function launchAgentPlist(argv: readonly string[]): string {
  if (argv.length === 0) throw new KeytapError('USAGE', 'The autostart command is empty.');
  return `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>Label</key>
  <string>${LAUNCH_AGENT_LABEL}</string>
  <key>ProgramArguments</key>
  <array>
${argv.map((argument) => `    <string>${xmlEscape(argument)}</string>`).join('\n')}
  </array>
  <key>RunAtLoad</key>
  <true/>
  <key>KeepAlive</key>
  <false/>
  <key>ProcessType</key>
  <string>Interactive</string>
</dict>
</plist>
`;
}

export class LaunchAgentAutostart extends AutostartFile {
  readonly name = 'LaunchAgent';

  constructor(home: string = homedir()) {
    super(join(home, 'Library', 'LaunchAgents', `${LAUNCH_AGENT_LABEL}.plist`));
  }

  async isEnabled(): Promise<boolean> {
    try {
      return (await readFile(this.file, 'utf8')).includes(`<string>${LAUNCH_AGENT_LABEL}</string>`);
    } catch {
      return false;
    }
  }

  protected render(command: readonly string[]): string {
    return launchAgentPlist(command);
  }
}
