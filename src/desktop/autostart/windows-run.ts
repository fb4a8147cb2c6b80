/**
 * Start at login on Windows: a value "keytap" under HKCU\Software\Microsoft\Windows\CurrentVersion\Run,
 * set and removed with reg.exe through execFile (no shell, so nothing in the path is interpreted).
 * The value is one command line; its arguments are quoted the way CommandLineToArgvW and the C
 * runtime split them.
 */
import { KeytapError } from '../../errors.js';
import type { Autostart } from '../platform.js';
import { runCommand } from '../clipboard/run.js';
import type { CommandRunner } from '../clipboard/run.js';

export const RUN_KEY = 'HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run';
export const RUN_VALUE = 'keytap';

/** Quotes one argument for a Windows command line (MSVCRT rules: backslashes before a quote double). */
export function quoteWindowsArgument(argument: string): string {
  if (argument !== '' && !/[\s"]/.test(argument)) return argument;
  let quoted = '"';
  let backslashes = 0;
  for (const char of argument) {
    if (char === '\\') {
      backslashes++;
      continue;
    }
    if (char === '"') quoted += '\\'.repeat(backslashes * 2 + 1) + '"';
    else quoted += '\\'.repeat(backslashes) + char;
    backslashes = 0;
  }
  return `${quoted}${'\\'.repeat(backslashes * 2)}"`;
}

export function windowsCommandLine(argv: readonly string[]): string {
  if (argv.length === 0) throw new KeytapError('USAGE', 'The autostart command is empty.');
  return argv.map(quoteWindowsArgument).join(' ');
}

export class WindowsRunAutostart implements Autostart {
  readonly name = 'HKCU Run';

  constructor(private readonly run: CommandRunner = runCommand) {}

  async isEnabled(): Promise<boolean> {
    const result = await this.reg(['query', RUN_KEY, '/v', RUN_VALUE]);
    return result.code === 0;
  }

  async enable(command: readonly string[]): Promise<void> {
    const result = await this.reg(['add', RUN_KEY, '/v', RUN_VALUE, '/t', 'REG_SZ', '/d', windowsCommandLine(command), '/f']);
    if (result.code !== 0) throw this.failure('set', result.stderr);
  }

  async disable(): Promise<void> {
    if (!(await this.isEnabled())) return;
    const result = await this.reg(['delete', RUN_KEY, '/v', RUN_VALUE, '/f']);
    if (result.code !== 0) throw this.failure('remove', result.stderr);
  }

  private async reg(args: string[]) {
    try {
      return await this.run('reg.exe', args, { timeoutMs: 10_000 });
    } catch (error) {
      throw new KeytapError('UNSUPPORTED', `reg.exe could not be started (${error instanceof Error ? error.message : String(error)}).`);
    }
  }

  private failure(what: string, stderr: string): KeytapError {
    return new KeytapError('PERMISSION_DENIED', `Could not ${what} the "keytap" value under ${RUN_KEY} (${stderr.trim() || 'reg.exe failed'}).`, {
      hint: 'A policy may block Run entries; add keytap to the Startup folder (shell:startup) instead.',
    });
  }
}
