/**
 * Image files as RGBA pixels, for the QR decoder: PNG through pngjs, JPEG through jpeg-js. The
 * format is told by the file's first bytes, not its name. Pure: bytes in, pixels out.
 */
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { KeytapError } from '../errors.js';

/** Pixels, four bytes each (red, green, blue, alpha), row by row, no padding. */
export interface RgbaImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** Larger images are refused before decoding: 8K screens are 33 megapixels; no QR code needs more. */
export const MAX_MEGAPIXELS = 50;

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

export function imageFormat(bytes: Uint8Array): 'png' | 'jpeg' | undefined {
  if (PNG_SIGNATURE.every((byte, i) => bytes[i] === byte)) return 'png';
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  return undefined;
}

/** Decodes a PNG or JPEG file's bytes; BAD_INPUT for anything else or a broken file. */
export function readImage(bytes: Uint8Array): RgbaImage {
  const format = imageFormat(bytes);
  if (format === undefined) {
    throw new KeytapError('BAD_INPUT', 'This file is not a PNG or JPEG image.', { hint: 'Save the QR code as a PNG or JPEG file (a screenshot will do).' });
  }
  try {
    if (format === 'png') {
      // PNG.sync.read gives RGBA at 8 bits whatever the file's colour type and depth.
      const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), { skipRescale: false });
      checkSize(png.width, png.height);
      return { width: png.width, height: png.height, data: new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.byteLength) };
    }
    const decoded = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxResolutionInMP: MAX_MEGAPIXELS, maxMemoryUsageInMB: 1024 });
    return { width: decoded.width, height: decoded.height, data: decoded.data };
  } catch (error) {
    if (error instanceof KeytapError) throw error;
    const name = format === 'png' ? 'PNG' : 'JPEG';
    throw new KeytapError('BAD_INPUT', `This ${name} file is damaged or unsupported (${error instanceof Error ? error.message : String(error)}).`, { cause: error });
  }
}

function checkSize(width: number, height: number): void {
  if (width * height > MAX_MEGAPIXELS * 1_000_000) {
    throw new KeytapError('BAD_INPUT', `The image is ${width}×${height} pixels; keytap reads QR codes from images of up to ${MAX_MEGAPIXELS} megapixels.`);
  }
}
