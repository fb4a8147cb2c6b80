/**
 * Figures for finding QR codes on a screen (issue 11 part 2, item 1): how long findQrCodes takes
 * on screen-sized images the tray captures — 1080p without a code, with one and with two, and 4K
 * without a code — and on the worst case the tests know, a 1080p screen covered in finder patterns
 * that make no code (with the default 4 s budget), as the median of a few runs, with what it found.
 *
 * Run: npm run bench -- qr-scan   (export: benchQrScan)
 */
import { performance } from 'node:perf_hooks';
import { findQrCodes } from '../src/qr/find.js';
import { readImage } from '../src/qr/image.js';
import type { RgbaImage } from '../src/qr/image.js';
import { finderField, screenPng } from '../test/support/qr-images.js';

const URI_A = 'otpauth://totp/ACME%20Co:alice@example.com?secret=JBSWY3DPEHPK3PXP&issuer=ACME%20Co';
const URI_B = 'otpauth://hotp/Bank:bob?secret=HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ&issuer=Bank&counter=7&digits=8';
const RUNS = Number(process.env.KEYTAP_BENCH_RUNS ?? 3);

async function medianMs(image: RgbaImage): Promise<{ ms: number; found: number }> {
  const times: number[] = [];
  let found = 0;
  for (let i = 0; i < RUNS; i++) {
    const started = performance.now();
    found = (await findQrCodes(image)).codes.length;
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return { ms: times[Math.floor(times.length / 2)]!, found };
}

export async function benchQrScan(): Promise<void> {
  const cases: [string, Promise<Buffer> | Promise<RgbaImage>][] = [
    ['1920x1080, no code', screenPng(1920, 1080, [])],
    ['1920x1080, one code', screenPng(1920, 1080, [{ text: URI_A, x: 800, y: 400 }])],
    ['1920x1080, two codes', screenPng(1920, 1080, [{ text: URI_A, x: 300, y: 300 }, { text: URI_B, x: 1200, y: 500 }])],
    ['3840x2160, no code', screenPng(3840, 2160, [])],
    ['1920x1080, finder field', finderField(1920, 1080)],
  ];
  console.log(`findQrCodes on a screen: median of ${RUNS} runs`);
  for (const [label, png] of cases) {
    const image = await png;
    const { ms, found } = await medianMs(Buffer.isBuffer(image) ? readImage(image) : image);
    console.log(`  ${label.padEnd(24)} ${ms.toFixed(0).padStart(7)} ms  ${found} found`);
  }
}
