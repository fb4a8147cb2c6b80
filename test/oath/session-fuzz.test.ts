/**
 * Robustness of the YKOATH client: random and mutated key answers (data and status words) for
 * every operation. Whatever a broken key says, the session either succeeds or throws a
 * KeytapError; it never throws anything else, never hangs, never leaves a rejection unhandled.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OathSession } from '../../src/device/oath/session.js';
import type { ApduResponse, ApduTransport } from '../../src/device/transport/types.js';
import { KeytapError } from '../../src/errors.js';
import { rng } from '../support/rng.js';

const CASES = 100_000;
const SEED = Number(process.env.KEYTAP_FUZZ_SEED ?? 0x6b7970);

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/gu, ''), 'hex'));
const name = (s: string): string => Buffer.from(s).toString('hex');

// Valid answers (data ‖ SW) the mutations start from.
const SELECTS = [
  hex('79 03 05 04 03 71 08 4bb7a7fad7af401b 9000'),
  hex('79 03 05 04 03 71 08 4bb7a7fad7af401b 74 08 0011223344556677 7b 01 01 9000'),
  hex('79 03 04 0d 00 71 08 0102030405060708 8f 04 1a2b3c4d 9000'),
  hex('79 03 04 0d 00 82 01 08 8f 04 1a2b3c4d 9000'),
];
const ANSWERS = [
  hex(`72 05 21 ${name('test')} 72 06 12 ${name('hotp1')} 9000`),
  hex(`72 06 21 ${name('test')} 01 72 07 12 ${name('hotp1')} 02 9000`),
  hex(`71 04 ${name('test')} 76 05 06 cc93cf18 71 05 ${name('hotp1')} 77 01 06 71 02 ${name('tt')} 7c 01 08 9000`),
  hex(`71 04 ${name('test')} 75 15 06 cc93cf18508d94934c64b65d8ba7667fb7cde4b0 9000`),
  hex('76 05 06 cc93cf18 9000'),
  hex('75 14 0102030405060708090a0b0c0d0e0f1011121314 9000'),
  hex('9000'),
  hex(`72 05 21 ${name('test')} 61 10`),
];
const SWS = [0x9000, 0x6100, 0x61ff, 0x6982, 0x6984, 0x6a80, 0x6a84, 0x6983, 0x6a81, 0x6a82, 0x6d00, 0x6581, 0x6f00, 0x6300, 0x6700, 0x6884, 0x0000, 0xffff];

function mutate(random: () => number, base: Uint8Array): Uint8Array {
  const bytes = [...base];
  const r = random();
  if (r < 0.15) return Uint8Array.from({ length: Math.floor(random() * 40) }, () => Math.floor(random() * 256));
  if (r < 0.35) bytes.length = Math.floor(random() * bytes.length); // truncated
  else if (r < 0.55) {
    for (let i = 0, n = 1 + Math.floor(random() * 4); i < n && bytes.length > 0; i++) { const at = Math.floor(random() * bytes.length); bytes[at] = bytes[at]! ^ (1 << Math.floor(random() * 8)); }
  } else if (r < 0.7) {
    for (let i = 0, n = 1 + Math.floor(random() * 20); i < n; i++) bytes.splice(Math.floor(random() * (bytes.length + 1)), 0, Math.floor(random() * 256));
  } else if (r < 0.85 && bytes.length >= 2) {
    const sw = SWS[Math.floor(random() * SWS.length)]!;
    bytes.splice(bytes.length - 2, 2, sw >> 8, sw & 0xff);
  }
  return Uint8Array.from(bytes);
}

class FuzzTransport implements ApduTransport {
  readonly description = 'fuzz';
  exchanges = 0;
  constructor(private readonly random: () => number) {}

  transmit(apdu: Uint8Array): Promise<ApduResponse> {
    this.exchanges++;
    const isSelect = apdu[1] === 0xa4 && apdu[2] === 0x04;
    const pool = isSelect && this.random() < 0.8 ? SELECTS : ANSWERS;
    const base = pool[Math.floor(this.random() * pool.length)]!;
    const answer = this.random() < 0.3 ? base : mutate(this.random, base);
    if (answer.length < 2) return Promise.resolve({ data: new Uint8Array(), sw: 0x6f00 }); // a transport never yields less than an SW
    return Promise.resolve({ data: answer.subarray(0, -2), sw: (answer[answer.length - 2]! << 8) | answer[answer.length - 1]! });
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};
beforeAll(() => process.on('unhandledRejection', onUnhandled));
afterAll(() => process.off('unhandledRejection', onUnhandled));

describe('OathSession against random and mutated key answers', () => {
  it(`gives only KeytapErrors over ${CASES.toLocaleString('en')} answers (seed ${SEED})`, async () => {
    const random = rng(SEED);
    const outcomes = { ok: 0, keytapErrors: 0 };
    let answers = 0;
    const operations: Array<(s: OathSession) => Promise<unknown>> = [
      (s) => s.list(),
      (s) => s.calculateAll({ time: 1_700_000_000 }),
      (s) => s.calculate({ id: 'test', account: 'test', type: 'TOTP', algorithm: 'SHA1', period: 30, touch: false }, { time: 59 }),
      (s) => s.calculate({ id: 'hotp1', account: 'hotp1', type: 'HOTP', algorithm: 'SHA256', period: 30 }),
      (s) => s.put({ account: 'new', type: 'TOTP', algorithm: 'SHA1', digits: 6, period: 30, touch: true, secret: new Uint8Array(20) }, { replace: true }),
      (s) => s.delete('test'),
      (s) => s.rename('test', { account: 'renamed' }, 'TOTP'),
      (s) => s.unlock('password'),
      (s) => s.setPassword('pw'),
      (s) => s.reset(),
    ];
    while (answers < CASES) {
      const transport = new FuzzTransport(random);
      const operation = operations[Math.floor(random() * operations.length)]!;
      try {
        const session = await OathSession.open(transport);
        await operation(session);
        outcomes.ok++;
      } catch (error) {
        if (!(error instanceof KeytapError)) {
          throw new Error(`Not a KeytapError after ${answers} answers (seed ${SEED}): ${String(error)}`, { cause: error });
        }
        expect(error.message).not.toMatch(/undefined|NaN|\[object/u);
        outcomes.keytapErrors++;
      }
      answers += transport.exchanges;
    }
    await new Promise((r) => setImmediate(r));
    expect(unhandled).toEqual([]);
    // Both paths were exercised, not only the error path.
    expect(outcomes.ok).toBeGreaterThan(1000);
    expect(outcomes.keytapErrors).toBeGreaterThan(1000);
  }, 120_000);
});
