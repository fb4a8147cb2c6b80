/** How a question's failure is recorded: never thrown out of the probe, except a cancellation. */
import { cancelledError, isKeytapError } from '../../errors.js';
import { CtapHidErrorName } from '../transport/ctaphid-frames.js';
import { CtapHidDeviceError } from '../transport/ctaphid.js';
import { formatSw } from '../transport/types.js';
import type { ProbeOutcome } from './types.js';

export function answered(sw?: number): ProbeOutcome {
  return sw === undefined ? { status: 'answered' } : { status: 'answered', sw: formatSw(sw) };
}

/**
 * The outcome of a question that threw. A cancellation (the caller's signal) is rethrown: the
 * probe stops. KeytapError messages name the operation, never payload bytes (ctaphid.ts).
 */
export function failureOutcome(error: unknown, waitedMs: number, signal: AbortSignal | undefined): ProbeOutcome {
  if (signal?.aborted) throw cancelledError(signal);
  if (error instanceof CtapHidDeviceError) {
    return { status: 'ctaphid-error', error: CtapHidErrorName[error.ctapHidCode] ?? 'UNKNOWN', code: error.ctapHidCode };
  }
  if (isKeytapError(error, 'TIMEOUT') || isKeytapError(error, 'TOUCH_TIMEOUT')) return { status: 'no-answer', waitedMs };
  if (isKeytapError(error)) return { status: 'failed', error: error.code, message: error.message };
  return { status: 'failed', error: 'INTERNAL', message: error instanceof Error ? error.message : String(error) };
}

/** After this, asking the device anything more is pointless. */
export function deviceGone(outcome: ProbeOutcome): boolean {
  return outcome.status === 'failed' && outcome.error === 'KEY_REMOVED';
}
