/**
 * Item 1 of issue 9, as two users: with neither XDG_RUNTIME_DIR nor KEYTAP_RUNTIME_DIR, keytap's
 * runtime folder is `$TMPDIR/keytap-<uid>`, a name anyone can take first. The attacker (uid
 * ATTACKER) makes it before the victim (uid VICTIM) runs keytap; the victim's keytap must refuse
 * the folder with a message naming it and the reason, and nothing of the victim's is written.
 */
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RunResult } from '../support/cli.js';
import { keytapCommand, runKeytap, runProgram, tempDir } from '../support/cli.js';
import { quitTray, startTray, trayEnv } from '../support/tray-process.js';

const VICTIM = 64001;
const ATTACKER = 64002;
const root = process.getuid?.() === 0;

/** Runs keytap as `uid` (setpriv, util-linux) with only the environment given. */
function keytapAs(uid: number, args: string[], env: NodeJS.ProcessEnv): Promise<RunResult> {
  const { command, args: argv } = keytapCommand(args);
  return runProgram('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', command, ...argv], { env: { PATH: process.env.PATH, ...env } });
}

/** A shared temp dir like /tmp (sticky, world-writable) and a home of the victim's own. */
function machine(): { tmp: string; home: string; env: NodeJS.ProcessEnv; victimFolder: string } {
  const base = tempDir();
  chmodSync(base, 0o755);
  const tmp = join(base, 'tmp');
  mkdirSync(tmp);
  chmodSync(tmp, 0o1777);
  const home = join(base, 'home');
  mkdirSync(home, { mode: 0o700 });
  chownSync(home, VICTIM, VICTIM);
  // No XDG_RUNTIME_DIR, no KEYTAP_RUNTIME_DIR: ssh without logind, cron, containers.
  const env = { TMPDIR: tmp, HOME: home, KEYTAP_NO_INSTANCE: '1', DISPLAY: '', WAYLAND_DISPLAY: '', DBUS_SESSION_BUS_ADDRESS: '' };
  return { tmp, home, env, victimFolder: join(tmp, `keytap-${VICTIM}`) };
}

/** A file of the victim's that a followed link would overwrite. */
function victimsFile(home: string): string {
  const path = join(home, 'precious.txt');
  writeFileSync(path, 'mine\n', { mode: 0o600 });
  chownSync(path, VICTIM, VICTIM);
  return path;
}

describe.skipIf(!root)('the runtime folder in a shared temp dir, as two users (needs root to switch uid with setpriv)', () => {
  it.each([
    ['the fallback $TMPDIR/keytap-<uid>', false],
    ['KEYTAP_RUNTIME_DIR', true],
  ])('a folder the attacker made first (%s; with a planted log link and announcement) is refused, naming it and why; the victim\'s file is untouched', async (_name, viaVariable) => {
    const machineNow = machine();
    const { home, victimFolder } = machineNow;
    const env = viaVariable ? { ...machineNow.env, KEYTAP_RUNTIME_DIR: victimFolder } : machineNow.env;
    const precious = victimsFile(home);
    const keyFile = join(home, 'key.json');
    // The attacker: the victim's folder, open to all, a link where the victim's log will go, and
    // an announcement of a key of theirs (with a live pid: this test's).
    const made = await runProgram('setpriv', [`--reuid=${ATTACKER}`, `--regid=${ATTACKER}`, '--clear-groups', 'sh', '-c', `mkdir -m 777 "$0"`, victimFolder]);
    expect(made.code).toBe(0);
    const id = (await import('../../src/emulator/registry.js')).virtualKeyId(keyFile);
    symlinkSync(precious, join(victimFolder, `${id}.log`));
    const announcement = { id: 'vk-attacker0000', file: '/attacker/key.json', socket: join(victimFolder, 'vk-attacker0000.sock'), pid: process.pid, dialect: 'yubikey', startedAt: new Date().toISOString() };
    writeFileSync(join(victimFolder, 'vk-attacker0000.json'), JSON.stringify(announcement));

    const status = await keytapAs(VICTIM, ['virtual', 'status', '--json'], env);
    expect(status.stdout).not.toContain('attacker');
    expect(status.code).not.toBe(0);
    expect(status.stderr).toContain(victimFolder);
    expect(status.stderr).toContain(`belongs to another user (uid ${ATTACKER})`);

    const start = await keytapAs(VICTIM, ['virtual', 'start', keyFile, '--touch', 'auto'], env);
    expect(start.code).not.toBe(0);
    expect(start.stderr).toContain(victimFolder);
    expect(readFileSync(precious, 'utf8')).toBe('mine\n');
    expect(lstatSync(join(victimFolder, `${id}.log`)).isSymbolicLink()).toBe(true);
  });

  it('a symbolic link planted as the runtime folder itself is refused', async () => {
    const { tmp, env, victimFolder } = machine();
    const theirs = join(tmp, 'attacker-owned');
    const made = await runProgram('setpriv', [`--reuid=${ATTACKER}`, `--regid=${ATTACKER}`, '--clear-groups', 'sh', '-c', `mkdir -m 777 "$0" && ln -s "$0" "$1"`, theirs, victimFolder]);
    expect(made.code).toBe(0);
    const status = await keytapAs(VICTIM, ['virtual', 'status'], env);
    expect(status.code).not.toBe(0);
    expect(status.stderr).toContain(`${victimFolder} is a symbolic link`);
    expect(readdirSync(theirs)).toEqual([]);
  });

  it("the victim's own folder left open to others (0755, 0777) is refused, with the chmod that fixes it", async () => {
    const { env, victimFolder } = machine();
    for (const mode of [0o755, 0o777]) {
      mkdirSync(victimFolder, { recursive: true });
      chmodSync(victimFolder, mode);
      chownSync(victimFolder, VICTIM, VICTIM);
      const status = await keytapAs(VICTIM, ['virtual', 'status'], env);
      expect(status.code, mode.toString(8)).not.toBe(0);
      expect(status.stderr).toContain(`${victimFolder} is open to other users (mode 0${mode.toString(8)})`);
      expect(status.stderr).toContain(`chmod 700 ${victimFolder}`);
    }
  });

  it('with nobody there first, each user gets a folder of their own (0700) and the log is a plain 0600 file', async () => {
    const { home, env, victimFolder, tmp } = machine();
    const keyFile = join(home, 'key.json');
    try {
      const start = await keytapAs(VICTIM, ['virtual', 'start', keyFile, '--touch', 'auto'], env);
      expect(start.code, start.stderr).toBe(0);
      const folder = lstatSync(victimFolder);
      expect([folder.isDirectory(), folder.uid, folder.mode & 0o777]).toEqual([true, VICTIM, 0o700]);
      const log = readdirSync(victimFolder).find((n) => n.endsWith('.log'))!;
      const logStats = lstatSync(join(victimFolder, log));
      expect([logStats.isFile(), logStats.uid, logStats.mode & 0o777]).toEqual([true, VICTIM, 0o600]);
      // The other user sees none of it: their folder is their own.
      const theirs = await keytapAs(ATTACKER, ['virtual', 'status', '--json'], env);
      expect(theirs.code, theirs.stderr).toBe(0);
      expect(JSON.parse(theirs.stdout)).toEqual([]);
      expect(existsSync(join(tmp, `keytap-${ATTACKER}`))).toBe(true);
    } finally {
      await keytapAs(VICTIM, ['virtual', 'stop'], env);
    }
  });
});

describe.runIf(process.platform !== 'win32')('keytap doctor with a runtime folder keytap refuses', () => {
  it('reports it as a failed check (folder and why, and the fix) instead of ending in the error', async () => {
    const dir = tempDir();
    const folder = join(dir, 'run');
    mkdirSync(folder);
    chmodSync(folder, 0o777);
    const result = await runKeytap(['doctor'], { env: { KEYTAP_RUNTIME_DIR: folder, KEYTAP_CONFIG_DIR: join(dir, 'config'), DISPLAY: '', WAYLAND_DISPLAY: '', DBUS_SESSION_BUS_ADDRESS: '' } });
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(new RegExp(`^FAIL  Resident keytap +keytap's runtime folder ${folder} is open to other users \\(mode 0777\\); keytap does not use it\\.$`, 'mu'));
    expect(result.stdout).toContain(`fix: Make it private with: chmod 700 ${folder}`);
  });
});

describe.runIf(process.platform !== 'win32')('keytap tray --demo with a data folder others may write in', () => {
  it('does not plug in the demo key from there, says which folder and why, and keeps running', async () => {
    const dir = tempDir();
    const env = trayEnv(dir);
    mkdirSync(env.KEYTAP_DATA_DIR!);
    chmodSync(env.KEYTAP_DATA_DIR!, 0o777);
    const tray = await startTray(env, ['tray', '--demo']);
    try {
      await waitFor(() => tray.stderr.includes('the demo key failed'));
      expect(tray.stderr).toContain(`the demo key failed: keytap's data folder ${env.KEYTAP_DATA_DIR} is open to other users (mode 0777); keytap does not use it.`);
      expect(existsSync(join(env.KEYTAP_DATA_DIR!, 'demo-key.json'))).toBe(false);
    } finally {
      expect((await quitTray(tray, env)).code).toBe(0);
    }
  });
});

async function waitFor(condition: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}
