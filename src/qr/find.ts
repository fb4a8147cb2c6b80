/**
 * Every QR code in an image, with jsQR. jsQR decodes one code per call, and with two codes in view
 * it may pair finder patterns of both and decode neither. So: search the whole image; when that
 * finds nothing, search overlapping windows of half and a third of its size; each code found is
 * painted white and the search starts again, until a round finds nothing. Pure.
 */
import jsQRModule from 'jsqr';
import type { RgbaImage } from './image.js';

// jsqr's typings declare an ES default export; Node hands an ES import the CommonJS exports (the
// function itself), a bundler may hand the `default` property: take whichever is the function.
const jsQRExports = jsQRModule as unknown as typeof jsQRModule.default | typeof jsQRModule;
const jsQR = typeof jsQRExports === 'function' ? jsQRExports : jsQRExports.default;

/** More than this many codes on one screen is not a screen of account codes. */
export const MAX_CODES = 16;
/** Window sizes as fractions of the image, each searched at steps of half its size. */
const WINDOW_FRACTIONS = [1 / 2, 1 / 3];

export interface Box {
  left: number;
  top: number;
  right: number;
  bottom: number;
}

export interface FoundCode {
  text: string;
  /** The code's bounding box in the image's pixels. */
  box: Box;
}

/** The codes in reading order (rows top to bottom, each left to right). The image is not changed. */
export function findQrCodes(image: RgbaImage): FoundCode[] {
  const { width, height } = image;
  // A copy: blanking must not change the caller's pixels, and jsQR wants a Uint8ClampedArray.
  const pixels = new Uint8ClampedArray(image.data.subarray(0, width * height * 4));
  const whole: Box = { left: 0, top: 0, right: width, bottom: height };
  const windows = windowsOf(width, height);
  // Windows searched without a find stay empty until a code painted over overlaps them (the
  // painting only takes marks away, but a code it removes may have hidden another from jsQR).
  const empty = new Set<Box>();
  const found: FoundCode[] = [];
  while (found.length < MAX_CODES) {
    let code = searchIn(pixels, width, whole);
    for (const box of windows) {
      if (code) break;
      if (empty.has(box)) continue;
      code = searchIn(pixels, width, box);
      if (!code) empty.add(box);
    }
    if (!code) break;
    found.push(code);
    blank(pixels, width, code.box);
    for (const box of empty) if (overlaps(box, code.box)) empty.delete(box);
  }
  // Codes whose tops are within half a code of each other are one row, read left to right.
  const sameRow = (a: FoundCode, b: FoundCode): boolean => Math.abs(a.box.top - b.box.top) < (a.box.bottom - a.box.top) / 2;
  return found.sort((a, b) => (sameRow(a, b) ? a.box.left - b.box.left : a.box.top - b.box.top));
}

function windowsOf(width: number, height: number): Box[] {
  const boxes: Box[] = [];
  for (const fraction of WINDOW_FRACTIONS) {
    const w = Math.ceil(width * fraction);
    const h = Math.ceil(height * fraction);
    for (const top of starts(height, h)) for (const left of starts(width, w)) boxes.push({ left, top, right: left + w, bottom: top + h });
  }
  return boxes;
}

/** Window starts at steps of half a window, the last one flush with the edge. */
function starts(total: number, size: number): number[] {
  const step = Math.max(1, Math.floor(size / 2));
  const result: number[] = [];
  for (let start = 0; start + size < total; start += step) result.push(start);
  result.push(Math.max(0, total - size));
  return result;
}

/** One jsQR search inside `box`; the code's box comes back in whole-image pixels. */
function searchIn(pixels: Uint8ClampedArray, width: number, box: Box): FoundCode | undefined {
  const w = box.right - box.left;
  const h = box.bottom - box.top;
  let view = pixels;
  if (w !== width || box.top !== 0 || h * width * 4 !== pixels.length) {
    view = new Uint8ClampedArray(w * h * 4);
    for (let y = 0; y < h; y++) view.set(pixels.subarray(((box.top + y) * width + box.left) * 4, ((box.top + y) * width + box.right) * 4), y * w * 4);
  }
  // A blank window (all white, or painted over already) holds no code: skip jsQR's work there.
  if (isBlank(view)) return undefined;
  // Light-on-dark codes are looked for in the whole image only: it doubles jsQR's time.
  const code = jsQR(view, w, h, { inversionAttempts: view === pixels ? 'attemptBoth' : 'dontInvert' });
  if (!code) return undefined;
  const corners = [code.location.topLeftCorner, code.location.topRightCorner, code.location.bottomLeftCorner, code.location.bottomRightCorner];
  const xs = corners.map((p) => p.x + box.left);
  const ys = corners.map((p) => p.y + box.top);
  // The margin covers the finder patterns' outer edges, which jsQR's corners can cut by a module.
  const margin = Math.ceil((Math.max(...xs) - Math.min(...xs)) / 10) + 2;
  const imageHeight = pixels.length / 4 / width;
  return {
    text: code.data,
    box: {
      left: clamp(Math.floor(Math.min(...xs) - margin), width),
      top: clamp(Math.floor(Math.min(...ys) - margin), imageHeight),
      right: clamp(Math.ceil(Math.max(...xs) + margin), width),
      bottom: clamp(Math.ceil(Math.max(...ys) + margin), imageHeight),
    },
  };
}

function overlaps(a: Box, b: Box): boolean {
  return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
}

function isBlank(pixels: Uint8ClampedArray): boolean {
  const words = new Uint32Array(pixels.buffer, pixels.byteOffset, pixels.byteLength >>> 2);
  for (let i = 0; i < words.length; i++) if (words[i] !== 0xffffffff) return false;
  return true;
}

function clamp(value: number, limit: number): number {
  return Math.min(Math.max(value, 0), limit);
}

function blank(pixels: Uint8ClampedArray, width: number, box: Box): void {
  for (let y = box.top; y < box.bottom; y++) pixels.fill(255, (y * width + box.left) * 4, (y * width + box.right) * 4);
}
