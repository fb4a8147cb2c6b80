/**
 * Robustness: random and mutated compositor bytes fed to keytap's Wayland client. Whatever the
 * compositor sends, the wire reader throws only WireFormatError, and the data-control probe ends
 * with an answer or a KeytapError — never another exception, a hang or an unhandled rejection.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findDataControl } from '../../src/desktop/clipboard/wayland-data-control.js';
import { ArgReader, MessageReader, WireFormatError, encodeMessage } from '../../src/desktop/wayland/wire.js';
import { KeytapError } from '../../src/errors.js';

const SEED = 0x776c6b74; // "wlkt"
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
beforeAll(() => process.on('unhandledRejection', onUnhandled));
afterAll(() => process.off('unhandledRejection', onUnhandled));

/** What a compositor answers to get_registry and sync: globals, then the callback's done. */
function answers(registry: number, callback: number): Buffer {
  const global = (name: number, iface: string, version: number) => encodeMessage(registry, 0, [{ type: 'uint', value: name }, { type: 'string', value: iface }, { type: 'uint', value: version }]);
  return Buffer.concat([global(1, 'wl_seat', 8), global(2, 'zwlr_data_control_manager_v1', 2), encodeMessage(callback, 0, [{ type: 'uint', value: 9 }]), encodeMessage(1, 1, [{ type: 'uint', value: callback }])]);
}

const mutated = fc
  .tuple(fc.array(fc.record({ at: fc.nat(200), value: fc.nat(255) }), { maxLength: 6 }), fc.nat(220))
  .map(([mutations, cut]) => {
    const bytes = Buffer.from(answers(2, 3));
    for (const { at, value } of mutations) if (at < bytes.length) bytes[at] = value;
    return bytes.subarray(0, Math.min(cut, bytes.length));
  });
const streams = fc.oneof(mutated, fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)));

describe('the Wayland wire reader and client on hostile bytes', () => {
  it('the reader and argument reader throw only WireFormatError', () => {
    fc.assert(
      fc.property(streams, fc.nat(64), (bytes, split) => {
        const reader = new MessageReader();
        try {
          for (const message of [...reader.push(bytes.subarray(0, split)), ...reader.push(bytes.subarray(split))]) {
            const args = new ArgReader(message.body);
            args.uint();
            args.string();
            args.uint();
          }
        } catch (error) {
          expect(error).toBeInstanceOf(WireFormatError);
        }
      }),
      { seed: SEED, numRuns: 3_000 },
    );
  });

  it('the probe answers or fails with a KeytapError, within its timeout', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keytap-wl-fuzz-'));
    const path = join(dir, 'wayland-fuzz');
    let next = Buffer.alloc(0);
    const server = createServer((client) => {
      client.on('error', () => undefined);
      // The client's first requests (get_registry, sync) arrive together; answer once, with the stream.
      client.once('data', () => client.end(next));
    });
    await new Promise<void>((resolve) => server.listen(path, resolve));
    const outcomes = new Set<string>();
    try {
      await fc.assert(
        fc.asyncProperty(streams, async (bytes) => {
          next = bytes;
          const outcome = await findDataControl({ WAYLAND_DISPLAY: path }, { timeoutMs: 500 }).then(
            (manager) => manager,
            (error: unknown) => error,
          );
          if (typeof outcome !== 'string') expect(outcome).toBeInstanceOf(KeytapError);
          outcomes.add(typeof outcome === 'string' ? outcome : (outcome as KeytapError).code);
        }),
        { seed: SEED, numRuns: 150 },
      );
    } finally {
      await new Promise((resolve) => server.close(resolve));
      rmSync(dir, { recursive: true, force: true });
    }
    expect(unhandled).toEqual([]);
    // Both ways out were taken: intact answers found the manager, broken ones failed.
    expect(outcomes).toContain('zwlr_data_control_manager_v1');
    expect(outcomes).toContain('UNSUPPORTED');
  }, 120_000);
});
