/**
 * The full stack in both dialects: the keytap process → OATH session → CTAPHID client → 64-byte
 * reports → the virtual key (CTAPHID device → OATH applet → store). Codes are checked against
 * oathtool, an independent implementation.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Dialect } from '../../src/device/oath/dialect.js';
import { VirtualKeyStore } from '../../src/emulator/store.js';
import { oathtool, runKeytap, tempDir } from '../support/cli.js';

// RFC 4226 / 6238 secrets (docs/seed-formats.md §5).
const SHA1_HEX = Buffer.from('12345678901234567890').toString('hex');
const SHA1_B32 = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
const SHA256_HEX = Buffer.from('12345678901234567890123456789012').toString('hex');

interface CodeJson {
  id: string;
  code: string;
  validFrom: string | null;
  validTo: string | null;
}

function keyFile(dialect: Dialect): string[] {
  return ['--virtual', join(tempDir(), 'key.json'), '--dialect', dialect];
}

async function ok(args: string[], env?: NodeJS.ProcessEnv): Promise<string> {
  const result = await runKeytap(args, { env });
  if (result.code !== 0) throw new Error(`keytap ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
  return result.stdout;
}

async function codeJson(key: string[], query: string): Promise<CodeJson> {
  return JSON.parse(await ok(['code', ...key, query, '--json'])) as CodeJson;
}

describe.each<Dialect>(['yubikey', 'nitrokey3'])('keytap over a virtual %s', (dialect) => {
  it('adds TOTP accounts and reads codes that oathtool agrees with', async () => {
    const key = keyFile(dialect);
    await ok(['add', ...key, '--issuer', 'Example', '--account', 'alice@example.com', '--secret', SHA1_B32]);
    await ok(['add', ...key, '--issuer', 'Bank', '--account', 'alice', '--secret', `hex:${SHA256_HEX}`, '--algorithm', 'SHA256', '--digits', '8', '--period', '60']);

    const sha1 = await codeJson(key, 'Example');
    expect(sha1.id).toBe('Example:alice@example.com');
    const from = Date.parse(sha1.validFrom!) / 1000;
    expect(Date.parse(sha1.validTo!) / 1000 - from).toBe(30);
    expect(from % 30).toBe(0);
    expect(sha1.code).toBe(await oathtool({ hexSecret: SHA1_HEX, type: 'TOTP', time: from }));

    const sha256 = await codeJson(key, 'Bank');
    expect(sha256.id).toBe('60/Bank:alice');
    const from60 = Date.parse(sha256.validFrom!) / 1000;
    expect(from60 % 60).toBe(0);
    expect(sha256.code).toMatch(/^\d{8}$/u);
    expect(sha256.code).toBe(await oathtool({ hexSecret: SHA256_HEX, type: 'TOTP', algorithm: 'SHA256', digits: 8, period: 60, time: from60 }));

    // Plain output: the code alone on stdout.
    const plain = await runKeytap(['code', ...key, 'alice@example']);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(/^\d{6}\n$/u);
  });

  it('lists accounts as JSON with what the key reports', async () => {
    const key = keyFile(dialect);
    await ok(['add', ...key, '--issuer', 'Example', '--account', 'alice', '--secret', SHA1_B32, '--touch']);
    await ok(['add', ...key, '--account', 'counter', '--secret', SHA1_B32, '--type', 'hotp', '--counter', '3']);
    const list = JSON.parse(await ok(['list', ...key, '--json'])) as unknown[];
    // A YubiKey tells digits through CALCULATE ALL and touch for TOTP only; a Nitrokey 3 tells touch, never digits.
    expect(list).toEqual([
      { id: 'Example:alice', issuer: 'Example', account: 'alice', type: 'TOTP', algorithm: 'SHA1', digits: dialect === 'yubikey' ? 6 : null, period: 30, touch: true },
      { id: 'counter', issuer: null, account: 'counter', type: 'HOTP', algorithm: 'SHA1', digits: dialect === 'yubikey' ? 6 : null, period: null, touch: dialect === 'yubikey' ? null : false },
    ]);
  });

  it('asks for a touch on stderr and still prints only the code on stdout', async () => {
    const key = keyFile(dialect);
    await ok(['add', ...key, '--issuer', 'Touchy', '--account', 'bob', '--secret', SHA1_B32, '--touch']);
    const result = await runKeytap(['code', ...key, 'Touchy', '--json']);
    expect(result.code).toBe(0);
    expect(result.stderr).toContain('Touch your key');
    const json = JSON.parse(result.stdout) as CodeJson;
    expect(json.code).toBe(await oathtool({ hexSecret: SHA1_HEX, type: 'TOTP', time: Date.parse(json.validFrom!) / 1000 }));
  });

  it('advances the HOTP counter on the key with every code', async () => {
    const key = keyFile(dialect);
    await ok(['add', ...key, '--issuer', 'VPN', '--account', 'alice', '--secret', SHA1_B32, '--type', 'hotp', '--counter', '5']);
    const codes = [];
    for (let i = 0; i < 3; i++) codes.push(await codeJson(key, 'VPN'));
    expect(codes.map((c) => c.code)).toEqual([
      await oathtool({ hexSecret: SHA1_HEX, type: 'HOTP', counter: 5 }),
      await oathtool({ hexSecret: SHA1_HEX, type: 'HOTP', counter: 6 }),
      await oathtool({ hexSecret: SHA1_HEX, type: 'HOTP', counter: 7 }),
    ]);
    expect(codes[0]!.validFrom).toBeNull();
  });

  it('adds from an otpauth URI, refuses a duplicate unless --replace, and deletes', async () => {
    const key = keyFile(dialect);
    const uri = `otpauth://totp/ACME%20Co:john@example.com?secret=${SHA1_B32}&issuer=ACME%20Co&digits=8`;
    await ok(['add', ...key, uri]);
    const again = await runKeytap(['add', ...key, uri]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('already has an account "ACME Co:john@example.com"');
    await ok(['add', ...key, uri, '--replace']);
    const code = await codeJson(key, 'ACME');
    expect(code.code).toBe(await oathtool({ hexSecret: SHA1_HEX, type: 'TOTP', digits: 8, time: Date.parse(code.validFrom!) / 1000 }));

    await ok(['delete', ...key, 'ACME Co:john@example.com']);
    expect(JSON.parse(await ok(['list', ...key, '--json']))).toEqual([]);
    const gone = await runKeytap(['delete', ...key, 'ACME']);
    expect(gone.code).toBe(4);
  });

  it('exits 4 when a query matches no account or several', async () => {
    const key = keyFile(dialect);
    await ok(['add', ...key, '--issuer', 'A', '--account', 'one', '--secret', SHA1_B32]);
    await ok(['add', ...key, '--issuer', 'A', '--account', 'two', '--secret', SHA1_B32]);
    const none = await runKeytap(['code', ...key, 'nothing-like-it']);
    expect(none.code).toBe(4);
    expect(none.stderr).toContain('No account matches "nothing-like-it"');
    const several = await runKeytap(['code', ...key, 'A:']);
    expect(several.code).toBe(4);
    expect(several.stderr).toContain('2 accounts match');
    expect(several.stdout).toBe('');
  });

  it('resets only with --force', async () => {
    const key = keyFile(dialect);
    await ok(['add', ...key, '--account', 'x', '--secret', SHA1_B32]);
    expect((await runKeytap(['reset', ...key])).code).toBe(2);
    await ok(['reset', ...key, '--force']);
    expect(JSON.parse(await ok(['list', ...key, '--json']))).toEqual([]);
  });

  it('keeps its store owner-only', async () => {
    const dir = tempDir();
    const file = join(dir, 'key.json');
    await ok(['add', '--virtual', file, '--dialect', dialect, '--account', 'x', '--secret', SHA1_B32]);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).not.toContain(SHA1_B32);
  });
});

describe('the YubiKey password over the full stack', () => {
  it('locks the applet until the password is given, and refuses a wrong one', async () => {
    const key = keyFile('yubikey');
    await ok(['add', ...key, '--account', 'secret-account', '--secret', SHA1_B32]);
    await ok(['password', ...key, '--new-password', 'correct horse']);

    const locked = await runKeytap(['list', ...key]);
    expect(locked.code).toBe(1);
    expect(locked.stderr).toContain('password-protected');
    const wrong = await runKeytap(['code', ...key, 'secret', '--password', 'battery staple']);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('password is wrong');
    expect(wrong.stderr).not.toContain('battery staple');

    const code = JSON.parse(await ok(['code', ...key, 'secret', '--json', '--password', 'correct horse'])) as CodeJson;
    expect(code.code).toBe(await oathtool({ hexSecret: SHA1_HEX, type: 'TOTP', time: Date.parse(code.validFrom!) / 1000 }));
    const viaEnv = await runKeytap(['list', ...key], { env: { KEYTAP_PASSWORD: 'correct horse' } });
    expect(viaEnv.code).toBe(0);

    await ok(['password', ...key, '--clear', '--password', 'correct horse']);
    expect((await runKeytap(['list', ...key])).code).toBe(0);
  });

  it('resets a password-protected key with --force and no password, so a forgotten password is recoverable (issue 9 item 11)', async () => {
    const key = keyFile('yubikey');
    await ok(['add', ...key, '--account', 'secret-account', '--secret', SHA1_B32]);
    await ok(['password', ...key, '--new-password', 'forgotten']);
    expect((await runKeytap(['list', ...key])).code).toBe(1);

    const reset = await runKeytap(['reset', ...key, '--force']);
    expect(reset.code, reset.stderr).toBe(0);
    // The accounts and the password are gone: listing needs no password any more.
    expect(JSON.parse(await ok(['list', ...key, '--json']))).toEqual([]);

    // With the right or a wrong password given, reset needs none and works just the same.
    for (const password of ['known', 'not the password']) {
      await ok(['add', ...key, '--account', 'again', '--secret', SHA1_B32]);
      await ok(['password', ...key, '--new-password', 'known']);
      const withPassword = await runKeytap(['reset', ...key, '--force', '--password', password]);
      expect(withPassword.code, withPassword.stderr).toBe(0);
      expect(withPassword.stderr).not.toContain(password);
      expect(JSON.parse(await ok(['list', ...key, '--json']))).toEqual([]);
    }
  });

  it('resets a PIN-protected Nitrokey 3 with --force and no PIN, and the PIN is gone (issue 9 item 11)', async () => {
    const file = join(tempDir(), 'key.json');
    const store = await VirtualKeyStore.open(file, { dialect: 'nitrokey3' });
    await store.setPin(Buffer.from('123456'));
    const key = ['--virtual', file];
    await ok(['add', ...key, '--account', 'pinned', '--secret', SHA1_B32]);

    const reset = await runKeytap(['reset', ...key, '--force']);
    expect(reset.code, reset.stderr).toBe(0);
    expect(JSON.parse(await ok(['list', ...key, '--json']))).toEqual([]);
    const after = await VirtualKeyStore.open(file);
    expect(after.pin).toBeUndefined();
    expect(after.credentials).toEqual([]);
  });

  it('refuses to set a YKOATH password on a Nitrokey 3, whose applet would only pretend', async () => {
    const key = keyFile('nitrokey3');
    const result = await runKeytap(['password', ...key, '--new-password', 'pw']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('has no YKOATH password');
  });
});

describe('bad input on the command line', () => {
  it.each([
    [['add', '--account', 'a', '--secret', SHA1_B32, '--digits', '9'], 2, '--digits'],
    [['add', '--account', 'a', '--secret', 'not base32!'], 2, 'not valid Base32'],
    [['add', '--account', 'a', '--secret', SHA1_B32, '--algorithm', 'MD5'], 2, 'SHA1, SHA256 or SHA512'],
    [['add', '--account', 'a'], 2, '--secret'],
    [['add', 'otpauth://totp/x?secret=!!!'], 2, 'secret'],
    [['add', '--account', 'a', '--secret', SHA1_B32, '--counter', '4'], 2, '--counter only applies'],
    [['frobnicate'], 2, 'unknown command'],
  ])('keytap %j exits %i and names the problem', async (args, exit, text) => {
    const result = await runKeytap([...args, '--virtual', join(tempDir(), 'k.json')]);
    expect(result.code).toBe(exit);
    expect(result.stderr).toContain(text);
    expect(result.stderr).not.toMatch(/\n\s+at .+:\d+:\d+/u); // no stack trace
  });

  it('reports a broken store file without overwriting it', async () => {
    const dir = tempDir();
    const file = join(dir, 'broken.json');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(file, '{"version": 1, "credentials": [', { mode: 0o600 });
    const result = await runKeytap(['list', '--virtual', file]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(file);
    expect(readFileSync(file, 'utf8')).toBe('{"version": 1, "credentials": [');
  });
});
