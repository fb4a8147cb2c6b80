/**
 * One resident keytap per user. The IPC endpoint doubles as the lock: whoever listens on it is the
 * instance. A second start asks it `ping`; an answer means "already running". A socket file that
 * nobody listens on (connection refused) is left over from a crash and is replaced. One that
 * accepts the connection but does not answer belongs to a live process that is stopped (SIGSTOP)
 * or hung: it is not stale, and the second start refuses (BUSY) instead of taking its endpoint.
 *
 * Two starts at the same moment could both find no instance and both replace the socket, so the
 * probe-replace-listen step runs under a short-lived lock file (exclusive create), which is itself
 * taken over when older than a few seconds (its holder died mid-start).
 */
import { open, rm, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { KeytapError, isKeytapError } from '../errors.js';
import { removeStaleSocket } from '../util/local-socket.js';
import type { IpcHandler, IpcServer } from './ipc.js';
import { ipcPath, listenIpc, requestIpc } from './ipc.js';

export type InstanceResult =
  | { primary: true; server: IpcServer; replacedStale: boolean }
  | { primary: false; pid?: number | undefined; version?: string | undefined };

export interface AcquireOptions {
  path?: string | undefined;
  onError?: ((error: Error) => void) | undefined;
  /** How long a live instance may take to answer `ping`. Default 2000 ms. */
  pingTimeoutMs?: number | undefined;
}

const LOCK_STALE_MS = 10_000;

export async function acquireInstance(handler: IpcHandler, options: AcquireOptions = {}): Promise<InstanceResult> {
  const path = options.path ?? ipcPath();
  const running = await ping(path, options.pingTimeoutMs);
  if (running) return running;

  const release = await lock(`${path}.lock`);
  try {
    // Someone may have started between the first probe and the lock.
    const again = await ping(path, options.pingTimeoutMs);
    if (again) return again;
    // Nobody listens: a socket file there is left over from a crash, not probed again.
    const replacedStale = await removeStaleSocket(path, { notSocketHint: 'Move it away and start keytap again.' });
    try {
      const server = await listenIpc(path, handler, options.onError);
      return { primary: true, server, replacedStale };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
        const other = await ping(path, options.pingTimeoutMs);
        if (other) return other;
      }
      throw new KeytapError('DEVICE_ERROR', `Cannot listen on ${path}: ${(error as Error).message}`, {
        hint: 'Another keytap may be starting; try again. If it persists, remove the file.',
        cause: error,
      });
    }
  } finally {
    await release();
  }
}

/** The instance's answer to ping; undefined when nobody listens; BUSY when someone listens but does not answer. */
async function ping(path: string, timeoutMs = 2000): Promise<Extract<InstanceResult, { primary: false }> | undefined> {
  let answer;
  try {
    answer = await requestIpc({ op: 'ping' }, { path, connectTimeoutMs: timeoutMs, answerTimeoutMs: timeoutMs });
  } catch (error) {
    if (isKeytapError(error, 'TIMEOUT')) {
      throw new KeytapError('BUSY', `A keytap is listening on ${path} but does not answer; it may be stopped (SIGSTOP) or hung, and is left alone.`, {
        hint: 'Let it go on (kill -CONT PID) or end it, then start keytap again; "ss -xlp" names the process.',
        cause: error,
      });
    }
    // It answered, but not as keytap does (it closed the connection, say, while quitting).
    throw new KeytapError('BUSY', `Something listens on ${path} but its answer to ping is not keytap's (${error instanceof Error ? error.message : String(error)}).`, {
      hint: 'If a keytap is quitting, start it again in a moment; otherwise end what listens there ("ss -xlp" names it).',
      cause: error,
    });
  }
  if (answer === undefined) return undefined;
  if (!answer.ok) {
    throw new KeytapError('BUSY', `Something listens on ${path} but does not answer ping as keytap does (${answer.code}: ${answer.message}).`, {
      hint: 'End it, then start keytap again.',
    });
  }
  return {
    primary: false,
    pid: typeof answer.pid === 'number' ? answer.pid : undefined,
    version: typeof answer.version === 'string' ? answer.version : undefined,
  };
}

async function lock(lockPath: string): Promise<() => Promise<void>> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    let handle: FileHandle | undefined;
    try {
      handle = await open(lockPath, 'wx', 0o600);
      await handle.writeFile(String(process.pid));
      await handle.close();
      return () => rm(lockPath, { force: true });
    } catch (error) {
      await handle?.close().catch(() => undefined);
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        // No lock possible here (read-only folder, Windows pipe namespace): go on without it.
        return () => Promise.resolve();
      }
    }
    try {
      const info = await stat(lockPath);
      if (Date.now() - info.mtimeMs > LOCK_STALE_MS) await rm(lockPath, { force: true });
    } catch {
      // gone in the meantime: try again
    }
    if (Date.now() > deadline) return () => Promise.resolve();
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
