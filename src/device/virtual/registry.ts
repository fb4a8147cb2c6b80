/**
 * Where running virtual keys announce themselves. A virtual key served to other processes
 * (`keytap virtual start`) writes `<id>.json` into the runtime directory after its socket listens
 * and removes it before the socket closes: its appearance and disappearance are what plugging in
 * and unplugging mean to the discovery watcher.
 */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import type { Dialect } from './types.js';

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

/**
 * `$KEYTAP_RUNTIME_DIR`, else `$XDG_RUNTIME_DIR/keytap`, else a per-user folder in the temp dir.
 * Created owner-only on first use.
 */
export function runtimeDir(): string {
  const dir =
    process.env.KEYTAP_RUNTIME_DIR ??
    (process.env.XDG_RUNTIME_DIR ? join(process.env.XDG_RUNTIME_DIR, 'keytap') : join(tmpdir(), `keytap-${userInfo().uid}`));
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

export function virtualKeyId(file: string): string {
  return `vk-${createHash('sha256').update(resolve(file)).digest('hex').slice(0, 12)}`;
}

export function socketPathFor(id: string): string {
  return process.platform === 'win32' ? `\\\\.\\pipe\\keytap-${userInfo().username}-${id}` : join(runtimeDir(), `${id}.sock`);
}

export function infoPathFor(id: string): string {
  return join(runtimeDir(), `${id}${INFO_SUFFIX}`);
}

/** Publishes a running key (atomically, so a watcher never reads half a file). */
export async function announce(info: RunningVirtualKey): Promise<void> {
  const path = infoPathFor(info.id);
  const temp = `${path}.${process.pid}.tmp`;
  await writeFile(temp, JSON.stringify(info), { mode: 0o600 });
  await rename(temp, path);
}

export async function withdraw(id: string): Promise<void> {
  await rm(infoPathFor(id), { force: true });
}

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
    if (!isAlive(info.pid)) {
      await rm(join(dir, name), { force: true });
      continue;
    }
    keys.push(info);
  }
  return keys;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
