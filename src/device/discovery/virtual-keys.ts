/**
 * The reading side of the virtual-key registry. A virtual key served to other processes
 * (`keytap virtual start`, src/emulator/registry.ts) writes `<id>.json` into the runtime directory
 * after its socket listens and removes it before the socket closes: its appearance and
 * disappearance are what plugging in and unplugging mean to the discovery watcher.
 */
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { processAlive } from '../../util/atomic-file.js';
import { runtimeDir } from '../../util/runtime-dir.js';
import type { Dialect } from '../oath/dialect.js';

/** What a running virtual key announces (the JSON of `<id>.json`). */
export interface RunningVirtualKey {
  /** Stable for one store file: derived from its absolute path. */
  id: string;
  /** Absolute path of the JSON store. */
  file: string;
  /** Unix socket path, or a Windows named pipe. */
  socket: string;
  pid: number;
  dialect: Dialect;
  /** Serial the key reports, as 8 hex digits, where it has one. */
  serial?: string | undefined;
  startedAt: string;
}

export const INFO_SUFFIX = '.json';

/** Running virtual keys. Entries whose process is gone (a crash) are removed on the way. */
export async function listRunningVirtualKeys(): Promise<RunningVirtualKey[]> {
  const dir = runtimeDir();
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const keys: RunningVirtualKey[] = [];
  for (const name of names.filter((n) => n.endsWith(INFO_SUFFIX)).sort()) {
    let info: RunningVirtualKey;
    try {
      info = JSON.parse(await readFile(join(dir, name), 'utf8')) as RunningVirtualKey;
    } catch {
      continue; // being written or removed right now
    }
    if (!processAlive(info.pid)) {
      await rm(join(dir, name), { force: true });
      continue;
    }
    keys.push(info);
  }
  return keys;
}
