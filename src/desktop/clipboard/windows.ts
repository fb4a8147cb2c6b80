/**
 * Windows clipboard through Windows PowerShell 5.1 and WinForms (always present on Windows 10/11,
 * unlike pwsh). A sensitive copy is one DataObject with the text and three registered formats:
 *
 * - `ExcludeClipboardContentFromMonitorProcessing` (any data): clipboard monitors, Clipboard
 *   History (Win+V) and cloud sync skip the whole copy;
 * - `CanIncludeInClipboardHistory` = DWORD 0: keep it out of Clipboard History;
 * - `CanUploadToCloudClipboard` = DWORD 0: do not sync it to other devices.
 *
 * (Microsoft Learn, "Clipboard Formats" → "Cloud Clipboard and Clipboard History Formats"; the same
 * set KeePassXC and KeePass use.) WinForms puts a MemoryStream on the clipboard as an HGLOBAL with
 * the stream's bytes, which is what those formats expect. The script is constant and goes in
 * -EncodedCommand; the text comes in on stdin as UTF-8 bytes (not through the console code page),
 * and goes out on stdout the same way.
 *
 * Not run in CI (no Windows there): the script is kept small and tested for its shape only.
 */
import { KeytapError } from '../../errors.js';
import type { Clipboard } from '../platform.js';
import { runCommand } from './run.js';
import type { CommandRunner } from './run.js';

const PRELUDE = `$ErrorActionPreference = 'Stop'
Add-Type -AssemblyName System.Windows.Forms
`;

export const PS_WRITE = `${PRELUDE}$in = [Console]::OpenStandardInput()
$buffer = New-Object System.IO.MemoryStream
$in.CopyTo($buffer)
$text = [System.Text.Encoding]::UTF8.GetString($buffer.ToArray())
$data = New-Object System.Windows.Forms.DataObject
$data.SetData([System.Windows.Forms.DataFormats]::UnicodeText, $text)
if ($env:KEYTAP_SENSITIVE -eq '1') {
  $data.SetData('ExcludeClipboardContentFromMonitorProcessing', (New-Object System.IO.MemoryStream (,[byte[]](0,0,0,0))))
  $data.SetData('CanIncludeInClipboardHistory', (New-Object System.IO.MemoryStream (,[byte[]](0,0,0,0))))
  $data.SetData('CanUploadToCloudClipboard', (New-Object System.IO.MemoryStream (,[byte[]](0,0,0,0))))
}
# copy = true: the data stays after PowerShell exits; retry while another program holds the clipboard.
[System.Windows.Forms.Clipboard]::SetDataObject($data, $true, 10, 100)
`;

export const PS_READ = `${PRELUDE}if (-not [System.Windows.Forms.Clipboard]::ContainsText()) { exit 3 }
$bytes = [System.Text.Encoding]::UTF8.GetBytes([System.Windows.Forms.Clipboard]::GetText())
$out = [Console]::OpenStandardOutput()
$out.Write($bytes, 0, $bytes.Length)
$out.Flush()
`;

export const PS_CLEAR = `${PRELUDE}[System.Windows.Forms.Clipboard]::Clear()
`;

/** powershell.exe argv for a script: STA (WinForms' clipboard needs it), no profile, encoded. */
export function powershellArgs(script: string): string[] {
  return ['-NoProfile', '-NonInteractive', '-STA', '-EncodedCommand', Buffer.from(script, 'utf16le').toString('base64')];
}

export class WindowsClipboard implements Clipboard {
  readonly name = 'PowerShell';
  readonly marksSensitive = true;

  constructor(private readonly run: CommandRunner = runCommand) {}

  async write(text: string, options: { sensitive: boolean }): Promise<void> {
    await this.exec('copy to', PS_WRITE, text, options.sensitive);
  }

  async read(): Promise<string | undefined> {
    const result = await this.exec('read', PS_READ, '', false, [3]);
    return result === '' ? undefined : result;
  }

  async clear(): Promise<void> {
    await this.exec('clear', PS_CLEAR, '', false);
  }

  private async exec(what: string, script: string, input: string, sensitive: boolean, emptyCodes: number[] = []): Promise<string> {
    let result;
    try {
      result = await this.run('powershell.exe', powershellArgs(script), {
        input,
        env: { ...process.env, KEYTAP_SENSITIVE: sensitive ? '1' : '0' },
        timeoutMs: 15_000,
      });
    } catch (error) {
      throw new KeytapError('UNSUPPORTED', `Could not ${what} the clipboard: PowerShell did not start (${error instanceof Error ? error.message : String(error)}).`);
    }
    if (result.code !== null && emptyCodes.includes(result.code)) return '';
    if (result.code !== 0) {
      throw new KeytapError('UNSUPPORTED', `Could not ${what} the clipboard (PowerShell exited with ${result.code}).`, {
        hint: 'Another program may be holding the clipboard; try again.',
      });
    }
    return result.stdout;
  }
}
