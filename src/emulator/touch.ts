/**
 * The virtual key's button: what stands in for a finger on a real key. The applet asks
 * (`wait`) and the button answers true (touched) or false (the key's touch timeout passed),
 * as Trussed's `confirm_user_present` and a YubiKey's flashing LED do.
 */
import { cancelledError } from '../errors.js';
import type { TouchPolicy } from './types.js';

export class TouchButton {
  /** Read when a wait starts; changing it does not affect a wait already running. */
  policy: TouchPolicy;
  timeoutMs: number;
  /** Pending waits, each resolved by a press. Usually zero or one: a key handles one APDU at a time. */
  private readonly pressHandlers = new Set<() => void>();

  constructor(policy: TouchPolicy, timeoutMs: number) {
    this.policy = policy;
    this.timeoutMs = timeoutMs;
  }

  /** True while the key is waiting for a touch (a tray or `keytap virtual touch` may show it). */
  get waiting(): boolean {
    return this.pressHandlers.size > 0;
  }

  /**
   * Waits for a touch. Resolves true when touched (auto: after its delay; manual: on `press()`),
   * false after `timeoutMs`; rejects with KeytapError CANCELLED when `signal` fires. Every timer
   * and listener is removed when the wait ends, however it ends.
   */
  wait(signal?: AbortSignal): Promise<boolean> {
    if (signal?.aborted) return Promise.reject(cancelledError(signal));
    const policy = this.policy;
    const timeoutMs = this.timeoutMs;
    return new Promise<boolean>((resolve, reject) => {
      const timers: NodeJS.Timeout[] = [];
      const onPress = (): void => finish(() => resolve(true));
      const onAbort = (): void => finish(() => reject(cancelledError(signal)));
      const finish = (settle: () => void): void => {
        for (const timer of timers) clearTimeout(timer);
        this.pressHandlers.delete(onPress);
        signal?.removeEventListener('abort', onAbort);
        settle();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      // A human may press the button whatever the policy, except `never`, whose whole point is
      // that nobody does (to exercise touch timeouts).
      if (policy.mode !== 'never') this.pressHandlers.add(onPress);
      if (policy.mode === 'auto' && policy.delayMs < timeoutMs) {
        timers.push(setTimeout(onPress, Math.max(0, policy.delayMs)));
      }
      timers.push(setTimeout(() => finish(() => resolve(false)), Math.max(0, timeoutMs)));
    });
  }

  /** Touches the button. Answers the pending wait(s); with nobody waiting it does nothing. */
  press(): boolean {
    const handlers = [...this.pressHandlers];
    for (const handler of handlers) handler();
    return handlers.length > 0;
  }
}
