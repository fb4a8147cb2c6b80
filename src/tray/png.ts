/**
 * A minimal PNG decoder for our own icons (build/icons.mjs writes them): 8-bit RGBA,
 * non-interlaced. All five row filters are undone, so an icon re-saved by an optimiser still
 * loads; any other colour type or depth is refused with a message that says so.
 */
import { inflateSync } from 'node:zlib';

export interface RgbaImage {
  width: number;
  height: number;
  /** width × height × 4 bytes, R G B A, straight (not premultiplied) alpha. */
  rgba: Buffer;
}

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export function decodePng(png: Buffer): RgbaImage {
  if (png.length < 8 || !png.subarray(0, 8).equals(SIGNATURE)) throw new Error('not a PNG file');
  let width = 0;
  let height = 0;
  const idat: Buffer[] = [];
  let offset = 8;
  while (offset + 8 <= png.length) {
    const length = png.readUInt32BE(offset);
    const type = png.toString('latin1', offset + 4, offset + 8);
    const data = png.subarray(offset + 8, offset + 8 + length);
    if (data.length !== length) throw new Error(`PNG chunk ${type} is truncated`);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      const [depth, colourType, , , interlace] = data.subarray(8, 13);
      if (depth !== 8 || colourType !== 6 || interlace !== 0) {
        throw new Error(`unsupported PNG (bit depth ${depth}, colour type ${colourType}, interlace ${interlace}); only 8-bit RGBA, non-interlaced`);
      }
    } else if (type === 'IDAT') {
      idat.push(data);
    } else if (type === 'IEND') {
      break;
    }
    offset += 12 + length; // length, type, data, CRC
  }
  if (width === 0 || height === 0) throw new Error('PNG has no IHDR');
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * 4;
  if (raw.length < height * (stride + 1)) throw new Error('PNG image data is truncated');
  const rgba = Buffer.alloc(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const row = y * stride;
    const prior = row - stride;
    for (let x = 0; x < stride; x++) {
      const left = x >= 4 ? rgba[row + x - 4]! : 0;
      const up = y > 0 ? rgba[prior + x]! : 0;
      const upLeft = y > 0 && x >= 4 ? rgba[prior + x - 4]! : 0;
      let predictor: number;
      switch (filter) {
        case 0: predictor = 0; break;
        case 1: predictor = left; break;
        case 2: predictor = up; break;
        case 3: predictor = (left + up) >> 1; break;
        case 4: predictor = paeth(left, up, upLeft); break;
        default: throw new Error(`PNG row filter ${filter} is invalid`);
      }
      rgba[row + x] = (src[x]! + predictor) & 0xff;
    }
  }
  return { width, height, rgba };
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** RGBA → ARGB32 in network byte order (A R G B per pixel), as StatusNotifierItem pixmaps want. */
export function rgbaToArgb32(rgba: Buffer): Buffer {
  const argb = Buffer.alloc(rgba.length);
  for (let i = 0; i < rgba.length; i += 4) {
    argb[i] = rgba[i + 3]!;
    argb[i + 1] = rgba[i]!;
    argb[i + 2] = rgba[i + 1]!;
    argb[i + 3] = rgba[i + 2]!;
  }
  return argb;
}
