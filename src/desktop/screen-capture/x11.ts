/**
 * The X11 screen through node-x11 (pure JavaScript): GetImage of the root window in ZPixmap
 * format, turned into RGBA with the server's image byte order, the pixmap format of the root depth
 * (bits per pixel, scanline padding) and the root visual's colour masks. The root window spans
 * every monitor. TrueColor and DirectColor visuals only: an 8-bit colour map is refused.
 */
import x11 from 'x11';
import type { X11Client } from 'x11';

import { KeytapError } from '../../errors.js';
import type { ScreenCapture, ScreenShot } from './types.js';

const Z_PIXMAP = 2;
const TRUE_COLOR = 4;
const DIRECT_COLOR = 5;
const TIMEOUT_MS = 15_000;

/** How the server lays out the pixels of a ZPixmap image. */
export interface PixelLayout {
  bitsPerPixel: number;
  /** Each row is padded to a multiple of this many bits. */
  scanlinePad: number;
  /** 0: least significant byte first; 1: most significant first. */
  byteOrder: number;
  redMask: number;
  greenMask: number;
  blueMask: number;
}

/** ZPixmap bytes to RGBA; throws UNSUPPORTED for a layout it cannot read. */
export function zpixmapToRgba(data: Uint8Array, width: number, height: number, layout: PixelLayout): Uint8Array {
  const { bitsPerPixel, scanlinePad, byteOrder } = layout;
  if (![8, 16, 24, 32].includes(bitsPerPixel)) throw new KeytapError('UNSUPPORTED', `The X display uses ${bitsPerPixel} bits a pixel, which keytap cannot read.`);
  const bytesPerPixel = bitsPerPixel / 8;
  const stride = Math.ceil((width * bitsPerPixel) / scanlinePad) * (scanlinePad / 8);
  if (data.length < stride * height) throw new KeytapError('PROTOCOL', `The X server sent ${data.length} bytes for a ${width}×${height} image; ${stride * height} were expected.`);
  const channels = [layout.redMask, layout.greenMask, layout.blueMask].map((mask) => {
    const shift = mask === 0 ? 0 : 31 - Math.clz32(mask & -mask);
    const max = mask >>> shift;
    return { mask, shift, max: max === 0 ? 1 : max };
  });
  const out = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const at = y * stride + x * bytesPerPixel;
      let value = 0;
      for (let b = 0; b < bytesPerPixel; b++) {
        const byte = data[at + (byteOrder === 0 ? b : bytesPerPixel - 1 - b)]!;
        value |= byte << (8 * b);
      }
      value >>>= 0;
      const o = (y * width + x) * 4;
      for (let c = 0; c < 3; c++) {
        const { mask, shift, max } = channels[c]!;
        out[o + c] = Math.round((((value & mask) >>> shift) * 255) / max);
      }
      out[o + 3] = 255;
    }
  }
  return out;
}

/** The screen a DISPLAY names: the 1 of ":0.1" or "host:0.1"; 0 when it names none. */
export function displayScreen(display: string): number {
  const match = /:\d+\.(\d+)$/u.exec(display);
  return match ? Number(match[1]) : 0;
}

export class X11ScreenCapture implements ScreenCapture {
  readonly name = 'X11';

  constructor(private readonly display: string) {}

  capture(signal?: AbortSignal): Promise<ScreenShot> {
    return new Promise<ScreenShot>((resolve, reject) => {
      let client: X11Client | undefined;
      let done = false;
      const finish = (error: unknown, shot?: ScreenShot): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        try {
          client?.terminate();
        } catch {
          // Closing a connection that already failed.
        }
        if (shot) resolve(shot);
        else reject(error instanceof KeytapError ? error : unsupported(`The X display ${this.display} could not be captured (${describe(error)}).`));
      };
      const onAbort = (): void => finish(new KeytapError('CANCELLED', 'The screen capture was cancelled.'));
      signal?.addEventListener('abort', onAbort, { once: true });
      const timer = setTimeout(() => finish(unsupported(`The X display ${this.display} did not send the screen in time.`)), TIMEOUT_MS);
      timer.unref();
      try {
        const connection = x11.createClient({ display: this.display }, (error, display) => {
          if (error || !display) return finish(error ?? new Error('no display'));
          client = display.client;
          client.on('error', (e) => finish(e));
          try {
            const number = displayScreen(this.display);
            const screen = display.screen[number];
            if (!screen) {
              const last = display.screen.length - 1;
              return finish(
                new KeytapError('UNSUPPORTED', `The X display ${this.display} names screen ${number}, but the server has ${last === 0 ? 'only screen 0' : `screens 0 to ${last}`}.`, {
                  hint: `Set DISPLAY to a screen the server has (${this.display.replace(/\.\d+$/u, '.0')}), or save the QR code as a PNG or JPEG file and read that.`,
                }),
              );
            }
            const visual = screen.depths[screen.root_depth]?.[screen.root_visual];
            const format = display.format[screen.root_depth];
            if (!visual || !format) return finish(unsupported('The X display does not describe its root window\'s pixels.'));
            if (visual.class !== TRUE_COLOR && visual.class !== DIRECT_COLOR) {
              return finish(unsupported(`The X display uses a colour map (visual class ${visual.class}); keytap reads only true-colour screens.`));
            }
            const { pixel_width: width, pixel_height: height } = screen;
            client.GetImage(Z_PIXMAP, screen.root, 0, 0, width, height, 0xffffffff, (e, image) => {
              if (e) return finish(e);
              try {
                const layout = { bitsPerPixel: format.bits_per_pixel, scanlinePad: format.scanline_pad, byteOrder: display.image_byte_order, redMask: visual.red_mask, greenMask: visual.green_mask, blueMask: visual.blue_mask };
                finish(undefined, { format: 'rgba', width, height, data: zpixmapToRgba(image.data, width, height, layout) });
              } catch (conversion) {
                finish(conversion);
              }
            });
          } catch (setup) {
            finish(setup);
          }
        });
        connection?.on('error', (e) => finish(e));
      } catch (error) {
        finish(error);
      }
    });
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function unsupported(message: string): KeytapError {
  return new KeytapError('UNSUPPORTED', message, { hint: 'Save the QR code as a PNG or JPEG file and read that instead.' });
}
