/**
 * What a key speaks, for the parts of keytap that handle every key (discovery, the virtual key's
 * store and registry, the CLI's --dialect): one of the two OATH dialects (oath/dialect.ts), or the
 * Feitian/HyperFIDO HOTP programming protocol (feitian/, docs/protocols.md §4), which has no OATH
 * application at all: such a key is programmed once with one HOTP seed and types its codes.
 */
import { DIALECTS } from './oath/dialect.js';
import type { Dialect } from './oath/dialect.js';

export type KeyDialect = Dialect | 'feitian';
export const KEY_DIALECTS: readonly KeyDialect[] = [...DIALECTS, 'feitian'];

export function isOathDialect(dialect: KeyDialect | undefined): dialect is Dialect {
  return dialect !== undefined && (DIALECTS as readonly string[]).includes(dialect);
}
