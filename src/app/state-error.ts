/** From a thrown value to what the state keeps of an error (code, message, hint). */
import { KeytapError } from '../errors.js';
import type { Logger } from './logger.js';
import type { StateError } from './state.js';

/** What the state keeps of an error. Unexpected ones keep their stack in the log, not in a toast. */
export function toStateError(error: unknown, logger?: Logger): StateError {
  if (error instanceof KeytapError) return { code: error.code, message: error.message, hint: error.hint };
  logger?.error(`unexpected: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  return {
    code: 'DEVICE_ERROR',
    message: `Unexpected error: ${error instanceof Error ? error.message : String(error)}`,
    hint: 'This is a bug in keytap; the log has the details. Please report it.',
  };
}

/** The error the state kept, thrown again (to an IPC caller). */
export function fromStateError(error: StateError): KeytapError {
  return new KeytapError(error.code, error.message, error.hint ? { hint: error.hint } : {});
}
