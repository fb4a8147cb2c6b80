// Huge seed files: above MAX_SEED_FILE_BYTES every reader refuses before decoding; a line of a
// million commas is counted, not split; a broken file stops after 1000 problems; the first byte
// that is not UTF-8 is found on the right line after one decode. Memory and time figures are
// bench/seeds-hostile.ts's (npm run bench -- seeds-hostile), not asserted here.
import { describe, expect, it } from 'vitest';
import { KeytapError } from '../../src/errors.js';
import type { SeedFormatName } from '../../src/seeds/index.js';
import { MAX_SEED_FILE_BYTES, SEED_FORMAT_NAMES, checkEntraCsv, seedFormat } from '../../src/seeds/index.js';

function message(format: SeedFormatName, bytes: Uint8Array): string {
  try {
    seedFormat(format).read(bytes);
  } catch (error) {
    expect(error).toBeInstanceOf(KeytapError);
    return (error as KeytapError).message;
  }
  throw new Error(`${format} read the file`);
}

describe('the size limit', () => {
  it.each(SEED_FORMAT_NAMES)('%s: one byte over it is refused, saying so', (format) => {
    const bytes = Buffer.alloc(MAX_SEED_FILE_BYTES + 1, ',');
    expect(message(format, bytes)).toMatch(/is 32\.1 MB; keytap reads seed files of up to 32 MB/u);
  });

  it('seeds check says the same, on line 1', () => {
    expect(checkEntraCsv(Buffer.alloc(MAX_SEED_FILE_BYTES + 1, ',')).problems).toEqual([{ line: 1, message: expect.stringMatching(/up to 32 MB/u) as string }]);
  });
});

describe('a line of a million commas', () => {
  it.each([
    ['entra', /line 2: the line has 1000001 fields; it needs 6/u],
    ['hexcsv', /line 1: the line has 1000001 fields; it needs serial,hexseed\[,counter\]/u],
    ['privacyidea', /line 1: the line has 1000001 fields; it needs serial, seed/u],
  ] as const)('%s: refused with the number of fields', (format, expected) => {
    const header = format === 'entra' ? 'upn,serial number,secret key,time interval,manufacturer,model\n' : '';
    expect(message(format, Buffer.from(`${header}${','.repeat(1_000_000)}\n`))).toMatch(expected);
  });
});

describe('millions of tiny structures', () => {
  it('Graph JSON: refused before parsing, saying why', () => {
    expect(message('graph', Buffer.from(`[${'{},'.repeat(600_000)}{}]`))).toMatch(/has more than 500,000 objects and arrays, more than any seed file/u);
    expect(message('graph', Buffer.from(`[${'1,'.repeat(4_000_000)}1]`))).toMatch(/has more than 4,000,000 values/u);
  });

  it('XML: refused at the element after the millionth, with its line', () => {
    expect(message('pskc', Buffer.from(`<KeyContainer>\n${'<a/>'.repeat(1_000_001)}</KeyContainer>`))).toMatch(/line 2: the file has more than 1,000,000 elements, more than any seed file/u);
  });
});

describe('a file with problems on every line', () => {
  it('stops after 1000 and says so', () => {
    const text = 'A,B\n'.repeat(5000);
    const said = message('hexcsv', Buffer.from(text));
    expect(said).toMatch(/has 1001 problems/u);
    const result = checkEntraCsv(Buffer.from(`upn,serial number,secret key,time interval,manufacturer,model\n${'x\n'.repeat(5000)}`));
    expect(result.problems).toHaveLength(1001);
    expect(result.problems.at(-1)).toEqual({ line: 1002, message: 'more than 1000 problems; the rest of the file was not looked at' });
  });
});

describe('the first byte that is not UTF-8', () => {
  const lines = (n: number): Buffer => Buffer.from('a@b.com,1,GEZDGNBV,30,V,M\n'.repeat(n));

  it('is found on its line at the end of a large file, after real U+FFFD and multi-byte characters', () => {
    const bytes = Buffer.concat([Buffer.from('upn,serial number,secret key,time interval,manufacturer,model\n'), Buffer.from('j\u00fcrgen\uFFFD€😀\n'), lines(200_000), Buffer.from('x\xff\n', 'latin1')]);
    expect(message('entra', bytes)).toMatch(/not UTF-8: line 200003 has a byte that is not valid UTF-8 \(it looks like Latin-1/u);
  });

  it.each([
    ['a cut-off sequence', Buffer.from([0xe2, 0x82, 0x0a])],
    ['a lone continuation byte', Buffer.from([0x80])],
    ['an overlong encoding', Buffer.from([0xc0, 0xaf])],
    ['a surrogate', Buffer.from([0xed, 0xa0, 0x80])],
  ])('%s on line 3', (_what, bad) => {
    const bytes = Buffer.concat([Buffer.from('A1,00\n\uFFFD,00\n'), bad, Buffer.from('\nA2,00\n')]);
    expect(message('hexcsv', bytes)).toMatch(/not UTF-8: line 3 has a byte/u);
  });
});
