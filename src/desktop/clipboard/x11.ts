/**
 * X11 clipboard served from inside this process (see x11-selection.ts), so a sensitive copy
 * carries `x-kde-passwordManagerHint: secret` next to the text. The selection lives as long as
 * this process does, which suits the resident process; a short-lived CLI run should use a forking
 * tool (xsel) instead, and createClipboard does that when asked for a non-resident clipboard.
 */
import { KeytapError } from '../../errors.js';
import type { Clipboard } from '../platform.js';
import { X11Selection } from './x11-selection.js';

/** Larger texts would need INCR transfers, which the in-process owner does not speak. */
export const X11_MAX_TEXT_BYTES = 64 * 1024;

export class X11Clipboard implements Clipboard {
  readonly name = 'X11 (in-process)';
  readonly marksSensitive = true;
  private connection: Promise<X11Selection> | undefined;

  constructor(private readonly display: string) {}

  /** Connects now; rejects when the display cannot be reached (createClipboard then falls back). */
  async probe(): Promise<void> {
    await this.run('reach', () => Promise.resolve());
  }

  async write(text: string, options: { sensitive: boolean }): Promise<void> {
    if (Buffer.byteLength(text, 'utf8') > X11_MAX_TEXT_BYTES) {
      throw new KeytapError('UNSUPPORTED', 'The text is too large for the in-process X11 clipboard.');
    }
    await this.run('copy to', (selection) => selection.own(text, options.sensitive));
  }

  read(): Promise<string | undefined> {
    return this.run('read', (selection) => selection.read());
  }

  clear(): Promise<void> {
    return this.run('clear', (selection) => selection.clear());
  }

  /** Drops the connection (and with it the selection). */
  close(): void {
    const connection = this.connection;
    this.connection = undefined;
    connection?.then((selection) => selection.close()).catch(() => undefined);
  }

  private async run<T>(what: string, action: (selection: X11Selection) => Promise<T>): Promise<T> {
    try {
      return await action(await this.selection());
    } catch (error) {
      throw new KeytapError('UNSUPPORTED', `Could not ${what} the X11 clipboard (${error instanceof Error ? error.message : String(error)}).`, {
        hint: 'Check that the X display in $DISPLAY is running; keytap reconnects on the next copy.',
        cause: error,
      });
    }
  }

  private selection(): Promise<X11Selection> {
    this.connection ??= X11Selection.connect(this.display, {
      // A lost X server (logout, crash) is not fatal: the next call reconnects.
      onClose: () => {
        this.connection = undefined;
      },
    }).then(
      (selection) => {
        // The resident process has its own reasons to live; this socket should not be one.
        selection.unrefSocket();
        return selection;
      },
      (error: unknown) => {
        this.connection = undefined;
        throw error;
      },
    );
    return this.connection;
  }
}
