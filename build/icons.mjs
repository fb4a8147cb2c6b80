// Draws the tray icons into icons/ (run: node build/icons.mjs). Pure JS on purpose: no image
// tool or font is needed to regenerate them, and the output is byte-for-byte reproducible.
//
// Every icon is a key silhouette (round bow with a hole, shaft, two teeth) drawn from shapes in a
// unit square, rasterised with 8×8 supersampling so small sizes stay smooth. States:
//   idle  — grey key: running, no key plugged in
//   key   — blue key: a key is present
//   touch — dark key on an amber disc: waiting for a touch (must stand out at 16 px)
//   error — grey key with a red "!" badge
// Outputs, per state: <state>-<size>.png (16…64, RGBA, for StatusNotifierItem pixmaps and Linux),
// <state>.ico (PNG-compressed entries, for Windows), <state>Template.png (16) and
// <state>Template@2x.png (32): black + alpha only, for macOS template images.
import { Buffer } from 'node:buffer';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import process from 'node:process';
import { deflateSync } from 'node:zlib';

const OUT = join(dirname(fileURLToPath(import.meta.url)), '..', 'icons');
export const PNG_SIZES = [16, 22, 24, 32, 48, 64];
export const ICO_SIZES = [16, 20, 24, 32, 40, 48, 64];
const SAMPLES = 8;

// ---- shapes: (x, y) in [0,1]² → inside? ----
const circle = (cx, cy, r) => (x, y) => (x - cx) ** 2 + (y - cy) ** 2 <= r * r;
const rect = (x0, y0, x1, y1) => (x, y) => x >= x0 && x <= x1 && y >= y0 && y <= y1;
const union = (...shapes) => (x, y) => shapes.some((s) => s(x, y));
const minus = (a, b) => (x, y) => a(x, y) && !b(x, y);

/** The key, horizontal, bow on the left; `scale` shrinks it around (cx, cy) for badges/backgrounds. */
function keyShape(scale = 1, cx = 0.5, cy = 0.5) {
  const bow = circle(0.27, 0.5, 0.23);
  const hole = circle(0.24, 0.5, 0.085);
  const shaft = rect(0.42, 0.425, 0.95, 0.575);
  const tooth1 = rect(0.68, 0.5, 0.77, 0.72);
  const tooth2 = rect(0.84, 0.5, 0.95, 0.68);
  const key = minus(union(bow, shaft, tooth1, tooth2), hole);
  return (x, y) => key((x - cx) / scale + 0.5, (y - cy) / scale + 0.5);
}

/** A red badge with a white "!" in the lower right corner. */
function badge() {
  const disc = circle(0.74, 0.74, 0.26);
  const bar = rect(0.71, 0.56, 0.77, 0.79);
  const dot = rect(0.71, 0.84, 0.77, 0.9);
  return { disc, mark: union(bar, dot) };
}

const GREY = [0x8c, 0x96, 0xa6, 255];
const BLUE = [0x25, 0x7c, 0xf0, 255];
const AMBER = [0xf5, 0x9e, 0x0b, 255];
const INK = [0x1f, 0x29, 0x37, 255];
const RED = [0xdc, 0x26, 0x26, 255];
const WHITE = [255, 255, 255, 255];
const BLACK = [0, 0, 0, 255];

/** Layers (shape, colour), painted in order; a colour of null punches a transparent hole. */
function layers(state, template) {
  const key = keyShape();
  const { disc, mark } = badge();
  const c = (colour) => (template ? BLACK : colour);
  switch (state) {
    case 'idle':
      // Template: a faint key, so "no key" reads differently from "key present" in a mono menu bar.
      return template ? [[key, [0, 0, 0, 110]]] : [[key, GREY]];
    case 'key':
      return [[key, c(BLUE)]];
    case 'touch': {
      const ring = circle(0.5, 0.5, 0.5);
      const small = keyShape(0.78);
      return template
        ? [[ring, BLACK], [small, null]]
        : [[ring, AMBER], [small, INK]];
    }
    case 'error': {
      const gap = circle(0.74, 0.74, 0.32);
      return template
        ? [[minus(key, gap), [0, 0, 0, 150]], [disc, BLACK], [mark, null]]
        : [[minus(key, gap), GREY], [disc, RED], [mark, WHITE]];
    }
    default:
      throw new Error(`unknown state ${state}`);
  }
}

/** RGBA pixels of one icon at `size`×`size`. */
export function rasterise(state, size, template = false) {
  const rgba = Buffer.alloc(size * size * 4);
  const painted = layers(state, template);
  for (let py = 0; py < size; py++) {
    for (let px = 0; px < size; px++) {
      // Straight-alpha "over" compositing of each layer's coverage at this pixel.
      let r = 0, g = 0, b = 0, a = 0;
      for (const [shape, colour] of painted) {
        let hits = 0;
        for (let sy = 0; sy < SAMPLES; sy++) {
          for (let sx = 0; sx < SAMPLES; sx++) {
            if (shape((px + (sx + 0.5) / SAMPLES) / size, (py + (sy + 0.5) / SAMPLES) / size)) hits++;
          }
        }
        const cover = hits / (SAMPLES * SAMPLES);
        if (cover === 0) continue;
        if (colour === null) {
          a *= 1 - cover;
          continue;
        }
        const la = (colour[3] / 255) * cover;
        const na = la + a * (1 - la);
        if (na > 0) {
          r = (colour[0] * la + r * a * (1 - la)) / na;
          g = (colour[1] * la + g * a * (1 - la)) / na;
          b = (colour[2] * la + b * a * (1 - la)) / na;
        }
        a = na;
      }
      const o = (py * size + px) * 4;
      rgba[o] = Math.round(r);
      rgba[o + 1] = Math.round(g);
      rgba[o + 2] = Math.round(b);
      rgba[o + 3] = Math.round(a * 255);
    }
  }
  return rgba;
}

// ---- PNG: 8-bit RGBA, non-interlaced, filter 0 on every row ----
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const byte of buf) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type, data) {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}
export function encodePng(width, height, rgba) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 6, 0, 0, 0], 8); // bit depth 8, colour type 6 (RGBA), deflate, filter set 0, no interlace
  const raw = Buffer.alloc(height * (width * 4 + 1));
  for (let y = 0; y < height; y++) {
    raw[y * (width * 4 + 1)] = 0;
    rgba.copy(raw, y * (width * 4 + 1) + 1, y * width * 4, (y + 1) * width * 4);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

// ---- ICO: PNG-compressed entries (Windows Vista and later) ----
export function encodeIco(entries) {
  const header = Buffer.alloc(6 + 16 * entries.length);
  header.writeUInt16LE(0, 0);
  header.writeUInt16LE(1, 2); // 1 = icon
  header.writeUInt16LE(entries.length, 4);
  let offset = header.length;
  entries.forEach(({ size, png }, i) => {
    const e = 6 + 16 * i;
    header[e] = size >= 256 ? 0 : size;
    header[e + 1] = size >= 256 ? 0 : size;
    header[e + 2] = 0; // no palette
    header[e + 3] = 0;
    header.writeUInt16LE(1, e + 4); // planes
    header.writeUInt16LE(32, e + 6); // bits per pixel
    header.writeUInt32LE(png.length, e + 8);
    header.writeUInt32LE(offset, e + 12);
    offset += png.length;
  });
  return Buffer.concat([header, ...entries.map((e) => e.png)]);
}

export const STATES = ['idle', 'key', 'touch', 'error'];

function main() {
  mkdirSync(OUT, { recursive: true });
  for (const state of STATES) {
    for (const size of PNG_SIZES) {
      writeFileSync(join(OUT, `${state}-${size}.png`), encodePng(size, size, rasterise(state, size)));
    }
    const ico = ICO_SIZES.map((size) => ({ size, png: encodePng(size, size, rasterise(state, size)) }));
    writeFileSync(join(OUT, `${state}.ico`), encodeIco(ico));
    writeFileSync(join(OUT, `${state}Template.png`), encodePng(16, 16, rasterise(state, 16, true)));
    writeFileSync(join(OUT, `${state}Template@2x.png`), encodePng(32, 32, rasterise(state, 32, true)));
  }
  process.stdout.write(`icons written to ${OUT}\n`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
