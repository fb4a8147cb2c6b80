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
  // Before decoding: a small file may announce a huge image, and the decoders allocate for it.
  const size = format === 'png' ? pngSize(bytes) : jpegSize(bytes);
  if (size) checkSize(size.width, size.height);
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

/** The size in the IHDR chunk, which a PNG file must start with (bytes 16..23); undefined when it does not. */
function pngSize(bytes: Uint8Array): { width: number; height: number } | undefined {
  if (bytes.length < 24 || String.fromCharCode(...bytes.subarray(12, 16)) !== 'IHDR') return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

/**
 * The size in a JPEG file's first start-of-frame segment (SOF0..SOF15 but DHT, JPG and DAC),
 * found by walking the segments; undefined when there is none before the image data. jpeg-js
 * checks maxResolutionInMP there too, but its message names no size.
 */
function jpegSize(bytes: Uint8Array): { width: number; height: number } | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 2;
  while (at + 9 <= bytes.length && bytes[at] === 0xff) {
    const marker = bytes[at + 1]!;
    if (marker === 0xff) {
      at++; // fill byte
      continue;
    }
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return { height: view.getUint16(at + 5), width: view.getUint16(at + 7) };
    }
    if (marker === 0xda || marker === 0xd9) return undefined; // the image data (or its end) with no frame before it
    at += 2 + view.getUint16(at + 2);
  }
  return undefined;
}

function checkSize(width: number, height: number): void {
  if (width * height > MAX_MEGAPIXELS * 1_000_000) {
    throw new KeytapError('BAD_INPUT', `The image is ${width}×${height} pixels; keytap reads QR codes from images of up to ${MAX_MEGAPIXELS} megapixels.`);
  }
}
