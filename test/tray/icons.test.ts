// The committed icons: every state at every size, what the generator would draw today, readable by
// our PNG decoder, ICO files Windows can parse, monochrome macOS templates, and found from the
// source tree, the bundle and an explicit directory.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { deflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { TRAY_ICONS } from '../../src/tray/model.js';
import { PIXMAP_SIZES, directoryIconSource, findIconsDir, iconFileName, loadPixmaps } from '../../src/tray/icons.js';
import { decodePng, rgbaToArgb32 } from '../../src/tray/png.js';
// @ts-expect-error build/icons.mjs is plain JS without types
import { encodePng, rasterise } from '../../build/icons.mjs';

const ICONS = resolve(import.meta.dirname, '../../icons');
const draw = rasterise as (state: string, size: number, template?: boolean) => Buffer;
const encode = encodePng as (w: number, h: number, rgba: Buffer) => Buffer;

describe('icons/', () => {
  it('holds every state at every size, exactly as build/icons.mjs draws them', () => {
    for (const icon of TRAY_ICONS) {
      for (const size of PIXMAP_SIZES) {
        const png = readFileSync(join(ICONS, `${icon}-${size}.png`));
        expect(png.equals(encode(size, size, draw(icon, size))), `${icon}-${size}.png is stale: run node build/icons.mjs`).toBe(true);
        const image = decodePng(png);
        expect([image.width, image.height]).toEqual([size, size]);
      }
    }
  });

  it('states differ from each other at 16 px', () => {
    const pixels = TRAY_ICONS.map((icon) => decodePng(readFileSync(join(ICONS, `${icon}-16.png`))).rgba.toString('hex'));
    expect(new Set(pixels).size).toBe(TRAY_ICONS.length);
  });

  it('ICO files list PNG entries from 16 to 64 px that decode to their declared size', () => {
    for (const icon of TRAY_ICONS) {
      const ico = readFileSync(join(ICONS, `${icon}.ico`));
      expect([ico.readUInt16LE(0), ico.readUInt16LE(2)]).toEqual([0, 1]);
      const count = ico.readUInt16LE(4);
      const sizes = [];
      for (let i = 0; i < count; i++) {
        const e = 6 + 16 * i;
        const size = ico[e]!;
        const png = ico.subarray(ico.readUInt32LE(e + 12), ico.readUInt32LE(e + 12) + ico.readUInt32LE(e + 8));
        const image = decodePng(png);
        expect([image.width, image.height]).toEqual([size, size]);
        sizes.push(size);
      }
      expect(sizes).toEqual(expect.arrayContaining([16, 24, 32, 48, 64]));
    }
  });

  it('macOS templates are black with alpha only, at 16 and 32 px', () => {
    for (const icon of TRAY_ICONS) {
      for (const [file, size] of [[`${icon}Template.png`, 16], [`${icon}Template@2x.png`, 32]] as const) {
        const image = decodePng(readFileSync(join(ICONS, file)));
        expect(image.width).toBe(size);
        for (let i = 0; i < image.rgba.length; i += 4) {
          if (image.rgba[i + 3]! > 0) expect([image.rgba[i], image.rgba[i + 1], image.rgba[i + 2]]).toEqual([0, 0, 0]);
        }
      }
    }
  });

  it('picks the platform file', () => {
    expect(iconFileName('touch', 'win32')).toBe('touch.ico');
    expect(iconFileName('touch', 'darwin')).toBe('touchTemplate@2x.png');
    expect(iconFileName('touch', 'linux')).toBe('touch-22.png');
  });
});

describe('PNG decoder', () => {
  it('undoes every row filter', () => {
    // 2×2 RGBA, rows written with filters 1 (Sub) and 4 (Paeth) by hand.
    const pixels = Buffer.from([10, 20, 30, 255, 40, 50, 60, 128, 70, 80, 90, 0, 5, 6, 7, 8]);
    const paeth = (a: number, b: number, c: number) => {
      const p = a + b - c;
      const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)];
      return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    };
    const raw = [1, ...pixels.subarray(0, 8).map((v, i) => (v - (i >= 4 ? pixels[i - 4]! : 0)) & 0xff)];
    raw.push(4, ...pixels.subarray(8, 16).map((v, i) => (v - paeth(i >= 4 ? pixels[8 + i - 4]! : 0, pixels[i]!, i >= 4 ? pixels[i - 4]! : 0)) & 0xff));
    const good = encode(2, 2, pixels);
    // Swap the IDAT of a plain encoding for the filtered one (CRCs are not checked by the decoder).
    const idatAt = good.indexOf('IDAT') - 4;
    const idat = deflateSync(Buffer.from(raw));
    const head = Buffer.alloc(8);
    head.writeUInt32BE(idat.length, 0);
    head.write('IDAT', 4);
    const png = Buffer.concat([good.subarray(0, idatAt), head, idat, Buffer.alloc(4), good.subarray(good.indexOf('IEND') - 4)]);
    expect(decodePng(png).rgba).toEqual(pixels);
  });

  it('refuses what it does not decode', () => {
    expect(() => decodePng(Buffer.from('GIF89a'))).toThrow(/not a PNG/);
    const rgb = encode(1, 1, Buffer.from([1, 2, 3, 4]));
    rgb[8 + 8 + 9] = 2; // colour type 2 (RGB) in IHDR
    expect(() => decodePng(rgb)).toThrow(/only 8-bit RGBA/);
  });

  it('converts RGBA to network-order ARGB32', () => {
    expect([...rgbaToArgb32(Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]))]).toEqual([4, 1, 2, 3, 8, 5, 6, 7]);
  });
});

describe('finding the icons', () => {
  it('from the source tree, and from $KEYTAP_ICONS_DIR', () => {
    expect(findIconsDir()).toBe(ICONS);
    process.env.KEYTAP_ICONS_DIR = '/elsewhere';
    try {
      expect(findIconsDir()).toBe('/elsewhere');
    } finally {
      delete process.env.KEYTAP_ICONS_DIR;
    }
    const pixmaps = loadPixmaps('idle', directoryIconSource(ICONS));
    expect(pixmaps.map((p) => p.width)).toEqual([...PIXMAP_SIZES]);
    expect(loadPixmaps('idle', directoryIconSource('/nonexistent'))).toEqual([]);
  });

  it('from the bundle: dist/keytap.cjs finds icons/ next to dist/', () => {
    // global-setup built dist/keytap.cjs; run a snippet through the same resolution in CommonJS.
    const out = execFileSync(process.execPath, ['-e', `
      const { build } = require('esbuild');
      build({ entryPoints: ['src/tray/icons.ts'], bundle: true, platform: 'node', format: 'cjs', outfile: 'dist/.icons-probe.cjs', logLevel: 'error' })
        .then(() => { const m = require('./dist/.icons-probe.cjs'); process.argv[1] = '/nowhere/x.js'; console.log(m.findIconsDir()); require('fs').rmSync('dist/.icons-probe.cjs'); });
    `], { cwd: resolve(import.meta.dirname, '../..'), encoding: 'utf8' });
    expect(out.trim()).toBe(ICONS);
  });
});
