// The shortcut chooses the account from the focused window, end to end on Xvfb: the resident
// keytap with its real shortcut (uiohook), a virtual key holding four accounts, and windows with
// chosen titles and classes (made by this test through node-x11) focused in turn with xdotool. The
// code that lands on the clipboard (xsel) is oathtool's for the account the window calls for; a
// title that fits two accounts opens the real dmenu (through a wrapper that records what it was
// offered) with just those two; a window that fits none reads the default account. The titles
// never reach the tray's log.
import type { ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Desktop, missingTool, run } from '../platform/desktop.js';
import { oathtool, runKeytap, spawnKeytap, tempDir } from '../support/cli.js';
import { trayEnv } from '../support/tray-process.js';
import { waitFor } from '../tray/support.js';
import type { TestWindows } from '../support/x11-windows.js';
import { testWindows } from '../support/x11-windows.js';

const missing = process.platform === 'linux' ? missingTool('Xvfb', 'xdotool', 'xsel', 'dmenu', 'oathtool') : 'Linux';
if (missing) console.warn(`skipping the focused-window end-to-end test: ${missing} is missing (see .ci/run)`);

const ACCOUNTS = [
  { issuer: 'GitHub', account: 'alice', secret: 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ' },
  { issuer: 'Microsoft', account: 'work', secret: 'MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U' },
  { issuer: 'Microsoft', account: 'home', secret: 'OV3HO6DZPIYTEMZUGU3DOOBZGBQWEY3E' },
  { issuer: undefined, account: 'bob', secret: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP' },
] as const;

/** Waits until at least this many seconds of the period are left; returns the period's start. */
async function awayFromPeriodEnd(seconds = 8): Promise<number> {
  while (30 - ((Date.now() / 1000) % 30) < seconds) await new Promise((r) => setTimeout(r, 200));
  return Math.floor(Date.now() / 30_000) * 30;
}

function base32ToHex(text: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of text) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const bytes = bits.match(/.{8}/gu) ?? [];
  return bytes.map((b) => parseInt(b, 2).toString(16).padStart(2, '0')).join('');
}

describe.skipIf(missing !== undefined)('the shortcut and the focused window, end to end', () => {
  const desktop = new Desktop();
  const dir = tempDir('keytap-focus-e2e-');
  const keyFile = join(dir, 'key.json');
  const offered = join(dir, 'dmenu-offered.txt');
  let env: NodeJS.ProcessEnv;
  let windows: TestWindows;
  let tray: ChildProcess | undefined;
  let trayLog = '';
  let copies = 0;

  beforeAll(async () => {
    await desktop.startX();
    // The real dmenu, behind a wrapper that keeps a copy of the lines it is offered.
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'dmenu'), `#!/bin/sh\ntee "${offered}" | exec /usr/bin/dmenu "$@"\n`);
    chmodSync(join(bin, 'dmenu'), 0o755);
    env = trayEnv(dir, { ...desktop.env, PATH: `${bin}:${process.env.PATH ?? ''}`, XDG_SESSION_TYPE: 'x11', DBUS_SESSION_BUS_ADDRESS: '' });
    for (const a of ACCOUNTS) {
      const issuer = a.issuer ? ['--issuer', a.issuer] : [];
      expect((await runKeytap(['add', '--virtual', keyFile, ...issuer, '--account', a.account, '--secret', a.secret], { env })).code).toBe(0);
    }
    expect((await runKeytap(['virtual', 'start', keyFile, '--touch', 'auto'], { env })).code).toBe(0);
    const [key] = JSON.parse((await runKeytap(['keys', '--json'], { env })).stdout) as { serial: string }[];
    mkdirSync(join(dir, 'config'), { recursive: true });
    writeFileSync(
      join(dir, 'config', 'config.json'),
      JSON.stringify({
        // Not F12: uiohook does not see xdotool's F12 on Xvfb.
        shortcut: 'Ctrl+Alt+K',
        notifications: false,
        clipboardClearSeconds: 0,
        defaultAccount: { keyId: key!.serial, credentialId: 'GitHub:alice' },
        windowRules: [{ credentialId: 'bob', app: 'vpn-client' }],
      }),
    );
    tray = spawnKeytap([], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    tray.stderr!.on('data', (d: Buffer) => (trayLog += d.toString()));
    await waitFor(() => trayLog.includes('running (pid'), 'the tray to start', 15_000);
    expect(trayLog).toMatch(/global shortcut Ctrl\+Alt\+K registered \(uiohook\)/u);
    expect(trayLog).toContain('focused window: X11');
    await waitFor(() => (trayLog.includes('4 accounts') ? true : undefined), 'the key in the tray', 10_000);
    windows = await testWindows(desktop.env.DISPLAY!);
  });

  afterAll(async () => {
    windows?.close();
    await runKeytap(['virtual', 'stop', keyFile], { env }).catch(() => undefined);
    if (tray && tray.exitCode === null) {
      const exited = new Promise((resolve) => tray!.once('exit', resolve));
      tray.kill('SIGTERM');
      await exited;
    }
    await desktop.stop();
  });

  /** Focuses the window, presses the shortcut; resolves with what the clipboard holds after the next copy. */
  async function pressIn(window: number): Promise<string> {
    expect((await run('xdotool', ['windowfocus', '--sync', String(window)], desktop.processEnv())).code).toBe(0);
    const before = copies;
    expect((await run('xdotool', ['key', 'ctrl+alt+k'], desktop.processEnv())).code).toBe(0);
    return copied(before);
  }

  async function copied(before: number): Promise<string> {
    await waitFor(() => ((trayLog.match(/copied the code of /gu)?.length ?? 0) > before ? true : undefined), 'the copy', 10_000);
    copies = trayLog.match(/copied the code of /gu)!.length;
    return (await run('xsel', ['--clipboard', '--output'], desktop.processEnv())).stdout;
  }

  async function codeOf(index: number, period: number): Promise<string> {
    return oathtool({ hexSecret: base32ToHex(ACCOUNTS[index]!.secret), type: 'TOTP', time: period });
  }

  it('a browser at "Sign in to GitHub": the issuer in the title reads GitHub:alice', async () => {
    const window = await windows.open({ title: 'Sign in to GitHub · re: salary review for Carol — Mozilla Firefox', instance: 'Navigator', className: 'firefox' });
    const period = await awayFromPeriodEnd();
    expect(await pressIn(window)).toBe(await codeOf(0, period));
    expect(trayLog).toContain('the shortcut reads GitHub:alice for the focused window (the issuer "GitHub" in the window\'s title)');
  });

  it('a window of the application vpn-client: its window rule reads bob, an account without an issuer', async () => {
    const window = await windows.open({ title: 'Connect to Carol-net', instance: 'vpn', className: 'vpn-client' });
    const period = await awayFromPeriodEnd();
    expect(await pressIn(window)).toBe(await codeOf(3, period));
    expect(trayLog).toContain('the shortcut reads bob for the focused window (window rule 1 of the settings)');
  });

  it('"Microsoft Teams" fits two accounts: dmenu offers just those two, and the one chosen in it is read', async () => {
    const window = await windows.open({ title: 'Microsoft Teams', instance: 'teams', className: 'Microsoft Teams - Preview' });
    const period = await awayFromPeriodEnd(12);
    expect((await run('xdotool', ['windowfocus', '--sync', String(window)], desktop.processEnv())).code).toBe(0);
    const before = copies;
    expect((await run('xdotool', ['key', 'ctrl+alt+k'], desktop.processEnv())).code).toBe(0);
    // dmenu grabs the keyboard once its window is up: then XTEST typing goes to it.
    await desktop.waitFor(async () => (await run('xdotool', ['search', '--class', 'dmenu'], desktop.processEnv())).code === 0);
    await new Promise((r) => setTimeout(r, 200));
    expect(readFileSync(offered, 'utf8').split('\n').filter(Boolean).sort()).toEqual(['Microsoft: home', 'Microsoft: work']);
    await run('xdotool', ['type', '--delay', '20', 'home'], desktop.processEnv());
    await run('xdotool', ['key', 'Return'], desktop.processEnv());
    expect(await copied(before)).toBe(await codeOf(2, period));
    expect(trayLog).toContain('the shortcut offers 2 accounts that fit the focused window (the issuer "Microsoft" in the window\'s title) in dmenu');
    expect(trayLog).toContain('copied the code of Microsoft:home');
  });

  it('a window that fits no account: the default account, as before', async () => {
    const window = await windows.open({ title: 'Untitled — Text Editor', instance: 'gedit', className: 'Gedit' });
    const period = await awayFromPeriodEnd();
    const before = trayLog.length;
    expect(await pressIn(window)).toBe(await codeOf(0, period));
    expect(trayLog.slice(before)).not.toContain('for the focused window');
  });

  it('keytap code --focused asks the running keytap, which reads the account the focused window calls for', async () => {
    const window = await windows.open({ title: 'Sign in to GitHub', instance: 'Navigator', className: 'firefox' });
    expect((await run('xdotool', ['windowfocus', '--sync', String(window)], desktop.processEnv())).code).toBe(0);
    const period = await awayFromPeriodEnd();
    const result = await runKeytap(['code', '--focused', '--json'], { env });
    expect([result.code, result.stderr]).toEqual([0, '']);
    expect(JSON.parse(result.stdout)).toMatchObject({ id: 'GitHub:alice', code: await codeOf(0, period), copied: true });
    expect(trayLog).toContain('keytap code --focused reads GitHub:alice (the issuer "GitHub" in the window\'s title)');
  });

  it('keytap code --focused with a window that fits two accounts: exit non-zero, both named, nothing read', async () => {
    const window = await windows.open({ title: 'Microsoft Teams', instance: 'teams', className: 'teams' });
    expect((await run('xdotool', ['windowfocus', '--sync', String(window)], desktop.processEnv())).code).toBe(0);
    const result = await runKeytap(['code', '--focused'], { env });
    expect(result.code).not.toBe(0);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('2 accounts fit the focused window (the issuer "Microsoft" in the window\'s title): Microsoft:work, Microsoft:home.');
  });

  it('keytap code --focused without a running keytap (--virtual): it reads the window and the settings itself', async () => {
    const own = join(dir, 'own.json');
    for (const a of ACCOUNTS) {
      const issuer = a.issuer ? ['--issuer', a.issuer] : [];
      expect((await runKeytap(['add', '--virtual', own, ...issuer, '--account', a.account, '--secret', a.secret], { env })).code).toBe(0);
    }
    const window = await windows.open({ title: 'Dial in', instance: 'vpn', className: 'vpn-client' });
    expect((await run('xdotool', ['windowfocus', '--sync', String(window)], desktop.processEnv())).code).toBe(0);
    const period = await awayFromPeriodEnd();
    const result = await runKeytap(['code', '--focused', '--json', '--virtual', own], { env });
    expect([result.code, result.stderr]).toEqual([0, '']);
    expect(JSON.parse(result.stdout)).toMatchObject({ id: 'bob', code: await codeOf(3, period) });
    const usage = await runKeytap(['code', '--focused', 'GitHub'], { env });
    expect([usage.code, usage.stderr]).toEqual([2, 'keytap: --focused chooses the account from the focused window; it takes no QUERY.\n  Leave out QUERY, or leave out --focused.\n']);
  });

  it('the titles never reach the log', () => {
    expect(trayLog).not.toContain('Carol');
    expect(trayLog).not.toContain('Teams');
    expect(trayLog).not.toContain('Untitled');
  });
});
