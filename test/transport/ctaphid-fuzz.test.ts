/**
 * Robustness: random and mutated HID reports fed to the CTAPHID client. Whatever arrives, the
 * client ends with an answer or a KeytapError — never another exception, a hang or an unhandled
 * rejection.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CtapHidApduTransport, CtapHidChannel } from '../../src/device/transport/ctaphid.js';
import { BROADCAST_CID, CtapHidCommand, framePackets } from '../../src/device/transport/ctaphid-frames.js';
import { KeytapError } from '../../src/errors.js';
import { FakeLink, TEST_CID, initAnswer, scriptedKey } from './fake-link.js';

const SEED = 0x6b657974; // "keyt"
const HANG_MS = 3_000;

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
beforeAll(() => process.on('unhandledRejection', onUnhandled));
afterAll(() => process.off('unhandledRejection', onUnhandled));

type Mutation = { at: number; value: number };

/** One report the "device" sends: built from a template, then mutated. */
const reportArb = (cid: number): fc.Arbitrary<Uint8Array> => {
  const bytes = (length: number) => fc.uint8Array({ minLength: length, maxLength: length });
  const ours = (cmdByte: fc.Arbitrary<number>, tail: fc.Arbitrary<Uint8Array>) =>
    fc.tuple(cmdByte, tail).map(([cmd, rest]) => {
      const report = new Uint8Array(64);
      new DataView(report.buffer).setUint32(0, cid);
      report[4] = cmd;
      report.set(rest.subarray(0, 59), 5);
      return report;
    });
  const validAnswer = fc
    .tuple(fc.uint8Array({ maxLength: 400 }), fc.constantFrom(CtapHidCommand.VENDOR_SECRETS, CtapHidCommand.PING, CtapHidCommand.MSG))
    .chain(([payload, cmd]) => fc.constantFrom(...framePackets(cid, cmd, payload)));
  const mutate = (base: fc.Arbitrary<Uint8Array>) =>
    fc.tuple(base, fc.array(fc.record({ at: fc.nat(70), value: fc.nat(255) }), { maxLength: 4 })).map(([report, mutations]: [Uint8Array, Mutation[]]) => {
      const copy = Uint8Array.from(report);
      for (const { at, value } of mutations) if (at < copy.length) copy[at] = value;
      return copy;
    });
  return fc.oneof(
    { weight: 3, arbitrary: bytes(64) }, // noise, almost always another channel
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 80 }) }, // wrong sizes
    { weight: 3, arbitrary: ours(fc.nat(255), bytes(59)) }, // our channel, random command or sequence
    { weight: 3, arbitrary: ours(fc.constant(0x80 | CtapHidCommand.KEEPALIVE), bytes(59)) },
    { weight: 1, arbitrary: ours(fc.constant(0x80 | CtapHidCommand.ERROR), fc.uint8Array({ minLength: 3, maxLength: 3 })) },
    { weight: 4, arbitrary: validAnswer },
    { weight: 6, arbitrary: mutate(validAnswer) },
  );
};

function withinHangLimit<T>(promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('the client hung')), HANG_MS);
  });
  return Promise.race([promise, hang]).finally(() => clearTimeout(timer));
}

function expectKeytapError(error: unknown): void {
  if (!(error instanceof KeytapError)) throw new Error(`not a KeytapError: ${String(error)}`);
}

describe('CTAPHID client under random and mutated reports', () => {
  it('answers or fails with a KeytapError, for ≥ 100,000 reports', async () => {
    let consumed = 0;
    const outcomes = new Map<string, number>();
    const count = (outcome: string): void => void outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);

    // Calls: the channel is open, the answer is fuzz.
    await fc.assert(
      fc.asyncProperty(fc.array(reportArb(TEST_CID), { minLength: 1, maxLength: 24 }), fc.boolean(), async (reports, apdu) => {
        const { link } = scriptedKey(() => undefined);
        const transport = await CtapHidApduTransport.open(link);
        const reads = link.reads;
        link.exhaustedIsUnplug = true;
        link.push(...reports);
        try {
          if (apdu) await withinHangLimit(transport.transmit(Uint8Array.of(0, 0xa4, 4, 0), { timeoutMs: 20 }));
          else await withinHangLimit(transport.channel.call(CtapHidCommand.PING, new Uint8Array(3), { timeoutMs: 20 }));
          count('answer');
        } catch (error) {
          expectKeytapError(error);
          count((error as KeytapError).code);
        }
        consumed += Math.min(reports.length, link.reads - reads);
      }),
      { seed: SEED, numRuns: 44_000 },
    );

    // INIT: the broadcast channel is fuzz, some of it with our nonce.
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof(reportArb(BROADCAST_CID), fc.constant('answer' as const)), { minLength: 1, maxLength: 16 }),
        fc.array(fc.record({ at: fc.nat(63), value: fc.nat(255) }), { maxLength: 3 }),
        async (reports, mutations) => {
          const link = new FakeLink();
          link.exhaustedIsUnplug = true;
          link.onWrite = (request) => {
            for (const report of reports) {
              if (report !== 'answer') {
                link.push(report);
                continue;
              }
              const answer = initAnswer(request.slice(7, 15), 0x01020304)[0]!;
              for (const { at, value } of mutations) answer[at] = value;
              link.push(answer);
            }
          };
          try {
            await withinHangLimit(CtapHidChannel.open(link, { initTimeoutMs: 20 }));
            count('init');
          } catch (error) {
            expectKeytapError(error);
            count(`init ${(error as KeytapError).code}`);
          }
          consumed += Math.min(reports.length, link.reads);
        },
      ),
      { seed: SEED, numRuns: 14_000 },
    );

    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(unhandled).toEqual([]);
    expect(consumed).toBeGreaterThanOrEqual(100_000);
    // The fuzz reaches every interesting outcome, not only the first guard.
    for (const outcome of ['answer', 'PROTOCOL', 'KEY_REMOVED', 'init']) expect(outcomes.get(outcome) ?? 0).toBeGreaterThan(0);
    console.log(`fuzz: ${consumed} reports consumed`, Object.fromEntries(outcomes));
  }, 120_000);
});
