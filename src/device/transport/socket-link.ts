/**
 * Reaching a virtual key that runs in another process (`keytap virtual start`), over a local
 * socket: a Unix socket, or a Windows named pipe through the same `net` API.
 * The client's side of it; the emulator's server (src/emulator/server.ts) uses the frame code here.
 *
 * Wire protocol (both directions), a stream of frames:
 *
 *   frame = u16 BE length | body            (length = body length, 1..65535)
 *   body  = type (1 byte) | content
 *
 *   0x01  HID report      content = exactly 64 bytes. Client→server: an output report (host→device).
 *                         Server→client: an input report (device→host). Every connection is one HID
 *                         "open": it sees every input report of the key, as every hidraw reader
 *                         does, and must drop reports whose CID is not its own.
 *   0x02  control request content = UTF-8 JSON, client→server only:
 *                           {"op":"status"}                  → key and server facts
 *                           {"op":"touch"}                   → press the button
 *                           {"op":"set-touch","policy":P}    → P is a TouchPolicy
 *                           {"op":"stop"}                    → the server answers, then shuts down
 *   0x03  control answer  content = UTF-8 JSON, server→client only, one per request, in order:
 *                           {"ok":true, …} or {"ok":false,"error":"<message>"}
 *
 * Anything else (length 0, unknown type, a report that is not 64 bytes, a request that is not JSON,
 * a 0x03 frame sent to the server) is malformed: the server closes that connection and no other.
 */
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { KeytapError } from '../../errors.js';
import { CTAPHID_REPORT_SIZE } from './ctaphid-frames.js';
import { ReportQueue } from './report-queue.js';
import type { HidLink } from './types.js';

export const FrameType = { REPORT: 0x01, CONTROL_REQUEST: 0x02, CONTROL_RESPONSE: 0x03 } as const;

export const MAX_FRAME_BODY = 0xffff;

export type ControlRequest =
  | { op: 'status' }
  | { op: 'touch' }
  | { op: 'stop' }
  | { op: 'set-touch'; policy: unknown };

export type ControlResponse = ({ ok: true } & Record<string, unknown>) | { ok: false; error: string };

export function encodeFrame(type: number, content: Uint8Array): Buffer {
  const length = content.length + 1;
  if (length > MAX_FRAME_BODY) throw new RangeError(`A frame body carries at most ${MAX_FRAME_BODY} bytes.`);
  const frame = Buffer.allocUnsafe(2 + length);
  frame.writeUInt16BE(length, 0);
  frame[2] = type;
  frame.set(content, 3);
  return frame;
}

export function encodeJsonFrame(type: number, value: unknown): Buffer {
  return encodeFrame(type, Buffer.from(JSON.stringify(value), 'utf8'));
}

/** Splits a byte stream into frame bodies. `push` throws a FrameError on a malformed frame. */
export class FrameDecoder {
  private buffer: Buffer = Buffer.alloc(0);

  /** Returns the complete frame bodies (type byte first) that `chunk` finished. */
  push(chunk: Buffer): Buffer[] {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const bodies: Buffer[] = [];
    while (this.buffer.length >= 2) {
      const length = this.buffer.readUInt16BE(0);
      if (length === 0) throw new FrameError('empty frame');
      if (this.buffer.length < 2 + length) break;
      const body = Buffer.from(this.buffer.subarray(2, 2 + length));
      this.buffer = this.buffer.subarray(2 + length);
      if (body[0] === FrameType.REPORT && body.length !== 1 + CTAPHID_REPORT_SIZE) {
        throw new FrameError(`HID report frame with ${body.length - 1} bytes, not ${CTAPHID_REPORT_SIZE}`);
      }
      bodies.push(body);
    }
    return bodies;
  }
}

export class FrameError extends Error {
  override readonly name = 'FrameError';
}

/** Parses a 0x02/0x03 frame's JSON content into an object, or throws FrameError. */
export function parseJsonContent(body: Buffer): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(body.subarray(1).toString('utf8'));
  } catch {
    throw new FrameError('control frame is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new FrameError('control frame is not a JSON object');
  return value as Record<string, unknown>;
}

function noKey(socketPath: string, cause: unknown): KeytapError {
  return new KeytapError('NO_KEY', `No virtual key is listening at ${socketPath}.`, { detail: { kind: 'virtual-key-not-running', socket: socketPath }, cause });
}

function openSocket(socketPath: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    const onError = (error: Error) => {
      socket.destroy();
      reject(noKey(socketPath, error));
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      socket.off('error', onError);
      resolve(socket);
    });
  });
}

/** Input reports kept when nobody reads (see src/emulator/virtual-key.ts). */
const MAX_QUEUED_REPORTS = 4096;

/** A HidLink to a virtual key served by another process (src/emulator/server.ts). */
export class SocketHidLink implements HidLink {
  readonly reportSize = CTAPHID_REPORT_SIZE;
  private readonly decoder = new FrameDecoder();
  private readonly reports = new ReportQueue({ maxQueued: MAX_QUEUED_REPORTS });

  private constructor(
    private readonly socket: Socket,
    readonly socketPath: string,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    // 'close' always follows 'error'; the error itself only adds detail.
    socket.on('error', () => undefined);
    socket.on('close', () => this.reports.fail(this.removed()));
  }

  /** Connects; KeytapError NO_KEY when nobody listens there. */
  static async connect(socketPath: string): Promise<SocketHidLink> {
    return new SocketHidLink(await openSocket(socketPath), socketPath);
  }

  write(report: Uint8Array): Promise<void> {
    if (this.reports.failure) return Promise.reject(this.reports.failure);
    if (report.length !== this.reportSize) {
      return Promise.reject(new RangeError(`A HID report for this key has ${this.reportSize} bytes, not ${report.length}.`));
    }
    return new Promise((resolve, reject) => {
      this.socket.write(encodeFrame(FrameType.REPORT, report), (error) => {
        if (error) reject(this.reports.failure ?? this.removed(error));
        else resolve();
      });
    });
  }

  read(timeoutMs: number, signal?: AbortSignal): Promise<Uint8Array | undefined> {
    return this.reports.read(timeoutMs, signal);
  }

  close(): Promise<void> {
    this.reports.fail(new KeytapError('CANCELLED', 'The HID link was closed.'));
    if (this.socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.end();
      // Do not wait for a peer that never acknowledges the end.
      setTimeout(() => this.socket.destroy(), 1000).unref();
    });
  }

  private removed(cause?: unknown): KeytapError {
    return new KeytapError('KEY_REMOVED', 'The virtual key went away.', { detail: { kind: 'virtual-key-gone' }, cause });
  }

  private onData(chunk: Buffer): void {
    let bodies: Buffer[];
    try {
      bodies = this.decoder.push(chunk);
    } catch (error) {
      this.reports.fail(new KeytapError('PROTOCOL', 'The virtual key server sent a malformed frame.', { cause: error }));
      this.socket.destroy();
      return;
    }
    for (const body of bodies) {
      if (body[0] !== FrameType.REPORT) continue; // control answers belong to sendControl()
      this.reports.push(new Uint8Array(body.subarray(1)));
    }
  }
}

/**
 * Sends one control request on a connection of its own and returns the answer. KeytapError NO_KEY
 * when nobody listens, TIMEOUT when no answer comes in `timeoutMs`, KEY_REMOVED when the server
 * closes the connection first (`stop` is answered before the server goes away).
 */
export async function sendControl(socketPath: string, request: ControlRequest, timeoutMs = 5000): Promise<ControlResponse> {
  const socket = await openSocket(socketPath);
  try {
    return await new Promise<ControlResponse>((resolve, reject) => {
      const decoder = new FrameDecoder();
      const timer = setTimeout(
        () => reject(new KeytapError('TIMEOUT', `The virtual key at ${socketPath} did not answer within ${timeoutMs} ms.`)),
        timeoutMs,
      );
      const done = () => clearTimeout(timer);
      socket.on('data', (chunk: Buffer) => {
        try {
          // This connection is a HID open too, so input reports pass by; only the answer counts.
          const answer = decoder.push(chunk).find((body) => body[0] === FrameType.CONTROL_RESPONSE);
          if (answer === undefined) return;
          const value = parseJsonContent(answer);
          done();
          if (value.ok === true) resolve(value as ControlResponse);
          else resolve({ ok: false, error: typeof value.error === 'string' ? value.error : 'unknown error' });
        } catch (error) {
          done();
          reject(new KeytapError('PROTOCOL', 'The virtual key server sent a malformed answer.', { cause: error }));
        }
      });
      socket.on('error', () => undefined);
      socket.on('close', () => {
        done();
        reject(new KeytapError('KEY_REMOVED', 'The virtual key closed the connection before answering.'));
      });
      socket.write(encodeJsonFrame(FrameType.CONTROL_REQUEST, request));
    });
  } finally {
    socket.destroy();
  }
}
