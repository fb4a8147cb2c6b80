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
