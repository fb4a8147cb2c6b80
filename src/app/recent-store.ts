/**
 * The "Recent" list across restarts: `recent.json` in keytap's data folder, `{"recent":[{keyId,
 * credentialId}…]}`. It names accounts and keys (serials), never a secret or a code, and is written
 * atomically with mode 0600 all the same. A missing or unreadable file is an empty list (and the
 * reason is logged): a lost list costs a few clicks, never the start of the tray.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic-file.js';
import type { RecentAccount } from './state.js';
import { uniqueRecent } from './state.js';

export interface RecentStore {
  load(): Promise<RecentAccount[]>;
  save(recent: RecentAccount[]): Promise<void>;
}

export function recentStore(folder: string, onProblem: (message: string) => void = () => undefined): RecentStore {
  const path = join(folder, 'recent.json');
  let saving: Promise<void> = Promise.resolve();
  return {
    async load() {
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') onProblem(`cannot read ${path}: ${(error as Error).message}; "Recent" starts empty`);
        return [];
      }
      try {
        const value = JSON.parse(text) as { recent?: unknown };
        if (!Array.isArray(value.recent)) throw new Error('no "recent" list');
        // An account written twice (by an older keytap) is one entry.
        return uniqueRecent(value.recent.filter((r): r is RecentAccount => typeof r === 'object' && r !== null && typeof (r as RecentAccount).keyId === 'string' && typeof (r as RecentAccount).credentialId === 'string'));
      } catch (error) {
        onProblem(`${path} is not a list of recent accounts (${(error as Error).message}); "Recent" starts empty`);
        return [];
      }
    },
    save(recent) {
      // One write after the other: the last list saved is the last one asked for. A failed write
      // is its own caller's failure, not every later one's.
      saving = saving.catch(() => undefined).then(async () => {
        await mkdir(folder, { recursive: true, mode: 0o700 });
        await writeFileAtomic(path, `${JSON.stringify({ recent }, null, 2)}\n`, { overwrite: true, mode: 0o600 });
      });
      return saving;
    },
  };
}
