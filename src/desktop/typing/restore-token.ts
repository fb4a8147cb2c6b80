/**
 * The RemoteDesktop portal's restore token across restarts, so the desktop asks once, not at every
 * start of keytap: one line in a 0600 file in keytap's data folder, written atomically. The token
 * only lets this user's keytap skip the dialog; it is no secret of the user's accounts, but it is
 * kept private all the same. An unreadable file is no token (the desktop asks again).
 */
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';

import { writeFileAtomic } from '../../util/atomic-file.js';

export interface RestoreTokenStore {
  get(): string | undefined;
  set(token: string): void;
  /** Settles once the last token set is written (or its failure told): a short-lived process waits for it before it exits. */
  saved(): Promise<void>;
}

export function restoreTokenFile(path: string, onProblem: (message: string) => void = () => undefined): RestoreTokenStore {
  let token: string | undefined;
  let read = false;
  let saving: Promise<void> = Promise.resolve();
  return {
    get() {
      if (!read) {
        read = true;
        try {
          token = readFileSync(path, 'utf8').trim() || undefined;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ENOENT') onProblem(`cannot read ${path}: ${(error as Error).message}; the desktop will ask again`);
        }
      }
      return token;
    },
    set(next) {
      token = next;
      read = true;
      saving = saving
        .then(async () => {
          await mkdir(dirname(path), { recursive: true, mode: 0o700 });
          await writeFileAtomic(path, `${next}\n`, { overwrite: true, mode: 0o600 });
        })
        .catch((error: unknown) => onProblem(`cannot save ${path}: ${(error as Error).message}; the desktop will ask again next time`));
    },
    saved: () => saving,
  };
}
