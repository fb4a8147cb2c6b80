/**
 * Batch programming, driven by hotplug: "insert the next key" → `added` → program → verify →
 * "remove the key" → `removed` → next. Keys that are already plugged in when the batch starts are
 * left alone (a personal key must not get a token by accident); re-inserting one programs it.
 *
 * Stopping: `stop` (the first Ctrl+C) ends the batch at the next boundary — at once while waiting
 * for a key, after the current key otherwise; `abort` (a second Ctrl+C) also cancels a touch wait.
 */
import type { OpenKey, OpenedKey } from '../device/open.js';
import type { KeyDescriptor } from '../device/discovery/enumerate.js';
import type { KeyWatcherEvents } from '../device/discovery/watcher.js';
import type { KeytapError } from '../errors.js';
import { isKeytapError } from '../errors.js';
import { StorageError } from './ledger.js';
import type { ProgramOneOptions, ProgramOneResult, ProvisionRun, RunSummary } from './run.js';
import { asOpenedKey } from './run.js';
import type { TouchPhase } from './programmer.js';
import type { ProvisionToken } from './token.js';

/** What the batch needs of a KeyWatcher. */
export interface KeySource {
  start(): Promise<void>;
  stop(): Promise<void>;
  readonly keys: KeyDescriptor[];
  on<E extends 'added' | 'removed'>(event: E, listener: (...args: KeyWatcherEvents[E]) => void): unknown;
  off<E extends 'added' | 'removed'>(event: E, listener: (...args: KeyWatcherEvents[E]) => void): unknown;
}

export type BatchEvent =
  | { kind: 'ignored-present'; keys: KeyDescriptor[] }
  | { kind: 'insert'; number: number }
  | { kind: 'key-added'; key: KeyDescriptor; number: number }
  | { kind: 'result'; key: KeyDescriptor; number: number; token: ProvisionToken; result: ProgramOneResult }
  | { kind: 'error'; key: KeyDescriptor; number: number; error: KeytapError }
  /** `afterProgrammed` failed: the token is on the key and in the ledger, the follow-up is not done. */
  | { kind: 'after-programmed-error'; key: KeyDescriptor; number: number; token: ProvisionToken; error: KeytapError }
  | { kind: 'remove'; key: KeyDescriptor }
  | { kind: 'touch'; phase: TouchPhase; key: KeyDescriptor };

/** The key in hand: its descriptor, the open session, its position in the batch (1-based). */
export interface BatchKeyContext {
  descriptor: KeyDescriptor;
  /** Whichever session the key has (an OATH key, or a Feitian HOTP key). */
  opened: OpenedKey;
  /** The OATH session; undefined for a Feitian HOTP key. */
  key: OpenKey | undefined;
  number: number;
  /** Aborted by the second Ctrl+C. */
  signal: AbortSignal;
}

export interface BatchOptions {
  source: KeySource;
  run: ProvisionRun;
  open: (key: KeyDescriptor, signal: AbortSignal) => Promise<OpenKey | OpenedKey>;
  /** A Feitian HOTP key verifies by typing its code: this reads it. */
  readTypedCode?: ProgramOneOptions['readTypedCode'];
  /**
   * The token for the key just inserted and opened (a new serial and seed each time; a user may
   * be asked for here). Undefined ends the batch before anything is written to this key.
   */
  nextToken: (context: BatchKeyContext) => ProvisionToken | undefined | Promise<ProvisionToken | undefined>;
  /**
   * Called after a key was programmed and verified, while it is still inserted and open (e.g. to
   * enroll the token with an identity provider using a code read from the key). A KeytapError it
   * throws is reported as `after-programmed-error` and the batch goes on; anything else ends it.
   */
  afterProgrammed?: ((context: BatchKeyContext & { key: OpenKey; token: ProvisionToken; result: ProgramOneResult }) => Promise<void>) | undefined;
  /** Ends the batch at the next boundary. */
  stop: AbortSignal;
  /** Cancels what is in flight. */
  abort: AbortSignal;
  replace?: boolean | undefined;
  /** False once there is no token to give (every user has a key): the batch ends before asking for another key. */
  hasNext?: (() => boolean) | undefined;
  /** Stop after this many keys were handled (programmed, failed or skipped). */
  count?: number | undefined;
  /** Milliseconds since the epoch, for verification (tests). */
  now?: (() => number) | undefined;
  report: (event: BatchEvent) => void;
}

export async function runBatch(options: BatchOptions): Promise<RunSummary> {
  const { source, run } = options;
  const queue: KeyDescriptor[] = [];
  const gone = new Set<string>();
  let wake: (() => void) | undefined;
  const onAdded = (key: KeyDescriptor): void => {
    gone.delete(key.id);
    queue.push(key);
    wake?.();
  };
  const onRemoved = (key: KeyDescriptor): void => {
    gone.add(key.id);
    const index = queue.findIndex((k) => k.id === key.id);
    if (index >= 0) queue.splice(index, 1);
    wake?.();
  };
  const onStop = (): void => wake?.();
  options.stop.addEventListener('abort', onStop);
  options.abort.addEventListener('abort', onStop);
  const stopped = (): boolean => options.stop.aborted || options.abort.aborted;
  /** Waits until `ready()` or a stop; true when ready. */
  const waitFor = async (ready: () => boolean): Promise<boolean> => {
    while (!ready()) {
      if (stopped()) return false;
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
    return true;
  };

  await source.start();
  try {
    // Keys present now were announced by start() already; they are not the ones to program.
    const present = source.keys;
    if (present.length > 0) options.report({ kind: 'ignored-present', keys: present });
    source.on('added', onAdded);
    source.on('removed', onRemoved);
    let handled = 0;
    while (!stopped() && (options.count === undefined || handled < options.count) && (options.hasNext?.() ?? true)) {
      const number = handled + 1;
      options.report({ kind: 'insert', number });
      if (!(await waitFor(() => queue.length > 0))) break;
      const descriptor = queue.shift()!;
      options.report({ kind: 'key-added', key: descriptor, number });
      let opened: OpenedKey | undefined;
      try {
        opened = asOpenedKey(await options.open(descriptor, options.abort));
        const key = opened.kind === 'oath' ? opened.key : undefined;
        const context: BatchKeyContext = { descriptor, opened, key, number, signal: options.abort };
        const token = await options.nextToken(context);
        if (token === undefined) break;
        const result = await run.programOne(opened, token, {
          replace: options.replace,
          signal: options.abort,
          now: options.now,
          onTouchNeeded: (phase) => options.report({ kind: 'touch', phase, key: descriptor }),
          readTypedCode: options.readTypedCode,
        });
        options.report({ kind: 'result', key: descriptor, number, token, result });
        // The follow-up (Entra ID) reads a code over the key's OATH session, which a Feitian key has not.
        if (result.outcome.status === 'programmed' && options.afterProgrammed && key !== undefined) {
          try {
            await options.afterProgrammed({ ...context, key, token, result });
          } catch (error) {
            if (!isKeytapError(error) || error instanceof StorageError) throw error;
            options.report({ kind: 'after-programmed-error', key: descriptor, number, token, error });
          }
        }
      } catch (error) {
        // The key could not be opened, or went away before anything was written to it (errors
        // after the ledger append come back as outcomes, not exceptions): skipped, say why, go on.
        // Losing the ledger or the seed files (StorageError), or a bug, ends the batch.
        if (!isKeytapError(error) || error instanceof StorageError || error.code === 'BAD_INPUT') throw error;
        run.summary.skipped++;
        options.report({ kind: 'error', key: descriptor, number, error });
      } finally {
        await opened?.key.close().catch(() => undefined);
      }
      handled++;
      if (options.count !== undefined && handled >= options.count) break;
      if (!gone.has(descriptor.id)) {
        options.report({ kind: 'remove', key: descriptor });
        // The last key of the batch: nothing waits for its removal.
        if (!(options.hasNext?.() ?? true)) break;
        if (!(await waitFor(() => gone.has(descriptor.id)))) break;
      }
    }
  } finally {
    source.off('added', onAdded);
    source.off('removed', onRemoved);
    options.stop.removeEventListener('abort', onStop);
    options.abort.removeEventListener('abort', onStop);
    await source.stop();
  }
  return run.summary;
}
