// A tray host that cannot show the menu (swaybar calls ContextMenu): the accounts go to the
// desktop's finder, and the chosen one is read as its menu item's click reads it.
import { afterEach, describe, expect, it } from 'vitest';
import { KeytapError } from '../../src/errors.js';
import type { Rig } from './fakes.js';
import { FakeDevice, FakeFinder, descriptor, flush, rig } from './fakes.js';
import { HOTP, TOTP, TOUCH } from './fixtures.js';

const rigs: Rig[] = [];
afterEach(async () => {
  for (const r of rigs.splice(0)) {
    await r.controller.stop();
    r.config.close();
  }
});

async function withFinder(finder: FakeFinder | undefined, credentials = [TOTP, TOUCH, HOTP]): Promise<Rig & { device: FakeDevice }> {
  const r = rig({ finder: () => finder });
  rigs.push(r);
  const device = new FakeDevice(credentials, '1234ABCD');
  r.devices.set('k1', device);
  r.keys.initial.push(descriptor('k1'));
  await r.controller.start();
  await flush(r);
  r.notifier.shown = [];
  return { ...r, device };
}

describe('a host that leaves the menu to keytap', () => {
  it('offers every account by its menu label; the one chosen is read as its click: touch toast, copy with the clear time, "Code copied"', async () => {
    const finder = new FakeFinder();
    const r = await withFinder(finder);
    r.tray.onMenuWanted!();
    await flush(r);
    expect(finder.opened).toEqual([['Demo: alice', 'GitHub: alice (touch)', 'VPN: alice (HOTP)']]);
    finder.pick('GitHub: alice (touch)');
    await flush(r);
    expect(r.notifier.titles()).toEqual(['Touch your key']);
    expect(r.tray.last.icon).toBe('touch');
    r.device.release();
    await flush(r);
    // 287082 is this fake key's code for GitHub:alice (the menu-click test reads the same).
    expect(r.clipboard.copies).toEqual([{ text: '287082', clearAfterSeconds: 20 }]);
    expect(r.notifier.titles()).toEqual(['Touch your key', expect.stringMatching(/^Code copied, valid for \d+ s$/u)]);
    expect(r.logger.lines.join('\n')).not.toContain('287082');
    expect(JSON.stringify(r.notifier.shown)).not.toContain('287082');
  });

  it('a second click while the finder is open opens no second one; after it closes, a click opens it again', async () => {
    const finder = new FakeFinder();
    const r = await withFinder(finder);
    r.tray.onMenuWanted!();
    r.tray.onMenuWanted!();
    await flush(r);
    expect(finder.opened).toHaveLength(1);
    finder.escape();
    await flush(r);
    r.tray.onMenuWanted!();
    await flush(r);
    expect(finder.opened).toHaveLength(2);
  });

  it('Esc in the finder reads nothing, copies nothing and shows no toast', async () => {
    const finder = new FakeFinder();
    const r = await withFinder(finder);
    const opens = r.device.opens;
    r.tray.onMenuWanted!();
    await flush(r);
    finder.escape();
    await flush(r);
    expect(r.device.opens).toBe(opens);
    expect(r.clipboard.copies).toEqual([]);
    expect(r.notifier.shown).toEqual([]);
  });

  it('without a finder: one toast naming what to install (Debian packages) or bind, with no account in it', async () => {
    const r = await withFinder(undefined);
    r.tray.onMenuWanted!();
    await flush(r);
    expect(r.notifier.titles()).toEqual(['keytap cannot show its menu here']);
    const body = r.notifier.shown[0]!.notification.body;
    for (const words of ['apt install fuzzel', 'wofi', 'rofi', 'suckless-tools', 'keytap pick']) expect(body).toContain(words);
    expect(body).not.toContain('alice');
    expect(r.clipboard.copies).toEqual([]);
  });

  it('a finder that fails says so in a toast; a line that is no account reads nothing', async () => {
    const finder = new FakeFinder();
    const r = await withFinder(finder);
    r.tray.onMenuWanted!();
    await flush(r);
    finder.pick('typed by hand');
    await flush(r);
    expect(r.clipboard.copies).toEqual([]);
    expect(r.logger.lines.some((l) => l.includes('none of the accounts offered'))).toBe(true);
    finder.fail = new KeytapError('DEVICE_ERROR', 'fakefinder failed (exit code 2): cannot connect to the compositor');
    r.tray.onMenuWanted!();
    await flush(r);
    expect(r.notifier.titles()).toEqual(['Could not list the accounts in fakefinder']);
    expect(r.notifier.shown[0]!.notification.body).toContain('cannot connect to the compositor');
  });

  it('no key: a toast says to plug one in, and no finder opens', async () => {
    const finder = new FakeFinder();
    const r = rig({ finder: () => finder });
    rigs.push(r);
    await r.controller.start();
    await flush(r);
    r.notifier.shown = [];
    r.tray.onMenuWanted!();
    await flush(r);
    expect(finder.opened).toEqual([]);
    expect(r.notifier.titles()).toEqual(['No key connected']);
  });

  it('Quit while the finder is open closes it, and nothing is read afterwards', async () => {
    const finder = new FakeFinder();
    const r = await withFinder(finder);
    r.tray.onMenuWanted!();
    await flush(r);
    await r.controller.stop();
    expect(finder.aborted).toBe(true);
    expect(r.clipboard.copies).toEqual([]);
  });
});
