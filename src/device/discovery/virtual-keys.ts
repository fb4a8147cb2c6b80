/**
 * The reading side of the virtual-key registry. A virtual key served to other processes
 * (`keytap virtual start`, src/emulator/registry.ts) writes `<id>.json` into the runtime directory
 * after its socket listens and removes it before the socket closes: its appearance and
 * disappearance are what plugging in and unplugging mean to the discovery watcher.
 */
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { isKeytapError } from '../../errors.js';
import { runtimeDir } from '../../util/runtime-dir.js';
import { sendControl } from '../transport/socket-link.js';
import type { KeyDialect } from '../key-dialect.js';

/** What a running virtual key announces (the JSON of `<id>.json`). */
export interface RunningVirtualKey {
  /** Stable for one store file: derived from its absolute path. */
  id: string;
  /** Absolute path of the JSON store. */
  file: string;
  /** Unix socket path, or a Windows named pipe. */
  socket: string;
  pid: number;
  dialect: KeyDialect;
  /** Serial the key reports, as 8 hex digits, where it has one. */
  serial?: string | undefined;
  startedAt: string;
}

export const INFO_SUFFIX = '.json';

/**
 * How long an announced key may take to answer the status probe. A served key answers from
 * memory at once; one that takes longer is stopped (SIGSTOP) or hung, and is not usable now.
 */
export const LIVENESS_PROBE_MS = 1000;

/**
 * Running virtual keys: announcements whose socket answers a status request as that key. A pid
 * proves nothing (pids are reused), so an announcement nobody serves (a crash) is removed on the
 * way; one whose socket accepts but does not answer (a stopped process) is left out but kept, as
 * its key comes back when the process goes on.
 */
export async function listRunningVirtualKeys(): Promise<RunningVirtualKey[]> {
  const dir = runtimeDir();
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const announced = await Promise.all(
    names
      .filter((n) => n.endsWith(INFO_SUFFIX))
      .sort()
      .map(async (name) => {
        let info: RunningVirtualKey;
        try {
          info = JSON.parse(await readFile(join(dir, name), 'utf8')) as RunningVirtualKey;
        } catch {
          return undefined; // being written or removed right now
        }
        const liveness = await probe(info);
        if (liveness === 'gone') await rm(join(dir, name), { force: true });
        return liveness === 'live' ? info : undefined;
      }),
  );
  return announced.filter((info): info is RunningVirtualKey => info !== undefined);
}

async function probe(info: RunningVirtualKey): Promise<'live' | 'gone' | 'silent'> {
  if (typeof info.socket !== 'string' || typeof info.id !== 'string') return 'gone';
  try {
    const answer = await sendControl(info.socket, { op: 'status' }, LIVENESS_PROBE_MS);
    // Another key's socket (or a reused path) answers as itself: this announcement is not it.
    return answer.ok && answer.id === info.id ? 'live' : 'gone';
  } catch (error) {
    return isKeytapError(error, 'NO_KEY') ? 'gone' : 'silent';
  }
}
