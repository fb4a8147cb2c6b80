// QR codes in image files, found by keytap (jsQR through src/qr) and by Debian's zbarimg (the
// peer): one code in a PNG, the same as a JPEG (written by ImageMagick), two codes on one screen,
// and files that are no image.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { isKeytapError } from '../../src/errors.js';
import { findQrCodes } from '../../src/qr/find.js';
import { MAX_MEGAPIXELS, readImage } from '../../src/qr/image.js';
import { missingTool, skipMessage } from '../platform/desktop.js';
import { tempDir } from '../support/cli.js';
import { finderField, qrPng, screenPng } from '../support/qr-images.js';

const URI_A = 'otpauth://totp/ACME%20Co:alice@example.com?secret=JBSWY3DPEHPK3PXP&issuer=ACME%20Co';
const URI_B = 'otpauth://hotp/Bank:bob?secret=HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ&issuer=Bank&counter=7&digits=8';
const missing = missingTool('zbarimg', 'convert');

/** What zbarimg reads in the file: one text per code, sorted (its order is its own). */
function zbarimg(file: string): string[] {
  // stderr ignored: zbarimg reports its failed attempt to reach the system D-Bus there.
  const out = execFileSync('zbarimg', ['--raw', '--quiet', '-Sdisable', '-Sqrcode.enable', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return out.split('\n').filter((line) => line !== '').sort();
}

async function ours(file: string): Promise<string[]> {
  return (await findQrCodes(readImage(readFileSync(file)))).codes.map((code) => code.text);
}

describe.skipIf(missing !== undefined)(`QR codes in image files, against zbarimg ${skipMessage(missing, missing === 'convert' ? 'imagemagick' : 'zbar-tools')}`, () => {
  const dir = tempDir('keytap-qr-');

  it('one code in a PNG: the same text as zbarimg', async () => {
    const file = join(dir, 'one.png');
    writeFileSync(file, await qrPng(URI_A));
    expect(zbarimg(file)).toEqual([URI_A]);
    expect(await ours(file)).toEqual([URI_A]);
  });

  it('the same code as a JPEG (ImageMagick, quality 80): the same text as zbarimg', async () => {
    const png = join(dir, 'for-jpeg.png');
    const jpeg = join(dir, 'one.jpg');
    writeFileSync(png, await qrPng(URI_B, 5));
    execFileSync('convert', [png, '-quality', '80', jpeg]);
    expect(readFileSync(jpeg).subarray(0, 3)).toEqual(Buffer.from([0xff, 0xd8, 0xff]));
    expect(zbarimg(jpeg)).toEqual([URI_B]);
    expect(await ours(jpeg)).toEqual([URI_B]);
  });

  it('a screen with two codes side by side: both, as zbarimg finds them, in reading order', async () => {
    const file = join(dir, 'two.png');
    writeFileSync(file, await screenPng(1280, 720, [{ text: URI_B, x: 700, y: 150 }, { text: URI_A, x: 120, y: 160 }]));
    expect(zbarimg(file)).toEqual([URI_A, URI_B].sort());
    expect(await ours(file)).toEqual([URI_A, URI_B]);
  });

  it('three codes, one above two: all three', async () => {
    const file = join(dir, 'three.png');
    const texts = ['https://example.com/first', URI_A, URI_B];
    writeFileSync(file, await screenPng(1024, 768, [{ text: texts[0]!, x: 380, y: 20 }, { text: texts[1]!, x: 40, y: 400 }, { text: texts[2]!, x: 560, y: 420 }]));
    expect(zbarimg(file)).toEqual([...texts].sort());
    expect(await ours(file)).toEqual(texts);
  });

  it('a screen without a code: none (zbarimg agrees)', async () => {
    const file = join(dir, 'none.png');
    writeFileSync(file, await screenPng(640, 480, []));
    expect(() => zbarimg(file)).toThrow(); // zbarimg exits 4 when it finds nothing
    expect(await ours(file)).toEqual([]);
  });
});

describe('large screens: shrunk first, then tile by tile, within a time budget', () => {
  it('a small code (about 150 pixels) on a 4K screen is found, and a large one too, in reading order', async () => {
    const image = readImage(await screenPng(3840, 2160, [{ text: URI_B, x: 2900, y: 1700, scale: 4 }, { text: URI_A, x: 300, y: 200, scale: 12 }]));
    // No budget: this is about what is found, and a loaded test machine may take longer.
    const search = await findQrCodes(image, { budgetMs: Infinity });
    expect(search.codes.map((code) => code.text)).toEqual([URI_A, URI_B]);
    // Boxes in the 4K image's own pixels: around each code as drawn (quiet zone included), give or take jsQR's margin.
    const drawn = [
      { x: 300, y: 200, size: PNG.sync.read(await qrPng(URI_A, 12)).width },
      { x: 2900, y: 1700, size: PNG.sync.read(await qrPng(URI_B, 4)).width },
    ];
    search.codes.forEach(({ box }, i) => {
      const { x, y, size } = drawn[i]!;
      for (const [edge, from, to] of [[box.left, x - size / 10, x + size / 4], [box.top, y - size / 10, y + size / 4], [box.right, x + size * 0.75, x + size * 1.1], [box.bottom, y + size * 0.75, y + size * 1.1]] as const) {
        expect(edge).toBeGreaterThanOrEqual(from);
        expect(edge).toBeLessThanOrEqual(to);
      }
    });
  });

  it('the event loop keeps turning while a large image is searched, and an abort stops the search', async () => {
    // Finder patterns all over: jsQR is asked about every window, and each takes its time.
    const image = await finderField(1200, 800);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    try {
      await findQrCodes(image, { budgetMs: Infinity });
    } finally {
      clearInterval(timer);
    }
    // Synchronously, not one tick would have run before the search ended.
    expect(ticks).toBeGreaterThan(3);

    const controller = new AbortController();
    setTimeout(() => controller.abort(), 1);
    await expect(findQrCodes(image, { signal: controller.signal, budgetMs: Infinity })).rejects.toMatchObject({ code: 'CANCELLED' });
  });

  it('stops when its budget is spent, with the codes found until then, and leaves the image as it was', async () => {
    // A clock that moves a second at each look: the budget is spent after a few jsQR calls.
    const clock = (): (() => number) => {
      let ms = 0;
      return () => (ms += 1000);
    };
    const field = await finderField(1920, 1080);
    const before = Buffer.from(field.data);
    const nothing = await findQrCodes(field, { now: clock(), budgetMs: 3500 });
    expect(nothing).toMatchObject({ codes: [], outOfTime: true });
    expect(nothing.elapsedMs).toBeGreaterThanOrEqual(3500);
    expect(Buffer.from(field.data).equals(before)).toBe(true);
    // The code is found by the first call (the shrunk screen); the finder patterns keep the search going past the budget.
    const screen = readImage(await screenPng(1920, 1080, [{ text: URI_A, x: 100, y: 100, scale: 8 }]));
    const withCode = { ...screen, data: Uint8Array.from(screen.data) };
    withCode.data.set(field.data.subarray(1920 * 600 * 4), 1920 * 600 * 4);
    const found = await findQrCodes(withCode, { now: clock(), budgetMs: 2500 });
    expect(found.outOfTime).toBe(true);
    expect(found.codes.map((code) => code.text)).toEqual([URI_A]);
  });
});

/** CRC-32 as PNG chunks use it (ISO 3309), for a header that pngjs accepts. */
function crc32(bytes: Uint8Array): number {
  let crc = ~0;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
  }
  return ~crc >>> 0;
}

function refusal(bytes: Uint8Array): unknown {
  try {
    readImage(bytes);
  } catch (error) {
    return error;
  }
  throw new Error('the image was read');
}

describe('images larger than MAX_MEGAPIXELS', () => {
  afterEach(() => vi.restoreAllMocks());

  it('a small PNG whose IHDR says 60000×60000 is refused from its header, before decoding', async () => {
    const png = Buffer.from(await qrPng(URI_A));
    png.writeUInt32BE(60000, 16);
    png.writeUInt32BE(60000, 20);
    png.writeUInt32BE(crc32(png.subarray(12, 29)), 29);
    const decode = vi.spyOn(PNG.sync, 'read');
    expect(refusal(png)).toMatchObject({ code: 'BAD_INPUT', message: `The image is 60000×60000 pixels; keytap reads QR codes from images of up to ${MAX_MEGAPIXELS} megapixels.` });
    expect(decode).not.toHaveBeenCalled();
  });

  it('a small JPEG whose frame header says 60000×60000 is refused from it, before decoding', () => {
    const small = jpeg.encode({ width: 16, height: 16, data: Buffer.alloc(16 * 16 * 4, 200) }, 80).data;
    const sof = small.indexOf(Buffer.from([0xff, 0xc0]));
    expect(sof).toBeGreaterThan(0);
    small.writeUInt16BE(60000, sof + 5);
    small.writeUInt16BE(60000, sof + 7);
    const decode = vi.spyOn(jpeg, 'decode');
    expect(refusal(small)).toMatchObject({ code: 'BAD_INPUT', message: expect.stringMatching(/^The image is 60000×60000 pixels/) });
    expect(decode).not.toHaveBeenCalled();
    // The header as it was: a 16×16 image, read.
    small.writeUInt16BE(16, sof + 5);
    small.writeUInt16BE(16, sof + 7);
    expect(readImage(small)).toMatchObject({ width: 16, height: 16 });
  });
});

describe('files that are not a PNG or JPEG image', () => {
  it('text, a truncated PNG and a truncated JPEG are BAD_INPUT naming the problem', async () => {
    const png = await qrPng(URI_A);
    const cases: [Uint8Array, RegExp][] = [
      [Buffer.from(URI_A), /not a PNG or JPEG image/],
      [png.subarray(0, 60), /PNG file is damaged/],
      [Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16]), /JPEG file is damaged/],
    ];
    for (const [bytes, message] of cases) {
      let thrown: unknown;
      try {
        readImage(bytes);
      } catch (error) {
        thrown = error;
      }
      expect(isKeytapError(thrown, 'BAD_INPUT'), String(thrown)).toBe(true);
      expect((thrown as Error).message).toMatch(message);
      expect((thrown as Error).message).not.toContain('JBSWY3DP');
    }
  });
});
