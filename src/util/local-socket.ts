/**
 * Local sockets only their owner can use: a Unix socket file with mode 0600 (or a Windows named
 * pipe), and the rules for a socket file left behind by a process that died (a crash leaves it;
 * a named pipe goes away with its process). Used by the resident process's IPC endpoint and by
 * the virtual-key server.
 */
import { chmod, lstat, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import type { Server } from 'node:net';
import { KeytapError } from '../errors.js';

export interface StaleSocketPolicy {
  /**
   * The error for a socket that still accepts a connection. Without it the socket is not probed:
   * the caller has found out its own way that nobody serves it (the instance lock pings over IPC).
   */
  busy?: (() => Error) | undefined;
  /** The hint of the error for a file that is not a socket. */
  notSocketHint?: string | undefined;
}

export interface ListenOwnerOnlyOptions {
  /**
   * Replace a socket file already at `path` that nobody serves; refuse one that accepts a
   * connection (`busy`) and a file that is not a socket (USAGE). Without it, an existing file makes listen()
   * fail with EADDRINUSE.
   */
  replaceStale?: StaleSocketPolicy | undefined;
}

/**
 * Listens on `path` with the socket file readable and writable by its owner only. Resolves whether
 * a stale socket file was replaced; rejects with the listen error (EADDRINUSE: someone is there).
 */
export async function listenOwnerOnly(server: Server, path: string, options: ListenOwnerOnlyOptions = {}): Promise<boolean> {
  const replacedStale = options.replaceStale ? await removeStaleSocket(path, options.replaceStale) : false;
  const unix = process.platform !== 'win32';
  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    server.once('error', onError);
    // bind() creates the file with the umask's mode, and Node binds a path synchronously inside
    // listen(): narrow the umask for exactly that call, so no other user can connect in between and
    // no other code of this process ever runs under the narrowed umask (it is process-wide).
    // process.umask() throws in worker threads; the chmod below still applies there.
    let previousUmask: number | undefined;
    if (unix) {
      try {
        previousUmask = process.umask(0o177);
      } catch {
        previousUmask = undefined;
      }
    }
    try {
      server.listen(path, () => {
        server.off('error', onError);
        resolve();
      });
    } finally {
      if (previousUmask !== undefined) process.umask(previousUmask);
    }
  });
  if (unix) await chmod(path, 0o600);
  return replacedStale;
}

/**
 * A socket file nobody serves is left over from a crash: removes it and resolves true. One that
 * accepts a connection rejects with `policy.busy()` (when given), a file that is not a socket with
 * USAGE; no file resolves false.
 */
export async function removeStaleSocket(path: string, policy: StaleSocketPolicy): Promise<boolean> {
  if (process.platform === 'win32') return false; // named pipes vanish with their process
  let stats;
  try {
    stats = await lstat(path);
  } catch {
    return false;
  }
  if (!stats.isSocket()) {
    throw new KeytapError('USAGE', `${path} exists and is not a socket; not touching it.`, policy.notSocketHint ? { hint: policy.notSocketHint } : {});
  }
  if (policy.busy && (await acceptsConnection(path))) throw policy.busy();
  await rm(path, { force: true });
  return true;
}

function acceptsConnection(path: string): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => {
      probe.destroy();
      resolve(false);
    });
  });
}
