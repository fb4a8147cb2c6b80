// Clipboard adapters that cannot run here (Wayland, macOS, Windows) with a recording command
// runner, and the guard's failure paths with a scripted clipboard.
import { describe, expect, it } from 'vitest';

import { ClipboardyClipboard } from '../../src/desktop/clipboard/clipboardy.js';
import { waylandClipboard, waylandCopyMarksSensitive } from '../../src/desktop/clipboard/command.js';
import { ClipboardGuard } from '../../src/desktop/clipboard/guard.js';
import { createClipboard } from '../../src/desktop/clipboard/index.js';
import { JXA_WRITE, MacClipboard } from '../../src/desktop/clipboard/macos.js';
import type { CommandRunner, RunOptions, RunResult } from '../../src/desktop/clipboard/run.js';
import { PS_WRITE, WindowsClipboard, powershellArgs } from '../../src/desktop/clipboard/windows.js';
import type { Clipboard } from '../../src/desktop/platform.js';
import { KeytapError } from '../../src/errors.js';
import { missingTool } from './desktop.js';

interface Call {
  command: string;
  args: readonly string[];
  options: RunOptions | undefined;
}

// The option lines of `wl-copy --help`: 2.1.0 (Debian 12) and 2.3.0, which added --sensitive (src/wl-copy.c).
const WL_COPY_2_1_HELP = 'Options:\n\t-o, --paste-once\t\tOnly serve one paste request and then exit.\n\t-c, --clear\t\tInstead of copying, clear the clipboard.\n';
const WL_COPY_2_3_HELP = `${WL_COPY_2_1_HELP}\t    --sensitive\t\tHint that the content is sensitive.\n`;

/** A compositor without data-control (GNOME). */
const noDataControl = (): Promise<never> => Promise.reject(new KeytapError('UNSUPPORTED', 'This Wayland compositor offers no data-control protocol.'));

/** A fake clipboard world behind wl-copy/wl-paste (and `sh -c command -v`). */
function fakeWayland(helpText = WL_COPY_2_1_HELP) {
  const calls: Call[] = [];
  let content: string | undefined;
  const run: CommandRunner = (command, args, options) => {
    calls.push({ command, args, options });
    const result = (code: number, stdout = '', stderr = ''): Promise<RunResult> => Promise.resolve({ code, stdout, stderr });
    if (command === 'sh') return result(0);
    if (command === 'wl-copy' && args.includes('--help')) return result(0, helpText);
    if (command === 'wl-copy' && args.includes('--clear')) {
      content = undefined;
      return result(0);
    }
    if (command === 'wl-copy') {
      content = options?.input;
      return result(0);
    }
    if (command === 'wl-paste') return content === undefined ? result(1, '', 'Nothing is copied\n') : result(0, content);
    return Promise.reject(new Error(`unexpected ${command}`));
  };
  return { calls, run };
}

describe('Wayland (wl-clipboard)', () => {
  it('copies through stdin with --type text/plain, reads with wl-paste, clears with --clear', async () => {
    const { calls, run } = fakeWayland();
    const clipboard = waylandClipboard(run);
    expect(clipboard.marksSensitive).toBe(false);
    await clipboard.write('123456', { sensitive: true });
    const copy = calls.find((call) => call.command === 'wl-copy')!;
    expect(copy.args).toEqual(['--type', 'text/plain']);
    expect(copy.options?.input).toBe('123456');
    expect(copy.options?.detaches).toBe(true);
    expect(await clipboard.read()).toBe('123456');
    await clipboard.clear();
    expect(calls.at(-1)?.args).toEqual(['--clear']);
    expect(await clipboard.read()).toBeUndefined();
    // The code never appears in any argv.
    expect(calls.every((call) => !call.args.join(' ').includes('123456'))).toBe(true);
  });

  it('marks the copy with --sensitive where wl-copy has it (2.3 and later), and only a sensitive copy', async () => {
    const { calls, run } = fakeWayland(WL_COPY_2_3_HELP);
    const clipboard = await createClipboard({ platform: 'linux', env: { WAYLAND_DISPLAY: 'wayland-0' }, run, findDataControl: noDataControl });
    expect(clipboard.name).toBe('wl-copy');
    expect(clipboard.marksSensitive).toBe(true);
    await clipboard.write('123456', { sensitive: true });
    await clipboard.write('plain', { sensitive: false });
    const copies = calls.filter((call) => call.command === 'wl-copy' && !call.args.includes('--help'));
    expect(copies.map((call) => call.args)).toEqual([
      ['--type', 'text/plain', '--sensitive'],
      ['--type', 'text/plain'],
    ]);
  });

  it('does not claim the marker where wl-copy lacks --sensitive (2.1, and the real one here)', async () => {
    const { run } = fakeWayland();
    expect((await createClipboard({ platform: 'linux', env: { WAYLAND_DISPLAY: 'wayland-0' }, run, findDataControl: noDataControl })).marksSensitive).toBe(false);
    // Debian 12's wl-clipboard is 2.1.0: its own --help has no such flag.
    if (!missingTool('wl-copy')) expect(await waylandCopyMarksSensitive()).toBe(false);
  });

  it('a failing wl-copy is a KeytapError without the text in it', async () => {
    const clipboard = waylandClipboard(() => Promise.resolve({ code: 2, stdout: '', stderr: 'Failed to connect to a Wayland server' }));
    const error = (await clipboard.write('987654', { sensitive: true }).catch((e: unknown) => e)) as KeytapError;
    expect(error.code).toBe('UNSUPPORTED');
    expect(error.message).not.toContain('987654');
  });

  it('createClipboard picks wl-copy in a Wayland session without data-control, and says why', async () => {
    const { run } = fakeWayland();
    const passedOver: KeytapError[] = [];
    const clipboard = await createClipboard({
      platform: 'linux',
      env: { WAYLAND_DISPLAY: 'wayland-0', DISPLAY: ':0' },
      run,
      findDataControl: noDataControl,
      onError: (error) => passedOver.push(error),
    });
    expect(clipboard.name).toBe('wl-copy');
    expect(passedOver.map((e) => e.message)).toEqual(['This Wayland compositor offers no data-control protocol.']);
  });

  it('createClipboard picks the in-process data-control owner for the resident process where the compositor has it', async () => {
    const { calls, run } = fakeWayland();
    const asked: NodeJS.ProcessEnv[] = [];
    const env = { WAYLAND_DISPLAY: 'wayland-1', XDG_RUNTIME_DIR: '/run/user/1000' };
    const findDataControl = (e: NodeJS.ProcessEnv) => {
      asked.push(e);
      return Promise.resolve('ext_data_control_manager_v1' as const);
    };
    const resident = await createClipboard({ platform: 'linux', env, run, findDataControl });
    expect([resident.name, resident.marksSensitive]).toEqual(['ext-data-control (in-process)', true]);
    expect(asked).toEqual([env]);
    // Its reads are wl-paste's.
    expect(await resident.read()).toBeUndefined();
    expect(calls.at(-1)?.command).toBe('wl-paste');
    // A short-lived `keytap code` keeps wl-copy: its own process would take the copy with it on exit.
    const shortLived = await createClipboard({ platform: 'linux', env, run, findDataControl, resident: false });
    expect(shortLived.name).toBe('wl-copy');
    expect(asked).toHaveLength(1);
  });

  it('clipboardy failing with no display at all names the missing display, not a tool to install', async () => {
    const failing = () => Promise.reject(new Error('xsel: Can\'t open display'));
    const headless = new ClipboardyClipboard(failing, { noDisplay: true });
    await expect(headless.write('987654', { sensitive: true })).rejects.toMatchObject({
      code: 'UNSUPPORTED',
      message: 'There is no display to copy to (neither DISPLAY nor WAYLAND_DISPLAY is set).',
      hint: 'Run keytap inside your desktop session, or set DISPLAY or WAYLAND_DISPLAY.',
    });
    const withDisplay = new ClipboardyClipboard(failing);
    await expect(withDisplay.write('987654', { sensitive: true })).rejects.toMatchObject({ hint: expect.stringContaining('Install xsel') });
    // What createClipboard picks with neither variable set fails the same way.
    const picked = await createClipboard({ platform: 'linux', env: {}, run: recorder(1).run });
    expect(picked.name).toBe('clipboardy');
  });

  it('the guard clears a Wayland clipboard that still holds the code', async () => {
    const { calls, run } = fakeWayland();
    const guard = new ClipboardGuard(waylandClipboard(run), { clearAfterMs: 20 });
    await guard.copy('424242');
    await new Promise((resolve) => setTimeout(resolve, 80));
    await guard.idle();
    expect(calls.some((call) => call.args.includes('--clear'))).toBe(true);
  });
});

function recorder(code = 0, stdout = '') {
  const calls: Call[] = [];
  const run: CommandRunner = (command, args, options) => {
    calls.push({ command, args, options });
    return Promise.resolve({ code, stdout, stderr: '' });
  };
  return { calls, run };
}

describe('macOS (osascript + JXA)', () => {
  it('writes through the AppKit bridge with the concealed and transient markers; text on stdin only', async () => {
    const { calls, run } = recorder();
    const clipboard = new MacClipboard(run);
    expect(clipboard.marksSensitive).toBe(true);
    await clipboard.write('135246', { sensitive: true });
    expect(calls[0]?.command).toBe('osascript');
    expect(calls[0]?.args.slice(0, 3)).toEqual(['-l', 'JavaScript', '-e']);
    expect(calls[0]?.options?.input).toBe('135246');
    expect(calls[0]?.options?.env?.KEYTAP_SENSITIVE).toBe('1');
    expect(calls[0]?.args.join(' ')).not.toContain('135246');
    expect(JXA_WRITE).toContain("'org.nspasteboard.ConcealedType'");
    expect(JXA_WRITE).toContain("'org.nspasteboard.TransientType'");
    expect(JXA_WRITE).toContain('fileHandleWithStandardInput');
    await clipboard.write('x', { sensitive: false });
    expect(calls[1]?.options?.env?.KEYTAP_SENSITIVE).toBe('0');
  });

  it('reads with pbpaste; clears with osascript, falling back to pbcopy', async () => {
    const { calls, run } = recorder(0, '777777');
    expect(await new MacClipboard(run).read()).toBe('777777');
    expect(calls[0]?.command).toBe('pbpaste');
    const failing = recorder(1);
    await expect(new MacClipboard(failing.run).clear()).rejects.toMatchObject({ code: 'UNSUPPORTED' });
    expect(failing.calls.map((call) => call.command)).toEqual(['osascript', 'pbcopy']);
  });
});

describe('Windows (PowerShell + WinForms)', () => {
  it('one DataObject with the text and the three history/cloud exclusion formats; text on stdin', async () => {
    const { calls, run } = recorder();
    const clipboard = new WindowsClipboard(run);
    expect(clipboard.marksSensitive).toBe(true);
    await clipboard.write('246135', { sensitive: true });
    const call = calls[0]!;
    expect(call.command).toBe('powershell.exe');
    expect(call.args.slice(0, 4)).toEqual(['-NoProfile', '-NonInteractive', '-STA', '-EncodedCommand']);
    expect(Buffer.from(call.args[4]!, 'base64').toString('utf16le')).toBe(PS_WRITE);
    expect(call.options?.input).toBe('246135');
    expect(call.options?.env?.KEYTAP_SENSITIVE).toBe('1');
    for (const format of ['ExcludeClipboardContentFromMonitorProcessing', 'CanIncludeInClipboardHistory', 'CanUploadToCloudClipboard']) {
      expect(PS_WRITE).toContain(`'${format}'`);
    }
    expect(PS_WRITE).toContain('SetDataObject($data, $true');
    expect(powershellArgs('x')).toHaveLength(5);
  });

  it('read: exit 3 means no text', async () => {
    expect(await new WindowsClipboard(recorder(3).run).read()).toBeUndefined();
    expect(await new WindowsClipboard(recorder(0, 'abc').run).read()).toBe('abc');
  });
});

describe('ClipboardGuard failure paths', () => {
  function scripted(overrides: Partial<Clipboard>): Clipboard {
    let content: string | undefined;
    return {
      name: 'scripted',
      marksSensitive: true,
      write: (text) => {
        content = text;
        return Promise.resolve();
      },
      read: () => Promise.resolve(content),
      clear: () => {
        content = undefined;
        return Promise.resolve();
      },
      ...overrides,
    };
  }

  it('a failed clear is reported (without the code), never thrown', async () => {
    const errors: KeytapError[] = [];
    const guard = new ClipboardGuard(scripted({ clear: () => Promise.reject(new Error('clipboard said 314159')) }), {
      clearAfterMs: 10,
      onError: (e) => errors.push(e),
    });
    await guard.copy('314159');
    await new Promise((resolve) => setTimeout(resolve, 50));
    await guard.idle();
    expect(errors).toHaveLength(1);
    expect(errors[0]?.message).not.toContain('314159');
    await expect(guard.clearIfUnchanged()).resolves.toBeUndefined();
  });

  it('a failed copy rejects with a KeytapError and arms no timer', async () => {
    let cleared = 0;
    const guard = new ClipboardGuard(
      scripted({
        write: () => Promise.reject(new Error('boom 271828')),
        clear: () => {
          cleared++;
          return Promise.resolve();
        },
      }),
      { clearAfterMs: 10 },
    );
    const error = (await guard.copy('271828').catch((e: unknown) => e)) as KeytapError;
    expect(error.name).toBe('KeytapError');
    expect(error.message).not.toContain('271828');
    await new Promise((resolve) => setTimeout(resolve, 40));
    expect(cleared).toBe(0);
  });

  it('per-call delay in seconds (the app core\'s ClipboardGuardLike shape); stop() clears at once', async () => {
    const clipboard = scripted({});
    const guard: { copy(text: string, clearAfterSeconds: number): Promise<void>; stop(): Promise<void> } = new ClipboardGuard(clipboard);
    await guard.copy('112233', 0.02);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(await clipboard.read()).toBeUndefined();
    await guard.copy('445566', 60);
    await guard.stop();
    expect(await clipboard.read()).toBeUndefined();
    await guard.copy('778899', 0);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await clipboard.read()).toBe('778899');
  });

  it('says what each clear did (for the log): cleared, or left alone after a newer copy', async () => {
    const clipboard = scripted({});
    const outcomes: string[] = [];
    const guard = new ClipboardGuard(clipboard, { clearAfterMs: 0, onCleared: (outcome) => outcomes.push(outcome) });
    await guard.copy('271828');
    await guard.clearIfUnchanged();
    await guard.copy('314159');
    await clipboard.write('the user copied this', { sensitive: false });
    await guard.clearIfUnchanged();
    expect(outcomes).toEqual(['cleared', 'kept']);
    expect(await clipboard.read()).toBe('the user copied this');
  });

  it('clearAfterMs 0 never clears; clearIfUnchanged clears at once (quit)', async () => {
    const clipboard = scripted({});
    const guard = new ClipboardGuard(clipboard, { clearAfterMs: 0 });
    await guard.copy('161803');
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await clipboard.read()).toBe('161803');
    await guard.clearIfUnchanged();
    expect(await clipboard.read()).toBeUndefined();
  });
});
