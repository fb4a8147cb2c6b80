// Damaged seed files never put a secret into an error: every reader (and format detection, and the
// Entra upload check) gets files keytap wrote, damaged the way files are damaged — characters,
// columns, tags and lines deleted, duplicated or swapped — and no message, hint, detail or warning
// may hold 6 or more consecutive characters of any secret in the file, in Base32, hex (either case)
// or Base64. fast-check with a fixed seed, so a failure reproduces (and shrinks).
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KeytapError } from '../../src/errors.js';
import { base32Encode } from '../../src/otp/encoding.js';
import type { SeedFormatName, SeedReadOptions, SeedToken, SeedWarning, SeedWriteOptions } from '../../src/seeds/index.js';
import { checkEntraCsv, detectFormat, seedFormat } from '../../src/seeds/index.js';
import { tokensArb } from './arbitraries.js';

const RUNS = 2000;
const SEED = 20260902;
const PSK = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');
const PASSPHRASE = 'correct horse battery';

/** Every run of 6 characters of `text`. */
function windows(text: string): string[] {
  const out: string[] = [];
  for (let i = 0; i + 6 <= text.length; i++) out.push(text.slice(i, i + 6));
  return out;
}

/** What must never appear: 6-character pieces of each secret in each encoding a file or a message could hold. */
function forbiddenPieces(secrets: readonly Uint8Array[]): Set<string> {
  const pieces = new Set<string>();
  for (const secret of secrets) {
    const bytes = Buffer.from(secret);
    const hex = bytes.toString('hex');
    for (const text of [base32Encode(secret), hex, hex.toUpperCase(), bytes.toString('base64').replace(/=+$/u, '')]) {
      for (const piece of windows(text)) pieces.add(piece);
    }
  }
  return pieces;
}

function leaks(text: string, pieces: Set<string>): string | undefined {
  return windows(text).find((w) => pieces.has(w));
}

type Mutation = { kind: 'char'; op: 'delete' | 'duplicate' | 'swap'; at: number; nextToValue: boolean } | { kind: 'column' | 'tag' | 'line'; op: 'delete' | 'duplicate' | 'swap'; at: number; with: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('char' as const), op: fc.constantFrom('delete' as const, 'duplicate' as const, 'swap' as const), at: fc.nat(), nextToValue: fc.boolean() }),
  fc.record({ kind: fc.constantFrom('column' as const, 'tag' as const, 'line' as const), op: fc.constantFrom('delete' as const, 'duplicate' as const, 'swap' as const), at: fc.nat(), with: fc.nat() }),
);

/** Characters that delimit fields: damage there shifts one field into the next. */
const STRUCTURAL = /[<>"=,/:&?\n]/gu;
const NEXT_TO_VALUE = /[A-Za-z0-9+/]{16,}=*/gu;

function edit<T>(items: T[], op: Mutation['op'], at: number, other: number): T[] {
  if (items.length === 0) return items;
  const i = at % items.length;
  const j = other % items.length;
  const out = [...items];
  if (op === 'delete') out.splice(i, 1);
  else if (op === 'duplicate') out.splice(i, 0, items[i]!);
  else [out[i], out[j]] = [out[j]!, out[i]!];
  return out;
}

function mutate(text: string, m: Mutation): string {
  switch (m.kind) {
    case 'char': {
      // At a delimiter, half of the time one right next to a long value (most likely a secret), where
      // a deletion or a swap runs that value into the field or tag beside it; a third of the time anywhere.
      let positions = [...text.matchAll(NEXT_TO_VALUE)].flatMap((match) => [match.index - 1, match.index + match[0].length]).filter((i) => i >= 0 && i < text.length);
      if (!m.nextToValue || positions.length === 0) positions = [...text.matchAll(STRUCTURAL)].map((match) => match.index);
      if (m.at % 3 === 0 || positions.length === 0) positions = text.split('').map((_, i) => i);
      if (positions.length === 0) return text;
      const i = positions[m.at % positions.length]!;
      const chars = text.split('');
      if (m.op === 'delete') chars.splice(i, 1);
      else if (m.op === 'duplicate') chars.splice(i, 0, chars[i]!);
      else if (i + 1 < chars.length) [chars[i], chars[i + 1]] = [chars[i + 1]!, chars[i]!];
      return chars.join('');
    }
    case 'line': {
      const lines = text.split('\n');
      return edit(lines, m.op, m.at, m.with).join('\n');
    }
    case 'column': {
      const lines = text.split('\n');
      const n = m.at % Math.max(1, lines.length);
      const separator = lines[n]?.includes(', ') ? ', ' : lines[n]?.includes(',') ? ',' : '&';
      lines[n] = edit((lines[n] ?? '').split(separator), m.op, Math.floor(m.at / 7), m.with).join(separator);
      return lines.join('\n');
    }
    case 'tag': {
      // Tags (XML), or JSON members, as units.
      const parts = text.split(/(<[^<>]*>|"[^"]*"\s*:)/u);
      const tagIndexes = parts.map((p, i) => (i % 2 === 1 ? i : -1)).filter((i) => i >= 0);
      if (tagIndexes.length === 0) return text;
      const i = tagIndexes[m.at % tagIndexes.length]!;
      const j = tagIndexes[m.with % tagIndexes.length]!;
      const out = [...parts];
      if (m.op === 'delete') out[i] = '';
      else if (m.op === 'duplicate') out[i] = `${parts[i]}${parts[i]}`;
      else [out[i], out[j]] = [parts[j]!, parts[i]!];
      return out.join('');
    }
  }
}

/** The error and every warning, as a user or a log could see them. */
function everythingSaid(read: (onWarning: (w: SeedWarning) => void) => unknown): string[] {
  const said: string[] = [];
  const onWarning = (w: SeedWarning): void => void said.push(JSON.stringify(w));
  try {
    read(onWarning);
  } catch (error) {
    if (!(error instanceof KeytapError)) throw error;
    said.push(JSON.stringify({ code: error.code, message: error.message, hint: error.hint, detail: error.detail }));
  }
  return said;
}

interface FuzzCase {
  label: string;
  format: SeedFormatName;
  write?: SeedWriteOptions;
  read?: SeedReadOptions;
  /** Turns what the writer wrote into the variant under test. */
  variant?: (text: string) => string;
}

const CASES: FuzzCase[] = [
  { label: 'Entra CSV', format: 'entra' },
  { label: 'hex CSV', format: 'hexcsv' },
  { label: 'privacyIDEA CSV', format: 'privacyidea' },
  {
    label: 'privacyIDEA CSV, version 2',
    format: 'privacyidea',
    variant: (text) => `# version: 2\n${text.replace(/^(?=.)/gmu, 'alice@contoso.com, ldap, realm1, ')}`,
  },
  { label: 'DualShield XML (HEX)', format: 'dualshield' },
  {
    label: 'DualShield XML (BASE64)',
    format: 'dualshield',
    variant: (text) => text.replace('<encode>HEX', '<encode>BASE64').replace(/<seed>([0-9A-F]+)</gu, (_, hex: string) => `<seed>${Buffer.from(hex, 'hex').toString('base64')}<`),
  },
  {
    label: 'DualShield XML (BASE32)',
    format: 'dualshield',
    variant: (text) => text.replace('<encode>HEX', '<encode>BASE32').replace(/<seed>([0-9A-F]+)</gu, (_, hex: string) => `<seed>${base32Encode(Buffer.from(hex, 'hex'))}<`),
  },
  { label: 'PSKC, plain', format: 'pskc' },
  { label: 'PSKC, pre-shared key', format: 'pskc', write: { pskc: { kind: 'psk', key: PSK } }, read: { key: PSK } },
  { label: 'PSKC, passphrase', format: 'pskc', write: { pskc: { kind: 'passphrase', passphrase: PASSPHRASE, iterations: 10 } }, read: { passphrase: PASSPHRASE } },
  { label: 'Graph JSON', format: 'graph' },
  { label: 'otpauth URIs', format: 'otpauth' },
];

/**
 * Tokens with secrets of 16 bytes or more (RFC 4226's minimum; a shorter secret is short enough to
 * pass for a serial or a model name, which messages may show): a shorter one is lengthened to 20
 * bytes, a length every format takes for SHA-1 and that privacyIDEA reads as SHA-1.
 */
const strongTokens = (format: SeedFormatName): fc.Arbitrary<SeedToken[]> =>
  tokensArb(format, 3).map((tokens) =>
    tokens.map((t) => (t.secret.length >= 16 ? t : { ...t, secret: createHash('sha256').update(t.serial).update(t.secret).digest().subarray(0, 20) })),
  );

describe('no secret in any message about a damaged seed file', () => {
  it.each(CASES)('$label', ({ format, write, read, variant }) => {
    const seedFormatUnderTest = seedFormat(format);
    const secretsOfOptions = [PSK, Buffer.from(PASSPHRASE)];
    fc.assert(
      fc.property(strongTokens(format), fc.array(mutationArb, { minLength: 1, maxLength: 3 }), (tokens, mutations) => {
        const written = seedFormatUnderTest.write(tokens, { ...write, randomBytes: (n) => Buffer.alloc(n, 7) }).toString('utf8');
        const damaged = mutations.reduce(mutate, variant ? variant(written) : written);
        const bytes = Buffer.from(damaged, 'utf8');
        const pieces = forbiddenPieces([...tokens.map((t) => t.secret), ...secretsOfOptions]);
        const said = [
          ...everythingSaid((onWarning) => seedFormatUnderTest.read(bytes, { ...read, onWarning })),
          ...everythingSaid((onWarning) => detectFormat(bytes, 'seeds.txt').read(bytes, { ...read, onWarning })),
          ...(format === 'entra' ? [JSON.stringify(checkEntraCsv(bytes))] : []),
        ];
        for (const text of said) {
          const piece = leaks(text, pieces);
          expect(piece === undefined ? undefined : `${piece} in ${text}`).toBeUndefined();
        }
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });

  it('the damage of the issue: one ">" deleted, a Base64 PlainValue, swapped and shifted columns', () => {
    const secret = Buffer.from('Hello!\u00de\u00ad\u00be\u00efHello!\u00de\u00ad\u00be\u00ef', 'latin1');
    const token: SeedToken = { serial: '10001001', secret, type: 'TOTP', algorithm: 'SHA1', digits: 6, period: 30, counter: 0, upn: 'alice@contoso.com' };
    const pieces = forbiddenPieces([secret]);
    const said = (format: SeedFormatName, damage: (text: string) => string): string => {
      const text = damage(seedFormat(format).write([token]).toString('utf8'));
      const all = everythingSaid((onWarning) => seedFormat(format).read(Buffer.from(text), { onWarning }));
      expect(all.length).toBeGreaterThan(0);
      return all.join('\n');
    };
    const cases = [
      said('dualshield', (t) => t.replace('<seed>', '<seed')),
      said('pskc', (t) => t.replace('<pskc:PlainValue>', '<pskc:PlainValue')),
      said('entra', (t) => {
        const lines = t.split('\r\n');
        const fields = lines[1]!.split(',');
        [fields[2], fields[3]] = [fields[3]!, fields[2]!];
        lines[1] = fields.join(',');
        return lines.join('\r\n');
      }),
      said('privacyidea', (t) => t.replace('10001001, ', '10001001, 10001001, ').replace(', totp, 6, 30', '')),
    ];
    for (const text of cases) expect(leaks(text, pieces)).toBeUndefined();
    expect(cases[0]).toMatch(/line \d+/u);
    expect(cases[2]).toMatch(/line 2: the time interval/u);
    expect(cases[3]).toMatch(/line 1: the token type/u);
  });
});
