/**
 * The resident process's log (stderr, one line per event, never a code) and its clock, both
 * injected so that tests run the app with fakes.
 */
import { KeytapError } from '../errors.js';

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export const consoleLogger: Logger = {
  info: (m) => console.error(`keytap: ${m}`),
  warn: (m) => console.error(`keytap: warning: ${m}`),
  error: (m) => console.error(`keytap: error: ${m}`),
};

/** An error as one log line: message and hint for keytap's own errors, the message otherwise. */
export function describeUnknown(error: unknown): string {
  if (error instanceof KeytapError) return `${error.message}${error.hint ? ` ${error.hint}` : ''}`;
  return error instanceof Error ? error.message : String(error);
}

/** Awaits `promise`; a failure becomes a warning, so that shutting down goes on. */
export async function settle(promise: Promise<unknown>, logger: Logger, what: string): Promise<void> {
  try {
    await promise;
  } catch (error) {
    logger.warn(`${what} failed: ${describeUnknown(error)}`);
  }
}
