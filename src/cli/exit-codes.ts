/** Exit codes of the CLI (documented in the README). */
import type { ErrorCode } from '../errors.js';

export const ExitCode = {
  OK: 0,
  ERROR: 1,
  USAGE: 2,
  NO_KEY: 3,
  NO_MATCH: 4,
  TOUCH_TIMEOUT: 5,
  /** An input file (a seed file, a virtual key's file, a ledger) is missing or cannot be read. */
  INPUT_FILE: 6,
  /** The code was read but could not be put on the clipboard or typed (it is printed instead). */
  NOT_DELIVERED: 7,
} as const;

export function exitCodeFor(code: ErrorCode): number {
  switch (code) {
    case 'USAGE':
    case 'BAD_INPUT':
      return ExitCode.USAGE;
    case 'NO_KEY':
    case 'KEY_REMOVED':
      return ExitCode.NO_KEY;
    case 'NO_MATCH':
    case 'AMBIGUOUS':
    case 'NOT_FOUND':
      return ExitCode.NO_MATCH;
    case 'TOUCH_TIMEOUT':
      return ExitCode.TOUCH_TIMEOUT;
    case 'INPUT_FILE':
      return ExitCode.INPUT_FILE;
    case 'NOT_DELIVERED':
      return ExitCode.NOT_DELIVERED;
    default:
      return ExitCode.ERROR;
  }
}
