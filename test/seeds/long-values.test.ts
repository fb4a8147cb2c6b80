// Long runs in a seed file are read (or refused with the right message) in time proportional to
// their length: a run of "=" followed by one more character in the secret field of every reader,
// a start tag with 50,000 attributes, and 20,000 namespace prefixes in scope of 20,000 elements.
// These inputs took seconds to minutes when a regular expression backtracked over the run or a
// check went over every earlier attribute; the figures are from bench/seeds-hostile.ts. The timeout
// is only there so that a quadratic reader fails instead of hanging.
import { describe, expect, it } from 'vitest';
import { KeytapError } from '../../src/errors.js';
import type { SeedFormatName } from '../../src/seeds/index.js';
import { seedFormat } from '../../src/seeds/index.js';
import { HOSTILE_PADDING, hostileAttributes, hostileNamespaces } from './hostile-inputs.js';

const MILLION = 1_000_000;

function message(format: SeedFormatName, text: string): string {
  try {
    seedFormat(format).read(Buffer.from(text, 'utf8'));
  } catch (error) {
    expect(error).toBeInstanceOf(KeytapError);
    return (error as KeytapError).message;
  }
  throw new Error(`${format} read the file`);
}

describe('a million "=" and one more character in the secret field', () => {
  it.each([
    ['entra', /line 2: the secret key has characters other than A–Z and 2–7/u],
    ['hexcsv', /line 1: the seed is not hex/u],
    ['privacyidea', /line 1: the seed is not hex/u],
    ['graph', /value\[0\]\.secretKey is not Base32/u],
    ['otpauth', /line 1: The otpauth URI's secret parameter is not valid Base32/u],
    ['dualshield', /token \(line 1\): the seed is not valid Base32/u],
    ['pskc', /PlainValue \(line 1\): the PlainValue is not valid Base64/u],
  ] as const)('%s: refused, saying what is wrong', { timeout: 20_000 }, (format, expected) => {
    expect(message(format, HOSTILE_PADDING[format](MILLION))).toMatch(expected);
  });
});

describe('XML with very many attributes or namespaces', () => {
  it('50,000 attributes on one element: a PSKC file still reads', { timeout: 20_000 }, () => {
    const tokens = seedFormat('pskc').read(Buffer.from(hostileAttributes(50_000), 'utf8'));
    expect(tokens.map((t) => t.serial)).toEqual(['10001001']);
  });

  it('50,000 attributes with a repeat at the end: refused as a repeated attribute', { timeout: 20_000 }, () => {
    expect(message('pskc', hostileAttributes(50_000, true))).toMatch(/line 1: an attribute appears twice in the start tag on line 1/u);
  });

  it('20,000 prefixes declared on the root, 20,000 elements that each declare one more: reads', { timeout: 20_000 }, () => {
    expect(seedFormat('pskc').read(Buffer.from(hostileNamespaces(20_000), 'utf8'))).toHaveLength(1);
  });
});
