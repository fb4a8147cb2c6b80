/**
 * What `keytap code`, `keytap list` and `keytap pick` share about the keys they read: every
 * connected key listed (passing over one that cannot be), a tray's listing turned into the error a
 * direct read would give, and the tray's word on a copy.
 */
import type { KeyListing } from '../app/controller.js';
import { fromStateError } from '../app/state-error.js';
import type { KeyDescriptor } from '../device/discovery/enumerate.js';
import type { OpenKey } from '../device/open.js';
import { lockedError, isKeytapError } from '../errors.js';
import type { KeyOptions } from './key-options.js';
import { withConnectedKey } from './key-options.js';
import type { CliIo } from './output.js';

/**
 * `read` on each of the connected keys given, in order. A key that cannot be read (locked, busy) is
 * passed over with a warning, unless no key could be: then the first one's error. A cancel ends it.
 */
export async function readEachKey<T>(keys: readonly KeyDescriptor[], options: KeyOptions, io: CliIo, read: (descriptor: KeyDescriptor, key: OpenKey, signal: AbortSignal) => Promise<T>): Promise<T[]> {
  const results: T[] = [];
  let firstError: unknown;
  for (const descriptor of keys) {
    try {
      results.push(await withConnectedKey(descriptor, options, io, (key, signal) => read(descriptor, key, signal)));
    } catch (error) {
      if (isKeytapError(error, 'CANCELLED')) throw error;
      firstError ??= error;
      io.err(`keytap: warning: ${descriptor.name} (${descriptor.id}) was passed over: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  if (results.length === 0 && keys.length > 0) throw firstError;
  return results;
}

/** A key the tray listed, as a direct read of it would go: its accounts when ready, else the error (locked, broken). */
export function readyOrError(key: KeyListing): KeyListing {
  if (key.status === 'locked') throw lockedError(key.name);
  if (key.error) throw fromStateError(key.error);
  return key;
}

/** The tray's word on the copy: undefined when it copied (or, an older tray, did not say). */
export function notCopied(copied: unknown, copyError: unknown): { message: string; hint?: string | undefined } | undefined {
  if (copied !== false) return undefined;
  const { message, hint } = (typeof copyError === 'object' && copyError !== null ? copyError : {}) as { message?: unknown; hint?: unknown };
  return { message: typeof message === 'string' ? message : 'The running keytap could not copy it.', hint: typeof hint === 'string' ? hint : undefined };
}
