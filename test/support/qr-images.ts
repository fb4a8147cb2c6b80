/** QR code images for the tests, made by the qrcode package and written with pngjs. */
import { PNG } from 'pngjs';
import QRCode from 'qrcode';

/** A PNG of one QR code holding `text`, `scale` pixels a module, with the standard quiet zone. */
export function qrPng(text: string, scale = 4): Promise<Buffer> {
  return QRCode.toBuffer(text, { type: 'png', scale, margin: 4, errorCorrectionLevel: 'M' });
}

/**
 * A "screen": a PNG of `width`×`height` in a light grey, with each QR code drawn at its place
 * (top-left corner), and some dark noise elsewhere so the codes are not the only marks on it.
 */
export async function screenPng(width: number, height: number, codes: { text: string; x: number; y: number; scale?: number }[]): Promise<Buffer> {
  const screen = new PNG({ width, height });
  for (let i = 0; i < screen.data.length; i += 4) {
    const pixel = i / 4;
    const x = pixel % width;
    const y = Math.floor(pixel / width);
    // Thin dark lines, like text underlines or window borders.
    const dark = y % 37 === 0 || x % 211 === 0;
    screen.data.fill(dark ? 40 : 235, i, i + 3);
    screen.data[i + 3] = 255;
  }
  for (const code of codes) {
    const image = PNG.sync.read(await qrPng(code.text, code.scale));
    PNG.bitblt(image, screen, 0, 0, image.width, image.height, code.x, code.y);
  }
  return PNG.sync.write(screen);
}

/**
 * A screen jsQR is slow on: finder patterns (7×7 modules of 4 pixels) every `step` pixels, none
 * three of them a code, and the codes given drawn over it. Pixels (RGBA), not a PNG: the large
 * ones are quicker to make that way.
 */
export async function finderField(width: number, height: number, codes: { text: string; x: number; y: number; scale?: number }[] = [], step = 90): Promise<{ width: number; height: number; data: Uint8Array }> {
  const data = new Uint8Array(width * height * 4).fill(255);
  const paint = (left: number, top: number, size: number, value: number): void => {
    for (let y = top; y < Math.min(top + size, height); y++) data.fill(value, (y * width + left) * 4, (y * width + Math.min(left + size, width)) * 4);
    for (let y = top; y < Math.min(top + size, height); y++) for (let x = left; x < Math.min(left + size, width); x++) data[(y * width + x) * 4 + 3] = 255;
  };
  for (let y = 10; y + 28 < height; y += step) {
    for (let x = 10 + ((y / step) % 2) * 30; x + 28 < width; x += step) {
      paint(x, y, 28, 0);
      paint(x + 4, y + 4, 20, 255);
      paint(x + 8, y + 8, 12, 0);
    }
  }
  for (const code of codes) {
    const image = PNG.sync.read(await qrPng(code.text, code.scale));
    for (let y = 0; y < image.height; y++) data.set(image.data.subarray(y * image.width * 4, (y + 1) * image.width * 4), ((code.y + y) * width + code.x) * 4);
  }
  return { width, height, data };
}
