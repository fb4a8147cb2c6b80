// PBKDF2 in PSKC files: every parameter is checked before the key is derived (a file cannot make
// keytap derive a key it will refuse anyway), and an iteration count above the cap is refused
// unless the caller consents. How often PBKDF2 runs is counted, not timed.
import * as crypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { KeytapError } from '../../src/errors.js';
import { PSKC_MAX_ITERATIONS, pskcFormat } from '../../src/seeds/index.js';
import type { SeedReadOptions } from '../../src/seeds/index.js';

vi.mock('node:crypto', async (original) => {
  const actual = await original<typeof crypto>();
  return { ...actual, pbkdf2Sync: vi.fn(actual.pbkdf2Sync) };
});

const FIGURE7 = readFileSync(join(import.meta.dirname, '../fixtures/pskc/rfc-figure7.pskcxml'), 'utf8');

/** RFC 6030 Figure 7 (passphrase "qwerty", 1000 iterations, KeyLength 16) with its PBKDF2 parameters changed. */
function figure7(change: { iterations?: string; keyLength?: string; salt?: string; prf?: string }): Buffer {
  let text = FIGURE7;
  if (change.iterations !== undefined) text = text.replace('<IterationCount>1000</IterationCount>', `<IterationCount>${change.iterations}</IterationCount>`);
  if (change.keyLength !== undefined) text = text.replace('<KeyLength>16</KeyLength>', `<KeyLength>${change.keyLength}</KeyLength>`);
  if (change.salt !== undefined) text = text.replace('<Specified>Ej7/PEpyEpw=</Specified>', `<Specified>${change.salt}</Specified>`);
  if (change.prf !== undefined) text = text.replace('<PRF/>', `<PRF Algorithm="${change.prf}"/>`);
  return Buffer.from(text, 'utf8');
}

function readError(bytes: Buffer, options: SeedReadOptions = { passphrase: 'qwerty' }): KeytapError {
  try {
    pskcFormat.read(bytes, options);
  } catch (error) {
    expect(error).toBeInstanceOf(KeytapError);
    return error as KeytapError;
  }
  throw new Error('expected the read to fail');
}

const derivations = (): number => vi.mocked(crypto.pbkdf2Sync).mock.calls.length;

beforeEach(() => {
  vi.mocked(crypto.pbkdf2Sync).mockClear();
});

describe('PSKC PBKDF2 parameters are checked before deriving', () => {
  it('the unchanged figure reads with one derivation (the counting works)', () => {
    const [token] = pskcFormat.read(figure7({}), { passphrase: 'qwerty' });
    expect(Buffer.from(token!.secret).toString()).toBe('12345678901234567890');
    expect(derivations()).toBe(1);
  });

  it('IterationCount 10,000,000 with KeyLength 64: refused for the key length, nothing derived', () => {
    const error = readError(figure7({ iterations: '10000000', keyLength: '64' }));
    expect(error.code).toBe('BAD_INPUT');
    expect(error.message).toMatch(/KeyLength is 64.*aes128-cbc needs 16/u);
    expect(derivations()).toBe(0);
  });

  it.each([
    ['a KeyLength that is not the cipher\'s (32 for AES-128)', { keyLength: '32' }, /KeyLength is 32.*needs 16/u],
    ['an empty salt', { salt: '' }, /salt is empty/u],
    ['an unknown PRF', { prf: 'http://example.com/prf' }, /PRF .* is not supported/u],
    ['an IterationCount that is not a number', { iterations: '1e3' }, /IterationCount must be a whole number/u],
    ['IterationCount 0', { iterations: '0' }, /IterationCount must be a whole number/u],
  ])('%s: refused, nothing derived', (_what, change, message) => {
    const error = readError(figure7(change));
    expect(error.code).toBe('BAD_INPUT');
    expect(error.message).toMatch(message);
    expect(derivations()).toBe(0);
  });

  it(`IterationCount above the cap (${PSKC_MAX_ITERATIONS}): refused without consent, naming the count and the cap, nothing derived`, () => {
    const error = readError(figure7({ iterations: '10000000' }));
    expect(error.code).toBe('BAD_INPUT');
    expect(error.message).toContain('10000000 PBKDF2 iterations');
    expect(error.message).toContain(String(PSKC_MAX_ITERATIONS));
    expect(error.detail).toEqual({ kind: 'slow-kdf', iterations: 10_000_000, cap: PSKC_MAX_ITERATIONS });
    expect(derivations()).toBe(0);
  });

  it('the cap itself needs no consent; one above it does, and with consent the file is read', () => {
    // The wrong passphrase costs one derivation at the cap and fails on the key, not the count.
    expect(readError(figure7({ iterations: String(PSKC_MAX_ITERATIONS) }), { passphrase: 'wrong' }).detail?.kind).toBe('pskc-secret-wrong');
    expect(derivations()).toBe(1);
    expect(readError(figure7({ iterations: String(PSKC_MAX_ITERATIONS + 1) })).detail?.kind).toBe('slow-kdf');
    expect(derivations()).toBe(1);
    // The figure's MAC key and secret were encrypted with the key of 1000 iterations, so a
    // consented derivation with more is the wrong key: what matters is that it was derived.
    const consented = readError(figure7({ iterations: String(PSKC_MAX_ITERATIONS + 1) }), { passphrase: 'qwerty', allowSlowKdf: true });
    expect(consented.detail?.kind).toBe('pskc-secret-wrong');
    expect(derivations()).toBe(2);
  });
});
