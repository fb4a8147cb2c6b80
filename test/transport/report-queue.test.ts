import { afterEach, describe, expect, it, vi } from 'vitest';
import { ReportQueue } from '../../src/device/transport/report-queue.js';
import { KeytapError } from '../../src/errors.js';

function report(byte: number): Uint8Array {
  return new Uint8Array(64).fill(byte);
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

/** An AbortSignal that counts its abort listeners. */
function countedSignal(): { controller: AbortController; listeners: () => number } {
  const controller = new AbortController();
  let count = 0;
  const add = controller.signal.addEventListener.bind(controller.signal);
  const remove = controller.signal.removeEventListener.bind(controller.signal);
  vi.spyOn(controller.signal, 'addEventListener').mockImplementation((...args: Parameters<AbortSignal['addEventListener']>) => {
    count++;
    add(...args);
  });
  vi.spyOn(controller.signal, 'removeEventListener').mockImplementation((...args: Parameters<AbortSignal['removeEventListener']>) => {
    count--;
    remove(...args);
  });
  return { controller, listeners: () => count };
}

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe('ReportQueue', () => {
  it('hands out queued reports in order, then gives later ones to a waiting read', async () => {
    const queue = new ReportQueue({ maxQueued: 8 });
    queue.push(report(1));
    queue.push(report(2));
    expect((await queue.read(100))?.[0]).toBe(1);
    expect((await queue.read(100))?.[0]).toBe(2);
    const pending = queue.read(1_000);
    expect(queue.pendingReads).toBe(1);
    queue.push(report(3));
    expect((await pending)?.[0]).toBe(3);
    expect(queue.pendingReads).toBe(0);
  });

  it('gives a report to the oldest of several waiting reads', async () => {
    const queue = new ReportQueue({ maxQueued: 8 });
    const first = queue.read(1_000);
    const second = queue.read(1_000);
    queue.push(report(1));
    queue.push(report(2));
    expect((await first)?.[0]).toBe(1);
    expect((await second)?.[0]).toBe(2);
  });

  it('drops the oldest report beyond its bound', async () => {
    const queue = new ReportQueue({ maxQueued: 3 });
    for (let i = 0; i < 10; i++) queue.push(report(i));
    expect((await queue.read(0))?.[0]).toBe(7);
    expect((await queue.read(0))?.[0]).toBe(8);
    expect((await queue.read(0))?.[0]).toBe(9);
  });

  it('resolves undefined at the timeout and leaves no timer', async () => {
    vi.useFakeTimers();
    const queue = new ReportQueue({ maxQueued: 8 });
    let result: Uint8Array | undefined | 'pending' = 'pending';
    void queue.read(50).then((value) => (result = value));
    await vi.advanceTimersByTimeAsync(49);
    expect(result).toBe('pending');
    await vi.advanceTimersByTimeAsync(1);
    expect(result).toBeUndefined();
    expect(vi.getTimerCount()).toBe(0);
    expect(queue.pendingReads).toBe(0);
  });

  it('clamps a timeout too long for setTimeout instead of firing at once', async () => {
    vi.useFakeTimers();
    const queue = new ReportQueue({ maxQueued: 8 });
    let settled = false;
    void queue.read(Number.MAX_SAFE_INTEGER).then(() => (settled = true));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(settled).toBe(false);
    queue.push(report(1));
    await vi.advanceTimersByTimeAsync(0);
    expect(settled).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('leaves no timer and no abort listener after a read that got a report', async () => {
    vi.useFakeTimers();
    const queue = new ReportQueue({ maxQueued: 8 });
    const { controller, listeners } = countedSignal();
    const pending = queue.read(60_000, controller.signal);
    expect(vi.getTimerCount()).toBe(1);
    expect(listeners()).toBe(1);
    queue.push(report(1));
    expect((await pending)?.[0]).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
    expect(listeners()).toBe(0);
  });

  it('rejects CANCELLED at once when the signal was aborted before the read, and keeps the queue', async () => {
    const queue = new ReportQueue({ maxQueued: 8 });
    queue.push(report(1));
    const controller = new AbortController();
    controller.abort();
    const error = await rejection(queue.read(1_000, controller.signal));
    expect(error).toBeInstanceOf(KeytapError);
    expect((error as KeytapError).code).toBe('CANCELLED');
    expect((await queue.read(0))?.[0]).toBe(1);
  });

  it('rejects with the abort reason when it is a KeytapError', async () => {
    const queue = new ReportQueue({ maxQueued: 8 });
    const reason = new KeytapError('TOUCH_TIMEOUT', 'no touch');
    expect(await rejection(queue.read(1_000, AbortSignal.abort(reason)))).toBe(reason);
  });

  it('rejects CANCELLED when the signal fires while waiting, and leaves no timer or listener', async () => {
    vi.useFakeTimers();
    const queue = new ReportQueue({ maxQueued: 8 });
    const { controller, listeners } = countedSignal();
    const pending = rejection(queue.read(60_000, controller.signal));
    controller.abort();
    const error = await pending;
    expect((error as KeytapError).code).toBe('CANCELLED');
    expect(vi.getTimerCount()).toBe(0);
    expect(listeners()).toBe(0);
    expect(queue.pendingReads).toBe(0);
    // A report that comes after the abort is queued for the next read, not lost.
    queue.push(report(5));
    expect((await queue.read(0))?.[0]).toBe(5);
  });

  it('rejects waiting and later reads with the failure, and keeps only the first failure', async () => {
    vi.useFakeTimers();
    const queue = new ReportQueue({ maxQueued: 8 });
    const { controller, listeners } = countedSignal();
    const pending = rejection(queue.read(60_000, controller.signal));
    const removed = new KeytapError('KEY_REMOVED', 'gone');
    expect(queue.fail(removed)).toBe(true);
    expect(await pending).toBe(removed);
    expect(vi.getTimerCount()).toBe(0);
    expect(listeners()).toBe(0);
    expect(queue.fail(new KeytapError('CANCELLED', 'closed'))).toBe(false);
    expect(queue.failure).toBe(removed);
    expect(await rejection(queue.read(10))).toBe(removed);
  });

  it('by default drops queued reports on failure and lets the failure win over an aborted signal', async () => {
    const queue = new ReportQueue({ maxQueued: 8 });
    queue.push(report(1));
    const removed = new KeytapError('KEY_REMOVED', 'gone');
    queue.fail(removed);
    queue.push(report(2));
    expect(await rejection(queue.read(10))).toBe(removed);
    expect(await rejection(queue.read(10, AbortSignal.abort()))).toBe(removed);
  });

  it("with afterFailure 'drain' still hands out queued reports, then rejects with the failure", async () => {
    const queue = new ReportQueue({ maxQueued: 8, afterFailure: 'drain' });
    queue.push(report(1));
    const removed = new KeytapError('KEY_REMOVED', 'gone');
    queue.fail(removed);
    queue.push(report(2));
    expect(((await rejection(queue.read(10, AbortSignal.abort()))) as KeytapError).code).toBe('CANCELLED');
    expect((await queue.read(10))?.[0]).toBe(1);
    expect((await queue.read(10))?.[0]).toBe(2);
    expect(await rejection(queue.read(10))).toBe(removed);
  });
});
