/** From a thrown value to what the state keeps of an error (code, message, hint). */
import { KeytapError } from '../errors.js';
import { explainForTray } from './explain.js';
import type { Logger } from './logger.js';
import type { StateError } from './state.js';

/** What the state keeps of an error. Unexpected ones keep their stack in the log, not in a toast. */
export function toStateError(error: unknown, logger?: Logger): StateError {
  if (error instanceof KeytapError) return { code: error.code, ...explainForTray(error), ...(error.detail ? { detail: error.detail } : {}) };
  logger?.error(`unexpected: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  return {
    code: 'DEVICE_ERROR',
    message: `Unexpected error: ${error instanceof Error ? error.message : String(error)}`,
    hint: 'This is a bug in keytap; the log has the details. Please report it.',
  };
}

/** The error the state kept, thrown again (to an IPC caller, which words it for its own command from the detail). */
export function fromStateError(error: StateError): KeytapError {
  return new KeytapError(error.code, error.message, { ...(error.hint ? { hint: error.hint } : {}), ...(error.detail ? { detail: error.detail } : {}) });
}
