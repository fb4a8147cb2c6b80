/**
 * The callers waiting for a code (`keytap code` over IPC). Each read has a request id; any number
 * of callers may wait on one read (requests for the account being read share it: one touch, one
 * code for all). A read's end reaches them when it failed (the state machine's `done` effect with
 * an error), or once its code was copied or typed or failed to be (`delivered`), so that a caller
 * can be told where the code went. A touch prompt is passed on so callers can say "touch your
 * key" too.
 */
import type { Effect, StateError } from './state.js';

export type CodeResult = Extract<Effect, { type: 'done' }>['result'];

/** How a code was delivered: copied and/or typed, and why not. */
export type Delivery = Omit<Extract<Effect, { type: 'delivered' }>, 'type' | 'requestId'>;

/** What a caller gets: the read's result and, for a code, where it went. */
export type CodeOutcome = Extract<CodeResult, { ok: false }> | (Extract<CodeResult, { ok: true }> & Delivery);

interface Waiter {
  resolve: (outcome: CodeOutcome) => void;
  onTouch?: (() => void) | undefined;
}

interface Read {
  waiters: Set<Waiter>;
  /** The code, once read, until the copy is over. */
  code?: Extract<CodeResult, { ok: true }> | undefined;
}

export interface Waiting {
  outcome: Promise<CodeOutcome>;
  /** This caller gives up (it gets `outcome` resolved with `reason`); true when nobody waits on the read any more. */
  leave(reason: StateError): boolean;
}

export class CodeRequests {
  private nextId = 1;
  private readonly reads = new Map<number, Read>();

  /** A new request id (menu clicks and shortcut presses get one too; only IPC callers wait). */
  newId(): number {
    return this.nextId++;
  }

  /** Waits for the end of read `requestId` (a new one, or one already running). */
  wait(requestId: number, onTouch?: () => void): Waiting {
    const read = this.read(requestId);
    let waiter!: Waiter;
    const outcome = new Promise<CodeOutcome>((resolve) => (waiter = { resolve, onTouch }));
    read.waiters.add(waiter);
    return {
      outcome,
      leave: (reason) => {
        if (!read.waiters.delete(waiter)) return false;
        waiter.resolve({ ok: false, error: reason });
        return read.waiters.size === 0;
      },
    };
  }

  touchNeeded(requestId: number): void {
    for (const waiter of this.reads.get(requestId)?.waiters ?? []) waiter.onTouch?.();
  }

  /** The read ended: a failure goes to its callers now, a code once it is copied. */
  done(requestId: number, result: CodeResult): void {
    if (result.ok) {
      this.read(requestId).code = result;
      return;
    }
    this.finish(requestId, result);
  }

  /** The code of read `requestId` was delivered: copied, typed, or not. */
  delivered(requestId: number, delivery: Delivery): void {
    const code = this.reads.get(requestId)?.code;
    if (code) this.finish(requestId, { ...code, ...delivery });
  }

  private finish(requestId: number, outcome: CodeOutcome): void {
    const read = this.reads.get(requestId);
    this.reads.delete(requestId);
    for (const waiter of read?.waiters ?? []) waiter.resolve(outcome);
  }

  private read(requestId: number): Read {
    let read = this.reads.get(requestId);
    if (!read) this.reads.set(requestId, (read = { waiters: new Set() }));
    return read;
  }
}
