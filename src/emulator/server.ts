/**
 * Serves one virtual key to other processes on a local socket (protocol: see src/device/transport/socket-link.ts), and
 * announces it in the runtime directory so discovery sees it "plugged in".
 *
 * Order matters for watchers: announce only once the socket listens, and withdraw before the
 * socket closes, so an announced key can always be reached.
 */
import { rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { Socket } from 'node:net';
import { resolve as resolvePath } from 'node:path';
import { KeytapError } from '../errors.js';
import { listenOwnerOnly } from '../util/local-socket.js';
import type { HidLink } from '../device/transport/types.js';
import { announce, socketPathFor, withdraw } from './registry.js';
import type { RunningVirtualKey } from '../device/discovery/virtual-keys.js';
import { FrameDecoder, FrameError, FrameType, encodeFrame, encodeJsonFrame, parseJsonContent } from '../device/transport/socket-link.js';
import type { ControlResponse } from '../device/transport/socket-link.js';
import type { TouchPolicy } from './types.js';
import type { KeyDialect } from '../device/key-dialect.js';

/** What the server needs of a key (VirtualKey has it). */
export interface ServableKey {
  openLink(): HidLink;
  /** May type a code (a Feitian key with no request waiting): done when the promise settles. */
  touch(): void | Promise<void>;
  setTouchPolicy(policy: TouchPolicy): void;
  readonly touchPolicy: TouchPolicy;
}

export interface ServeOptions {
  id: string;
  file: string;
  dialect: KeyDialect;
  serial?: string | undefined;
  /** Called after a `stop` request was answered. Without it the server closes itself. */
  onStop?: () => void;
}

export interface VirtualKeyServer {
  readonly socketPath: string;
  readonly info: RunningVirtualKey;
  /** Open connections (HID opens), for status. */
  readonly connections: number;
  /** Withdraws the announcement, drops every connection, closes and removes the socket. Idempotent. */
  close(): Promise<void>;
}

/** Reads that wait this long simply start again; they only bound how long a timer lives. */
const READ_SLICE_MS = 60_000;

export async function serveVirtualKey(key: ServableKey, options: ServeOptions): Promise<VirtualKeyServer> {
  const socketPath = socketPathFor(options.id);

  const connections = new Set<Connection>();
  const server = createServer((socket) => {
    try {
      const connection = new Connection(socket, key, handleControl, () => connections.delete(connection));
      connections.add(connection);
    } catch (error) {
      // The key is unplugged already (openLink throws): refuse this open, keep serving.
      console.error('keytap virtual key: refused a connection:', error);
      socket.destroy();
    }
  });
  // A listening-socket error after start must not crash the process.
  server.on('error', (error) => console.error('keytap virtual key: socket server error:', error));
  // A socket file nobody answers on is left over from a crash; a live one means "already running".
  await listenOwnerOnly(server, socketPath, {
    replaceStale: {
      busy: () =>
        new KeytapError('BUSY', 'This virtual key is already running in another process.', { detail: { kind: 'virtual-key-running' } }),
    },
  });

  const info: RunningVirtualKey = {
    id: options.id,
    file: resolvePath(options.file),
    socket: socketPath,
    pid: process.pid,
    dialect: options.dialect,
    serial: options.serial,
    startedAt: new Date().toISOString(),
  };

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      await withdraw(options.id).catch((error: unknown) => console.error('keytap virtual key: withdraw failed:', error));
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const connection of [...connections]) connection.destroy();
      await closed;
      if (process.platform !== 'win32') await rm(socketPath, { force: true }).catch(() => undefined);
    })();
    return closing;
  };

  function handleControl(request: Record<string, unknown>): { response: ControlResponse; after?: () => void } {
    try {
      switch (request.op) {
        case 'status':
          return {
            response: { ok: true, ...info, touch: key.touchPolicy, connections: connections.size },
          };
        case 'touch':
          // Answered at once; a code the key types (Feitian) arrives where it types to a moment later.
          void Promise.resolve(key.touch()).catch((error: unknown) => console.error('keytap virtual key: touch failed:', error));
          return { response: { ok: true } };
        case 'set-touch': {
          const policy = parseTouchPolicy(request.policy);
          if (!policy) return { response: { ok: false, error: 'invalid touch policy' } };
          key.setTouchPolicy(policy);
          return { response: { ok: true, touch: policy } };
        }
        case 'stop':
          return {
            response: { ok: true },
            after: () => {
              if (options.onStop) options.onStop();
              else void close();
            },
          };
        default:
          return { response: { ok: false, error: `unknown op ${JSON.stringify(request.op)}` } };
      }
    } catch (error) {
      return { response: { ok: false, error: error instanceof Error ? error.message : String(error) } };
    }
  }

  try {
    await announce(info);
  } catch (error) {
    await close();
    throw error;
  }

  return {
    socketPath,
    info,
    get connections() {
      return connections.size;
    },
    close,
  };
}

export function parseTouchPolicy(value: unknown): TouchPolicy | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { mode, delayMs } = value as { mode?: unknown; delayMs?: unknown };
  if (mode === 'manual' || mode === 'never') return { mode };
  if (mode === 'auto') {
    const delay = delayMs ?? 0;
    if (typeof delay !== 'number' || !Number.isFinite(delay) || delay < 0) return undefined;
    return { mode, delayMs: delay };
  }
  return undefined;
}

/** One client connection = one HID open of the key. */
class Connection {
  private readonly link: HidLink;
  private readonly decoder = new FrameDecoder();
  private writes: Promise<void> = Promise.resolve();
  private dead = false;

  constructor(
    private readonly socket: Socket,
    key: ServableKey,
    private readonly control: (request: Record<string, unknown>) => { response: ControlResponse; after?: () => void },
    private readonly forget: () => void,
  ) {
    this.link = key.openLink();
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => undefined); // 'close' follows; a client vanishing is normal
    socket.on('close', () => this.destroy());
    void this.pump();
  }

  destroy(): void {
    if (this.dead) return;
    this.dead = true;
    this.forget();
    this.socket.destroy();
    this.link.close().catch(() => undefined);
  }

  /** Input reports → socket, until the link fails (closed or the key unplugged). */
  private async pump(): Promise<void> {
    try {
      while (!this.dead) {
        const report = await this.link.read(READ_SLICE_MS);
        if (report && !this.dead) this.socket.write(encodeFrame(FrameType.REPORT, report));
      }
    } catch {
      // KEY_REMOVED or CANCELLED: the client learns it from the closed connection.
    }
    this.destroy();
  }

  private onData(chunk: Buffer): void {
    if (this.dead) return;
    let bodies: Buffer[];
    try {
      bodies = this.decoder.push(chunk);
      for (const body of bodies) this.onFrame(body);
    } catch (error) {
      if (!(error instanceof FrameError)) console.error('keytap virtual key: connection error:', error);
      this.destroy();
    }
  }

  private onFrame(body: Buffer): void {
    switch (body[0]) {
      case FrameType.REPORT: {
        const report = new Uint8Array(body.subarray(1));
        // Keep reports in order, and a failed write (key gone) ends this connection only.
        this.writes = this.writes.then(() => this.link.write(report)).catch(() => this.destroy());
        return;
      }
      case FrameType.CONTROL_REQUEST: {
        const { response, after } = this.control(parseJsonContent(body));
        this.socket.write(encodeJsonFrame(FrameType.CONTROL_RESPONSE, response), () => {
          try {
            after?.();
          } catch (error) {
            console.error('keytap virtual key: control action failed:', error);
          }
        });
        return;
      }
      default:
        throw new FrameError(`unexpected frame type ${body[0]}`);
    }
  }
}
