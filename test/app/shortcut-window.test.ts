// The shortcut reads the account the focused window calls for: the window is read at the press
// (a fake source here), matched against the window rules and the issuers, and the one account
// that fits is read; several go to the finder (just those) or, without one, to a toast naming
// them; none falls back to the default account as before. The title is never logged.
import { afterEach, describe, expect, it } from 'vitest';
import type { FocusedWindow, FocusedWindowSource } from '../../src/desktop/focused-window/types.js';
import { KeytapError } from '../../src/errors.js';
import type { Rig } from './fakes.js';
import { FakeDevice, FakeFinder, descriptor, flush, rig } from './fakes.js';
import { HOTP, TOTP, TOUCH } from './fixtures.js';

class FakeWindowSource implements FocusedWindowSource {
  readonly name = 'fake';
  window: FocusedWindow | undefined;
  fail: Error | undefined;
  reads = 0;
  read(): Promise<FocusedWindow | undefined> {
    this.reads++;
    return this.fail ? Promise.reject(this.fail) : Promise.resolve(this.window);
  }
}

const PRIVATE_TITLE = 'Sign in to GitHub — re: salary review for Carol';

const rigs: Rig[] = [];
afterEach(async () => {
  for (const r of rigs.splice(0)) {
    await r.controller.stop();
    r.config.close();
  }
});

async function withWindow(finder?: FakeFinder): Promise<Rig & { device: FakeDevice; source: FakeWindowSource }> {
  const source = new FakeWindowSource();
  const r = rig({ focusedWindow: source, finder: () => finder });
  rigs.push(r);
  const device = new FakeDevice([TOTP, TOUCH, HOTP], '1234ABCD');
  r.devices.set('k1', device);
  r.keys.initial.push(descriptor('k1'));
  await r.controller.start();
  await flush(r);
  r.notifier.shown = [];
  return { ...r, device, source };
}

describe('the shortcut and the focused window', () => {
  it("the issuer in the title: that account is read, and the log says the issuer matched, not the title", async () => {
    const r = await withWindow();
    r.source.window = { title: PRIVATE_TITLE, app: 'firefox' };
    r.shortcut.onPress!();
    await flush(r);
    r.device.release();
    await flush(r);
    expect(r.source.reads).toBe(1);
    expect(r.device.calculations.map((c) => c.id)).toEqual(['GitHub:alice']);
    expect(r.clipboard.copies).toHaveLength(1);
    const log = r.logger.lines.join('\n');
    expect(log).toContain('the shortcut reads GitHub:alice for the focused window (the issuer "GitHub" in the window\'s title)');
    expect(log).not.toContain('Carol');
    expect(JSON.stringify(r.notifier.shown)).not.toContain('Carol');
  });

  it('a window rule (by application) wins over the default account', async () => {
    const r = await withWindow();
    r.config.set('defaultAccount', { keyId: '1234ABCD', credentialId: 'Demo:alice' });
    r.config.set('windowRules', [{ credentialId: 'VPN:alice', app: 'vpn-client' }]);
    r.source.window = { title: 'Connect', app: 'vpn-client' };
    r.shortcut.onPress!();
    await flush(r);
    expect(r.device.calculations.map((c) => c.id)).toEqual(['VPN:alice']);
    expect(r.logger.lines.join('\n')).toContain('the shortcut reads VPN:alice for the focused window (window rule 1 of the settings)');
  });

  it('two accounts fit: the finder offers just those two, and the one chosen is read (typed, for the type shortcut)', async () => {
    const finder = new FakeFinder();
    const r = await withWindow(finder);
    r.config.set('windowRules', [
      { credentialId: 'Demo:alice', app: 'browser' },
      { credentialId: 'VPN:alice', app: 'browser' },
    ]);
    r.source.window = { title: 'Log in', app: 'browser' };
    r.shortcut.also[0]!.onPress();
    await flush(r);
    expect(finder.opened).toEqual([['Demo: alice', 'VPN: alice (HOTP)']]);
    finder.pick('VPN: alice (HOTP)');
    await flush(r);
    expect(r.device.calculations.map((c) => c.id)).toEqual(['VPN:alice']);
    expect(r.typist.typed).toHaveLength(1);
    expect(r.clipboard.copies).toEqual([]);
  });

  it('two accounts fit and there is no finder: a toast names both, and nothing is read', async () => {
    const r = await withWindow(undefined);
    r.config.set('windowRules', [
      { credentialId: 'Demo:alice', title: 'portal' },
      { credentialId: 'VPN:alice', title: 'portal' },
    ]);
    r.source.window = { title: 'Staff portal', app: 'browser' };
    r.shortcut.onPress!();
    await flush(r);
    expect(r.device.calculations).toEqual([]);
    expect(r.notifier.shown.at(-1)?.notification).toEqual({
      title: '2 accounts fit this window: which one?',
      body: 'Demo:alice, VPN:alice\nChoose one in the keytap menu, or add a window rule for this window to the settings file.',
      icon: 'error',
    });
  });

  it('nothing fits: the default account, as without a window', async () => {
    const r = await withWindow();
    r.config.set('defaultAccount', { keyId: '1234ABCD', credentialId: 'Demo:alice' });
    r.source.window = { title: 'Untitled — Text Editor', app: 'gedit' };
    r.shortcut.onPress!();
    await flush(r);
    expect(r.device.calculations.map((c) => c.id)).toEqual(['Demo:alice']);
  });

  it('nothing fits and no default: the same "which one" toast as before', async () => {
    const r = await withWindow();
    r.source.window = undefined;
    r.shortcut.onPress!();
    await flush(r);
    expect(r.notifier.titles().at(-1)).toBe('3 accounts: which one should the shortcut read?');
  });

  it('a source that fails: a warning without any title, and the shortcut reads as without a window', async () => {
    const r = await withWindow();
    r.config.set('defaultAccount', { keyId: '1234ABCD', credentialId: 'Demo:alice' });
    r.source.fail = new KeytapError('UNSUPPORTED', 'The X display :9 did not say which window has the focus in time.');
    r.shortcut.onPress!();
    await flush(r);
    expect(r.device.calculations.map((c) => c.id)).toEqual(['Demo:alice']);
    expect(r.logger.lines.join('\n')).toContain('reading the focused window (fake) failed: The X display :9 did not say which window has the focus in time.');
  });
});

describe('"Use for this window…"', () => {
  it('after a press in a window, the item adds a rule with its title and application; the next press there reads that account; the log names no title', async () => {
    const r = await withWindow();
    r.config.set('defaultAccount', { keyId: '1234ABCD', credentialId: 'Demo:alice' });
    expect(r.tray.last.menu.some((n) => n.id === 'window-rule')).toBe(false);
    r.source.window = { title: 'Carol\'s intranet — login', app: 'browser' };
    r.shortcut.onPress!();
    await flush(r);
    expect(r.device.calculations.map((c) => c.id)).toEqual(['Demo:alice']);
    expect(r.tray.last.menu.find((n) => n.id === 'window-rule')).toMatchObject({ label: 'Use for this window (browser, focused at the last shortcut)…' });
    r.tray.onClick!('window-rule:1234ABCD:VPN%3Aalice');
    r.tray.onClick!('window-rule:1234ABCD:VPN%3Aalice'); // the same rule is not added twice
    await flush(r);
    expect(r.config.current.windowRules).toEqual([{ keyId: '1234ABCD', credentialId: 'VPN:alice', title: 'Carol\'s intranet — login', app: 'browser' }]);
    expect(r.notifier.titles()).toContain('The shortcut reads VPN:alice in this window now');
    r.shortcut.onPress!();
    await flush(r);
    expect(r.device.calculations.map((c) => c.id)).toEqual(['Demo:alice', 'VPN:alice']);
    const log = r.logger.lines.join('\n');
    expect(log).toContain('window rule 1 of the settings reads VPN:alice (application browser)');
    expect(log).not.toContain('Carol');
    expect(JSON.stringify(r.notifier.shown)).not.toContain('Carol');
    expect(JSON.stringify(r.tray.last)).not.toContain('Carol');
  });
});
