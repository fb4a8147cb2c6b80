// "Type the code" end to end on Xvfb: a separate X client (python3-xlib) has the focus and records
// every key it receives; keytap types the code of a virtual key account (YubiKey and Nitrokey 3
// dialects), and the recorded text is what oathtool computes for that secret, with no modifier
// down even while the test holds Ctrl+Alt+Shift as a shortcut would. Then the resident process:
// its type shortcut (Ctrl+Alt+Shift+K, through uiohook on X11) and `keytap code --type` through it.
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Desktop, missingTool, run } from '../platform/desktop.js';
import { CONTROL_MASK, MOD1_MASK, SHIFT_MASK, startRecorder } from '../support/x11-recorder.js';
import { oathtool, runKeytap, spawnKeytap, tempDir } from '../support/cli.js';
import { waitFor } from '../tray/support.js';
import { quitTray, startTray, trayEnv } from '../support/tray-process.js';

const missing = process.platform === 'linux' ? missingTool('Xvfb', 'xdotool', 'oathtool', '/usr/bin/python3') : 'Linux';
if (missing) console.warn(`skipping the typing end-to-end test: ${missing} is missing (see .ci/run)`);

const SECRET_B32 = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
const SECRET_HEX = Buffer.from('12345678901234567890').toString('hex');
const MODIFIERS = SHIFT_MASK | CONTROL_MASK | MOD1_MASK;

/** Waits until at least this many seconds of the period are left; returns the period's start. */
async function awayFromPeriodEnd(seconds = 8): Promise<number> {
  while (30 - ((Date.now() / 1000) % 30) < seconds) await new Promise((r) => setTimeout(r, 200));
  return Math.floor(Date.now() / 30_000) * 30;
}

describe.skipIf(missing !== undefined)('typing the code, end to end', () => {
  const desktop = new Desktop();
  const dir = tempDir('keytap-type-e2e-');
  let env: NodeJS.ProcessEnv;
  let recorder: Awaited<ReturnType<typeof startRecorder>> | undefined;

  beforeAll(async () => {
    await desktop.startX();
    env = trayEnv(dir, { ...desktop.env, XDG_SESSION_TYPE: 'x11', DBUS_SESSION_BUS_ADDRESS: '' });
  });
  afterEach(async () => {
    await run('xdotool', ['keyup', 'ctrl+alt+shift+k'], desktop.processEnv());
    recorder?.child.kill();
    recorder = undefined;
  });
  afterAll(() => desktop.stop());

  it.each(['yubikey', 'nitrokey3'])('keytap code --type --virtual (%s): the focused window gets exactly the oathtool code, no modifier down', async (dialect) => {
    const file = join(dir, `${dialect}.json`);
    expect((await runKeytap(['add', '--virtual', file, '--dialect', dialect, '--issuer', 'Bank', '--account', 'alice', '--secret', SECRET_B32], { env })).code).toBe(0);
    recorder = await startRecorder(desktop.processEnv());
    // Held as the desktop shortcut that ran the command would leave them.
    expect((await run('xdotool', ['keydown', 'ctrl+alt+shift'], desktop.processEnv())).code).toBe(0);
    const period = await awayFromPeriodEnd();
    const result = await runKeytap(['code', '--type', '--virtual', file], { env });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    // Typed, not printed: in a focused terminal it would land twice.
    expect(result.stdout).toBe('');
    const expected = await oathtool({ hexSecret: SECRET_HEX, type: 'TOTP', time: period });
    const keys = await recorder.waitForKeys(expected.length);
    expect(keys.map((k) => k.char).join('')).toBe(expected);
    for (const key of keys) expect(key.state & MODIFIERS).toBe(0);
  });

  it('with nothing to type into: a clear error, and exit non-zero', async () => {
    const file = join(dir, 'yubikey.json');
    const result = await runKeytap(['code', '--type', '--virtual', file], { env: { ...env, DISPLAY: '' } });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/no graphical session to type into/i);
    expect(result.stdout).toBe('');
  });

  describe('through the resident process', () => {
    const keyFile = join(dir, 'served.json');
    let tray: ChildProcess | undefined;
    let trayLog = '';

    beforeAll(async () => {
      mkdirSync(join(dir, 'config'), { recursive: true });
      writeFileSync(join(dir, 'config', 'config.json'), JSON.stringify({ shortcut: 'Ctrl+Alt+F12', notifications: false }));
      expect((await runKeytap(['add', '--virtual', keyFile, '--dialect', 'nitrokey3', '--issuer', 'E2E', '--account', 'bob', '--secret', SECRET_B32], { env })).code).toBe(0);
      tray = spawnKeytap([], { env, stdio: ['ignore', 'ignore', 'pipe'] });
      tray.stderr!.on('data', (d: Buffer) => (trayLog += d.toString()));
      await waitFor(() => trayLog.includes('running (pid'), 'the tray to start', 15_000);
      expect(trayLog).toMatch(/global shortcut Ctrl\+Alt\+F12 registered \(uiohook\)/u);
      expect((await runKeytap(['virtual', 'start', keyFile, '--touch', 'auto'], { env })).code).toBe(0);
      await waitFor(() => (trayLog.includes('1 account') ? true : undefined), 'the key in the tray', 10_000);
    });
    afterAll(async () => {
      await runKeytap(['virtual', 'stop', keyFile], { env }).catch(() => undefined);
      if (tray && tray.exitCode === null) {
        const exited = new Promise((resolve) => tray!.once('exit', resolve));
        tray.kill('SIGTERM');
        await exited;
      }
    });

    it('the type shortcut Ctrl+Alt+Shift+K types the default account\'s code, after the shortcut\'s keys are up', async () => {
      recorder = await startRecorder(desktop.processEnv());
      const period = await awayFromPeriodEnd();
      // K let go at once (held, Xvfb would repeat it), the modifiers held, as fingers are for a moment.
      expect((await run('xdotool', ['keydown', 'ctrl+alt+shift+k', 'keyup', 'k'], desktop.processEnv())).code).toBe(0);
      const expected = await oathtool({ hexSecret: SECRET_HEX, type: 'TOTP', time: period });
      const keys = await recorder.waitForKeys(expected.length + 1);
      // The K of the shortcut reaches the window too (uiohook listens, it cannot swallow a key), with its modifiers.
      expect(keys[0]).toMatchObject({ char: 'K' });
      const typed = keys.slice(1);
      expect(typed.map((k) => k.char).join('')).toBe(expected);
      for (const key of typed) expect(key.state & MODIFIERS).toBe(0);
      await waitFor(() => (trayLog.includes('typed the code of E2E:bob') ? true : undefined), 'the log line', 5_000);
      expect(trayLog).not.toContain(expected);
    });

    it('keytap code --type asks the running keytap, which types it', async () => {
      recorder = await startRecorder(desktop.processEnv());
      const period = await awayFromPeriodEnd();
      const result = await runKeytap(['code', '--type', '--json', 'E2E'], { env });
      expect(result.code).toBe(0);
      const expected = await oathtool({ hexSecret: SECRET_HEX, type: 'TOTP', time: period });
      expect(JSON.parse(result.stdout)).toMatchObject({ id: 'E2E:bob', code: expected, typed: true, copied: false });
      const keys = await recorder.waitForKeys(expected.length);
      expect(keys.map((k) => k.char).join('')).toBe(expected);
    });
  });
});

describe('keytap code --type through a tray that cannot type', () => {
  it('exits 7 and says why the code was not typed, and the tray\'s log says so without the code', async () => {
    const dir = tempDir('keytap-type-none-');
    const env = trayEnv(dir);
    const file = join(dir, 'key.json');
    expect((await runKeytap(['virtual', 'start', file], { env })).code).toBe(0);
    try {
      expect((await runKeytap(['add', '--issuer', 'Served', '--account', 'alice', '--secret', SECRET_B32], { env })).code).toBe(0);
      const tray = await startTray(env);
      try {
        const result = await runKeytap(['code', '--type', '--json', 'Served'], { env });
        expect(result.code).toBe(7);
        const answer = JSON.parse(result.stdout) as Record<string, unknown>;
        expect(answer).toMatchObject({ id: 'Served:alice', typed: false, typeError: 'There is no graphical session to type into.', copied: false });
        expect(result.stderr).toContain('keytap: The code was not typed. There is no graphical session to type into.');
        expect(tray.stderr).toContain('typing the code of Served:alice failed: UNSUPPORTED: There is no graphical session to type into.');
        expect(tray.stderr).not.toContain(String(answer.code));
      } finally {
        await quitTray(tray, env);
      }
    } finally {
      await runKeytap(['virtual', 'stop', file], { env });
    }
  });
});
