// Screen capture: X11 in-process (node-x11 GetImage) of an Xvfb screen at 24 and 16 bits a pixel
// showing a QR code (ImageMagick's display), found again by src/qr, and the screen DISPLAY names; the
// ZPixmap conversion for the layouts no Xvfb here uses (most significant byte first, packed 24 bits,
// RGB565 in both orders), expected values worked out by hand; and the screenshot portal against a stand-in
// org.freedesktop.portal.Desktop on a private session bus.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Message, sessionBus, Variant } from 'dbus-next';
import type { MessageBus } from 'dbus-next';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { PortalScreenCapture } from '../../src/desktop/screen-capture/portal.js';
import { X11ScreenCapture, displayScreen, zpixmapToRgba } from '../../src/desktop/screen-capture/x11.js';
import { findQrCodes } from '../../src/qr/find.js';
import { readImage } from '../../src/qr/image.js';
import { qrPng } from '../support/qr-images.js';
import { Desktop, missingTool, skipMessage } from './desktop.js';

const URI = 'otpauth://totp/Screen:alice?secret=JBSWY3DPEHPK3PXP&issuer=Screen';

describe('zpixmapToRgba', () => {
  it('reads 32-bit pixels in either byte order and 16-bit 5-6-5 pixels, with row padding', () => {
    const masks = { redMask: 0xff0000, greenMask: 0x00ff00, blueMask: 0x0000ff };
    // One pixel 0x00ff8040 (red ff, green 80, blue 40): bytes 40 80 ff 00 LSB first, 00 ff 80 40 MSB first.
    expect([...zpixmapToRgba(Uint8Array.of(0x40, 0x80, 0xff, 0), 1, 1, { bitsPerPixel: 32, scanlinePad: 32, byteOrder: 0, ...masks })]).toEqual([255, 128, 64, 255]);
    expect([...zpixmapToRgba(Uint8Array.of(0, 0xff, 0x80, 0x40), 1, 1, { bitsPerPixel: 32, scanlinePad: 32, byteOrder: 1, ...masks })]).toEqual([255, 128, 64, 255]);
    // 16 bits 5-6-5: 0xf800 is full red, 0x07e0 full green; one pixel a row, rows padded to 32 bits.
    const rgb565 = { bitsPerPixel: 16, scanlinePad: 32, byteOrder: 0, redMask: 0xf800, greenMask: 0x07e0, blueMask: 0x001f };
    expect([...zpixmapToRgba(Uint8Array.of(0x00, 0xf8, 0, 0, 0xe0, 0x07, 0, 0), 1, 2, rgb565)]).toEqual([255, 0, 0, 255, 0, 255, 0, 255]);
  });

  // Pad bytes are 0xaa: what is beyond a row's pixels must be skipped, not read as a pixel.
  it('packed 24-bit pixels (3 bytes each, rows padded to 32 bits), in either byte order', () => {
    const masks = { redMask: 0xff0000, greenMask: 0x00ff00, blueMask: 0x0000ff };
    // Two rows of three pixels: 0x123456, 0xff0080, 0x00c0ff / 0x010203, 0x000000, 0xffffff; 9 bytes a row, padded to 12.
    const expected = [0x12, 0x34, 0x56, 255, 0xff, 0x00, 0x80, 255, 0x00, 0xc0, 0xff, 255, 0x01, 0x02, 0x03, 255, 0, 0, 0, 255, 255, 255, 255, 255];
    const msbFirst = Uint8Array.of(0x12, 0x34, 0x56, 0xff, 0x00, 0x80, 0x00, 0xc0, 0xff, 0xaa, 0xaa, 0xaa, 0x01, 0x02, 0x03, 0, 0, 0, 0xff, 0xff, 0xff, 0xaa, 0xaa, 0xaa);
    const lsbFirst = Uint8Array.of(0x56, 0x34, 0x12, 0x80, 0x00, 0xff, 0xff, 0xc0, 0x00, 0xaa, 0xaa, 0xaa, 0x03, 0x02, 0x01, 0, 0, 0, 0xff, 0xff, 0xff, 0xaa, 0xaa, 0xaa);
    expect([...zpixmapToRgba(msbFirst, 3, 2, { bitsPerPixel: 24, scanlinePad: 32, byteOrder: 1, ...masks })]).toEqual(expected);
    expect([...zpixmapToRgba(lsbFirst, 3, 2, { bitsPerPixel: 24, scanlinePad: 32, byteOrder: 0, ...masks })]).toEqual(expected);
    // BGR masks (blue in the high byte): the same bytes read with the channels swapped.
    const bgr = { redMask: 0x0000ff, greenMask: 0x00ff00, blueMask: 0xff0000 };
    expect([...zpixmapToRgba(msbFirst, 3, 2, { bitsPerPixel: 24, scanlinePad: 32, byteOrder: 1, ...bgr })].slice(0, 4)).toEqual([0x56, 0x34, 0x12, 255]);
  });

  it('16-bit RGB565 pixels, most significant byte first and least significant first, with row padding', () => {
    const rgb565 = { bitsPerPixel: 16, scanlinePad: 32, redMask: 0xf800, greenMask: 0x07e0, blueMask: 0x001f };
    // Three pixels a row (6 bytes, padded to 8), two rows:
    //   0xf800 red 31/31, 0x07e0 green 63/63, 0x001f blue 31/31;
    //   0x8401 = red 16 (16·255/31 = 131.6 → 132), green 32 (32·255/63 = 129.5 → 130), blue 1 (1·255/31 = 8.2 → 8);
    //   0x0000 black, 0xffff white.
    const pixels = [0xf800, 0x07e0, 0x001f, 0x8401, 0x0000, 0xffff];
    const expected = [255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255, 132, 130, 8, 255, 0, 0, 0, 255, 255, 255, 255, 255];
    const rows = (order: 'msb' | 'lsb'): Uint8Array => {
      const bytes: number[] = [];
      pixels.forEach((pixel, i) => {
        bytes.push(...(order === 'msb' ? [pixel >> 8, pixel & 0xff] : [pixel & 0xff, pixel >> 8]));
        if (i % 3 === 2) bytes.push(0xaa, 0xaa);
      });
      return Uint8Array.from(bytes);
    };
    expect([...rows('msb').subarray(0, 4)]).toEqual([0xf8, 0x00, 0x07, 0xe0]);
    expect([...zpixmapToRgba(rows('msb'), 3, 2, { ...rgb565, byteOrder: 1 })]).toEqual(expected);
    expect([...zpixmapToRgba(rows('lsb'), 3, 2, { ...rgb565, byteOrder: 0 })]).toEqual(expected);
  });

  it('refuses a short image and an odd pixel size', () => {
    const layout = { bitsPerPixel: 32, scanlinePad: 32, byteOrder: 0, redMask: 0xff0000, greenMask: 0xff00, blueMask: 0xff };
    expect(() => zpixmapToRgba(new Uint8Array(4), 2, 1, layout)).toThrow(/8 were expected/);
    expect(() => zpixmapToRgba(new Uint8Array(4), 1, 1, { ...layout, bitsPerPixel: 4 })).toThrow(/4 bits a pixel/);
  });
});

const missingX = missingTool('Xvfb', 'display');

describe.skipIf(missingX !== undefined)(`X11 screen capture ${skipMessage(missingX, missingX === 'display' ? 'imagemagick' : 'xvfb')}`, () => {
  for (const screen of ['800x600x24', '800x600x16']) {
    it(`captures an Xvfb screen of ${screen} showing a QR code, and the code is found in it`, async () => {
      const desktop = new Desktop();
      let viewer: ChildProcess | undefined;
      try {
        await desktop.startX(screen);
        const file = join(desktop.dir, 'code.png');
        writeFileSync(file, await qrPng(URI, 4));
        viewer = spawn('display', ['-geometry', '+150+100', file], { env: desktop.processEnv(), stdio: 'ignore' });
        const capture = new X11ScreenCapture(desktop.env.DISPLAY!);
        let texts: string[] = [];
        await desktop.waitFor(async () => {
          const shot = await capture.capture();
          expect(shot.format).toBe('rgba');
          if (shot.format !== 'rgba') return false;
          expect([shot.width, shot.height]).toEqual([800, 600]);
          texts = (await findQrCodes(shot)).codes.map((code) => code.text);
          return texts.length > 0;
        });
        expect(texts).toEqual([URI]);
      } finally {
        viewer?.kill('SIGTERM');
        await desktop.stop();
      }
    });
  }

  it('DISPLAY with a screen number: that screen is captured; one the server lacks is UNSUPPORTED naming both', async () => {
    expect([':0', ':1.1', 'host:0.1', 'unix/host:2.3', 'localhost:10'].map(displayScreen)).toEqual([0, 1, 1, 3, 0]);
    const desktop = new Desktop();
    let viewer: ChildProcess | undefined;
    try {
      await desktop.startX('800x600x24', ['-screen', '1', '640x480x16']);
      const display = desktop.env.DISPLAY!;
      const file = join(desktop.dir, 'code.png');
      writeFileSync(file, await qrPng(URI, 4));
      // The viewer on screen 1 only: screen 0 shows no code.
      viewer = spawn('display', ['-geometry', '+100+80', file], { env: { ...desktop.processEnv(), DISPLAY: `${display}.1` }, stdio: 'ignore' });
      let texts: string[] = [];
      await desktop.waitFor(async () => {
        const shot = await new X11ScreenCapture(`${display}.1`).capture();
        if (shot.format !== 'rgba') return false;
        expect([shot.width, shot.height]).toEqual([640, 480]);
        texts = (await findQrCodes(shot)).codes.map((code) => code.text);
        return texts.length > 0;
      });
      expect(texts).toEqual([URI]);
      const first = await new X11ScreenCapture(`${display}.0`).capture();
      expect(first.format === 'rgba' && [first.width, first.height]).toEqual([800, 600]);
      await expect(new X11ScreenCapture(`${display}.2`).capture()).rejects.toMatchObject({
        code: 'UNSUPPORTED',
        message: `The X display ${display}.2 names screen 2, but the server has screens 0 to 1.`,
        hint: expect.stringContaining(`${display}.0`),
      });
    } finally {
      viewer?.kill('SIGTERM');
      await desktop.stop();
    }
  });

  it('a display that is not there: UNSUPPORTED naming it', async () => {
    await expect(new X11ScreenCapture(':4711').capture()).rejects.toMatchObject({ code: 'UNSUPPORTED', message: expect.stringMatching(/:4711/) });
  });
});

const PATH = '/org/freedesktop/portal/desktop';
const IFACE = 'org.freedesktop.portal.Screenshot';

class FakeScreenshotPortal {
  bus: MessageBus;
  calls: unknown[][] = [];
  response = 0;
  constructor(
    address: string,
    private readonly file: string,
  ) {
    this.bus = sessionBus({ busAddress: address });
    this.bus.on('error', () => undefined);
    this.bus.addMethodHandler((msg: Message) => this.handle(msg));
  }

  async start(): Promise<void> {
    await this.bus.requestName('org.freedesktop.portal.Desktop', 0);
  }

  private handle(msg: Message): boolean {
    const reply = (signature?: string, body?: unknown[]) => this.bus.send(Message.newMethodReturn(msg, signature, body));
    if (msg.interface === 'org.freedesktop.DBus.Properties' && msg.member === 'Get') {
      if (msg.body[0] === IFACE) reply('v', [new Variant('u', 2)]);
      else this.bus.send(Message.newError(msg as unknown as string, 'org.freedesktop.DBus.Error.InvalidArgs', 'No such interface'));
      return true;
    }
    if (msg.interface !== IFACE || msg.member !== 'Screenshot') return false;
    this.calls.push(msg.body);
    const options = msg.body[1] as Record<string, Variant>;
    const request = `${PATH}/request/${msg.sender.replace(/^:/, '').replace(/\./g, '_')}/${String(options.handle_token?.value)}`;
    reply('o', [request]);
    const results = this.response === 0 ? { uri: new Variant('s', pathToFileURL(this.file).href) } : {};
    setTimeout(() => this.bus.send(Message.newSignal(request, 'org.freedesktop.portal.Request', 'Response', 'ua{sv}', [this.response, results])), 20);
    return true;
  }

  stop(): void {
    this.bus.disconnect();
  }
}

const missingBus = missingTool('dbus-daemon');

describe.skipIf(missingBus !== undefined)(`org.freedesktop.portal.Screenshot ${skipMessage(missingBus, 'dbus')}`, () => {
  const desktop = new Desktop();
  let portal: FakeScreenshotPortal;
  let address: string;
  const file = join(desktop.dir, 'Screenshot from the portal.png');

  beforeAll(async () => {
    desktop.startBus();
    address = desktop.env.DBUS_SESSION_BUS_ADDRESS!;
    portal = new FakeScreenshotPortal(address, file);
    await portal.start();
  });
  afterAll(async () => {
    portal?.stop();
    await desktop.stop();
  });

  it('asks for a non-interactive screenshot, reads the PNG it names and deletes it', async () => {
    const png = await qrPng(URI);
    writeFileSync(file, png);
    const shot = await new PortalScreenCapture({ busAddress: address }).capture();
    expect(portal.calls.at(-1)![0]).toBe('');
    expect((portal.calls.at(-1)![1] as Record<string, Variant>).interactive!.value).toBe(false);
    expect(shot.format).toBe('png');
    expect(Buffer.from(shot.data).equals(png)).toBe(true);
    expect((await findQrCodes(readImage(shot.data))).codes.map((c) => c.text)).toEqual([URI]);
    expect(existsSync(file)).toBe(false);
  });

  it('a screenshot the user does not allow: CANCELLED', async () => {
    portal.response = 1;
    try {
      await expect(new PortalScreenCapture({ busAddress: address }).capture()).rejects.toMatchObject({ code: 'CANCELLED', message: expect.stringMatching(/not allowed/) });
    } finally {
      portal.response = 0;
    }
  });

  it('no portal on the bus, or no bus: UNSUPPORTED', async () => {
    const other = new Desktop();
    other.startBus();
    try {
      await expect(new PortalScreenCapture({ busAddress: other.env.DBUS_SESSION_BUS_ADDRESS }).capture()).rejects.toMatchObject({ code: 'UNSUPPORTED', message: expect.stringMatching(/No XDG desktop portal/) });
    } finally {
      await other.stop();
    }
    await expect(new PortalScreenCapture({ busAddress: `unix:path=${desktop.dir}/none` }).capture()).rejects.toMatchObject({ code: 'UNSUPPORTED' });
  });
});
