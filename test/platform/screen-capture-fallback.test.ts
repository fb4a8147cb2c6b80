// The Wayland screen capture's choice: the screenshot portal, and grim only where there is no
// portal to ask (no session bus, no portal, or one without Screenshot) — never after a portal that
// is there and failed or was refused. grim through fake grabbers (what it is asked, what it says),
// and once for real through a stand-in `grim` on PATH that writes a PNG's bytes to stdout, which
// must arrive unchanged. The real sway session is test/wayland/screen-qr.test.ts.
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { Message, sessionBus, Variant } from 'dbus-next';
import { describe, expect, it } from 'vitest';

import { KeytapError } from '../../src/errors.js';
import { GrimScreenCapture } from '../../src/desktop/screen-capture/grim.js';
import type { Grabber } from '../../src/desktop/screen-capture/grim.js';
import { createScreenCapture, PortalOrElseScreenCapture } from '../../src/desktop/screen-capture/index.js';
import { NoScreenshotPortalError, PortalScreenCapture } from '../../src/desktop/screen-capture/portal.js';
import type { ScreenCapture, ScreenShot } from '../../src/desktop/screen-capture/types.js';
import { qrPng } from '../support/qr-images.js';
import { tempDir } from '../support/cli.js';
import { Desktop, missingTool } from './desktop.js';

const SHOT: ScreenShot = { format: 'png', data: Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1) };

/** A capture that answers `outcome`, and counts its calls. */
function fake(name: string, outcome: ScreenShot | KeytapError): ScreenCapture & { calls: number } {
  return {
    name,
    calls: 0,
    capture() {
      this.calls++;
      return outcome instanceof KeytapError ? Promise.reject(outcome) : Promise.resolve(outcome);
    },
  };
}

const otherShot: ScreenShot = { format: 'png', data: Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 2) };

describe('the screenshot portal, else grim', () => {
  it('a portal that answers: its screenshot, grim not run', async () => {
    const portal = fake('xdg-desktop-portal', SHOT);
    const grim = fake('grim', otherShot);
    expect(await new PortalOrElseScreenCapture(portal, grim).capture()).toBe(SHOT);
    expect([portal.calls, grim.calls]).toEqual([1, 0]);
  });

  it('no portal to ask: grim\'s screenshot; the portal is asked again next time', async () => {
    const portal = fake('xdg-desktop-portal', new NoScreenshotPortalError('No XDG desktop portal is running.'));
    const grim = fake('grim', otherShot);
    const capture = new PortalOrElseScreenCapture(portal, grim);
    expect(capture.name).toBe('xdg-desktop-portal, else grim');
    expect(await capture.capture()).toBe(otherShot);
    expect(await capture.capture()).toBe(otherShot);
    expect([portal.calls, grim.calls]).toEqual([2, 2]);
  });

  it.each([
    ['refused in the dialog', new KeytapError('CANCELLED', 'The screenshot was not allowed in the desktop\'s dialog.')],
    ['failed', new KeytapError('UNSUPPORTED', 'The screenshot portal refused (response 2).')],
    ['did not answer', new KeytapError('UNSUPPORTED', 'The screenshot portal did not answer.')],
  ])('a portal that is there and %s: that is the answer, grim not run', async (_, refusal) => {
    const grim = fake('grim', otherShot);
    await expect(new PortalOrElseScreenCapture(fake('xdg-desktop-portal', refusal), grim).capture()).rejects.toBe(refusal);
    expect(grim.calls).toBe(0);
  });

  it('neither: one error naming both reasons, and what to install', async () => {
    const portal = fake('xdg-desktop-portal', new NoScreenshotPortalError('The desktop portal has no Screenshot interface (No such interface).'));
    const grim = fake('grim', new KeytapError('UNSUPPORTED', 'grim is not installed.'));
    const error = await new PortalOrElseScreenCapture(portal, grim).capture().then(
      () => undefined,
      (e: unknown) => e as KeytapError,
    );
    expect(error).toMatchObject({
      code: 'UNSUPPORTED',
      message: 'The screen cannot be captured: The desktop portal has no Screenshot interface (No such interface). grim is not installed.',
    });
    expect(error!.hint).toMatch(/xdg-desktop-portal-gnome, -kde; on sway, Hyprland: -wlr, or grim: apt install grim/u);
    expect(error!.hint).toMatch(/save the QR code as a PNG or JPEG file/u);
  });

  it('a cancel while grim runs is a cancel, not "cannot capture"', async () => {
    const portal = fake('xdg-desktop-portal', new NoScreenshotPortalError('No XDG desktop portal is running.'));
    const grim = fake('grim', new KeytapError('CANCELLED', 'The screen capture was cancelled.'));
    await expect(new PortalOrElseScreenCapture(portal, grim).capture()).rejects.toMatchObject({ code: 'CANCELLED' });
  });

  it('the real portal capture with no session bus is NoScreenshotPortalError', async () => {
    const noBus = await new PortalScreenCapture({ busAddress: `unix:path=${join(tempDir('keytap-nobus-'), 'bus')}` }).capture().catch((e: unknown) => e);
    expect(noBus).toBeInstanceOf(NoScreenshotPortalError);
    expect(noBus).toMatchObject({ code: 'UNSUPPORTED', message: expect.stringMatching(/^No D-Bus session bus for the screenshot portal/u) });
  });

  it.skipIf(missingTool('dbus-daemon') !== undefined)('the real portal capture on a bus nobody serves a portal on is NoScreenshotPortalError', async () => {
    const desktop = new Desktop();
    try {
      desktop.startBus();
      const error = await new PortalScreenCapture({ busAddress: desktop.env.DBUS_SESSION_BUS_ADDRESS }).capture().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(NoScreenshotPortalError);
      expect(error).toMatchObject({ message: expect.stringMatching(/^No XDG desktop portal is running/u) });
    } finally {
      await desktop.stop();
    }
  });

  it.skipIf(missingTool('dbus-daemon') !== undefined)('a portal without a Screenshot interface (a stand-in that answers only what it has) is NoScreenshotPortalError; grim then captures', async () => {
    const desktop = new Desktop();
    try {
      desktop.startBus();
      const bus = sessionBus({ busAddress: desktop.env.DBUS_SESSION_BUS_ADDRESS! });
      bus.on('error', () => undefined);
      bus.addMethodHandler((msg: Message) => {
        if (msg.interface !== 'org.freedesktop.DBus.Properties' || msg.member !== 'Get') return false;
        if (msg.body[0] === 'org.freedesktop.portal.ScreenCast') bus.send(Message.newMethodReturn(msg, 'v', [new Variant('u', 4)]));
        else bus.send(Message.newError(msg as unknown as string, 'org.freedesktop.DBus.Error.InvalidArgs', `No such interface “${String(msg.body[0])}”`));
        return true;
      });
      await bus.requestName('org.freedesktop.portal.Desktop', 0);
      try {
        const real = new PortalScreenCapture({ busAddress: desktop.env.DBUS_SESSION_BUS_ADDRESS });
        const error = await real.capture().catch((e: unknown) => e);
        expect(error).toBeInstanceOf(NoScreenshotPortalError);
        expect(error).toMatchObject({ message: expect.stringMatching(/^The desktop portal has no Screenshot interface/u) });
        const grim = fake('grim', otherShot);
        expect(await new PortalOrElseScreenCapture(real, grim).capture()).toBe(otherShot);
      } finally {
        bus.disconnect();
      }
    } finally {
      await desktop.stop();
    }
  });

  it('a Wayland session gets the portal, else grim; X11 and no display do not', () => {
    expect(createScreenCapture({ platform: 'linux', env: { WAYLAND_DISPLAY: 'wayland-1' } }).name).toBe('xdg-desktop-portal, else grim');
    expect(createScreenCapture({ platform: 'linux', env: { XDG_SESSION_TYPE: 'wayland' } }).name).toBe('xdg-desktop-portal, else grim');
    expect(createScreenCapture({ platform: 'linux', env: { DISPLAY: ':0' } }).name).toBe('X11');
    expect(createScreenCapture({ platform: 'linux', env: {} }).name).toBe('none');
  });
});

describe('grim', () => {
  const grabber = (result: { code: number | null; stdout?: Uint8Array; stderr?: string } | Error): Grabber & { asked: unknown[] } => {
    const asked: unknown[] = [];
    const run: Grabber = (command, args) => {
      asked.push([command, [...args]]);
      return result instanceof Error ? Promise.reject(result) : Promise.resolve({ stdout: new Uint8Array(), stderr: '', ...result });
    };
    return Object.assign(run, { asked });
  };

  it('runs `grim -` and hands over the PNG it wrote to stdout', async () => {
    const grab = grabber({ code: 0, stdout: SHOT.data });
    expect(await new GrimScreenCapture({ grab }).capture()).toEqual(SHOT);
    expect(grab.asked).toEqual([['grim', ['-']]]);
  });

  it('not installed, a compositor without wlr-screencopy, killed, not a PNG: UNSUPPORTED saying which', async () => {
    const missing = Object.assign(new Error('spawn grim ENOENT'), { code: 'ENOENT' });
    await expect(new GrimScreenCapture({ grab: grabber(missing) }).capture()).rejects.toMatchObject({ code: 'UNSUPPORTED', message: 'grim is not installed.' });
    const gnome = grabber({ code: 1, stderr: "compositor doesn't support wlr-screencopy-unstable-v1\n" });
    await expect(new GrimScreenCapture({ grab: gnome }).capture()).rejects.toMatchObject({
      code: 'UNSUPPORTED',
      message: "grim could not capture the screen (compositor doesn't support wlr-screencopy-unstable-v1).",
    });
    await expect(new GrimScreenCapture({ grab: grabber({ code: null }) }).capture()).rejects.toMatchObject({ message: 'grim could not capture the screen (it took too long, or its picture was too large).' });
    await expect(new GrimScreenCapture({ grab: grabber({ code: 0, stdout: Buffer.from('P6\n1 1\n255\n...') }) }).capture()).rejects.toMatchObject({ message: 'grim did not write a PNG image.' });
  });

  it.skipIf(process.platform === 'win32')('the real grabber: a stand-in grim\'s PNG bytes arrive unchanged, and it was asked for stdout', async () => {
    const dir = tempDir('keytap-grim-');
    const png = await qrPng('otpauth://totp/Grim:alice?secret=JBSWY3DPEHPK3PXP&issuer=Grim');
    writeFileSync(join(dir, 'code.png'), png);
    writeFileSync(join(dir, 'grim'), `#!/bin/sh\nprintf '%s\\n' "$*" > '${dir}/args'\ncat '${dir}/code.png'\n`);
    chmodSync(join(dir, 'grim'), 0o755);
    const shot = await new GrimScreenCapture({ env: { ...process.env, PATH: `${dir}${delimiter}${process.env.PATH ?? ''}` } }).capture();
    expect(shot.format).toBe('png');
    expect(Buffer.from(shot.data).equals(png)).toBe(true);
    expect(readFileSync(join(dir, 'args'), 'utf8')).toBe('-\n');
    writeFileSync(join(dir, 'grim'), `#!/bin/sh\necho 'failed to create display' >&2\nexit 1\n`);
    await expect(new GrimScreenCapture({ env: { ...process.env, PATH: `${dir}${delimiter}${process.env.PATH ?? ''}` } }).capture()).rejects.toMatchObject({
      message: 'grim could not capture the screen (failed to create display).',
    });
  });
});
