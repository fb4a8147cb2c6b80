/**
 * The callers waiting for a code (`keytap code` over IPC): each read gets a request id; the state
 * machine's `done` effect answers the caller waiting on it, and a touch prompt is passed on so the
 * caller can say "touch your key" too.
 */
import type { Effect } from './state.js';

export type CodeResult = Extract<Effect, { type: 'done' }>['result'];

interface Waiter {
  resolve: (result: CodeResult) => void;
  onTouch?: (() => void) | undefined;
}

export class CodeRequests {
  private nextId = 1;
  private readonly waiters = new Map<number, Waiter>();

  /** A new request id (menu clicks and shortcut presses get one too; only IPC callers wait). */
  newId(): number {
    return this.nextId++;
  }

  /** Resolves with the result of request `requestId`. */
  wait(requestId: number, onTouch?: () => void): Promise<CodeResult> {
    return new Promise((resolve) => this.waiters.set(requestId, { resolve, onTouch }));
  }

  touchNeeded(requestId: number): void {
    this.waiters.get(requestId)?.onTouch?.();
  }

  done(requestId: number, result: CodeResult): void {
    const waiter = this.waiters.get(requestId);
    this.waiters.delete(requestId);
    waiter?.resolve(result);
  }
}
