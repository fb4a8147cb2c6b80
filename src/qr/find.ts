/**
 * Every QR code in an image, with jsQR. jsQR decodes one code per call, and with two codes in view
 * it may pair finder patterns of both and decode neither. So: search the whole image; when that
 * finds nothing, search overlapping windows of half and a third of its size; each code found is
 * painted white and the search starts again, until a round finds nothing.
 *
 * A screen larger than MAX_SEARCH_SIDE is searched twice over: first shrunk by a whole factor k
 * (box filter: each pixel the mean of k×k) with the whole image and the half windows, for codes
 * large enough to survive it; then at full resolution in overlapping tiles of 1/k of the image,
 * for the small ones (a 150-pixel code on a 4K screen). jsQR's time grows with the pixels it is
 * given and with the marks in them (text), so no single call sees more than about
 * MAX_SEARCH_SIDE² pixels: a busy 1080p screen took seconds, a 4K one tens of seconds.
 *
 * The search is asynchronous so that the tray stays responsive: it yields to the event loop
 * between jsQR calls, stops at an abort (CANCELLED), and stops when its time budget is spent with
 * what it found so far. Pure apart from the clock.
 */
import jsQRModule from 'jsqr';
import { throwIfAborted } from '../errors.js';
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

/** Images with a longer side are searched shrunk first, then tile by tile (see above). */
export const MAX_SEARCH_SIDE = 1600;
/** How long a search may take by default before it stops with what it found. */
export const DEFAULT_SEARCH_BUDGET_MS = 4000;

export interface FindOptions {
  /** Aborting stops the search between two jsQR calls with a CANCELLED KeytapError. */
  signal?: AbortSignal | undefined;
  /** After this many milliseconds the search stops with the codes found so far. */
  budgetMs?: number | undefined;
  /** Milliseconds, for the budget (performance.now by default). */
  now?: (() => number) | undefined;
}

export interface QrSearch {
  /** The codes in reading order (rows top to bottom, each left to right). */
  codes: FoundCode[];
  /** The budget ran out before every part of the image was searched. */
  outOfTime: boolean;
  /** How long the search took, in milliseconds. */
  elapsedMs: number;
}

/** A copy of the pixels that the search may paint over; jsQR wants a Uint8ClampedArray. */
interface Plane {
  pixels: Uint8ClampedArray;
  width: number;
  height: number;
}

/** Searches `image` for every code (the image is not changed; the working copies are zeroed). */
export async function findQrCodes(image: RgbaImage, options: FindOptions = {}): Promise<QrSearch> {
  const now = options.now ?? (() => performance.now());
  const started = now();
  const budget = options.budgetMs ?? DEFAULT_SEARCH_BUDGET_MS;
  const { width, height } = image;
  const full: Plane = { pixels: new Uint8ClampedArray(image.data.subarray(0, width * height * 4)), width, height };
  const factor = Math.ceil(Math.max(width, height) / MAX_SEARCH_SIDE);
  let shrunk: Plane | undefined;
  const search: Search = {
    found: [],
    outOfTime: false,
    async pause(): Promise<void> {
      await new Promise((resolve) => setImmediate(resolve));
      throwIfAborted(options.signal);
    },
    async next(): Promise<boolean> {
      throwIfAborted(options.signal);
      if (now() - started >= budget) this.outOfTime = true;
      if (this.outOfTime || this.found.length >= MAX_CODES) return false;
      // One jsQR call at a time, with the event loop (tray clicks, IPC, timers) served in between.
      await new Promise((resolve) => setImmediate(resolve));
      throwIfAborted(options.signal);
      return true;
    },
  };
  try {
    if (factor > 1) {
      shrunk = await shrink(full, factor, search);
      const toFull = (box: Box): Box => {
        const scaled = scaleBox(box, factor, full);
        // Painted over at full resolution too, so that the tiles do not find it again.
        blank(full, scaled);
        return scaled;
      };
      // The third windows are left out shrunk: the tiles (1/k, k ≥ 2) hold every code they would.
      await searchPlane(search, shrunk, { whole: true, windows: windowsOf(shrunk.width, shrunk.height, [1 / 2]), toFull });
      shrunk.pixels.fill(0);
      await searchPlane(search, full, { whole: false, windows: windowsOf(width, height, [1 / factor]) });
    } else {
      await searchPlane(search, full, { whole: true, windows: windowsOf(width, height, WINDOW_FRACTIONS) });
    }
  } finally {
    // The screen may show more secrets than the one wanted.
    full.pixels.fill(0);
    shrunk?.pixels.fill(0);
  }
  // Codes whose tops are within half a code of each other are one row, read left to right.
  const sameRow = (a: FoundCode, b: FoundCode): boolean => Math.abs(a.box.top - b.box.top) < (a.box.bottom - a.box.top) / 2;
  const codes = search.found.sort((a, b) => (sameRow(a, b) ? a.box.left - b.box.left : a.box.top - b.box.top));
  return { codes, outOfTime: search.outOfTime, elapsedMs: now() - started };
}

interface Search {
  found: FoundCode[];
  outOfTime: boolean;
  /** Lets the event loop run between parts of a long computation; throws CANCELLED on an abort. */
  pause(): Promise<void>;
  /** Whether to make another jsQR call (budget, abort, MAX_CODES), after yielding to the event loop. */
  next(): Promise<boolean>;
}

interface PlaneSearch {
  /** Search the whole plane first (not for the tiles of a large image: too many pixels at once). */
  whole: boolean;
  windows: Box[];
  /** For a shrunk plane: its box in full-resolution pixels, which is also painted over there. */
  toFull?: ((box: Box) => Box) | undefined;
}

/**
 * The rounds over one plane: the whole of it (if asked), then each window not yet known empty; a
 * code found is painted over and the round starts again, until a round finds nothing.
 */
async function searchPlane(search: Search, plane: Plane, { whole, windows, toFull }: PlaneSearch): Promise<void> {
  const all: Box = { left: 0, top: 0, right: plane.width, bottom: plane.height };
  // Where no finder pattern can be, jsQR is not asked. Painting codes over only takes marks away,
  // so the marks of the plane as it is now stay a safe over-estimate.
  const marks = await finderMarks(plane, search);
  // Windows searched without a find stay empty until a code painted over overlaps them (the
  // painting only takes marks away, but a code it removes may have hidden another from jsQR).
  const empty = new Set<Box>();
  for (const box of windows) if (!marks.mayHoldCode(box)) empty.add(box);
  const wholeMayHoldCode = whole && marks.mayHoldCode(all);
  for (;;) {
    let code: FoundCode | undefined;
    if (wholeMayHoldCode) {
      if (!(await search.next())) return;
      code = searchIn(plane, all);
    }
    for (const box of windows) {
      if (code) break;
      if (empty.has(box)) continue;
      if (!(await search.next())) return;
      code = searchIn(plane, box);
      if (!code) empty.add(box);
    }
    if (!code) return;
    blank(plane, code.box);
    for (const box of empty) if (overlaps(box, code.box) && marks.mayHoldCode(box)) empty.delete(box);
    search.found.push({ text: code.text, box: toFull ? toFull(code.box) : code.box });
  }
}

/** The pixel loops outside jsQR let the event loop run after this many rows (of a 4K screen: ~5 ms). */
const ROWS_BETWEEN_PAUSES = 128;
/** Fewer marks than this in a box: no code there (three finder patterns give three or more). */
const MIN_MARKS = 3;
/** The side of the blocks whose mean luminance is the threshold between dark and light. */
const BLOCK = 16;
/** Blocks (with their neighbours) whose luminance varies less than this hold no code. */
const MIN_CONTRAST = 32;

interface FinderMarks {
  /** Whether enough marks are in `box` for jsQR to find a code there. */
  mayHoldCode(box: Box): boolean;
}

/**
 * Where a row crosses five runs of alternating dark and light in the proportions 1:1:3:1:1 — what
 * every line through a finder pattern's centre crosses, whatever the code's size or rotation — of
 * either polarity (a light-on-dark code too). A cheap scan that tells where jsQR need not look:
 * the tolerances are wide, so that it finds more than jsQR would, never less. The luminance is
 * split into dark and light at the mean of the pixel's block and its neighbours (uneven lighting).
 */
async function finderMarks(plane: Plane, search: Search): Promise<FinderMarks> {
  const { pixels, width, height } = plane;
  const luminance = new Uint8Array(width * height);
  for (let i = 0, p = 0; i < luminance.length; i++, p += 4) luminance[i] = (pixels[p]! * 77 + pixels[p + 1]! * 150 + pixels[p + 2]! * 29) >> 8;
  try {
    const columns = Math.ceil(width / BLOCK);
    const rows = Math.ceil(height / BLOCK);
    const sum = new Float64Array(columns * rows);
    const count = new Uint32Array(columns * rows);
    const min = new Uint8Array(columns * rows).fill(255);
    const max = new Uint8Array(columns * rows);
    for (let y = 0; y < height; y++) {
      if (y % ROWS_BETWEEN_PAUSES === 0) await search.pause();
      const row = Math.floor(y / BLOCK) * columns;
      for (let x = 0; x < width; x++) {
        const block = row + Math.floor(x / BLOCK);
        const value = luminance[y * width + x]!;
        sum[block] = sum[block]! + value;
        count[block] = count[block]! + 1;
        if (value < min[block]!) min[block] = value;
        if (value > max[block]!) max[block] = value;
      }
    }
    // The threshold of each block: the mean over it and its neighbours; -1 where they are too even.
    const threshold = new Int16Array(columns * rows);
    for (let by = 0; by < rows; by++) {
      for (let bx = 0; bx < columns; bx++) {
        let total = 0;
        let pixelCount = 0;
        let low = 255;
        let high = 0;
        for (let ny = Math.max(0, by - 1); ny <= Math.min(rows - 1, by + 1); ny++) {
          for (let nx = Math.max(0, bx - 1); nx <= Math.min(columns - 1, bx + 1); nx++) {
            const block = ny * columns + nx;
            total += sum[block]!;
            pixelCount += count[block]!;
            low = Math.min(low, min[block]!);
            high = Math.max(high, max[block]!);
          }
        }
        threshold[by * columns + bx] = high - low < MIN_CONTRAST ? -1 : Math.round(total / pixelCount);
      }
    }
    const xs: number[] = [];
    const ys: number[] = [];
    const runs = [0, 0, 0, 0, 0];
    for (let y = 0; y < height; y++) {
      if (y % ROWS_BETWEEN_PAUSES === 0) await search.pause();
      const thresholds = Math.floor(y / BLOCK) * columns;
      runs.fill(0);
      let dark: boolean | undefined;
      for (let x = 0; x <= width; x++) {
        const limit = x < width ? threshold[thresholds + Math.floor(x / BLOCK)]! : -1;
        const isDark = x < width && luminance[y * width + x]! < limit;
        if (isDark === dark) {
          runs[4] = runs[4]! + 1;
          continue;
        }
        // A run ended at x: are the last five in proportion?
        const [a, b, c, d, e] = runs as [number, number, number, number, number];
        const module = (a + b + c + d + e) / 7;
        if (a > 0 && module >= 6 / 7) {
          const near = (run: number): boolean => run >= module * 0.4 && run <= module * 1.8;
          if (near(a) && near(b) && near(d) && near(e) && c >= module * 1.8 && c <= module * 4.5) {
            xs.push(x - e - d - c / 2);
            ys.push(y);
          }
        }
        runs.copyWithin(0, 1);
        runs[4] = 1;
        dark = isDark;
      }
    }
    return {
      mayHoldCode(box: Box): boolean {
        let inside = 0;
        for (let i = 0; i < xs.length && inside < MIN_MARKS; i++) {
          if (xs[i]! >= box.left && xs[i]! < box.right && ys[i]! >= box.top && ys[i]! < box.bottom) inside++;
        }
        return inside >= MIN_MARKS;
      },
    };
  } finally {
    luminance.fill(0);
  }
}

/** A box of a plane shrunk by `factor`, in the full plane's pixels (a pixel's margin for the rounding). */
function scaleBox(box: Box, factor: number, full: Plane): Box {
  return {
    left: clamp((box.left - 1) * factor, full.width),
    top: clamp((box.top - 1) * factor, full.height),
    right: clamp((box.right + 1) * factor, full.width),
    bottom: clamp((box.bottom + 1) * factor, full.height),
  };
}

/** The plane shrunk by a whole factor: each pixel the mean of a factor×factor block (the edge blocks of what is there). */
async function shrink(plane: Plane, factor: number, search: Search): Promise<Plane> {
  const width = Math.ceil(plane.width / factor);
  const height = Math.ceil(plane.height / factor);
  const pixels = new Uint8ClampedArray(width * height * 4);
  const sums = new Float64Array(width * 4);
  try {
    await shrinkInto(plane, factor, { pixels, width, height }, sums, search);
  } catch (error) {
    pixels.fill(0); // cancelled half-way: nothing of the screen stays behind
    throw error;
  } finally {
    sums.fill(0);
  }
  return { pixels, width, height };
}

async function shrinkInto(plane: Plane, factor: number, { pixels, width, height }: Plane, sums: Float64Array, search: Search): Promise<void> {
  for (let y = 0; y < height; y++) {
    if (y % ROWS_BETWEEN_PAUSES === 0) await search.pause();
    sums.fill(0);
    const rows = Math.min(factor, plane.height - y * factor);
    for (let dy = 0; dy < rows; dy++) {
      const row = (y * factor + dy) * plane.width * 4;
      for (let x = 0; x < plane.width; x++) {
        const to = Math.floor(x / factor) * 4;
        const from = row + x * 4;
        for (let c = 0; c < 4; c++) sums[to + c] = sums[to + c]! + plane.pixels[from + c]!;
      }
    }
    for (let x = 0; x < width; x++) {
      const count = rows * Math.min(factor, plane.width - x * factor);
      for (let c = 0; c < 4; c++) pixels[(y * width + x) * 4 + c] = Math.round(sums[x * 4 + c]! / count);
    }
  }
}

function windowsOf(width: number, height: number, fractions: readonly number[]): Box[] {
  const boxes: Box[] = [];
  for (const fraction of fractions) {
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

/** One jsQR search inside `box`; the code's box comes back in the plane's pixels. */
function searchIn(plane: Plane, box: Box): FoundCode | undefined {
  const { pixels, width, height } = plane;
  const w = box.right - box.left;
  const h = box.bottom - box.top;
  const whole = w === width && h === height;
  let view = pixels;
  if (!whole) {
    view = new Uint8ClampedArray(w * h * 4);
    for (let y = 0; y < h; y++) view.set(pixels.subarray(((box.top + y) * width + box.left) * 4, ((box.top + y) * width + box.right) * 4), y * w * 4);
  }
  let code;
  try {
    // A blank window (all white, or painted over already) holds no code: skip jsQR's work there.
    if (isBlank(view)) return undefined;
    // Light-on-dark codes are looked for in the whole image only: it doubles jsQR's time.
    code = jsQR(view, w, h, { inversionAttempts: whole ? 'attemptBoth' : 'dontInvert' });
  } finally {
    if (!whole) view.fill(0);
  }
  if (!code) return undefined;
  const corners = [code.location.topLeftCorner, code.location.topRightCorner, code.location.bottomLeftCorner, code.location.bottomRightCorner];
  const xs = corners.map((p) => p.x + box.left);
  const ys = corners.map((p) => p.y + box.top);
  // The margin covers the finder patterns' outer edges, which jsQR's corners can cut by a module.
  const margin = Math.ceil((Math.max(...xs) - Math.min(...xs)) / 10) + 2;
  return {
    text: code.data,
    box: {
      left: clamp(Math.floor(Math.min(...xs) - margin), width),
      top: clamp(Math.floor(Math.min(...ys) - margin), height),
      right: clamp(Math.ceil(Math.max(...xs) + margin), width),
      bottom: clamp(Math.ceil(Math.max(...ys) + margin), height),
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

function blank({ pixels, width }: Plane, box: Box): void {
  for (let y = box.top; y < box.bottom; y++) pixels.fill(255, (y * width + box.left) * 4, (y * width + box.right) * 4);
}
