import { existsSync, readFileSync } from 'node:fs';

/**
 * The records of a JSON-lines log another process appends to: only lines already ended by a
 * newline count. A reader polling while the writer is mid-append sees an empty file (created, not
 * yet written) or a partial last line; both mean "not yet", not a broken log.
 */
export function completeJsonLines<T>(path: string): T[] {
  if (!existsSync(path)) return [];
  const text = readFileSync(path, 'utf8');
  const complete = text.slice(0, text.lastIndexOf('\n') + 1);
  return complete
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as T);
}
