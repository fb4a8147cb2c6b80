/**
 * The writing side of the virtual-key registry: a virtual key served to other processes
 * (`keytap virtual start`) announces itself in the runtime directory after its socket listens and
 * withdraws before the socket closes. Clients read the registry in
 * src/device/discovery/virtual-keys.ts, which also defines the announcement.
 */
import { createHash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { INFO_SUFFIX } from '../device/discovery/virtual-keys.js';
import type { RunningVirtualKey } from '../device/discovery/virtual-keys.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { runtimeDir } from '../util/runtime-dir.js';

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
  await writeFileAtomic(infoPathFor(info.id), JSON.stringify(info), { overwrite: true });
}

export async function withdraw(id: string): Promise<void> {
  await rm(infoPathFor(id), { force: true });
}
