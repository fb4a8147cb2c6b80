/**
 * The input side of a HidLink: reports the device sent that nobody has read yet, the reads that
 * wait for one, and why the link stopped working. Every HidLink (node-hid, the in-process virtual
 * key, the socket to a served virtual key) keeps one and answers `read` from it.
 */
import { cancelledError } from '../../errors.js';

export interface ReportQueueOptions {
  /** Reports kept when nobody reads; one more drops the oldest, as a kernel buffer does. */
  maxQueued: number;
  /**
   * What a failure does to reports already queued. 'discard' (default): they are dropped, and
   * every later read rejects with the failure, even with an aborted signal. 'drain': they (and any
   * pushed later) are still read first, an aborted signal wins, and only an empty queue rejects
   * with the failure.
   */
  afterFailure?: 'discard' | 'drain' | undefined;
}

interface PendingRead {
  resolve(report: Uint8Array | undefined): void;
  reject(error: Error): void;
}

/** setTimeout fires at once for delays above this (a signed 32-bit count of milliseconds). */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class ReportQueue {
  private readonly queue: Uint8Array[] = [];
  private readonly readers = new Set<PendingRead>();
  private readonly maxQueued: number;
  private readonly drain: boolean;
  private error: Error | undefined;

  constructor(options: ReportQueueOptions) {
    this.maxQueued = options.maxQueued;
    this.drain = options.afterFailure === 'drain';
  }

  /** Why reads fail, once they do (the first error given to `fail`). */
  get failure(): Error | undefined {
    return this.error;
  }

  /** How many reads wait for a report. */
  get pendingReads(): number {
    return this.readers.size;
  }

  /** Hands `report` to the oldest waiting read, or queues it. */
  push(report: Uint8Array): void {
    const [reader] = this.readers;
    if (reader) {
      reader.resolve(report);
      return;
    }
    if (this.error && !this.drain) return; // nobody could ever read it
    this.queue.push(report);
    if (this.queue.length > this.maxQueued) this.queue.shift();
  }

  /**
   * The next report. Resolves `undefined` when `timeoutMs` passes without one, rejects with the
   * failure once there is one, and with `cancelledError(signal)` when `signal` fires. A settled
   * read leaves no timer and no abort listener behind.
   */
  read(timeoutMs: number, signal?: AbortSignal): Promise<Uint8Array | undefined> {
    if (this.error && !this.drain) return Promise.reject(this.error);
    if (signal?.aborted) return Promise.reject(cancelledError(signal));
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.error) return Promise.reject(this.error);
    return new Promise((resolve, reject) => {
      const settle = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.readers.delete(reader);
      };
      const reader: PendingRead = {
        resolve: (value) => {
          settle();
          resolve(value);
        },
        reject: (error) => {
          settle();
          reject(error);
        },
      };
      const onAbort = () => reader.reject(cancelledError(signal));
      const timer = setTimeout(() => reader.resolve(undefined), Math.max(0, Math.min(timeoutMs, MAX_TIMER_MS)));
      signal?.addEventListener('abort', onAbort, { once: true });
      this.readers.add(reader);
    });
  }

  /**
   * Rejects every waiting read and every later one with `error`. Only the first failure counts:
   * returns false, and changes nothing, when there already was one.
   */
  fail(error: Error): boolean {
    if (this.error) return false;
    this.error = error;
    if (!this.drain) this.queue.length = 0;
    for (const reader of [...this.readers]) reader.reject(error);
    return true;
  }
}
