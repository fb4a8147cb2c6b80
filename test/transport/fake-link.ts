/**
 * A scripted HidLink for the CTAPHID client tests: reports the test pushes come out of `read`,
 * reports the client writes land in `written` and go to `onWrite`, which plays the device.
 */
import { KeytapError, cancelledError } from '../../src/errors.js';
import {
  BROADCAST_CID,
  CtapHidCommand,
  MessageAssembler,
  framePackets,
  parsePacket,
} from '../../src/device/transport/ctaphid-frames.js';
import type { HidLink } from '../../src/device/transport/types.js';

interface Waiter {
  resolve: (report: Uint8Array | undefined) => void;
  reject: (error: unknown) => void;
  timer: NodeJS.Timeout;
  signal: AbortSignal | undefined;
  onAbort: () => void;
}

export class FakeLink implements HidLink {
  readonly reportSize = 64;
  readonly written: Uint8Array[] = [];
  /** Called for every written report; play the device here. */
  onWrite: ((report: Uint8Array) => void) | undefined;
  /** When set, a read with nothing queued rejects KEY_REMOVED at once instead of waiting (for fuzzing). */
  exhaustedIsUnplug = false;
  closed = false;
  reads = 0;
  private readonly inbox: Uint8Array[] = [];
  private waiter: Waiter | undefined;
  private removed = false;

  push(...reports: Uint8Array[]): void {
    for (const report of reports) {
      if (this.waiter) {
        const waiter = this.waiter;
        this.finish();
        waiter.resolve(report);
      } else {
        this.inbox.push(report);
      }
    }
  }

  unplug(): void {
    this.removed = true;
    const waiter = this.waiter;
    if (waiter) {
      this.finish();
      waiter.reject(removedError());
    }
  }

  write(report: Uint8Array): Promise<void> {
    if (this.removed) return Promise.reject(removedError());
    if (report.length !== this.reportSize) return Promise.reject(new Error(`bad report size ${report.length}`));
    this.written.push(Uint8Array.from(report));
    this.onWrite?.(report);
    return Promise.resolve();
  }

  read(timeoutMs: number, signal?: AbortSignal): Promise<Uint8Array | undefined> {
    this.reads++;
    if (signal?.aborted) return Promise.reject(cancelledError(signal));
    const next = this.inbox.shift();
    if (next) return Promise.resolve(next);
    if (this.removed || this.exhaustedIsUnplug) return Promise.reject(removedError());
    if (this.waiter) return Promise.reject(new Error('concurrent read'));
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        this.finish();
        reject(cancelledError(signal));
      };
      const timer = setTimeout(() => {
        this.finish();
        resolve(undefined);
      }, timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiter = { resolve, reject, timer, signal, onAbort };
    });
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  private finish(): void {
    const waiter = this.waiter;
    if (!waiter) return;
    clearTimeout(waiter.timer);
    waiter.signal?.removeEventListener('abort', waiter.onAbort);
    this.waiter = undefined;
  }
}

function removedError(): KeytapError {
  return new KeytapError('KEY_REMOVED', 'The key was removed.');
}

export const TEST_CID = 0x11223344;

export interface Request {
  cid: number;
  cmd: number;
  payload: Uint8Array;
}

/**
 * A FakeLink that answers INIT (allocating TEST_CID, then TEST_CID + 1, …) and hands every other
 * complete request to `handler`, which returns the reports to send back.
 */
export function scriptedKey(handler: (request: Request, link: FakeLink) => Uint8Array[] | void): {
  link: FakeLink;
  requests: Request[];
} {
  const link = new FakeLink();
  const requests: Request[] = [];
  let nextCid = TEST_CID;
  let assembler: MessageAssembler | undefined;
  link.onWrite = (report) => {
    const packet = parsePacket(report);
    if (packet.kind === 'init') {
      assembler = new MessageAssembler(packet);
    } else if (assembler) {
      assembler.add(packet);
    }
    if (!assembler?.complete) return;
    const request: Request = { cid: assembler.cid, cmd: assembler.cmd, payload: Uint8Array.from(assembler.payload) };
    assembler = undefined;
    if (request.cid === BROADCAST_CID && request.cmd === CtapHidCommand.INIT) {
      link.push(...initAnswer(request.payload, nextCid++));
      return;
    }
    requests.push(request);
    const replies = handler(request, link);
    if (replies) link.push(...replies);
  };
  return { link, requests };
}

export function initAnswer(nonce: Uint8Array, cid: number, capabilities = 0x05): Uint8Array[] {
  const body = new Uint8Array(17);
  body.set(nonce.subarray(0, 8));
  new DataView(body.buffer).setUint32(8, cid);
  body.set([2, 1, 7, 3, capabilities], 12);
  return framePackets(BROADCAST_CID, CtapHidCommand.INIT, body);
}

export function message(cid: number, cmd: number, payload: Uint8Array | number[]): Uint8Array[] {
  return framePackets(cid, cmd, Uint8Array.from(payload));
}

export function keepalive(cid: number, status: number): Uint8Array {
  return framePackets(cid, CtapHidCommand.KEEPALIVE, Uint8Array.of(status))[0]!;
}

export function errorPacket(cid: number, code: number): Uint8Array {
  return framePackets(cid, CtapHidCommand.ERROR, Uint8Array.of(code))[0]!;
}

export function hex(text: string): Uint8Array {
  return Uint8Array.from(text.trim().split(/\s+/).map((b) => parseInt(b, 16)));
}
