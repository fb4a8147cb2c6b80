/**
 * Copies a code and takes it away again: after `clearAfterMs` the clipboard is cleared, but only
 * if it still holds our code (read, compare, clear), so a user's newer copy is left alone. A new
 * copy cancels the previous timer. Timers are unref'd (they never keep the process alive), a
 * failed clear is reported and never thrown, and the code is never logged or put in an error.
 */
import { KeytapError, isKeytapError } from '../../errors.js';
import type { Clipboard } from '../platform.js';

export interface ClipboardGuardOptions {
  /** The default delay of copy(); 0 or less: never clear. Default 20 s. */
  clearAfterMs?: number | undefined;
  onError?: ((error: KeytapError) => void) | undefined;
  /** A clear ran: `cleared`, or `kept` when the clipboard held something copied since (for the log). */
  onCleared?: ((outcome: 'cleared' | 'kept') => void) | undefined;
}

export class ClipboardGuard {
  private timer: NodeJS.Timeout | undefined;
  /** What we copied last and have not cleared yet. Held only until the clear. */
  private copied: string | undefined;
  /** Bumped by every copy; a clear that started for an older copy gives up. */
  private generation = 0;
  /** Clipboard operations run one after the other, never interleaved. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly clipboard: Clipboard,
    private readonly options: ClipboardGuardOptions = {},
  ) {}

  get marksSensitive(): boolean {
    return this.clipboard.marksSensitive;
  }

  /**
   * Copies `code` (marked sensitive where the clipboard can) and arms the clear timer:
   * `clearAfterSeconds` if given (the setting may change while running), else the default.
   */
  copy(code: string, clearAfterSeconds?: number): Promise<void> {
    const clearAfterMs = clearAfterSeconds === undefined ? (this.options.clearAfterMs ?? 20_000) : clearAfterSeconds * 1000;
    this.cancel();
    const generation = ++this.generation;
    this.copied = code;
    return this.enqueue(async () => {
      try {
        await this.clipboard.write(code, { sensitive: true });
      } catch (error) {
        if (this.generation === generation) this.copied = undefined;
        throw asKeytapError(error, 'The code could not be copied to the clipboard.');
      }
      if (this.generation === generation && clearAfterMs > 0) {
        this.timer = setTimeout(() => {
          this.timer = undefined;
          void this.clearIfUnchanged();
        }, clearAfterMs);
        this.timer.unref();
      }
    });
  }

  /**
   * Clears now if the clipboard still holds our last copy (at quit, or from the timer). Never
   * rejects: failures go to onError.
   */
  clearIfUnchanged(): Promise<void> {
    this.cancel();
    const generation = this.generation;
    return this.enqueue(async () => {
      const code = this.copied;
      if (code === undefined || generation !== this.generation) return;
      try {
        const current = await this.clipboard.read();
        if (generation !== this.generation) return;
        if (current === code) await this.clipboard.clear();
        this.options.onCleared?.(current === code ? 'cleared' : 'kept');
      } catch (error) {
        this.options.onError?.(asKeytapError(error, 'The clipboard could not be cleared.'));
      } finally {
        if (generation === this.generation) this.copied = undefined;
      }
    }).catch(() => undefined);
  }

  /** At quit: clears now if the clipboard still holds our code, and drops the timer. Never rejects. */
  async stop(): Promise<void> {
    await this.clearIfUnchanged();
  }

  /** Forgets the timer without clearing (the clipboard keeps what it has). */
  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Resolves when every queued clipboard operation has finished (for tests and shutdown). */
  async idle(): Promise<void> {
    for (;;) {
      const queue = this.queue;
      await queue.catch(() => undefined);
      if (queue === this.queue) return;
    }
  }

  private enqueue(task: () => Promise<void>): Promise<void> {
    const next = this.queue.catch(() => undefined).then(task);
    this.queue = next;
    return next;
  }
}

/** Keeps a KeytapError as it is; anything else becomes one without its message (it might quote input). */
function asKeytapError(error: unknown, message: string): KeytapError {
  if (isKeytapError(error)) return error;
  return new KeytapError('UNSUPPORTED', message, { hint: 'Check the clipboard tool reported by `keytap doctor`.' });
}
