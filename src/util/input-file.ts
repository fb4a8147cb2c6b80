/**
 * Reading a file the user named (a seed file, a ledger, a virtual key's file): when it cannot be
 * read, one error code (INPUT_FILE) with the path and the system's reason in words ("no such
 * file", not ENOENT), whichever command it was.
 */
import { readFile, stat } from 'node:fs/promises';
import { KeytapError } from '../errors.js';

/** The system's reason for a failed file operation, in words a user reads. */
export function fsReason(error: unknown): string {
  const e = error as NodeJS.ErrnoException;
  switch (e.code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'it is a folder';
    case 'ENOTDIR':
      return 'a part of the path is not a folder';
    case 'ENOSPC':
      return 'the disk is full';
    case 'EDQUOT':
      return 'the disk quota is used up';
    case 'ELOOP':
      return 'too many symbolic links';
    case 'ENAMETOOLONG':
      return 'the name is too long';
    case 'EMFILE':
    case 'ENFILE':
      return 'too many files are open';
    case 'EROFS':
      return 'the file system is read-only';
    default: {
      // Node's own wording is "CODE: words, syscall 'path'": keep the words.
      const message = error instanceof Error ? error.message : String(error);
      return /^[A-Z0-9]+: ([^,]+)/u.exec(message)?.[1] ?? message;
    }
  }
}

/** `Cannot read the ledger x: no such file.` (`what` names the kind of file, if it helps). */
export function inputFileError(path: string, error: unknown, what?: string): KeytapError {
  return new KeytapError('INPUT_FILE', `Cannot read ${what === undefined ? '' : `${what} `}${path}: ${fsReason(error)}.`, { cause: error });
}

/**
 * The bytes of `path`, or INPUT_FILE saying why they cannot be read. `checkSize` sees the file's
 * size before anything is read, and may throw (a KeytapError, passed on as it is).
 */
export async function readInputFile(path: string, what?: string, checkSize?: (size: number) => void): Promise<Buffer> {
  try {
    if (checkSize) checkSize((await stat(path)).size);
    return await readFile(path);
  } catch (error) {
    if (error instanceof KeytapError) throw error;
    throw inputFileError(path, error, what);
  }
}
