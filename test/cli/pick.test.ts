// `keytap pick` end to end on served virtual keys of both dialects, with a scripted finder on PATH
// (a small executable named rofi that logs its arguments and stdin and prints the line it is told
// to choose), without and with a running tray.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Desktop, missingTool, run as runProgram } from '../platform/desktop.js';
import { ExitCode } from '../../src/cli/exit-codes.js';
import { keytapCommand, oathtool, runKeytap, tempDir } from '../support/cli.js';
import { HAVE_SCRIPT, startOnTerminal, stripAnsi } from '../support/terminal.js';
import type { TrayProcess } from '../support/tray-process.js';
import { quitTray, startTray, trayEnv } from '../support/tray-process.js';

const unix = process.platform !== 'win32';
const SECRETS = { GitHub: '3132333435363738393031323334353637383930', GitLab: '0102030405060708090a0b0c0d0e0f1011121314', Bank: 'a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3' } as const;

interface Setup {
  env: NodeJS.ProcessEnv;
  dir: string;
  log: string;
  tray?: TrayProcess | undefined;
}
let current: Setup | undefined;

afterEach(async () => {
  if (!current) return;
  const { env, tray } = current;
  current = undefined;
  if (tray) await quitTray(tray, env);
  await runKeytap(['virtual', 'stop'], { env }).catch(() => undefined);
});

/** A fake finder named `name`: logs "$@" and stdin under `log`; exits $FAKE_EXIT if set, else prints $FAKE_LINE if set, else the first line containing $FAKE_CHOOSE. */
function fakeFinder(bin: string, name: string, log: string): void {
  mkdirSync(bin, { recursive: true });
  const path = join(bin, name);
  writeFileSync(
    path,
    `#!/bin/sh\nprintf '%s\\n' "$@" > "${log}.args"\ncat > "${log}.stdin"\nif [ -n "$FAKE_EXIT" ]; then exit "$FAKE_EXIT"; fi\nif [ -n "$FAKE_LINE" ]; then echo "$FAKE_LINE"; exit 0; fi\ngrep -m1 -F -- "$FAKE_CHOOSE" "${log}.stdin"\n`,
  );
  chmodSync(path, 0o755);
}

async function ok(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  const result = await runKeytap(args, { env });
  expect(result.code, `keytap ${args.join(' ')}: ${result.stderr}`).toBe(0);
  return result.stdout;
}

/** Served keys (one per dialect given), each with the accounts named, and the fake rofi first on PATH. */
async function setUp(dialects: ('yubikey' | 'nitrokey3')[], accounts: (keyof typeof SECRETS)[][], extraEnv: NodeJS.ProcessEnv = {}): Promise<Setup> {
  const dir = tempDir();
  const bin = join(dir, 'bin');
  const log = join(dir, 'finder');
  if (!extraEnv.DISPLAY) fakeFinder(bin, 'rofi', log); // with a display, the real finders installed are what is tested
  const env = trayEnv(dir, { PATH: `${bin}:${process.env.PATH ?? ''}`, ...extraEnv });
  current = { env, dir, log };
  for (const [i, dialect] of dialects.entries()) {
    const file = join(dir, `key${i}.json`);
    for (const issuer of accounts[i]!) await ok(['add', '--virtual', file, '--dialect', dialect, '--issuer', issuer, '--account', 'alice', '--secret', `hex:${SECRETS[issuer]}`], env);
    await ok(['virtual', 'start', file, '--touch', 'auto'], env);
  }
  return current;
}

async function awayFromPeriodEnd(): Promise<void> {
  while (30 - ((Date.now() / 1000) % 30) < 6) await new Promise((r) => setTimeout(r, 250));
}

const totp = (issuer: keyof typeof SECRETS): Promise<string> => oathtool({ hexSecret: SECRETS[issuer], type: 'TOTP', time: Math.floor(Date.now() / 1000) });

describe.runIf(unix)('keytap pick with a desktop finder', () => {
  it.each(['yubikey', 'nitrokey3'] as const)('without a tray (%s): offers each account as the tray labels it, reads the chosen one; no display, so printed and said not copied', async (dialect) => {
    const { env, log } = await setUp([dialect], [['GitHub', 'GitLab', 'Bank']]);
    await awayFromPeriodEnd();
    const result = await runKeytap(['pick', '--with', 'rofi'], { env: { ...env, KEYTAP_NO_INSTANCE: '1', FAKE_CHOOSE: 'GitLab' } });
    expect(result.stdout).toBe(`${await totp('GitLab')}\n`);
    expect(readFileSync(`${log}.stdin`, 'utf8').split('\n').filter(Boolean).sort()).toEqual(['Bank: alice', 'GitHub: alice', 'GitLab: alice']);
    expect(readFileSync(`${log}.args`, 'utf8')).toBe('-dmenu\n-i\n-p\nkeytap\n');
    expect([result.code, result.stderr]).toEqual([ExitCode.NOT_DELIVERED, expect.stringContaining('keytap: The code was printed but not copied. There is no display to copy to')]);
  });

  it('KEYTAP_PICKER chooses the finder; Esc in it (exit 1) is exit 1 with "Cancelled." only; an unknown name is a usage error', async () => {
    const { env } = await setUp(['yubikey'], [['GitHub']]);
    const cancelled = await runKeytap(['pick'], { env: { ...env, KEYTAP_NO_INSTANCE: '1', KEYTAP_PICKER: 'rofi', FAKE_EXIT: '1' } });
    expect([cancelled.code, cancelled.stdout, cancelled.stderr]).toEqual([1, '', 'keytap: Cancelled.\n']);
    const wrong = await runKeytap(['pick'], { env: { ...env, KEYTAP_NO_INSTANCE: '1', KEYTAP_PICKER: 'fzf' } });
    expect([wrong.code, wrong.stderr]).toEqual([ExitCode.USAGE, 'keytap: KEYTAP_PICKER names "fzf", which is not a finder keytap knows.\n  Set it to one of rofi, fuzzel, wofi, dmenu, terminal, or unset it.\n']);
    // A line the finder made up (rofi lets one type anything) is not an account.
    const typed = await runKeytap(['pick', '--with', 'rofi'], { env: { ...env, KEYTAP_NO_INSTANCE: '1', FAKE_LINE: 'GitHub' } });
    expect([typed.code, typed.stdout, typed.stderr]).toEqual([
      ExitCode.NO_MATCH,
      '',
      'keytap: rofi answered a line that is none of the accounts offered.\n  Choose one of the lines shown rather than typing a name of your own.\n',
    ]);
  });

  it('--with before the command (keytap --with rofi pick) or after it: the same finder, the same read; before another command it is refused', async () => {
    const { env, log } = await setUp(['yubikey'], [['GitHub', 'GitLab']]);
    await awayFromPeriodEnd();
    for (const args of [['--with', 'rofi', 'pick'], ['--with=rofi', 'pick'], ['pick', '--with', 'rofi']]) {
      const result = await runKeytap(args, { env: { ...env, KEYTAP_NO_INSTANCE: '1', FAKE_CHOOSE: 'GitLab' } });
      expect([result.stdout, readFileSync(`${log}.args`, 'utf8')], args.join(' ')).toEqual([`${await totp('GitLab')}\n`, '-dmenu\n-i\n-p\nkeytap\n']);
      expect(result.code, result.stderr).toBe(ExitCode.NOT_DELIVERED); // read, printed; no display to copy to
    }
    const other = await runKeytap(['--with', 'rofi', 'list'], { env: { ...env, KEYTAP_NO_INSTANCE: '1' } });
    expect([other.code, other.stdout, other.stderr]).toEqual([ExitCode.USAGE, '', 'keytap: --with is an option of "keytap pick", not of "keytap list".\n  Leave it out, or run "keytap pick --with FINDER".\n']);
    const nested = await runKeytap(['--with', 'rofi', 'virtual', 'stop'], { env: { ...env, KEYTAP_NO_INSTANCE: '1' } });
    expect([nested.code, nested.stderr]).toEqual([ExitCode.USAGE, expect.stringContaining('not of "keytap virtual stop"')]);
  });

  it('no finder for this session and no terminal: a clear error naming what to install', async () => {
    const { env } = await setUp(['yubikey'], [['GitHub']]);
    const result = await runKeytap(['pick'], { env: { ...env, KEYTAP_NO_INSTANCE: '1' } });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      'keytap: There is no finder to pick with: none of rofi, fuzzel, wofi or dmenu is installed for this session, and this is not a terminal.\n  Install one (rofi or dmenu on X11; fuzzel, wofi or rofi on Wayland), or run "keytap pick" in a terminal.\n',
    );
  });

  it('two keys, both dialects, through the running tray: the lines name the key; the tray reads and copies as for a click', async () => {
    const setup = await setUp(['yubikey', 'nitrokey3'], [['GitHub', 'Bank'], ['GitHub', 'GitLab']]);
    const { env, log } = setup;
    setup.tray = await startTray(env);
    await awayFromPeriodEnd();
    const result = await runKeytap(['pick', '--with', 'rofi'], { env: { ...env, FAKE_CHOOSE: 'GitLab' } });
    expect(result.stdout).toBe(`${await totp('GitLab')}\n`);
    const lines = readFileSync(`${log}.stdin`, 'utf8').split('\n').filter(Boolean);
    expect(lines).toHaveLength(4);
    expect(lines.map((l) => l.split(' — ')[0]).sort()).toEqual(['Bank: alice', 'GitHub: alice', 'GitHub: alice', 'GitLab: alice']);
    const keys = JSON.parse(await ok(['keys', '--json'], env)) as { name: string; serial: string }[];
    for (const line of lines) expect(keys.some((k) => line.endsWith(` — ${k.name} (${k.serial.toUpperCase()})`)), line).toBe(true);
    // The tray read it, and tried the clipboard as a click does (there is no display here).
    expect([result.code, result.stderr]).toEqual([ExitCode.NOT_DELIVERED, expect.stringContaining('The code was printed but not copied. There is no display')]);
    expect(setup.tray.stderr).toContain('copying the code of GitLab:alice failed');
    expect(setup.tray.stderr).not.toContain(result.stdout.trim());
    // Not copied, so not "recent"; a copy that worked is (test/app/menu-groups.test.ts, the state machine).
    expect(existsSync(join(setup.dir, 'data', 'recent.json'))).toBe(false);
  });
});

/**
 * A tray from before the IPC op "read": it lists (from the served keys, as a tray would) and
 * answers every other op with the parse error it had then. Returns the ops it was asked.
 */
async function startOlderTray(env: NodeJS.ProcessEnv): Promise<{ ops: string[]; close: () => Promise<void> }> {
  const keys = JSON.parse(await ok(['keys', '--json'], env)) as { id: string; name: string; serial: string | null }[];
  const listing: Record<string, unknown>[] = [];
  for (const key of keys) {
    const credentials = JSON.parse(await ok(['list', '--json', '--device', key.id], { ...env, KEYTAP_NO_INSTANCE: '1' })) as Record<string, unknown>[];
    listing.push({ id: key.id, name: key.name, serial: key.serial ?? undefined, status: 'ready', credentials: credentials.map((c) => Object.fromEntries(Object.entries(c).filter(([, v]) => v !== null))) });
  }
  const ops: string[] = [];
  const runtime = env.KEYTAP_RUNTIME_DIR!;
  mkdirSync(runtime, { recursive: true, mode: 0o700 });
  const server = createServer((socket) => {
    let buffer = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      if (!buffer.includes('\n')) return;
      const { op } = JSON.parse(buffer.slice(0, buffer.indexOf('\n'))) as { op: string };
      ops.push(op);
      const answer = op === 'list' ? { ok: true, keys: listing } : { ok: false, code: 'USAGE', message: `Unknown operation ${JSON.stringify(op)}.` };
      socket.end(`${JSON.stringify(answer)}\n`);
    });
  });
  await new Promise<void>((resolve) => server.listen(join(runtime, 'keytap.sock'), resolve));
  return { ops, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

describe.runIf(unix)('keytap pick with a tray older than the op "read"', () => {
  it('lists through it, reads the key directly, and says on stderr that the tray is older and how to get the touch toast and clearing', async () => {
    const { env } = await setUp(['yubikey'], [['GitHub', 'GitLab']]);
    const older = await startOlderTray(env);
    try {
      await awayFromPeriodEnd();
      const result = await runKeytap(['pick', '--with', 'rofi'], { env: { ...env, FAKE_CHOOSE: 'GitLab' } });
      expect(older.ops).toEqual(['list', 'read']);
      expect(result.stdout).toBe(`${await totp('GitLab')}\n`);
      expect(result.stderr).toContain('The running keytap is older and cannot read a picked account: reading the key directly, with no touch toast and no clearing of the clipboard. Quit keytap from its menu and start it again to get them.\n');
      expect(result.stderr).not.toContain('Unknown operation');
      // Read directly: the copy is this process's (no display here), not the tray's.
      expect([result.code, result.stderr]).toEqual([ExitCode.NOT_DELIVERED, expect.stringContaining('The code was printed but not copied. There is no display')]);
    } finally {
      await older.close();
    }
  });
});

describe.runIf(unix && HAVE_SCRIPT)('keytap pick on a terminal (no desktop finder)', () => {
  /** Runs `keytap pick` on a pty; `keys` says what to type next once the screen shows something (undefined: nothing yet). */
  const run = (env: NodeJS.ProcessEnv, keys: (shown: string) => string | undefined): Promise<{ output: string; code: number | null }> => {
    const { command, args } = keytapCommand(['pick']);
    return startOnTerminal(command, args, {
      env: { ...env, KEYTAP_NO_INSTANCE: '1' },
      onOutput: (output, session) => {
        const next = keys(stripAnsi(output));
        if (next !== undefined) session.type(next);
      },
    }).ended;
  };

  it('type part of a name, Enter: the code of that account is printed', async () => {
    const { env } = await setUp(['nitrokey3'], [['GitHub', 'GitLab', 'Bank']]);
    await awayFromPeriodEnd();
    let step = 0;
    const { output, code } = await run(env, (shown) => {
      if (step === 0 && shown.includes('keytap> ')) return (step++, 'lab');
      if (step === 1 && shown.includes('keytap> lab') && shown.includes('> GitLab: alice')) return (step++, '\r');
      return undefined;
    });
    const text = stripAnsi(output);
    expect(text).toContain('GitHub: alice');
    expect(text).toContain(await totp('GitLab'));
    expect(code).toBe(ExitCode.NOT_DELIVERED); // no display to copy to
  });

  it('a terminal made shorter (SIGWINCH) keeps the selection on a row shown: Enter reads the row marked, not one out of sight', async () => {
    const { env, dir } = await setUp(['yubikey'], [['GitHub', 'GitLab', 'Bank']]);
    await awayFromPeriodEnd();
    const ttyFile = join(dir, 'tty');
    const { command, args } = keytapCommand(['pick']);
    // 5 rows show all three accounts; the test then makes it 3 rows (one account shown), as a
    // window resized would: the kernel sends SIGWINCH to the terminal's foreground process.
    const line = `stty rows 5 cols 100; tty > ${ttyFile}; exec ${[command, ...args].map((a) => `'${a}'`).join(' ')}`;
    const lastFrame = (screen: string): string => stripAnsi(screen).slice(stripAnsi(screen).lastIndexOf('keytap> '));
    let step = 0;
    let marked: string | undefined;
    const { output, code } = await startOnTerminal('sh', ['-c', line], {
      env: { ...env, KEYTAP_NO_INSTANCE: '1' },
      onOutput: (shown, session) => {
        if (step === 0 && lastFrame(shown).includes('> GitHub: alice') && lastFrame(shown).includes('Bank: alice')) {
          step++;
          session.type('\x1b[B');
          setTimeout(() => session.type('\x1b[B'), 200);
        } else if (step === 1 && lastFrame(shown).includes('> Bank: alice')) {
          step++;
          execFileSync('stty', ['-F', readFileSync(ttyFile, 'utf8').trim(), 'rows', '3']);
          setTimeout(() => {
            marked = /> (\S+: alice)/u.exec(lastFrame(session.output))?.[1];
            session.type('\r');
          }, 700);
        }
      },
    }).ended;
    // Three rows: the prompt, one account, "… 2 more". The one shown is marked, and Enter reads it.
    expect(marked).toBe('GitHub: alice');
    expect(lastFrame(output)).toContain('… 2 more');
    const codes = stripAnsi(output).match(/^\d{6}\r?$/mu);
    expect(codes?.[0]?.trim()).toBe(await totp('GitHub'));
    expect(code).toBe(ExitCode.NOT_DELIVERED); // no display to copy to
  });

  it('Esc cancels: exit 1, "Cancelled." and no code', async () => {
    const { env } = await setUp(['yubikey'], [['GitHub', 'Bank']]);
    let sent = false;
    const { output, code } = await run(env, (shown) => {
      if (!sent && shown.includes('Bank: alice')) {
        sent = true;
        return '\x1b';
      }
      return undefined;
    });
    expect(code).toBe(1);
    expect(stripAnsi(output)).toContain('keytap: Cancelled.');
    expect(stripAnsi(output)).not.toMatch(/\b\d{6}\b/u);
  });
});

const noDmenu = process.platform === 'linux' ? missingTool('Xvfb', 'dmenu', 'xdotool', 'xsel', 'oathtool') : 'Linux';
if (noDmenu) console.warn(`skipping the dmenu test of keytap pick: ${noDmenu} is missing (see .ci/run)`);

describe.skipIf(noDmenu !== undefined)('keytap pick with the real dmenu on Xvfb', () => {
  const desktop = new Desktop();
  beforeAll(() => desktop.startX());
  afterAll(() => desktop.stop());

  it('dmenu is found for the X11 session, a query typed into it and Return read that account; the code is on the clipboard', async () => {
    const { env } = await setUp(['yubikey'], [['GitHub', 'GitLab', 'Bank']], { DISPLAY: desktop.env.DISPLAY });
    expect(env.PATH!.split(':').some((dir) => existsSync(join(dir, 'rofi')))).toBe(false); // else rofi would be the one found
    await awayFromPeriodEnd();
    const picking = runKeytap(['pick'], { env: { ...env, KEYTAP_NO_INSTANCE: '1' } });
    // dmenu grabs the keyboard once its window is up: then XTEST typing goes to it.
    const deadline = Date.now() + 10_000;
    while ((await runProgram('xdotool', ['search', '--class', 'dmenu'], env)).code !== 0) {
      if (Date.now() > deadline) throw new Error('dmenu did not show up');
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 200));
    await runProgram('xdotool', ['type', '--delay', '20', 'gitlab'], env);
    await runProgram('xdotool', ['key', 'Return'], env);
    const result = await picking;
    const expected = await totp('GitLab');
    expect([result.code, result.stdout]).toEqual([0, `${expected}\n`]);
    expect(result.stderr).toBe('Copied to the clipboard. Without a running keytap tray it is not cleared later: start "keytap" for that.\n');
    expect((await runProgram('xsel', ['--clipboard', '--output'], env)).stdout).toBe(expected);
  });
});
