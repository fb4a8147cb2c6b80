// "Add account from QR code on screen…" in the tray: the menu item and its id (pure), the toasts
// the state machine decides, and the controller with a fake screen showing generated QR codes.
import { afterEach, describe, expect, it } from 'vitest';
import { buildTrayModel, parseMenuId } from '../../src/app/menu-model.js';
import { INITIAL_STATE, reduce } from '../../src/app/state.js';
import type { AppState, StateSettings } from '../../src/app/state.js';
import { DEFAULT_CONFIG } from '../../src/app/config.js';
import type { ScreenCapture, ScreenShot } from '../../src/desktop/screen-capture/types.js';
import { KeytapError } from '../../src/errors.js';
import { readImage } from '../../src/qr/image.js';
import { finderField, qrPng, screenPng } from '../support/qr-images.js';
import type { Rig } from './fakes.js';
import { FakeDevice, descriptor, flush, rig } from './fakes.js';
import { TOTP } from './fixtures.js';

const URI_BANK = 'otpauth://totp/Bank:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Bank&period=60';
const URI_FORGE = 'otpauth://totp/Forge:bob?secret=JBSWY3DPEHPK3PXP&issuer=Forge';
const SETTINGS: StateSettings = { notifications: true, notifyOnConnect: true, showCodeInNotification: false, touchTimeoutSeconds: 15, clipboardClearSeconds: 30 };

function readyState(): AppState {
  return { ...INITIAL_STATE, keys: [{ id: '/dev/hidraw3', name: 'Nitrokey 3', kind: 'hid', serial: 'AB12', status: 'ready', credentials: [] }] };
}

describe('the menu item', () => {
  it('is in the section of each ready key, and its id gives the action back', () => {
    const model = buildTrayModel(readyState(), DEFAULT_CONFIG);
    const item = model.menu.find((node) => node.kind === 'item' && node.label === 'Add account from QR code on screen…');
    expect(item?.id).toBe('qr:%2Fdev%2Fhidraw3');
    expect(parseMenuId(item!.id)).toEqual({ type: 'add-from-qr', keyId: '/dev/hidraw3' });
    expect(parseMenuId('qr:')).toBeUndefined();
    const locked = { ...readyState(), keys: [{ ...readyState().keys[0]!, status: 'locked' as const }] };
    expect(buildTrayModel(locked, DEFAULT_CONFIG).menu.some((node) => node.id.startsWith('qr:'))).toBe(false);
  });
});

describe('the toasts', () => {
  it('added: names the account and the key, and lists the key again; failed: says why', () => {
    const added = reduce(readyState(), { type: 'qr-account-added', keyId: '/dev/hidraw3', label: 'Bank: alice (60 s)' }, SETTINGS);
    expect(added.effects).toContainEqual({ type: 'notify', slot: 'app', notification: { title: 'Account added', body: 'Bank: alice (60 s) on Nitrokey 3', icon: 'key' } });
    expect(added.effects).toContainEqual({ type: 'load', keyId: '/dev/hidraw3' });
    const failed = reduce(readyState(), { type: 'qr-account-failed', keyId: '/dev/hidraw3', error: { code: 'BAD_INPUT', message: 'No QR code found on the screen.', hint: 'Zoom in.' } }, SETTINGS);
    expect(failed.effects).toContainEqual({ type: 'notify', slot: 'app', notification: { title: 'Could not add an account from the QR code', body: 'No QR code found on the screen.\nZoom in.', icon: 'error' } });
    expect(reduce(readyState(), { type: 'qr-account-added', keyId: '/dev/hidraw3', label: 'x' }, { ...SETTINGS, notifications: false }).effects.some((e) => e.type === 'notify')).toBe(false);
  });
});

class FakeScreen implements ScreenCapture {
  readonly name = 'fake screen';
  /** What the next capture gives, or the error it fails with; 'hang': it waits for an abort. */
  shot: ScreenShot | Error | 'hang' = new Error('no screen yet');
  captures = 0;
  signals: (AbortSignal | undefined)[] = [];
  capture(signal?: AbortSignal): Promise<ScreenShot> {
    this.captures++;
    this.signals.push(signal);
    if (this.shot === 'hang') {
      return new Promise((_resolve, reject) => signal?.addEventListener('abort', () => reject(new KeytapError('CANCELLED', 'The screen capture was cancelled.'))));
    }
    return this.shot instanceof Error ? Promise.reject(this.shot) : Promise.resolve(this.shot);
  }
  async show(png: Promise<Buffer>, as: 'rgba' | 'png' = 'rgba'): Promise<void> {
    const bytes = await png;
    this.shot = as === 'png' ? { format: 'png', data: bytes } : { format: 'rgba', ...readImage(bytes) };
  }
}

const rigs: Rig[] = [];
afterEach(async () => {
  for (const r of rigs.splice(0)) {
    await r.controller.stop();
    r.config.close();
  }
});

async function withScreen(): Promise<{ r: Rig; device: FakeDevice; screen: FakeScreen }> {
  const screen = new FakeScreen();
  const r = rig({ screenCapture: screen });
  rigs.push(r);
  const device = new FakeDevice([TOTP], 'AB12');
  r.devices.set('k1', device);
  r.keys.initial.push(descriptor('k1'));
  await r.controller.start();
  await flush(r);
  return { r, device, screen };
}

async function click(r: Rig, id: string): Promise<void> {
  r.controller.handleClick(id);
  // The capture and the scan run outside the key queue that idle() waits for.
  for (let i = 0; i < 20 && !r.notifier.titles().some((t) => t === 'Account added' || t.startsWith('Could not') || t === 'No account added'); i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    await flush(r);
  }
}

describe('the controller', () => {
  it('one code on the screen: the account goes on the key, a toast names it, the menu shows it', async () => {
    const { r, device, screen } = await withScreen();
    await screen.show(screenPng(800, 600, [{ text: URI_BANK, x: 200, y: 150 }]));
    await click(r, 'qr:k1');
    expect(device.puts.map((c) => [c.issuer, c.account, c.period, Buffer.from(c.secret).toString('hex')])).toEqual([['Bank', 'alice', 60, Buffer.from('12345678901234567890').toString('hex')]]);
    const toast = r.notifier.shown.find((s) => s.notification.title === 'Account added')!;
    expect(toast.notification.body).toBe('Bank: alice (60 s) on Nitrokey 3');
    expect(r.tray.last.menu.some((node) => node.kind === 'item' && node.label === 'Bank: alice (60 s)')).toBe(true);
    expect(device.opens).toBe(device.closes);
  });

  it('a PNG from the portal is read the same way', async () => {
    const { r, device, screen } = await withScreen();
    await screen.show(qrPng(URI_FORGE), 'png');
    const shot = screen.shot as ScreenShot;
    expect(shot.format).toBe('png');
    await click(r, 'qr:k1');
    expect(device.puts.map((c) => c.account)).toEqual(['bob']);
    // The portal's file bytes are zeroed once searched, as the pixels are.
    expect(shot.data.length).toBeGreaterThan(100);
    expect(shot.data.every((byte) => byte === 0)).toBe(true);
  });

  it('two accounts on the screen: none is added, and the toast says to use keytap add --qr', async () => {
    const { r, device, screen } = await withScreen();
    await screen.show(screenPng(1000, 500, [{ text: URI_BANK, x: 60, y: 90 }, { text: URI_FORGE, x: 560, y: 80 }]));
    await click(r, 'qr:k1');
    expect(device.puts).toEqual([]);
    const toast = r.notifier.shown.find((s) => s.notification.title === 'Could not add an account from the QR code')!;
    expect(toast.notification.body).toMatch(/hold 2 accounts; the tray adds one at a time, so none was added\.\n.*keytap add --qr/);
  });

  it('no code, a capture that fails, a key that refuses: a toast each, and the tray goes on', async () => {
    const { r, device, screen } = await withScreen();
    await screen.show(screenPng(400, 300, []));
    await click(r, 'qr:k1');
    expect(r.notifier.shown.at(-1)!.notification.body).toMatch(/^No QR code found on the screen\./);

    r.notifier.shown = [];
    screen.shot = new KeytapError('CANCELLED', 'The screenshot was not allowed in the desktop\'s dialog.');
    await click(r, 'qr:k1');
    expect(r.notifier.shown.at(-1)!.notification).toMatchObject({ title: 'No account added', body: expect.stringMatching(/not allowed/) });

    r.notifier.shown = [];
    await screen.show(qrPng(URI_FORGE));
    device.putError = new KeytapError('EXISTS', 'The key already has an account "Forge:bob".', { detail: { kind: 'exists', id: 'Forge:bob' } });
    await click(r, 'qr:k1');
    expect(r.notifier.shown.at(-1)!.notification.body).toBe('The key already has an account "Forge:bob".\nChoose another name.');

    r.notifier.shown = [];
    screen.shot = new Error('boom');
    await click(r, 'qr:k1');
    expect(r.notifier.shown.at(-1)!.notification.body).toMatch(/Unexpected error: boom/);
    expect(device.puts).toEqual([]);
    // Still answering clicks.
    device.putError = undefined;
    await screen.show(qrPng(URI_FORGE));
    r.notifier.shown = [];
    await click(r, 'qr:k1');
    expect(device.puts.map((c) => c.account)).toEqual(['bob']);
  });

  it('Cancel in the menu while the screen is searched: nothing is added, the toast says so, the menu item goes', async () => {
    const { r, device, screen } = await withScreen();
    // A 4K screen of finder patterns without a code: its search takes long enough to be cancelled in the middle.
    const shot: ScreenShot = { format: 'rgba', ...(await finderField(3840, 2160)) };
    screen.shot = shot;
    r.controller.handleClick('qr:k1');
    await flush(r);
    const cancel = r.tray.last.menu.find((node) => node.id === 'cancel-qr');
    expect(cancel).toMatchObject({ kind: 'item', label: 'Cancel adding an account from a QR code' });
    expect(parseMenuId('cancel-qr')).toEqual({ type: 'cancel-qr' });
    await new Promise((resolve) => setTimeout(resolve, 50));
    await click(r, 'cancel-qr');
    expect(r.notifier.shown.at(-1)!.notification).toMatchObject({ title: 'No account added', body: expect.stringMatching(/^Adding an account from a QR code was cancelled\./) });
    expect(device.puts).toEqual([]);
    expect(shot.data.every((byte) => byte === 0)).toBe(true);
    await flush(r);
    expect(r.tray.last.menu.some((node) => node.id === 'cancel-qr')).toBe(false);
  });

  it('Quit during the capture or the search aborts it, and stop() ends after it: no capture or search goes on, no toast', async () => {
    const { r, device, screen } = await withScreen();
    screen.shot = 'hang';
    r.controller.handleClick('qr:k1');
    await flush(r);
    expect(screen.signals.at(-1)?.aborted).toBe(false);
    await r.controller.stop();
    expect(screen.signals.at(-1)?.aborted).toBe(true);

    const other = await withScreen();
    const shot: ScreenShot = { format: 'rgba', ...(await finderField(3840, 2160)) };
    other.screen.shot = shot;
    other.r.controller.handleClick('qr:k1');
    await new Promise((resolve) => setTimeout(resolve, 50));
    await other.r.controller.stop();
    // The search was over (its copies zeroed) by the time stop() ended.
    expect(shot.data.every((byte) => byte === 0)).toBe(true);
    for (const { notifier } of [r, other.r]) expect(notifier.titles().filter((t) => t !== 'keytap' && /account|QR/i.test(t))).toEqual([]);
    expect([...device.puts, ...other.device.puts]).toEqual([]);
  });
});
