/**
 * Folders keytap trusts: it announces and finds keys, listens and connects, and writes logs and
 * secrets in them, so whoever else can write there could plant a symbolic link that keytap then
 * writes through, an announcement keytap then believes, or a socket of their own. Such a folder
 * must be a real folder (not a symbolic link), belong to the user running keytap, and be closed
 * to other users.
 */
import { chmodSync, constants as fsConstants, lstatSync, mkdirSync, openSync, rmSync } from 'node:fs';
import { KeytapError } from '../errors.js';

export interface PrivateFolderOptions {
  /** What the folder is, for the error ("keytap's runtime folder"). */
  what: string;
  /** What the user can do instead (where keytap takes the folder from). */
  hint?: string | undefined;
  /**
   * A folder of ours that other users may read or write: refuse it (default), or take their
   * access away — only for a folder whose content keytap checks anyway (the asset cache hashes
   * every file it uses).
   */
  tooOpen?: 'refuse' | 'tighten' | undefined;
  /** Others may list the folder, not write in it (it holds no secret of its own: its files are 0600). */
  othersMayRead?: boolean | undefined;
  platform?: NodeJS.Platform | undefined;
}

/**
 * Creates `dir` (mode 0700) when missing; refuses one that is a symbolic link or not a folder,
 * belongs to another user, or (unless `tooOpen: 'tighten'`) that other users may enter. Throws a
 * PERMISSION_DENIED KeytapError that names the folder and the reason.
 */
export function ensurePrivateFolder(dir: string, options: PrivateFolderOptions): void {
  const platform = options.platform ?? process.platform;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const refuse = (why: string, hint = options.hint): never => {
    throw new KeytapError('PERMISSION_DENIED', `${options.what} ${dir} ${why}; keytap does not use it.`, { hint });
  };
  // lstat: a symbolic link planted under the folder's name is refused, not followed.
  const stats = lstatSync(dir);
  if (stats.isSymbolicLink()) refuse('is a symbolic link, not a folder (someone else may have put it there)');
  if (!stats.isDirectory()) refuse('is not a folder');
  if (platform === 'win32') return; // per-user profile folders; no uid or mode bits to check
  const me = process.geteuid?.();
  if (me !== undefined && stats.uid !== me) refuse(`belongs to another user (uid ${stats.uid}), not to you (uid ${me})`);
  const openBits = stats.mode & (options.othersMayRead ? 0o022 : 0o077);
  if (openBits === 0) return;
  if (options.tooOpen === 'tighten') {
    chmodSync(dir, (stats.mode & 0o777) & ~openBits);
    return;
  }
  refuse(`is open to other users (mode ${(stats.mode & 0o777).toString(8).padStart(4, '0')})`, joinHints(options.othersMayRead ? `Close it to others with: chmod go-w ${dir}` : `Make it private with: chmod 700 ${dir}`, options.hint));
}

function joinHints(first: string, second: string | undefined): string {
  return second ? `${first}; or ${second.charAt(0).toLowerCase()}${second.slice(1)}` : first;
}

/**
 * Opens `path` for writing as a new file of mode 0600 and returns its descriptor. Whatever was
 * there is removed first — a symbolic link is removed, never followed — and the create is
 * exclusive and does not follow links, so a link planted in between makes it fail, not write
 * elsewhere.
 */
export function openFreshPrivateFile(path: string): number {
  rmSync(path, { force: true });
  const noFollow = fsConstants.O_NOFOLLOW ?? 0;
  return openSync(path, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | noFollow, 0o600);
}
