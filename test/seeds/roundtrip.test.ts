// Every writer → reader round trip, property-based over random tokens each format accepts; the
// written file is recognised by detectFormat; reading never writes anything.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { PskcProtection, SeedFormatName } from '../../src/seeds/index.js';
import { SEED_FORMATS, SEED_FORMAT_NAMES, detectFormat, seedFormat } from '../../src/seeds/index.js';
import { expectedAfterRoundTrip, plain, tokensArb } from './arbitraries.js';

describe('writer → reader round trip', () => {
  for (const name of SEED_FORMAT_NAMES) {
    it(`${name}: random tokens come back unchanged`, () => {
      const format = seedFormat(name);
      fc.assert(
        fc.property(tokensArb(name), (tokens) => {
          for (const t of tokens) expect(format.accepts(t)).toBeNull();
          const bytes = format.write(tokens);
          const read = format.read(bytes);
          expect(read.map(plain)).toEqual(tokens.map((t) => plain(expectedAfterRoundTrip(name, t))));
          expect(detectFormat(bytes, format.defaultFileName(tokens[0]!.type)).name).toBe(name);
        }),
        { numRuns: 150 },
      );
    });
  }

  const protections: [string, PskcProtection, { key?: Uint8Array; passphrase?: string }][] = [
    ['pre-shared key', { kind: 'psk', key: Buffer.alloc(16, 7) }, { key: Buffer.alloc(16, 7) }],
    ['passphrase', { kind: 'passphrase', passphrase: 'correct horse ✓', iterations: 10 }, { passphrase: 'correct horse ✓' }],
  ];
  for (const [what, protection, readOptions] of protections) {
    it(`pskc with a ${what}: random tokens come back unchanged`, () => {
      fc.assert(
        fc.property(tokensArb('pskc'), (tokens) => {
          const bytes = SEED_FORMATS.pskc.write(tokens, { pskc: protection });
          expect(bytes.toString('utf8')).not.toContain('<pskc:PlainValue>' + Buffer.from(tokens[0]!.secret).toString('base64'));
          const read = SEED_FORMATS.pskc.read(bytes, readOptions);
          expect(read.map(plain)).toEqual(tokens.map((t) => plain(expectedAfterRoundTrip('pskc', t))));
        }),
        { numRuns: 60 },
      );
    });
  }

  it('an empty token list writes a file that readers refuse as having no tokens (no silent empty import)', () => {
    for (const name of ['hexcsv', 'privacyidea', 'otpauth'] as SeedFormatName[]) {
      expect(() => seedFormat(name).read(seedFormat(name).write([]))).toThrow(/no tokens|no otpauth|is empty/u);
    }
  });

  it('numeric serials of one width (with leading zeros) survive every format that takes them', () => {
    const tokens = ['00012345', '00012346', '10012347'].map((serial, i) => ({
      serial,
      secret: Buffer.alloc(20, i + 1),
      type: 'TOTP' as const,
      algorithm: 'SHA1' as const,
      digits: 6,
      period: 30,
      counter: 0,
      upn: `user${i}@contoso.com`,
    }));
    for (const name of ['entra', 'pskc', 'dualshield', 'privacyidea', 'otpauth', 'graph'] as SeedFormatName[]) {
      expect(seedFormat(name).read(seedFormat(name).write(tokens)).map((t) => t.serial)).toEqual(tokens.map((t) => t.serial));
    }
  });
});
