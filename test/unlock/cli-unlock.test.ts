/**
 * Unlocking from the CLI, end to end on the virtual key in both dialects: the YubiKey password and
 * the Nitrokey 3 PIN asked through a scripted pinentry on PATH (its log shows what keytap told
 * it), through a real pinentry-curses on a pseudo-terminal, and remembered in gnome-keyring's
 * Secret Service on a private session bus (checked with secret-tool). Codes against oathtool.
 */
import { execFileSync } from 'node:child_process';
import { pbkdf2Sync } from 'node:crypto';
import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VirtualKeyStore } from '../../src/emulator/store.js';
import { keytapCommand, oathtool, runKeytap, runProgram, tempDir } from '../support/cli.js';
import type { PrivateKeyring } from '../support/secret-peers.js';
import { HAVE_KEYRING_DAEMON, HAVE_PINENTRY_CURSES, HAVE_SECRET_TOOL, scriptedPinentry, secretToolLookup, startPrivateKeyring } from '../support/secret-peers.js';
import { HAVE_SCRIPT, startOnTerminal, stripAnsi } from '../support/terminal.js';

const SECRET_B32 = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
const SECRET_HEX = Buffer.from('12345678901234567890').toString('hex');
const PASSWORD = 'p%ss\nword';
const PIN = '246810';

/** A bus address that reaches nothing: no keyring, as on a machine without a Secret Service. */
const NO_BUS = { DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent/keytap-test-bus' };

async function ok(args: string[], env?: NodeJS.ProcessEnv): Promise<string> {
  const result = await runKeytap(args, { env });
  if (result.code !== 0) throw new Error(`keytap ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
  return result.stdout;
}

/** A virtual YubiKey with one account and a password. */
async function lockedYubiKey(): Promise<{ key: string[]; file: string }> {
  const file = join(tempDir(), 'key.json');
  const key = ['--virtual', file];
  await ok(['add', ...key, '--dialect', 'yubikey', '--account', 'alice', '--issuer', 'Bank', '--secret', SECRET_B32], NO_BUS);
  const set = await runKeytap(['password', ...key, '--new-password', PASSWORD], { env: NO_BUS });
  expect(set.code, set.stderr).toBe(0);
  return { key, file };
}

/** A virtual Nitrokey 3 with a PIN, one open account and one PIN-protected account. */
async function nitrokeyWithPin(): Promise<{ key: string[]; file: string }> {
  const file = join(tempDir(), 'key.json');
  await ok(['add', '--virtual', file, '--dialect', 'nitrokey3', '--account', 'open', '--secret', SECRET_B32], NO_BUS);
  const store = await VirtualKeyStore.open(file);
  await store.setPin(Buffer.from(PIN));
  const hmacKey = Buffer.alloc(20);
  Buffer.from(SECRET_HEX, 'hex').copy(hmacKey);
  await store.putCredential({ id: Buffer.from('Vault:pinned'), type: 'TOTP', algorithm: 'SHA1', digits: 6, key: Buffer.from(SECRET_HEX, 'hex'), counter: 0, touch: false, increasing: false, pinProtected: true });
  return { key: ['--virtual', file], file };
}

function expectedCode(): Promise<(code: string) => Promise<boolean>> {
  return Promise.resolve(async (code: string) => {
    const now = Math.floor(Date.now() / 1000);
    for (const t of [now, now - 30]) if ((await oathtool({ hexSecret: SECRET_HEX, type: 'TOTP', time: t })) === code) return true;
    return false;
  });
}

function onTerminal(args: string[], env: NodeJS.ProcessEnv): Promise<{ output: string; code: number | null }> {
  const { command, args: argv } = keytapCommand(args);
  return startOnTerminal(command, argv, { env }).ended;
}

describe('a password-protected YubiKey from the CLI', () => {
  it('without a terminal and nothing remembered: the error of a locked key, naming --password', async () => {
    const { key } = await lockedYubiKey();
    const result = await runKeytap(['code', ...key, 'alice'], { env: NO_BUS });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/password-protected/u);
    expect(result.stderr).toMatch(/--password or the KEYTAP_PASSWORD/u);
  });

  it('--remember without a keyring: the code all the same, and a warning that says why nothing was remembered', async () => {
    const { key } = await lockedYubiKey();
    const result = await runKeytap(['code', ...key, 'alice', '--password', PASSWORD, '--remember'], { env: NO_BUS });
    expect(result.code, result.stderr).toBe(0);
    expect(await (await expectedCode())(result.stdout.trim())).toBe(true);
    expect(result.stderr).toMatch(/warning: The keyring of this computer cannot be used/u);
    expect(result.stderr).not.toContain(PASSWORD);
  });

  it.skipIf(!HAVE_SCRIPT)('on a terminal asks the pinentry, again after a wrong password with SETERROR, and prints the code', async () => {
    const { key } = await lockedYubiKey();
    const pinentry = scriptedPinentry(['wrong one', PASSWORD]);
    const run = await onTerminal(['code', ...key, 'alice'], { ...NO_BUS, PATH: `${pinentry.dir}:${process.env.PATH}`, DISPLAY: ':99' });
    const text = stripAnsi(run.output);
    expect(run.code, text).toBe(0);
    const code = /^(\d{6})\s*$/mu.exec(text)?.[1];
    expect(code, text).toBeDefined();
    expect(await (await expectedCode())(code!)).toBe(true);
    const runs = pinentry.runs();
    expect(runs).toHaveLength(2);
    expect(runs[0]).toEqual(expect.arrayContaining(['SETTITLE keytap', 'SETPROMPT Password:', 'GETPIN']));
    expect(runs[0]!.some((l) => l.startsWith('SETDESC ') && l.includes('virtual key') && l.includes('password-protected'))).toBe(true);
    expect(runs[0]!.some((l) => l.startsWith('SETERROR'))).toBe(false);
    expect(runs[1]).toContain('SETERROR Wrong password: try again.');
    expect(runs[0]!.some((l) => /^OPTION ttyname=\/dev\/pts\/\d+$/u.test(l))).toBe(true);
    // The password never shows on the terminal, nor in an error.
    expect(text).not.toContain('wrong one');
  });

  it.skipIf(!HAVE_SCRIPT)('the pinentry gets no KEYTAP_NEW_PASSWORD or KEYTAP_PIN from the environment keytap was given', async () => {
    const { key } = await lockedYubiKey();
    const pinentry = scriptedPinentry([PASSWORD]);
    const env = { ...NO_BUS, PATH: `${pinentry.dir}:${process.env.PATH}`, DISPLAY: ':99', KEYTAP_NEW_PASSWORD: 'the new one', KEYTAP_PIN: '123456' };
    const run = await onTerminal(['password', ...key], env);
    expect(run.code, stripAnsi(run.output)).toBe(0);
    expect(pinentry.runs()).toHaveLength(1);
    expect(pinentry.envs()[0]!.filter((name) => /PASSWORD|PIN/u.test(name))).toEqual([]);
    // The new password from the environment was set: it unlocks now.
    expect((await runKeytap(['list', ...key, '--password', 'the new one'], { env: NO_BUS })).code).toBe(0);
  });

  it.skipIf(!HAVE_SCRIPT)('a cancelled pinentry: nothing printed, exit 1, the word "cancelled"', async () => {
    const { key } = await lockedYubiKey();
    const pinentry = scriptedPinentry(['cancel']);
    const run = await onTerminal(['code', ...key, 'alice'], { ...NO_BUS, PATH: `${pinentry.dir}:${process.env.PATH}`, DISPLAY: ':99' });
    expect(run.code).toBe(1);
    expect(stripAnsi(run.output)).toMatch(/cancelled/iu);
    expect(stripAnsi(run.output)).not.toMatch(/^\d{6}\s*$/mu);
  });

  it.skipIf(!HAVE_SCRIPT)('on a terminal with no pinentry and no dialog program: keytap\'s own hidden prompt, nothing echoed', async () => {
    const { key } = await lockedYubiKey();
    const typed = 'hidden-pw';
    expect((await runKeytap(['password', ...key, '--password', PASSWORD, '--new-password', typed], { env: NO_BUS })).code).toBe(0);
    // A PATH with only what the terminal needs: no pinentry, no zenity.
    const bin = tempDir('keytap-bare-path-');
    for (const tool of ['sh', 'script']) symlinkSync(execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim(), join(bin, tool));
    const { command, args } = keytapCommand(['code', ...key, 'alice']);
    let sent = false;
    const session = startOnTerminal(command, args, {
      env: { ...NO_BUS, PATH: bin, DISPLAY: '' },
      onOutput: (output, s) => {
        if (!sent && output.includes('Password:')) {
          sent = true;
          s.type(`${typed}\r`);
        }
      },
    });
    const run = await session.ended;
    const text = stripAnsi(run.output);
    expect(sent, text).toBe(true);
    expect(run.code, text).toBe(0);
    expect(text).toMatch(/password-protected\. Enter its password/u);
    expect(text).not.toContain(typed);
    const code = /(\d{6})\s*$/u.exec(text.trim())?.[1];
    expect(await (await expectedCode())(code!)).toBe(true);
  });

  it.skipIf(!HAVE_SCRIPT || !HAVE_PINENTRY_CURSES)('a real pinentry-curses on the terminal: the password typed into its dialog unlocks, the code is oathtool\'s', async () => {
    const { key } = await lockedYubiKey();
    const typed = 'curses-pw';
    const set = await runKeytap(['password', ...key, '--password', PASSWORD, '--new-password', typed], { env: NO_BUS });
    expect(set.code, set.stderr).toBe(0);
    const { command, args } = keytapCommand(['code', ...key, 'alice']);
    let sent = false;
    const session = startOnTerminal(command, args, {
      env: { ...NO_BUS, KEYTAP_PINENTRY: '/usr/bin/pinentry-curses', TERM: 'xterm', DISPLAY: '' },
      onOutput: (output, s) => {
        if (!sent && /Password:/u.test(stripAnsi(output))) {
          sent = true;
          setTimeout(() => s.type(`${typed}\r`), 300);
        }
      },
    });
    const run = await session.ended;
    const text = stripAnsi(run.output);
    expect(sent, text).toBe(true);
    expect(run.code, text).toBe(0);
    const code = /(\d{6})\s*$/u.exec(text.trim())?.[1];
    expect(await (await expectedCode())(code!)).toBe(true);
    expect(text).not.toContain(typed);
  }, 30_000);
});

describe.skipIf(!HAVE_KEYRING_DAEMON || !HAVE_SECRET_TOOL)('remembering in the Secret Service (gnome-keyring on a private bus)', () => {
  let keyring: PrivateKeyring;
  beforeAll(async () => {
    keyring = await startPrivateKeyring();
  }, 30_000);
  afterAll(async () => {
    await keyring?.stop();
  });

  it('YubiKey: --remember stores the 16-byte access key (not the password); code works without one; a wrong remembered key is forgotten; password --forget', async () => {
    const { key, file } = await lockedYubiKey();
    const store = await VirtualKeyStore.open(file);
    const serial = store.serial;
    const entry = `${serial}/access-key`;

    const remembered = await runKeytap(['code', ...key, 'alice', '--password', PASSWORD, '--remember'], { env: keyring.env });
    expect(remembered.code, remembered.stderr).toBe(0);
    expect(remembered.stderr).toMatch(/Remembered the access key of .* in the Secret Service/u);
    const stored = await secretToolLookup(keyring.env, entry);
    expect(stored).toBe(pbkdf2Sync(Buffer.from(PASSWORD, 'utf8'), store.salt, 1000, 16, 'sha1').toString('hex'));
    expect(stored).not.toContain(PASSWORD);

    // No password, no terminal: the remembered access key unlocks.
    const code = (await ok(['code', ...key, 'alice'], keyring.env)).trim();
    expect(await (await expectedCode())(code)).toBe(true);
    expect((await ok(['list', ...key], keyring.env))).toContain('Bank:alice');

    // The password changes behind keytap's back: the remembered key is wrong, forgotten, and the error is the locked one.
    expect((await runKeytap(['password', ...key, '--password', PASSWORD, '--new-password', 'another'], { env: NO_BUS })).code).toBe(0);
    const wrong = await runKeytap(['code', ...key, 'alice'], { env: keyring.env });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/password remembered for .* was wrong; it is forgotten/u);
    expect(wrong.stderr).toMatch(/password-protected/u);
    expect(await secretToolLookup(keyring.env, entry)).toBe('');

    await ok(['list', ...key, '--password', 'another', '--remember'], keyring.env);
    expect(await secretToolLookup(keyring.env, entry)).toMatch(/^[0-9a-f]{32}$/u);
    const forget = await runKeytap(['password', ...key, '--forget'], { env: keyring.env });
    expect(forget.code, forget.stderr).toBe(0);
    expect(forget.stderr).toMatch(/Forgot what the Secret Service remembered/u);
    expect(await secretToolLookup(keyring.env, entry)).toBe('');
    const again = await runKeytap(['password', ...key, '--forget'], { env: keyring.env });
    expect(again.stderr).toMatch(/remembered nothing/u);
  });

  it('Nitrokey 3: --pin --remember stores the PIN; the PIN-protected account is listed and read without one; a wrong remembered PIN is forgotten', async () => {
    const { key, file } = await nitrokeyWithPin();
    const serial = (await VirtualKeyStore.open(file)).serial;
    const entry = `${serial}/nk3-pin`;

    const hidden = await runKeytap(['list', ...key, '--json'], { env: NO_BUS });
    expect((JSON.parse(hidden.stdout) as { id: string }[]).map((c) => c.id)).toEqual(['open']);
    const code = (await ok(['code', ...key, 'pinned', '--pin', PIN, '--remember'], keyring.env)).trim();
    expect(await (await expectedCode())(code)).toBe(true);
    expect(await secretToolLookup(keyring.env, entry)).toBe(PIN);

    const listed = (JSON.parse(await ok(['list', ...key, '--json'], keyring.env)) as { id: string }[]).map((c) => c.id);
    expect(listed.sort()).toEqual(['Vault:pinned', 'open']);
    expect(await (await expectedCode())((await ok(['code', ...key, 'pinned'], keyring.env)).trim())).toBe(true);

    // A PIN remembered wrong costs one attempt and is forgotten; without a terminal that is the end.
    const store = await VirtualKeyStore.open(file);
    await store.setPin(Buffer.from('135790'));
    const wrong = await runKeytap(['code', ...key, 'pinned'], { env: keyring.env });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/PIN remembered for .* was wrong; it is forgotten/u);
    expect(await secretToolLookup(keyring.env, entry)).toBe('');
    expect(wrong.stderr).not.toContain(PIN);
    expect((await VirtualKeyStore.open(file)).pin?.attemptsLeft).toBe(7);

    // The same wrong PIN is back in the keyring (as when its deletion failed): the key's counter
    // says a wrong PIN was given since, so it is not tried again: still 7 attempts left.
    expect((await runProgram('sh', ['-c', `printf %s ${PIN} | secret-tool store --label=keytap service keytap username ${entry}`], { env: { ...process.env, ...keyring.env } })).code).toBe(0);
    const again = await runKeytap(['code', ...key, 'pinned'], { env: keyring.env });
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/PIN remembered for .* was not tried: the key says a wrong PIN was entered since it last worked \(7 attempts left\)/u);
    expect((await VirtualKeyStore.open(file)).pin?.attemptsLeft).toBe(7);
  });
});

describe('a Nitrokey 3 PIN from the CLI', () => {
  it('a wrong --pin says how many attempts are left; the right one reads the PIN-protected account', async () => {
    const { key } = await nitrokeyWithPin();
    const wrong = await runKeytap(['code', ...key, 'pinned', '--pin', '000000'], { env: NO_BUS });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/The PIN is wrong \(7 attempts left\)/u);
    expect(wrong.stderr).toMatch(/--pin or the KEYTAP_PIN environment variable/u);
    expect(wrong.stderr).not.toContain('000000');
    const code = (await ok(['code', ...key, 'pinned'], { ...NO_BUS, KEYTAP_PIN: PIN })).trim();
    expect(await (await expectedCode())(code)).toBe(true);
  });

  it('without a PIN and no terminal: PIN-protected, naming --pin', async () => {
    const { key } = await nitrokeyWithPin();
    const result = await runKeytap(['code', ...key, 'pinned'], { env: NO_BUS });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/PIN-protected/u);
    expect(result.stderr).toMatch(/--pin/u);
  });

  it.skipIf(!HAVE_SCRIPT)('on a terminal asks the pinentry for the PIN (with the attempts left), and again after a wrong one', async () => {
    const { key } = await nitrokeyWithPin();
    const pinentry = scriptedPinentry(['999999', PIN]);
    const run = await onTerminal(['code', ...key, 'pinned'], { ...NO_BUS, PATH: `${pinentry.dir}:${process.env.PATH}`, DISPLAY: ':99' });
    const text = stripAnsi(run.output);
    expect(run.code, text).toBe(0);
    const code = /^(\d{6})\s*$/mu.exec(text)?.[1];
    expect(await (await expectedCode())(code!)).toBe(true);
    const runs = pinentry.runs();
    expect(runs).toHaveLength(2);
    expect(runs[0]).toContain('SETPROMPT PIN:');
    expect(runs[0]!.some((l) => l.startsWith('SETDESC ') && l.includes('(8 attempts left)'))).toBe(true);
    expect(runs[1]!.some((l) => l.startsWith('SETDESC ') && l.includes('(7 attempts left)'))).toBe(true);
    expect(runs[1]).toContain('SETERROR Wrong PIN: try again.');
  });
});
