/**
 * Start at login on Linux and the BSDs: an XDG autostart entry (Desktop Application Autostart
 * Specification) at $XDG_CONFIG_HOME/autostart/keytap.desktop, honoured by GNOME, KDE, XFCE,
 * Cinnamon, MATE, LXQt and by systemd's xdg-autostart-generator.
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

import { KeytapError } from '../../errors.js';
import { AutostartFile } from './file-entry.js';

/** Characters that force an Exec argument into double quotes (Desktop Entry Spec, "The Exec key"). */
const RESERVED = /[\s"'\\><~|&;$*?#()`]/;

/**
 * Quotes one argument for an Exec line: `%` becomes `%%` (field codes), an argument with a
 * reserved character is wrapped in double quotes with `"`, `` ` ``, `$` and `\` backslash-escaped.
 */
export function quoteExecArgument(argument: string): string {
  const literal = argument.replace(/%/g, '%%');
  if (literal !== '' && !RESERVED.test(literal)) return literal;
  return `"${literal.replace(/["`$\\]/g, '\\$&')}"`;
}

/**
 * The Exec value as it is written in the file. The key file's string escapes (`\\`, `\n`, `\t`,
 * `\r`) apply on top of the quoting, so a literal backslash inside a quoted argument ends up as
 * four backslashes, as the spec spells out.
 */
export function execLine(argv: readonly string[]): string {
  if (argv.length === 0) throw new KeytapError('USAGE', 'The autostart command is empty.');
  return argv
    .map(quoteExecArgument)
    .join(' ')
    .replace(/\\/g, '\\\\')
    .replace(/\n/g, '\\n')
    .replace(/\t/g, '\\t')
    .replace(/\r/g, '\\r');
}

export function desktopEntry(argv: readonly string[]): string {
  return [
    '[Desktop Entry]',
    'Type=Application',
    'Name=keytap',
    'Comment=OATH codes from your security key, from the tray',
    `Exec=${execLine(argv)}`,
    'Icon=dialog-password',
    'Terminal=false',
    'Categories=Utility;',
    'X-GNOME-Autostart-enabled=true',
    '',
  ].join('\n');
}

export function xdgAutostartFile(env: NodeJS.ProcessEnv = process.env): string {
  const configHome = env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME.startsWith('/') ? env.XDG_CONFIG_HOME : join(env.HOME ?? homedir(), '.config');
  return join(configHome, 'autostart', 'keytap.desktop');
}

export class XdgAutostart extends AutostartFile {
  readonly name = 'XDG autostart';

  constructor(env: NodeJS.ProcessEnv = process.env) {
    super(xdgAutostartFile(env));
  }

  async isEnabled(): Promise<boolean> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch {
      return false;
    }
    // A user (or a settings panel) may switch an entry off without deleting it.
    return !/^Hidden\s*=\s*true\s*$/m.test(text) && !/^X-GNOME-Autostart-enabled\s*=\s*false\s*$/m.test(text);
  }

  protected render(command: readonly string[]): string {
    return desktopEntry(command);
  }
}
