// otpauth:// key URIs (docs/seed-formats.md §4.1): the canonical example, the label and issuer rules,
// tolerant secrets, defaults left out, bad input, and random round trips.
import fc from 'fast-check';
import { URI } from 'otpauth';
import { describe, expect, it } from 'vitest';
import { isKeytapError } from '../../src/errors.js';
import type { CredentialWithSecret, HashAlgorithm, OathType } from '../../src/otp/index.js';
import { formatOtpauthUri, parseOtpauthUri } from '../../src/otp/index.js';

const CANONICAL =
  'otpauth://totp/ACME%20Co:john.doe@email.com?secret=HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ&issuer=ACME%20Co&algorithm=SHA1&digits=6&period=30';
// base64.b32decode('HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ') in Python.
const CANONICAL_SECRET_HEX = '3dc6caa4824a6d288767b2331e20b43166cb85d9';
const HELLO = 'JBSWY3DPEHPK3PXP'; // 48656c6c6f21deadbeef (docs/seed-formats.md §4.1)
const hex = (data: Uint8Array): string => Buffer.from(data).toString('hex');

function query(uri: string): Record<string, string> {
  return Object.fromEntries(new URLSearchParams(uri.slice(uri.indexOf('?') + 1)));
}

function badInput(action: () => unknown): { message: string; hint: string } {
  try {
    action();
  } catch (error) {
    expect(isKeytapError(error, 'BAD_INPUT'), `expected BAD_INPUT, got ${String(error)}`).toBe(true);
    const { message, hint } = error as { message: string; hint?: string };
    return { message, hint: hint ?? '' };
  }
  throw new Error('expected BAD_INPUT, nothing was thrown');
}

describe('parseOtpauthUri', () => {
  it('reads the canonical example', () => {
    const credential = parseOtpauthUri(CANONICAL);
    expect({ ...credential, secret: hex(credential.secret) }).toEqual({
      issuer: 'ACME Co',
      account: 'john.doe@email.com',
      type: 'TOTP',
      algorithm: 'SHA1',
      digits: 6,
      period: 30,
      counter: undefined,
      touch: false,
      secret: CANONICAL_SECRET_HEX,
    });
  });

  it('reads %3A and %20 after the colon in the label', () => {
    const credential = parseOtpauthUri(`otpauth://totp/Big%20Corporation%3A%20alice%40bigco.com?secret=${HELLO}`);
    expect(credential).toMatchObject({ issuer: 'Big Corporation', account: 'alice@bigco.com' });
    expect(hex(credential.secret)).toBe('48656c6c6f21deadbeef');
    expect(parseOtpauthUri(`otpauth://totp/Example:%20%20alice?secret=${HELLO}`)).toMatchObject({ issuer: 'Example', account: 'alice' });
    expect(parseOtpauthUri(`otpauth://totp/Example:alice%40google.com?secret=${HELLO}&issuer=Example`)).toMatchObject({
      issuer: 'Example',
      account: 'alice@google.com',
    });
  });

  it('takes the issuer from the parameter, the label prefix, or neither', () => {
    expect(parseOtpauthUri(`otpauth://totp/alice?secret=${HELLO}&issuer=Corp`)).toMatchObject({ issuer: 'Corp', account: 'alice' });
    expect(parseOtpauthUri(`otpauth://totp/Corp:alice?secret=${HELLO}`)).toMatchObject({ issuer: 'Corp', account: 'alice' });
    expect(parseOtpauthUri(`otpauth://totp/Corp:alice?secret=${HELLO}&issuer=`)).toMatchObject({ issuer: 'Corp', account: 'alice' });
    expect(parseOtpauthUri(`otpauth://totp/alice?secret=${HELLO}`)).toMatchObject({ issuer: undefined, account: 'alice' });
    expect(parseOtpauthUri(`otpauth://totp/:alice?secret=${HELLO}`)).toMatchObject({ issuer: undefined, account: 'alice' });
    // They should agree; when they do not, the parameter wins.
    expect(parseOtpauthUri(`otpauth://totp/Old%20Name:alice?secret=${HELLO}&issuer=New%20Name`)).toMatchObject({
      issuer: 'New Name',
      account: 'alice',
    });
  });

  it('keeps a colon inside the account when there is an issuer before it', () => {
    expect(parseOtpauthUri(`otpauth://totp/Corp:a%3Ab?secret=${HELLO}`)).toMatchObject({ issuer: 'Corp', account: 'a:b' });
  });

  it.each([
    'jbswy3dpehpk3pxp',
    'JBSWY3DPEHPK3PXP======',
    'jbsw%20y3dp%20ehpk%203pxp',
    'JBSW-Y3DP-EHPK-3PXP',
    'JBSWY3DPEHPK3PXP%3D%3D%3D',
  ])('accepts the secret %s', (secret) => {
    expect(hex(parseOtpauthUri(`otpauth://totp/Corp:alice?secret=${secret}&issuer=Corp`).secret)).toBe('48656c6c6f21deadbeef');
  });

  it('reads algorithm, digits, period and counter, in any case', () => {
    expect(parseOtpauthUri(`OTPAUTH://TOTP/Corp:alice?SECRET=${HELLO}&Algorithm=sha512&DIGITS=8&Period=60`)).toMatchObject({
      type: 'TOTP',
      algorithm: 'SHA512',
      digits: 8,
      period: 60,
    });
    expect(parseOtpauthUri(`otpauth://totp/alice?secret=${HELLO}&algorithm=SHA256&digits=7`)).toMatchObject({
      algorithm: 'SHA256',
      digits: 7,
    });
    expect(parseOtpauthUri(`otpauth://hotp/Bank:alice?secret=${HELLO}&counter=42&period=60`)).toEqual(
      expect.objectContaining({ type: 'HOTP', counter: 42, period: 30, digits: 6, algorithm: 'SHA1' }),
    );
    expect(parseOtpauthUri(`otpauth://hotp/Bank:alice?secret=${HELLO}&counter=4294967295`).counter).toBe(4294967295);
  });

  it('reads the non-standard touch flag', () => {
    const touch = (value: string): boolean => parseOtpauthUri(`otpauth://totp/alice?secret=${HELLO}&touch=${value}`).touch;
    expect(touch('1')).toBe(true);
    expect(touch('true')).toBe(true);
    expect(touch('TRUE')).toBe(true);
    expect(touch('0')).toBe(false);
    expect(touch('false')).toBe(false);
    expect(parseOtpauthUri(`otpauth://totp/alice?secret=${HELLO}`).touch).toBe(false);
  });

  it('ignores parameters it does not know, even ones the otpauth package would choke on', () => {
    const credential = parseOtpauthUri(`otpauth://totp/Corp:alice?secret=${HELLO}&image=https://example.com/logo.png?size=2&&x`);
    expect(credential).toMatchObject({ issuer: 'Corp', account: 'alice' });
  });

  it('accepts surrounding white space', () => {
    expect(parseOtpauthUri(`  ${CANONICAL}\n`).account).toBe('john.doe@email.com');
  });

  it.each([
    ['https://example.com/?secret=JBSWY3DPEHPK3PXP', /not an otpauth/u],
    ['otpauth:/totp/alice?secret=JBSWY3DPEHPK3PXP', /not an otpauth/u],
    ['otpauth://motp/alice?secret=JBSWY3DPEHPK3PXP', /type/u],
    ['otpauth://totp?secret=JBSWY3DPEHPK3PXP', /type/u],
    ['otpauth://JBSWY3DPEHPK3PXP', /type/u],
    ['otpauth://totp/alice', /no parameters/u],
    ['otpauth://totp/?secret=JBSWY3DPEHPK3PXP', /account/u],
    ['otpauth://totp/Corp:?secret=JBSWY3DPEHPK3PXP', /account/u],
    ['otpauth://totp/Corp%3A%20?secret=JBSWY3DPEHPK3PXP', /account/u],
    ['otpauth://totp/alice?issuer=Corp', /no secret/u],
    ['otpauth://totp/alice?secret=&issuer=Corp', /no secret/u],
    ['otpauth://totp/alice?secret====', /empty secret/u],
    ['otpauth://totp/alice?secret=JBSWY3DPEHPK3PX0', /secret.*Base32/u],
    ['otpauth://totp/alice?secret=JBSWY3DPEHPK3PXP1', /secret.*Base32/u],
    ['otpauth://totp/alice?secret=JBSWY3DPE', /secret.*Base32/u],
    ['otpauth://totp/alice?secret=JBSWY3DPEHPK3PXP&digits=5', /digits/u],
    ['otpauth://totp/alice?secret=JBSWY3DPEHPK3PXP&digits=9', /digits/u],
    ['otpauth://totp/alice?secret=JBSWY3DPEHPK3PXP&digits=6.0', /digits/u],
    ['otpauth://totp/alice?secret=JBSWY3DPEHPK3PXP&digits=', /digits/u],
    ['otpauth://totp/alice?secret=JBSWY3DPEHPK3PXP&period=0', /period/u],
    ['otpauth://totp/alice?secret=JBSWY3DPEHPK3PXP&period=-30', /period/u],
    ['otpauth://totp/alice?secret=JBSWY3DPEHPK3PXP&period=30s', /period/u],
    ['otpauth://totp/alice?secret=JBSWY3DPEHPK3PXP&period=2147483648', /period/u],
    ['otpauth://totp/alice?secret=JBSWY3DPEHPK3PXP&algorithm=MD5', /algorithm/u],
    ['otpauth://totp/alice?secret=JBSWY3DPEHPK3PXP&algorithm=SHA224', /algorithm/u],
    ['otpauth://totp/alice?secret=JBSWY3DPEHPK3PXP&algorithm=SHA-256', /algorithm/u],
    ['otpauth://hotp/alice?secret=JBSWY3DPEHPK3PXP', /counter/u],
    ['otpauth://hotp/alice?secret=JBSWY3DPEHPK3PXP&counter=-1', /counter/u],
    ['otpauth://hotp/alice?secret=JBSWY3DPEHPK3PXP&counter=9007199254740992', /counter/u],
    ['otpauth://hotp/alice?secret=JBSWY3DPEHPK3PXP&counter=4294967296', /counter parameter of the otpauth URI must be a whole number from 0 to 4294967295/u],
    ['otpauth://hotp/alice?secret=JBSWY3DPEHPK3PXP&counter=x', /counter/u],
    ['otpauth://totp/alice?secret=JBSWY3DPEHPK3PXP&touch=yes', /touch/u],
    ['otpauth://totp/alice?secret=JBSWY3DPEHPK3PXP&issuer=A%3AB', /issuer/u],
    ['otpauth://totp/ali%ZZce?secret=JBSWY3DPEHPK3PXP', /%-escape in the label/u],
    ['otpauth://totp/alice?secret=JBSWY3DPEHPK3PXP&issuer=%E0%A4%A', /%-escape in the issuer/u],
    ['otpauth://totp/alice?secret=JBSW%ZZY3DPEHPK3PXP', /%-escape in the secret/u],
  ])('rejects %s with BAD_INPUT', (uri, pattern) => {
    const { message } = badInput(() => parseOtpauthUri(uri));
    expect(message).toMatch(pattern);
  });

  it('never repeats the secret in an error', () => {
    const secret = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
    const bad = [
      `otpauth://motp/alice?secret=${secret}`,
      `otpauth://${secret}`,
      `otpauth://totp/alice?secret=${secret}0`,
      `otpauth://totp/alice?secret=${secret.toLowerCase()}1`,
      `otpauth://totp/alice?secret=${secret}&digits=10`,
      `otpauth://totp/alice?secret=${secret}&period=abc`,
      `otpauth://totp/alice?secret=${secret}&algorithm=${secret}`,
      `otpauth://totp/alice?${secret}=%ZZ`,
      `otpauth://totp/alice?secret=${secret}%ZZ`,
      `otpauth://totp/${secret}%ZZ?secret=${secret}`,
      `otpauth://hotp/alice?secret=${secret}&counter=${secret}`,
      `https://example.com/?secret=${secret}`,
    ];
    for (const uri of bad) {
      const { message, hint } = badInput(() => parseOtpauthUri(uri));
      for (const text of [message, hint]) {
        expect(text.toUpperCase(), uri).not.toContain(secret.slice(0, 8));
        expect(text.toUpperCase(), uri).not.toContain(secret.slice(-8));
      }
    }
  });
});

describe('formatOtpauthUri', () => {
  const base: CredentialWithSecret = {
    issuer: 'ACME Co',
    account: 'john.doe@email.com',
    type: 'TOTP',
    algorithm: 'SHA1',
    digits: 6,
    period: 30,
    touch: false,
    secret: Uint8Array.from(Buffer.from(CANONICAL_SECRET_HEX, 'hex')),
  };

  it('writes the canonical example with the defaults left out', () => {
    const uri = formatOtpauthUri(base);
    expect(uri.startsWith('otpauth://totp/ACME%20Co:john.doe%40email.com?')).toBe(true);
    expect(query(uri)).toEqual({ issuer: 'ACME Co', secret: 'HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ' });
  });

  it('writes Base32 upper case without padding', () => {
    const uri = formatOtpauthUri({ ...base, secret: Uint8Array.from(Buffer.from('foobar')) });
    expect(query(uri).secret).toBe('MZXW6YTBOI');
  });

  it('writes the parameters that differ from SHA1/6/30', () => {
    expect(query(formatOtpauthUri({ ...base, algorithm: 'SHA256' }))).toMatchObject({ algorithm: 'SHA256' });
    expect(query(formatOtpauthUri({ ...base, digits: 8 }))).toEqual(expect.objectContaining({ digits: '8' }));
    const sixty = query(formatOtpauthUri({ ...base, period: 60 }));
    expect(sixty).toEqual(expect.objectContaining({ period: '60' }));
    expect(sixty).not.toHaveProperty('digits');
    expect(sixty).not.toHaveProperty('algorithm');
  });

  it('writes HOTP with its counter, even 0, and no period', () => {
    const uri = formatOtpauthUri({ ...base, type: 'HOTP', period: 30, counter: undefined });
    expect(uri.startsWith('otpauth://hotp/')).toBe(true);
    expect(query(uri)).toEqual({ issuer: 'ACME Co', secret: 'HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ', counter: '0' });
    expect(query(formatOtpauthUri({ ...base, type: 'HOTP', counter: 4294967295 })).counter).toBe('4294967295');
  });

  it('writes touch=1 only for a credential that needs a touch', () => {
    expect(query(formatOtpauthUri(base))).not.toHaveProperty('touch');
    expect(query(formatOtpauthUri({ ...base, touch: true })).touch).toBe('1');
  });

  it('writes no issuer when there is none', () => {
    for (const issuer of [undefined, '']) {
      const uri = formatOtpauthUri({ ...base, issuer });
      expect(uri.startsWith('otpauth://totp/john.doe%40email.com?')).toBe(true);
      expect(query(uri)).not.toHaveProperty('issuer');
    }
  });

  it.each([
    [{ issuer: 'A:B' }, /issuer/u],
    [{ issuer: undefined, account: 'a:b' }, /account/u],
    [{ account: ' alice' }, /space/u],
    [{ account: '' }, /account/u],
    [{ secret: new Uint8Array() }, /secret/u],
    [{ digits: 9 }, /digits/u],
    [{ digits: 5 }, /digits/u],
    [{ algorithm: 'SHA224' as HashAlgorithm }, /algorithm/u],
    [{ type: 'MOTP' as OathType }, /type/u],
    [{ period: 0 }, /period/u],
    [{ period: 7.5 }, /period/u],
    [{ type: 'HOTP' as OathType, counter: -1 }, /counter/u],
    [{ type: 'HOTP' as OathType, counter: 2 ** 53 }, /counter/u],
    [{ account: 'bad \uD800 surrogate' }, /cannot be written/u],
  ])('rejects %o with BAD_INPUT', (change, pattern) => {
    expect(badInput(() => formatOtpauthUri({ ...base, ...change })).message).toMatch(pattern);
  });
});

describe('otpauth round trip', () => {
  const name = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 });
  const credential = fc
    .record({
      type: fc.constantFrom<OathType>('TOTP', 'HOTP'),
      issuer: fc.option(name.filter((s) => !s.includes(':')), { nil: undefined }),
      account: name,
      algorithm: fc.constantFrom<HashAlgorithm>('SHA1', 'SHA256', 'SHA512'),
      digits: fc.constantFrom(6, 7, 8),
      period: fc.oneof(fc.constant(30), fc.integer({ min: 1, max: 0xffff })),
      counter: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffffffff })),
      touch: fc.boolean(),
      secret: fc.uint8Array({ minLength: 1, maxLength: 64 }),
    })
    // What a key URI cannot carry: a colon in an account with no issuer before it, and leading
    // spaces after the issuer's colon (the format treats them as a separator).
    .filter((c) => (c.issuer === undefined ? !c.account.includes(':') : !c.account.startsWith(' ')));

  it('parse(format(c)) gives c back, and defaults are left out', () => {
    fc.assert(
      fc.property(credential, (c) => {
        const input: CredentialWithSecret = { ...c, counter: c.type === 'HOTP' ? c.counter : undefined };
        const uri = formatOtpauthUri(input);
        const back = parseOtpauthUri(uri);
        expect({ ...back, secret: hex(back.secret) }).toEqual({
          ...input,
          period: c.type === 'TOTP' ? c.period : 30,
          secret: hex(c.secret),
        });

        const params = query(uri);
        expect(params.secret).toMatch(/^[A-Z2-7]+$/u);
        expect('algorithm' in params).toBe(c.algorithm !== 'SHA1');
        expect('digits' in params).toBe(c.digits !== 6);
        expect('period' in params).toBe(c.type === 'TOTP' && c.period !== 30);
        expect('counter' in params).toBe(c.type === 'HOTP');
        expect('touch' in params).toBe(c.touch);
        expect(params.issuer).toBe(c.issuer);
        if (c.issuer !== undefined) expect(uri.startsWith(`otpauth://${c.type.toLowerCase()}/${encodeURIComponent(c.issuer)}:`)).toBe(true);

        // Another reader (the otpauth package on its own) sees the same names and secret.
        const other = URI.parse(uri);
        expect([other.issuer, other.label, other.secret.base32]).toEqual([c.issuer ?? '', c.account, params.secret]);
      }),
      { seed: 20260101, numRuns: 1000 },
    );
  });
});
