/**
 * macOS pasteboard with the nspasteboard.org markers. pbcopy can only put plain text; the markers
 * need AppKit, which `osascript -l JavaScript` reaches through the JXA Objective-C bridge
 * (`ObjC.import('AppKit')`, `$.NSPasteboard.generalPasteboard`, selectors written
 * `setStringForType` for `setString:forType:`). The script is constant and travels on the command
 * line; the text comes in on stdin (NSFileHandle.fileHandleWithStandardInput).
 *
 * Markers: `org.nspasteboard.ConcealedType` (a password: managers hide or skip it) and
 * `org.nspasteboard.TransientType` (not worth keeping in any history), both honoured by Maccy,
 * Alfred, Raycast, Pastebot, Paste, CopyClip.
 */
import { KeytapError } from '../../errors.js';
import type { Clipboard } from '../platform.js';
import { pbcopyClipboard } from './command.js';
import { runCommand } from './run.js';
import type { CommandRunner } from './run.js';

export const JXA_WRITE = `ObjC.import('AppKit');
ObjC.import('stdlib');
var input = $.NSFileHandle.fileHandleWithStandardInput.readDataToEndOfFile;
var text = $.NSString.alloc.initWithDataEncoding(input, $.NSUTF8StringEncoding);
var sensitive = $.NSProcessInfo.processInfo.environment.objectForKey('KEYTAP_SENSITIVE').js === '1';
var pasteboard = $.NSPasteboard.generalPasteboard;
pasteboard.clearContents;
var ok = pasteboard.setStringForType(text, 'public.utf8-plain-text');
if (ok && sensitive) {
  pasteboard.setStringForType('', 'org.nspasteboard.ConcealedType');
  pasteboard.setStringForType('', 'org.nspasteboard.TransientType');
}
ok ? '' : $.exit(3);`;

export const JXA_CLEAR = `ObjC.import('AppKit');
$.NSPasteboard.generalPasteboard.clearContents;
'';`;

export class MacClipboard implements Clipboard {
  readonly name = 'NSPasteboard (osascript)';
  readonly marksSensitive = true;
  private readonly plain: Clipboard;

  constructor(private readonly run: CommandRunner = runCommand) {
    this.plain = pbcopyClipboard(run);
  }

  async write(text: string, options: { sensitive: boolean }): Promise<void> {
    const result = await this.run('osascript', ['-l', 'JavaScript', '-e', JXA_WRITE], {
      input: text,
      // The flag, not the text, goes through the environment.
      env: { ...process.env, KEYTAP_SENSITIVE: options.sensitive ? '1' : '0' },
      timeoutMs: 10_000,
    }).catch((error: unknown) => ({ code: -1, stdout: '', stderr: String(error) }));
    if (result.code === 0) return;
    throw new KeytapError('UNSUPPORTED', `Could not copy with osascript (exit ${result.code}).`, {
      hint: 'osascript ships with macOS; check that it is not blocked by a security policy.',
    });
  }

  read(): Promise<string | undefined> {
    return this.plain.read();
  }

  async clear(): Promise<void> {
    const result = await this.run('osascript', ['-l', 'JavaScript', '-e', JXA_CLEAR], { timeoutMs: 10_000 }).catch(() => undefined);
    if (result?.code === 0) return;
    await this.plain.clear();
  }
}
