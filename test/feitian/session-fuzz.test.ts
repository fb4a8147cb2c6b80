// Whatever a broken or foreign key answers (random data and status words), the Feitian session
// either succeeds or throws a KeytapError, never anything else, and never names the seed.
import { describe, expect, it } from 'vitest';
import { FeitianSession } from '../../src/device/feitian/session.js';
import type { ApduResponse, ApduTransport } from '../../src/device/transport/types.js';
import { KeytapError } from '../../src/errors.js';
import { rng } from '../support/rng.js';

const CASES = 3_000;
const SEED = Uint8Array.from(Buffer.from('fuzz-seed-0123456789'));

/**
 * Answers every APDU with random bytes: sometimes a plausible CHECK or confirm answer, mostly garbage.
 * SELECT mostly succeeds (a failed SELECT ends the session at once), so that the mix still reaches
 * what comes after it.
 */
function randomTransport(random: () => number): ApduTransport {
  const answer = (): ApduResponse => {
    const pick = random();
    const sw = pick < 0.3 ? 0x9000 : pick < 0.4 ? 0x6985 : Math.floor(random() * 0x10000);
    const length = random() < 0.5 ? 11 : Math.floor(random() * 20);
    const data = Uint8Array.from({ length }, () => Math.floor(random() * 256));
    if (length === 11 && random() < 0.5) data.set(Buffer.from('SERIAL01'), 3);
    return { data, sw };
  };
  const transmit = (apdu: Uint8Array): Promise<ApduResponse> =>
    Promise.resolve(apdu[1] === 0xa4 && random() < 0.9 ? { data: new Uint8Array(0), sw: 0x9000 } : answer());
  return { description: 'fuzz', transmit, close: () => Promise.resolve() };
}

describe('the Feitian session against random answers', () => {
  it(`${CASES} sessions: open, check, erase and program end in success or a KeytapError`, async () => {
    const random = rng(0x66e17a);
    const outcomes = new Map<string, number>();
    for (let i = 0; i < CASES; i++) {
      const transport = randomTransport(random);
      let outcome = 'ok';
      try {
        const session = await FeitianSession.open(transport);
        await session.check();
        if (random() < 0.5) await session.erase();
        else await session.program({ digits: 6, seed: SEED, serial: 'SERIAL01' });
      } catch (error) {
        expect(error).toBeInstanceOf(KeytapError);
        expect((error as Error).message).not.toContain('fuzz-seed');
        outcome = (error as KeytapError).code;
      }
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    }
    // The mix reached every branch: unknown answers, refusals, a key that holds a token already.
    expect([...outcomes.keys()].sort()).toEqual(expect.arrayContaining(['PROTOCOL', 'EXISTS', 'DEVICE_ERROR']));
  });
});
