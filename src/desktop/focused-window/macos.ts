/**
 * The frontmost application and its front window on macOS, asked of System Events with
 * osascript. The application's name needs only the Automation permission (macOS asks once "keytap
 * wants to control System Events"); the window's title needs Accessibility (System Settings →
 * Privacy & Security → Accessibility), without which the title is simply not known and only
 * window rules by application can match.
 */
import type { CommandRunner } from '../clipboard/run.js';
import { runCommand } from '../clipboard/run.js';
import { KeytapError } from '../../errors.js';
import type { FocusedWindow, FocusedWindowSource } from './types.js';

/** The name on the first line, the title (empty when unknown) on the second. */
export const FRONTMOST_SCRIPT = [
  'tell application "System Events"',
  '  set frontApp to first application process whose frontmost is true',
  '  set appName to name of frontApp',
  '  set windowTitle to ""',
  '  try',
  '    set windowTitle to name of front window of frontApp',
  '  end try',
  'end tell',
  'return appName & linefeed & windowTitle',
].join('\n');

export class MacFocusedWindow implements FocusedWindowSource {
  readonly name = 'macOS';

  constructor(private readonly run: CommandRunner = runCommand) {}

  async read(): Promise<FocusedWindow | undefined> {
    let result;
    try {
      // The script goes in on stdin ("-" reads it from there).
      result = await this.run('osascript', ['-'], { input: FRONTMOST_SCRIPT, timeoutMs: 2_000 });
    } catch (error) {
      throw new KeytapError('UNSUPPORTED', `osascript could not be started (${error instanceof Error ? error.message : String(error)}).`);
    }
    if (result.code !== 0) {
      // Its stderr names the permission that is missing (-1743: not allowed to send Apple events); it holds no title.
      const said = result.stderr.trim().split('\n').pop();
      throw new KeytapError('UNSUPPORTED', `macOS did not say which application is in front${said ? ` (${said})` : ''}.`, {
        hint: 'Allow keytap to control "System Events" in System Settings → Privacy & Security → Automation.',
      });
    }
    const [app = '', ...rest] = result.stdout.replace(/\r?\n$/u, '').split('\n');
    const title = rest.join(' ');
    if (!app && !title) return undefined;
    return { title: title || undefined, app: app || undefined };
  }
}
