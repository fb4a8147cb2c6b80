/**
 * Screen captures made by another program into a PNG file: PowerShell/.NET on Windows,
 * `screencapture` on macOS. The file goes into a fresh folder of keytap's under the user's own
 * temporary folder (mkdtemp: mode 0700), is read, and the folder is removed, whatever happens.
 *
 * Not run in CI (no Windows or macOS there): the scripts are kept small.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { KeytapError } from '../../errors.js';
import { powershellArgs } from '../clipboard/windows.js';
import { runCommand } from '../clipboard/run.js';
import type { CommandRunner } from '../clipboard/run.js';
import type { ScreenCapture, ScreenShot } from './types.js';

const HINT = 'Save the QR code as a PNG or JPEG file and read that instead.';

/**
 * Every monitor (the virtual screen), in physical pixels: without SetProcessDPIAware a scaled
 * display would be captured in part. The path comes in KEYTAP_SCREENSHOT, not in the script.
 */
export const PS_CAPTURE = `$ErrorActionPreference = 'Stop'
Add-Type -AssemblyName System.Windows.Forms, System.Drawing
Add-Type -Namespace Keytap -Name Dpi -MemberDefinition '[DllImport("user32.dll")] public static extern bool SetProcessDPIAware();'
[Keytap.Dpi]::SetProcessDPIAware() | Out-Null
$bounds = [System.Windows.Forms.SystemInformation]::VirtualScreen
$bitmap = New-Object System.Drawing.Bitmap $bounds.Width, $bounds.Height
$graphics = [System.Drawing.Graphics]::FromImage($bitmap)
$graphics.CopyFromScreen($bounds.Left, $bounds.Top, 0, 0, $bitmap.Size)
$bitmap.Save($env:KEYTAP_SCREENSHOT, [System.Drawing.Imaging.ImageFormat]::Png)
$graphics.Dispose()
$bitmap.Dispose()
`;

export class WindowsScreenCapture implements ScreenCapture {
  readonly name = 'PowerShell';

  constructor(private readonly run: CommandRunner = runCommand) {}

  capture(): Promise<ScreenShot> {
    return captureToFile(this.name, (file) => this.run('powershell.exe', powershellArgs(PS_CAPTURE), { env: { ...process.env, KEYTAP_SCREENSHOT: file }, timeoutMs: 30_000 }));
  }
}

export class MacScreenCapture implements ScreenCapture {
  readonly name = 'screencapture';

  constructor(private readonly run: CommandRunner = runCommand) {}

  capture(): Promise<ScreenShot> {
    // -x: no shutter sound. Without the Screen Recording permission macOS hands over the desktop
    // background only, so "no QR code found" is then the symptom (README says where to allow it).
    return captureToFile(this.name, (file) => this.run('/usr/sbin/screencapture', ['-x', '-t', 'png', file], { timeoutMs: 30_000 }));
  }
}

async function captureToFile(name: string, make: (file: string) => Promise<{ code: number | null; stderr: string }>): Promise<ScreenShot> {
  const dir = await mkdtemp(join(tmpdir(), 'keytap-screen-'));
  const file = join(dir, 'screen.png');
  try {
    let result;
    try {
      result = await make(file);
    } catch (error) {
      throw new KeytapError('UNSUPPORTED', `The screen cannot be captured: ${name} did not start (${error instanceof Error ? error.message : String(error)}).`, { hint: HINT });
    }
    if (result.code !== 0) {
      const why = result.stderr.trim().split('\n')[0]?.slice(0, 200);
      throw new KeytapError('UNSUPPORTED', `The screen cannot be captured: ${name} exited with ${result.code}${why ? ` (${why})` : ''}.`, { hint: HINT });
    }
    return { format: 'png', data: await readFile(file) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
