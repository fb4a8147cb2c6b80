/**
 * Writing a file so that readers (and a crash) only ever see the old content or the whole new
 * content: a temp file in the same directory (rename and link are only atomic within one file
 * system), fsync, then rename — or, when an existing file must not be replaced, link() the temp
 * file to its name, which fails with EEXIST instead of replacing anything — then fsync the
 * directory so the new name itself survives a power cut.
 *
 * A failure removes the temp file; only a SIGKILL or a power cut can leave one behind, and its
 * name (`.NAME.PID.RANDOM.tmp`) lets `removeStaleTempFiles` find it later.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { chmod, link, open, readdir, rename, rm, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { KeytapError } from '../errors.js';
import { fsReason } from './input-file.js';

export interface AtomicWriteOptions {
  /** Default 0600: most files keytap writes hold secrets. */
  mode?: number;
  /** Replace an existing file. Default false: an existing file is an EXISTS error and stays untouched. */
  overwrite?: boolean;
  /** Called after the temp file is complete and synced, just before it takes the name (a test seam for crash tests). */
  beforeCommit?: (() => void) | undefined;
}

const TEMP_PATTERN = /^\.(.+)\.(\d+)\.([0-9a-f]{8})\.tmp$/u;

export function tempNameFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

export async function writeFileAtomic(path: string, bytes: Uint8Array | string, options: AtomicWriteOptions = {}): Promise<void> {
  const mode = options.mode ?? 0o600;
  const temp = tempNameFor(path);
  try {
    const handle = await open(temp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, mode);
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    // The umask may have taken bits away; say the mode exactly.
    if (process.platform !== 'win32') await chmod(temp, mode);
    options.beforeCommit?.();
    if (options.overwrite) {
      await rename(temp, path);
    } else {
      try {
        await link(temp, path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
          throw new KeytapError('EXISTS', `${path} already exists; it was left as it is.`, { detail: { kind: 'file-exists', path } });
        }
        throw error;
      }
      // The name is taken now; the temp name is only a second link to the same file.
      await unlink(temp).catch(() => undefined);
    }
  } catch (error) {
    await rm(temp, { force: true }).catch(() => undefined);
    if (error instanceof KeytapError) throw error;
    throw fsError(path, error);
  }
  await syncDirectory(dirname(path));
}

/** fsync of a directory: makes a rename, link or new file in it durable. Best effort where the OS refuses. */
export async function syncDirectory(dir: string): Promise<void> {
  if (process.platform === 'win32') return;
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Some file systems refuse fsync on directories; the rename itself has happened.
  }
}

/**
 * Removes temp files that a killed writer left in `dir` (ours by name, whose process is gone).
 * Returns their names.
 */
export async function removeStaleTempFiles(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const match = TEMP_PATTERN.exec(name);
    if (!match) continue;
    const pid = Number(match[2]);
    if (pid === process.pid || processAlive(pid)) continue;
    await rm(join(dir, name), { force: true });
    removed.push(name);
  }
  return removed;
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function fsError(path: string, error: unknown): KeytapError {
  // Writing, a missing path is the folder.
  const why = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'the folder does not exist' : fsReason(error);
  return new KeytapError('DEVICE_ERROR', `Cannot write ${path}: ${why}.`, { cause: error });
}
