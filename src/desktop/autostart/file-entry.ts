/**
 * Start at login through a file the session reads when the user logs in: an XDG autostart entry
 * on Linux, a LaunchAgent plist on macOS. Enabling writes the file (atomically, so the session
 * never reads half of it), disabling removes it; each adapter says what the file holds.
 */
import { mkdir, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { KeytapError } from '../../errors.js';
import { writeFileAtomic } from '../../util/atomic-file.js';
import type { Autostart } from '../platform.js';

export abstract class AutostartFile implements Autostart {
  abstract readonly name: string;
  readonly file: string;

  constructor(file: string) {
    this.file = file;
  }

  abstract isEnabled(): Promise<boolean>;

  /** The file's content for starting `command` at login. */
  protected abstract render(command: readonly string[]): string;

  async enable(command: readonly string[]): Promise<void> {
    const content = this.render(command);
    try {
      await mkdir(dirname(this.file), { recursive: true });
      // Readable by the session manager like any other entry: nothing secret in it.
      await writeFileAtomic(this.file, content, { mode: 0o644, overwrite: true });
    } catch (error) {
      throw failure(`Could not write ${this.file}`, error);
    }
  }

  async disable(): Promise<void> {
    try {
      await rm(this.file, { force: true });
    } catch (error) {
      throw failure(`Could not remove ${this.file}`, error);
    }
  }
}

export function failure(message: string, error: unknown): KeytapError {
  // writeFileAtomic reports a KeytapError whose cause carries the OS error code.
  const cause = error instanceof KeytapError ? error.cause : error;
  const code = (cause as { code?: unknown } | null)?.code;
  return new KeytapError(code === 'EACCES' || code === 'EPERM' ? 'PERMISSION_DENIED' : 'UNSUPPORTED', `${message} (${error instanceof Error ? error.message : String(error)}).`, {
    hint: 'Check that your configuration directory is writable.',
    cause: error,
  });
}
