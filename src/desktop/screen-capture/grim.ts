/**
 * The screen on a wlroots compositor (sway, Hyprland, river …) through `grim -`, which asks the
 * compositor for every output (the wlr-screencopy protocol) and writes one PNG to its stdout: the
 * picture, a secret's QR code included, never touches the disk. GNOME and KDE have no
 * wlr-screencopy; grim says so and exits non-zero there. Used where no screenshot portal answers
 * (index.ts).
 */
import { execFile } from 'node:child_process';

import { KeytapError } from '../../errors.js';
import type { ScreenCapture, ScreenShot } from './types.js';

const HINT = 'Save the QR code as a PNG or JPEG file and read that instead.';
/** A PNG of several large outputs is tens of megabytes; this is far beyond any real one. */
const MAX_BYTES = 512 * 1024 * 1024;

export interface GrabResult {
  /** The exit code; null when the program was killed (the time ran out). */
  code: number | null;
  stdout: Uint8Array;
  stderr: string;
}

/** Runs a program to its end, stdout as bytes; rejects only when it cannot be started (ENOENT …). */
export type Grabber = (command: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv | undefined; timeoutMs: number }) => Promise<GrabResult>;

export const grab: Grabber = (command, args, options) =>
  new Promise((resolve, reject) => {
    execFile(command, args, { encoding: 'buffer', maxBuffer: MAX_BYTES, timeout: options.timeoutMs, killSignal: 'SIGKILL', env: options.env ?? process.env }, (error, stdout, stderr) => {
      const failure = error as (NodeJS.ErrnoException & { code?: number | string | null }) | null;
      if (failure && typeof failure.code === 'string' && failure.code !== 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER') return reject(failure);
      const code = failure ? (typeof failure.code === 'number' ? failure.code : null) : 0;
      resolve({ code, stdout, stderr: stderr.toString('utf8') });
    });
  });

export interface GrimScreenCaptureOptions {
  grab?: Grabber | undefined;
  env?: NodeJS.ProcessEnv | undefined;
}

export class GrimScreenCapture implements ScreenCapture {
  readonly name = 'grim';

  constructor(private readonly options: GrimScreenCaptureOptions = {}) {}

  async capture(signal?: AbortSignal): Promise<ScreenShot> {
    if (signal?.aborted) throw new KeytapError('CANCELLED', 'The screen capture was cancelled.');
    let result: GrabResult;
    try {
      result = await (this.options.grab ?? grab)('grim', ['-'], { env: this.options.env, timeoutMs: 30_000 });
    } catch (error) {
      const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
      throw new KeytapError('UNSUPPORTED', missing ? 'grim is not installed.' : `grim could not be started (${(error as Error).message}).`, { hint: HINT });
    }
    if (signal?.aborted) throw new KeytapError('CANCELLED', 'The screen capture was cancelled.');
    if (result.code !== 0) {
      // grim's own words ("compositor doesn't support wlr-screencopy-unstable-v1"), not the picture.
      const said = result.stderr.trim().split('\n')[0]?.slice(0, 200);
      throw new KeytapError('UNSUPPORTED', `grim could not capture the screen (${said ? said : result.code === null ? 'it took too long, or its picture was too large' : `exit ${result.code}`}).`, { hint: HINT });
    }
    if (!isPng(result.stdout)) throw new KeytapError('UNSUPPORTED', 'grim did not write a PNG image.', { hint: HINT });
    return { format: 'png', data: result.stdout };
  }
}

function isPng(data: Uint8Array): boolean {
  const signature = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  return data.length > signature.length && signature.every((byte, i) => data[i] === byte);
}
