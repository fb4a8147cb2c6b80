/**
 * Waiting that an AbortSignal can cut short, for code whose underlying calls have no timeout or
 * cancellation of their own (HID writes, PC/SC transmits).
 */
import type { KeytapError } from '../errors.js';
import { cancelledError } from '../errors.js';

/**
 * Waits for `promise`, but no longer than `deadline` (a Date.now() value; Infinity for none) and
 * not past an abort. The promise left behind is always observed, so a late rejection is never
 * unhandled.
 */
export function bounded<T>(promise: Promise<T>, deadline: number, signal: AbortSignal | undefined, onTimeout: () => KeytapError): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const finish = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      fn();
    };
    const onAbort = (): void => finish(() => reject(cancelledError(signal)));
    // setTimeout turns Infinity into 1 ms, so an unbounded wait gets no timer at all.
    const timer = Number.isFinite(deadline) ? setTimeout(() => finish(() => reject(onTimeout())), Math.max(0, deadline - Date.now())) : undefined;
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) onAbort();
    promise.then(
      (value) => finish(() => resolve(value)),
      (error: unknown) => finish(() => reject(error instanceof Error ? error : new Error(String(error)))),
    );
  });
}

/** Resolves after `ms`; rejects with the cancel error as soon as `signal` fires (or has fired). */
export function delay(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(cancelledError(signal));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(cancelledError(signal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
