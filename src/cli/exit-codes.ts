/** Exit codes of the CLI (documented in the README). */
import type { ErrorCode } from '../errors.js';

export const ExitCode = {
  OK: 0,
  ERROR: 1,
  USAGE: 2,
  NO_KEY: 3,
  NO_MATCH: 4,
  TOUCH_TIMEOUT: 5,
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
    default:
      return ExitCode.ERROR;
  }
}
