// fast-check arbitraries: random tokens each seed format accepts, and what a reader gives back
// for a written token (the fields the format carries, with the defaults for the rest).
import fc from 'fast-check';
import type { HashAlgorithm, SeedFormatName, SeedToken } from '../../src/seeds/index.js';
import { normalizeToken } from '../../src/seeds/index.js';

// A letter first: all-digit serials of mixed widths look like Excel's lost leading zeros.
export const serialArb = fc.stringMatching(/^[A-Z][A-Z0-9-]{0,11}[0-9]$/);
// eslint-disable-next-line no-control-regex -- control characters are what it excludes
const NOT_TEXT = /[\u0000-\u001f\u007f-\u009f\ufffe\uffff]|[\ud800-\udfff]/u;
/** Free text: printable Unicode, trimmed, non-empty; no comma/quote when the format needs that. */
export const textArb = (noComma = false): fc.Arbitrary<string> =>
  fc
    .string({ unit: fc.oneof(fc.constantFrom('a', 'Z', ' ', '&', '<', '>', '"', "'", ',', ':', 'é', '€', '😀', '-', '.', '@'), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 })), minLength: 1, maxLength: 24 })
    .map((s) => s.trim())
    .filter((s) => s.length > 0 && !NOT_TEXT.test(s) && (!noComma || !/[,"]/u.test(s)));
export const upnArb = fc
  .tuple(fc.stringMatching(/^[a-z][a-z0-9]{0,8}(\.[a-z0-9]{1,6})?$/), fc.stringMatching(/^[a-z][a-z0-9-]{0,8}[a-z0-9]$/), fc.constantFrom('com', 'org', 'onmicrosoft.com'))
  .map(([user, domain, tld]) => `${user}@${domain}.${tld}`);
const guidArb = fc.uuid();
const optional = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.option(arb, { nil: undefined });
const secretArb = (min: number, max: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ minLength: min, maxLength: max });
const algorithmArb = fc.constantFrom<HashAlgorithm>('SHA1', 'SHA256', 'SHA512');
const counterArb = fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 0, max: 0xffffffff }));

function token(fields: Partial<SeedToken> & Pick<SeedToken, 'serial' | 'secret' | 'type' | 'algorithm' | 'digits' | 'period' | 'counter'>): SeedToken {
  return normalizeToken(fields);
}

export function tokenArb(format: SeedFormatName): fc.Arbitrary<SeedToken> {
  switch (format) {
    case 'entra':
      return fc
        .record({
          serial: serialArb,
          secret: secretArb(1, 80),
          period: fc.constantFrom(30, 60),
          upn: upnArb,
          manufacturer: optional(textArb(true)),
          model: optional(textArb(true)),
        })
        .map((t) => token({ ...t, type: 'TOTP', algorithm: 'SHA1', digits: 6, counter: 0 }));
    case 'graph':
      return fc
        .record({
          serial: serialArb,
          secret: secretArb(1, 80),
          algorithm: fc.constantFrom<HashAlgorithm>('SHA1', 'SHA256'),
          period: fc.constantFrom(30, 60),
          upn: optional(fc.oneof(guidArb, upnArb)),
          account: optional(textArb()),
          manufacturer: optional(textArb()),
          model: optional(textArb()),
        })
        .map((t) => token({ ...t, type: 'TOTP', digits: 6, counter: 0 }));
    case 'pskc':
      return fc
        .record({
          serial: serialArb,
          secret: secretArb(1, 64),
          type: fc.constantFrom('TOTP' as const, 'HOTP' as const),
          algorithm: algorithmArb,
          digits: fc.integer({ min: 6, max: 8 }),
          period: fc.integer({ min: 1, max: 0xffff }),
          counter: counterArb,
          upn: optional(upnArb),
          issuer: optional(textArb()),
          account: optional(textArb()),
          manufacturer: optional(textArb()),
          model: optional(textArb()),
        })
        .map(token);
    case 'dualshield':
      return fc
        .record({
          serial: serialArb,
          secret: secretArb(1, 64),
          type: fc.constantFrom('TOTP' as const, 'HOTP' as const),
          algorithm: algorithmArb,
          digits: fc.constantFrom(6, 8),
          period: fc.constantFrom(30, 60),
        })
        .map((t) => token({ ...t, counter: 0 }));
    case 'hexcsv':
      return fc.record({ serial: serialArb, secret: secretArb(1, 64), counter: counterArb }).map((t) => token({ ...t, type: 'HOTP', algorithm: 'SHA1', digits: 6, period: 30 }));
    case 'privacyidea':
      return fc
        .record({
          serial: serialArb,
          algorithm: algorithmArb,
          sha1Length: fc.integer({ min: 1, max: 70 }).filter((n) => ![28, 32, 48, 64].includes(n)),
          type: fc.constantFrom('TOTP' as const, 'HOTP' as const),
          digits: fc.constantFrom(6, 8),
          period: fc.constantFrom(30, 60),
          counter: counterArb,
          bytes: secretArb(70, 70),
        })
        .map(({ algorithm, sha1Length, bytes, ...t }) => {
          const length = algorithm === 'SHA256' ? 32 : algorithm === 'SHA512' ? 64 : sha1Length;
          return token({ ...t, algorithm, secret: bytes.slice(0, length) });
        });
    case 'otpauth':
      return fc
        .record({
          serial: serialArb,
          secret: secretArb(1, 64),
          type: fc.constantFrom('TOTP' as const, 'HOTP' as const),
          algorithm: algorithmArb,
          digits: fc.integer({ min: 6, max: 8 }),
          period: fc.integer({ min: 1, max: 0xffff }),
          counter: counterArb,
          issuer: optional(textArb().filter((s) => !s.includes(':'))),
          account: optional(textArb().filter((s) => !s.includes(':'))),
          upn: optional(upnArb),
        })
        .map(token);
  }
}

/** Tokens for one file: unique serials; DualShield files hold one kind of token. */
export function tokensArb(format: SeedFormatName, maxLength = 8): fc.Arbitrary<SeedToken[]> {
  const list = fc.uniqueArray(tokenArb(format), { minLength: 1, maxLength, selector: (t) => t.serial });
  if (format !== 'dualshield') return list;
  return list.map((tokens) => tokens.map((t) => ({ ...tokens[0]!, serial: t.serial, secret: t.secret })));
}

/** What reading a written token gives back. */
export function expectedAfterRoundTrip(format: SeedFormatName, t: SeedToken): SeedToken {
  const base = { serial: t.serial, secret: t.secret, type: t.type, algorithm: t.algorithm, digits: t.digits, period: t.period, counter: t.counter };
  switch (format) {
    case 'pskc':
      return { ...base, upn: t.upn, issuer: t.issuer, account: t.account, manufacturer: t.manufacturer, model: t.model };
    case 'entra':
      return { ...base, upn: t.upn, manufacturer: t.manufacturer ?? 'Unknown', model: t.model ?? 'Unknown' };
    case 'graph':
      return {
        ...base,
        upn: t.upn && /^[0-9a-f-]{36}$/iu.test(t.upn) ? t.upn : undefined,
        account: t.account,
        manufacturer: t.manufacturer ?? 'Unknown',
        model: t.model ?? 'Unknown',
      };
    case 'otpauth':
      return { ...base, issuer: t.issuer, account: t.account ?? t.upn ?? t.serial };
    case 'privacyidea':
      return { ...base, upn: undefined };
    default:
      return base;
  }
}

/** Drops undefined fields so toEqual compares what is there. */
export function plain(t: SeedToken): Record<string, unknown> {
  return Object.fromEntries(Object.entries({ ...t, secret: Buffer.from(t.secret).toString('hex') }).filter(([, v]) => v !== undefined));
}
