/**
 * The local channel between the resident process and `keytap code` / `keytap list`: a Unix socket
 * in the runtime directory (owner-only folder, socket mode 0600) or a per-user Windows named pipe.
 *
 * Protocol: JSON lines. The client sends one request line; the server may send event lines
 * (`{"event":"touch","id":…}`) and ends with one answer line, `{"ok":true,…}` or
 * `{"ok":false,"code":<ErrorCode>,"message":…,"hint":…}`, then closes. A client that goes away
 * cancels what it asked for.
 *
 * A read can wait for a touch for as long as the touch timeout, so the answer itself has no
 * deadline; instead the server sends `{"event":"working"}` every IPC_HEARTBEAT_MS while it works,
 * and a client gives up after IPC_SILENCE_MS without a line: a tray that is stopped (SIGSTOP) or
 * hung still accepts connections (the kernel queues them), but never says anything.
 */
import { connect, createServer } from 'node:net';
import type { Socket } from 'node:net';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { runtimeDir } from '../util/runtime-dir.js';
import type { ErrorCode, ErrorDetail } from '../errors.js';
import { KeytapError, isErrorDetailKind, isKeytapError } from '../errors.js';
import { listenOwnerOnly } from '../util/local-socket.js';

export const IPC_VERSION = 1;
/** How often the server says it is still working on a request. */
export const IPC_HEARTBEAT_MS = 1_000;
/** How long a client waits for a line (an event or the answer) before it gives up. */
export const IPC_SILENCE_MS = 5_000;
/** How long connecting may take. */
export const IPC_CONNECT_MS = 1_000;
/** One request or answer line at most; anything longer is not ours. */
const MAX_LINE = 1 << 20;

/** `deliver` on 'code': where the tray puts the code ('copy' when left out, as before it existed). */
export type IpcRequest =
  | { op: 'ping' }
  /** `focused`: the account the focused window calls for (window rules), not a query. */
  | { op: 'code'; query?: string | undefined; deliver?: 'copy' | 'type' | 'both' | undefined; focused?: boolean | undefined }
  /** One exact account (`keytap pick`): the key's discovery id and the credential id, as `list` gave them. */
  | { op: 'read'; keyId: string; credentialId: string }
  | { op: 'list' }
  | { op: 'quit' };

export interface IpcTouchEvent {
  event: 'touch';
  id: string;
}

/** Sent every IPC_HEARTBEAT_MS while a request is being worked on. */
export interface IpcWorkingEvent {
  event: 'working';
}

export type IpcAnswer = ({ ok: true } & Record<string, unknown>) | { ok: false; code: ErrorCode; message: string; hint?: string | undefined; detail?: ErrorDetail | undefined };

export interface IpcContext {
  /** Fires when the client disconnects before the answer. */
  signal: AbortSignal;
  send(event: IpcTouchEvent): void;
}

/** Answers one request: a plain object (sent with ok:true) or a thrown KeytapError (ok:false). */
export type IpcHandler = (request: IpcRequest, context: IpcContext) => Promise<Record<string, unknown>>;

export function ipcPath(): string {
  return process.platform === 'win32' ? `\\\\.\\pipe\\keytap-${userInfo().username}-tray` : join(runtimeDir(), 'keytap.sock');
}

export interface IpcServer {
  readonly path: string;
  close(): Promise<void>;
}

/** Listens on `path` (owner-only). Rejects with the listen error (EADDRINUSE: someone is there). */
export async function listenIpc(path: string, handler: IpcHandler, onError: (error: Error) => void = () => undefined): Promise<IpcServer> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    serveConnection(socket, handler, onError);
  });
  // Owner-only: the runtime folder is 0700 too. Stale sockets are acquireInstance's business.
  await listenOwnerOnly(server, path);
  // After start, a server error (EMFILE, …) must not end the resident process.
  server.on('error', onError);
  let closing: Promise<void> | undefined;
  return {
    path,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      })),
  };
}

function serveConnection(socket: Socket, handler: IpcHandler, onError: (error: Error) => void): void {
  const abort = new AbortController();
  let buffer = '';
  let answered = false;
  let started = false;
  socket.setEncoding('utf8');
  socket.on('error', () => abort.abort()); // the client vanished; nothing to tell it
  socket.on('close', () => {
    if (!answered) abort.abort(new KeytapError('CANCELLED', 'The caller went away.'));
  });
  const write = (value: unknown): void => {
    if (!socket.destroyed) socket.write(`${JSON.stringify(value)}\n`);
  };
  socket.on('data', (chunk: string) => {
    if (started) return; // one request per connection
    buffer += chunk;
    if (buffer.length > MAX_LINE) {
      socket.destroy();
      return;
    }
    const newline = buffer.indexOf('\n');
    if (newline < 0) return;
    started = true;
    const line = buffer.slice(0, newline);
    const heartbeat = setInterval(() => write({ event: 'working' } satisfies IpcWorkingEvent), IPC_HEARTBEAT_MS);
    void (async () => {
      let answer: IpcAnswer;
      try {
        const request = parseRequest(line);
        const result = await handler(request, { signal: abort.signal, send: (event) => write(event) });
        answer = { ...result, ok: true };
      } catch (error) {
        answer = errorAnswer(error);
        if (!(error instanceof KeytapError)) onError(error instanceof Error ? error : new Error(String(error)));
      }
      clearInterval(heartbeat);
      answered = true;
      if (!socket.destroyed) socket.end(`${JSON.stringify(answer)}\n`);
    })();
  });
}

function parseRequest(line: string): IpcRequest {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new KeytapError('USAGE', 'The request is not JSON.');
  }
  if (typeof value !== 'object' || value === null) throw new KeytapError('USAGE', 'The request is not an object.');
  const { op, query, deliver, keyId, credentialId, focused } = value as { op?: unknown; query?: unknown; deliver?: unknown; keyId?: unknown; credentialId?: unknown; focused?: unknown };
  switch (op) {
    case 'ping':
    case 'list':
    case 'quit':
      return { op };
    case 'code':
      if (query !== undefined && query !== null && typeof query !== 'string') throw new KeytapError('USAGE', '"query" must be a string.');
      if (deliver !== undefined && deliver !== 'copy' && deliver !== 'type' && deliver !== 'both') throw new KeytapError('USAGE', '"deliver" must be "copy", "type" or "both".');
      if (focused !== undefined && typeof focused !== 'boolean') throw new KeytapError('USAGE', '"focused" must be true or false.');
      return { op, query: typeof query === 'string' ? query : undefined, deliver, ...(focused ? { focused } : {}) };
    case 'read':
      if (typeof keyId !== 'string' || keyId === '' || typeof credentialId !== 'string' || credentialId === '') throw new KeytapError('USAGE', '"keyId" and "credentialId" must be strings.');
      return { op, keyId, credentialId };
    default:
      throw new KeytapError('USAGE', `Unknown operation ${JSON.stringify(op)}.`);
  }
}

export function errorAnswer(error: unknown): IpcAnswer {
  if (error instanceof KeytapError) return { ok: false, code: error.code, message: error.message, hint: error.hint, detail: error.detail };
  return {
    ok: false,
    code: 'DEVICE_ERROR',
    message: `The running keytap failed: ${error instanceof Error ? error.message : String(error)}`,
    hint: 'Its log has the details.',
  };
}

export interface IpcRequestOptions {
  path?: string | undefined;
  onEvent?: ((event: IpcTouchEvent) => void) | undefined;
  signal?: AbortSignal | undefined;
  /** How long connecting may take; default IPC_CONNECT_MS. */
  connectTimeoutMs?: number | undefined;
  /** How long the server may stay silent (no event, no answer); default IPC_SILENCE_MS. */
  silenceTimeoutMs?: number | undefined;
  /** How long the whole answer may take after connecting; default none (a touch can take long). */
  answerTimeoutMs?: number | undefined;
}

/**
 * Sends one request. Resolves undefined when no instance listens (no socket, connection refused):
 * the caller then does the work itself. Rejects with a TIMEOUT KeytapError when something
 * listens but does not accept or answer in time (a stopped or hung instance), and with another
 * KeytapError when the instance was reached but the exchange broke.
 */
export function requestIpc(request: IpcRequest, options: IpcRequestOptions = {}): Promise<IpcAnswer | undefined> {
  const path = options.path ?? ipcPath();
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    let connected = false;
    let buffer = '';
    let settled = false;
    let silenceTimer: NodeJS.Timeout | undefined;
    let answerTimer: NodeJS.Timeout | undefined;
    const finish = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(connectTimer);
      clearTimeout(silenceTimer);
      clearTimeout(answerTimer);
      options.signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      fn();
    };
    const unanswered = (what: string): void => finish(() => reject(new KeytapError('TIMEOUT', `The running keytap (${path}) ${what}.`)));
    const silenceMs = options.silenceTimeoutMs ?? IPC_SILENCE_MS;
    const heard = (): void => {
      clearTimeout(silenceTimer);
      silenceTimer = setTimeout(() => unanswered(`said nothing for ${silenceMs / 1000} s`), silenceMs);
    };
    const onAbort = (): void => finish(() => reject(new KeytapError('CANCELLED', 'Interrupted.')));
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const connectMs = options.connectTimeoutMs ?? IPC_CONNECT_MS;
    const connectTimer = setTimeout(() => unanswered(`did not accept the connection within ${connectMs / 1000} s`), connectMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => {
      connected = true;
      clearTimeout(connectTimer);
      heard();
      if (options.answerTimeoutMs !== undefined) {
        const answerMs = options.answerTimeoutMs;
        answerTimer = setTimeout(() => unanswered(`did not answer within ${answerMs / 1000} s`), answerMs);
      }
      socket.write(`${JSON.stringify({ ...request, v: IPC_VERSION })}\n`);
    });
    socket.on('data', (chunk: string) => {
      heard();
      buffer += chunk;
      if (buffer.length > MAX_LINE) {
        finish(() => reject(new KeytapError('PROTOCOL', 'The running keytap sent an over-long answer.')));
        return;
      }
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        let message: unknown;
        try {
          message = JSON.parse(line);
        } catch {
          finish(() => reject(new KeytapError('PROTOCOL', 'The running keytap sent something that is not JSON.')));
          return;
        }
        if (isEvent(message)) {
          try {
            if (message.event === 'touch') options.onEvent?.(message);
          } catch {
            // the caller's problem, not the channel's
          }
          continue;
        }
        if (typeof message === 'object' && message !== null && typeof (message as { ok?: unknown }).ok === 'boolean') {
          finish(() => resolve(message as IpcAnswer));
          return;
        }
        finish(() => reject(new KeytapError('PROTOCOL', 'The running keytap sent an answer without "ok".')));
        return;
      }
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (connected) finish(() => reject(new KeytapError('PROTOCOL', `The connection to the running keytap broke: ${error.message}`)));
      else if (error.code === 'ENOENT' || error.code === 'ECONNREFUSED') finish(() => resolve(undefined));
      // EAGAIN and the like: someone listens but takes no connection now (a full queue).
      else unanswered(`did not accept the connection (${error.code ?? error.message})`);
    });
    socket.on('close', () => {
      if (connected) finish(() => reject(new KeytapError('PROTOCOL', 'The running keytap closed the connection without an answer.', { hint: 'It may have quit; try again.' })));
      else finish(() => resolve(undefined));
    });
  });
}

/** Any line with an "event" is an event; the ones a client does not know are skipped. */
function isEvent(message: unknown): message is IpcTouchEvent | IpcWorkingEvent {
  return typeof message === 'object' && message !== null && typeof (message as { event?: unknown }).event === 'string';
}

/** Turns an error answer back into the KeytapError the instance threw. */
export function answerError(answer: Extract<IpcAnswer, { ok: false }>): KeytapError {
  // The detail travels too, so that the CLI words the hint for its own command.
  return new KeytapError(answer.code, answer.message, { hint: answer.hint || undefined, detail: isErrorDetail(answer.detail) ? answer.detail : undefined });
}

function isErrorDetail(value: unknown): value is ErrorDetail {
  return typeof value === 'object' && value !== null && isErrorDetailKind((value as { kind?: unknown }).kind);
}

/**
 * For `keytap code` / `keytap list`: asks the running instance, if there is one. Resolves undefined
 * when none runs (or KEYTAP_NO_INSTANCE is set), and when one is there but does not answer (then
 * `onFallback` is told why), so the caller goes to the key itself. Ctrl+C cancels the request,
 * which cancels the read in the instance too.
 */
export async function askRunningInstance(
  request: IpcRequest,
  options: { onEvent?: ((event: IpcTouchEvent) => void) | undefined; onFallback?: ((note: string) => void) | undefined } = {},
): Promise<IpcAnswer | undefined> {
  if (process.env.KEYTAP_NO_INSTANCE) return undefined;
  const path = ipcPath();
  const abort = new AbortController();
  const onSignal = (): void => abort.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await requestIpc(request, { path, onEvent: options.onEvent, signal: abort.signal });
  } catch (error) {
    if (!isKeytapError(error, 'TIMEOUT')) throw error;
    options.onFallback?.(`The running keytap (${path}) did not answer; reading the key directly.`);
    return undefined;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
