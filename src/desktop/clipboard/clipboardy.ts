/**
 * clipboardy as the last resort (WSL, Termux, odd setups): plain text only, no markers, and
 * "clear" writes an empty text. Loaded with import() because the bundle keeps it external.
 */
import { KeytapError } from '../../errors.js';
import type { Clipboard } from '../platform.js';

interface ClipboardyModule {
  write(text: string): Promise<void>;
  read(): Promise<string>;
}

/** Why clipboardy is the one left, when that is also why it fails (no display at all). */
export interface ClipboardyOptions {
  noDisplay?: boolean | undefined;
}

export class ClipboardyClipboard implements Clipboard {
  readonly name = 'clipboardy';
  readonly marksSensitive = false;
  private module: Promise<ClipboardyModule> | undefined;

  constructor(
    private readonly load: () => Promise<ClipboardyModule> = importClipboardy,
    private readonly options: ClipboardyOptions = {},
  ) {}

  async write(text: string, _options?: { sensitive: boolean }): Promise<void> {
    await this.call('copy to', async (clipboardy) => clipboardy.write(text));
  }

  async read(): Promise<string | undefined> {
    const text = await this.call('read', async (clipboardy) => clipboardy.read());
    return text === '' ? undefined : text;
  }

  async clear(): Promise<void> {
    await this.call('clear', async (clipboardy) => clipboardy.write(''));
  }

  private async call<T>(what: string, action: (clipboardy: ClipboardyModule) => Promise<T>): Promise<T> {
    try {
      this.module ??= this.load();
      return await action(await this.module);
    } catch (error) {
      this.module = undefined;
      if (this.options.noDisplay) {
        // The tools clipboardy runs need a display too; installing one would not help.
        throw new KeytapError('UNSUPPORTED', 'There is no display to copy to (neither DISPLAY nor WAYLAND_DISPLAY is set).', {
          hint: 'Run keytap inside your desktop session, or set DISPLAY or WAYLAND_DISPLAY.',
        });
      }
      // clipboardy's errors can quote the command and its input; keep only the kind of failure.
      const kind = error instanceof Error ? error.name : 'error';
      throw new KeytapError('UNSUPPORTED', `Could not ${what} the clipboard (clipboardy: ${kind}).`, {
        hint: 'Install xsel or wl-clipboard (Linux), or check that a display is available.',
      });
    }
  }
}

async function importClipboardy(): Promise<ClipboardyModule> {
  const module = (await import('clipboardy')) as unknown as { default: ClipboardyModule };
  return module.default;
}
