// Token generation, serials and the refusals that need no key.
import { randomInt } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isKeytapError } from '../../src/errors.js';
import { base32Encode } from '../../src/otp/encoding.js';
import { DEFAULT_PARAMETERS, GENERATED_SECRET_BYTES, SerialAllocator, buildToken, checkTokenForRun, credentialFor, generateSecret, parseGivenSecret } from '../../src/provision/token.js';
import { seedFormat } from '../../src/seeds/index.js';

function reason(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (isKeytapError(error)) return `${error.code}: ${error.message}`;
    throw error;
  }
  return 'no error';
}

describe('secrets', () => {
  it('generates the hash size: 20 bytes SHA-1, 32 SHA-256, 64 SHA-512, each different', () => {
    expect(generateSecret('SHA1')).toHaveLength(20);
    expect(generateSecret('SHA256')).toHaveLength(32);
    expect(generateSecret('SHA512')).toHaveLength(64);
    expect(GENERATED_SECRET_BYTES).toEqual({ SHA1: 20, SHA256: 32, SHA512: 64 });
    expect(Buffer.from(generateSecret('SHA1')).equals(Buffer.from(generateSecret('SHA1')))).toBe(false);
  });

  it('takes Base32 and hex:, refuses fewer than 16 bytes unless allowed', () => {
    expect(parseGivenSecret('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ')).toEqual(Uint8Array.from(Buffer.from('12345678901234567890')));
    expect(parseGivenSecret('hex:3132333435363738393031323334353637383930')).toHaveLength(20);
    expect(reason(() => parseGivenSecret('hex:00112233445566778899aabbccddee'))).toMatch(/BAD_INPUT: The secret is 15 bytes; RFC 4226 requires at least 16/u);
    expect(parseGivenSecret('hex:00112233445566778899aabbccddee', { allowShort: true })).toHaveLength(15);
    expect(reason(() => parseGivenSecret('not base32!'))).toMatch(/BAD_INPUT/u);
  });
});

describe('serials', () => {
  it('are printable, carry the prefix, and are never repeated within a run or the ledger (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 8, maxLength: 400 }), fc.array(fc.constantFrom('KT00000000', 'KT00000001', 'KT11111111')), (digits, taken) => {
        // A tiny random source forces collisions: the allocator must skip every taken serial.
        // After the scripted digits, real randomness (a scripted source alone may never vary).
        let i = 0;
        const allocator = new SerialAllocator(taken, 'KT', () => (i < digits.length ? digits[i++]! % 2 : randomInt(2)));
        const made: string[] = [];
        for (let n = 0; n < 20; n++) made.push(allocator.next());
        expect(new Set(made).size).toBe(made.length);
        for (const serial of made) {
          expect(serial).toMatch(/^KT[01]{8}$/u);
          expect(taken).not.toContain(serial);
        }
      }),
      { numRuns: 50 },
    );
  });

  it('a given serial that the ledger has is refused; a malformed one too', () => {
    const allocator = new SerialAllocator(['A1'], 'X-');
    expect(reason(() => allocator.claim('A1'))).toMatch(/EXISTS: The serial A1 is already in the ledger/u);
    allocator.claim('B2');
    expect(reason(() => allocator.claim('B2'))).toMatch(/EXISTS/u);
    expect(reason(() => allocator.claim('has space'))).toMatch(/BAD_INPUT/u);
    expect(allocator.next()).toMatch(/^X-\d{8}$/u);
  });

  it('a Feitian HOTP key\'s serial: 8 decimal digits without the prefix, never one already taken', () => {
    const digits = [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2];
    let i = 0;
    const allocator = new SerialAllocator(['00000001'], 'KT', () => digits[i++]!);
    expect(allocator.nextDecimal(8)).toBe('00000002');
    expect(allocator.has('00000002')).toBe(true);
    expect(new SerialAllocator([]).nextDecimal(8)).toMatch(/^\d{8}$/u);
  });

  it('gives up (rather than looping forever) when the prefix space is exhausted', () => {
    const allocator = new SerialAllocator(['P00000000'], 'P', () => 0);
    expect(reason(() => allocator.next())).toMatch(/No free serial/u);
  });
});

describe('parameters and refusals without a key', () => {
  const secret = Uint8Array.from(Buffer.from('12345678901234567890'));

  it('the name on the key defaults to the UPN, else the serial; HOTP keeps its counter, TOTP its period', () => {
    expect(buildToken({ ...DEFAULT_PARAMETERS, upn: 'a@b.example' }, secret, 'S1').account).toBe('a@b.example');
    expect(buildToken(DEFAULT_PARAMETERS, secret, 'S1').account).toBe('S1');
    const h = buildToken({ ...DEFAULT_PARAMETERS, type: 'HOTP', counter: 7, period: 60 }, secret, 'S2');
    expect([h.counter, h.period]).toEqual([7, 30]);
    expect(credentialFor({ ...h, issuer: 'Acme' })).toMatchObject({ issuer: 'Acme', account: 'S2', counter: 7, type: 'HOTP' });
  });

  it('Entra cannot take HOTP, SHA-256, 8 digits, or a token without UPN; each refusal says why', () => {
    const entra = [seedFormat('entra')];
    const base = buildToken({ ...DEFAULT_PARAMETERS, upn: 'alice@contoso.com' }, secret, 'S1');
    expect(() => checkTokenForRun(base, entra)).not.toThrow();
    expect(reason(() => checkTokenForRun({ ...base, type: 'HOTP' }, entra))).toMatch(/Entra ID CSV export cannot take token S1: Entra ID does not support HOTP/u);
    expect(reason(() => checkTokenForRun({ ...base, algorithm: 'SHA256', secret: new Uint8Array(32).fill(1) }, entra))).toMatch(/SHA-1 tokens only/u);
    expect(reason(() => checkTokenForRun({ ...base, digits: 8 }, entra))).toMatch(/6-digit codes only/u);
    expect(reason(() => checkTokenForRun({ ...base, upn: undefined }, entra))).toMatch(/UPN is required/u);
    expect(reason(() => checkTokenForRun({ ...base, secret: secret.subarray(0, 10) }, []))).toMatch(/10 bytes/u);
    expect(() => checkTokenForRun({ ...base, secret: secret.subarray(0, 10) }, [], { allowShortSecret: true })).not.toThrow();
    expect(reason(() => checkTokenForRun({ ...base, issuer: 'a:b' }, []))).toMatch(/issuer must not contain/u);
  });

  it('messages never carry the secret', () => {
    const text = reason(() => checkTokenForRun(buildToken({ ...DEFAULT_PARAMETERS, type: 'HOTP' }, secret, 'S1'), [seedFormat('entra')]));
    expect(text).toMatch(/^BAD_INPUT: .*Entra ID does not support HOTP/u); // there is a message to look at
    expect(text).not.toContain(base32Encode(secret));
    expect(text).not.toContain(Buffer.from(secret).toString('hex'));
  });
});
