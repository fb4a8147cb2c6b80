// `keytap program --batch --users FILE` end to end over `keytap virtual start|stop`: a users file
// with a repeated line is refused with its line before anything is written; a batch of 5 killed
// after key 3 and run again goes on with user 4, and ends by itself when every user has a key.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { hexEncode } from '../../src/otp/encoding.js';
import { readLedger } from '../../src/provision/ledger.js';
import { seedFormat } from '../../src/seeds/index.js';
import { oathtool, runKeytap, tempDir } from '../support/cli.js';
import { Programmer, VirtualKeys, entryForStoredKey } from '../provision/support.js';

const UPNS = ['ann@contoso.com', 'ben@contoso.com', 'cat@contoso.com', 'dan@contoso.com', 'eve@contoso.com'];

let keys: VirtualKeys | undefined;
afterEach(async () => {
  await keys?.unplugAll();
  keys = undefined;
});

/** Plugs key `name` in when the batch asks for key `number`, and pulls it when asked to. */
async function serveKey(programmer: Programmer, keys: VirtualKeys, name: string, number: number): Promise<void> {
  await programmer.waitFor(new RegExp(`Insert key ${number} `, 'u'));
  await keys.plug(name);
  await programmer.waitFor(new RegExp(`Remove virtual key ${name}\\.json`, 'u'));
}

describe('keytap program --batch --users', () => {
  it('refuses a users file with a repeated user, naming its line, before the ledger exists', async () => {
    const dir = tempDir();
    const users = join(dir, 'users.csv');
    writeFileSync(users, `userPrincipalName,displayName\n${UPNS.map((u) => `${u},${u.split('@')[0]}`).join('\n')}\nBen@contoso.com,Ben again\n`);
    const out = join(dir, 'seeds');
    const result = await runKeytap(['program', '--batch', '--yes', '--users', users, '--formats', 'entra,pskc', '--out', out]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/line 7: Ben@contoso\.com repeats line 3/u);
    expect(existsSync(out)).toBe(false);
  });

  it('refuses a user whose own manufacturer the Entra CSV cannot carry, naming the line, before the ledger exists', async () => {
    const dir = tempDir();
    const users = join(dir, 'users.csv');
    writeFileSync(users, 'upn,manufacturer\nann@contoso.com,Acme\nben@contoso.com,"Acme, Inc."\n');
    const out = join(dir, 'seeds');
    const result = await runKeytap(['program', '--batch', '--yes', '--users', users, '--formats', 'entra', '--out', out]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/line 3 \(ben@contoso\.com\): The Entra ID CSV export cannot take token/u);
    expect(existsSync(out)).toBe(false);
  });

  it('without users an Entra batch says to give them with --users', async () => {
    const result = await runKeytap(['program', '--batch', '--yes', '--formats', 'entra', '--out', join(tempDir(), 'seeds')]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/a UPN is required/u);
    expect(result.stderr).toMatch(/--users FILE/u);
  });

  it('a batch of 5 killed after key 3 resumes with user 4: each user gets exactly one token', async () => {
    keys = new VirtualKeys();
    const dir = tempDir();
    const users = join(dir, 'users.txt');
    writeFileSync(users, `${UPNS.join('\n')}\n`);
    const out = join(dir, 'seeds');
    const args = ['program', '--batch', '--yes', '--users', users, '--formats', 'entra,pskc', '--manufacturer', 'Acme', '--model', 'K1', '--out', out];

    const first = new Programmer(args, keys.env);
    for (const [index, name] of ['k1', 'k2', 'k3'].entries()) {
      await serveKey(first, keys, name, index + 1);
      await keys.unplug(name);
    }
    await first.waitFor(/Insert key 4 /u);
    first.child.kill('SIGKILL');
    await first.exited;

    const second = new Programmer(args, keys.env);
    await second.waitFor(/3 user\(s\) in .* already have a token in the ledger and get no key/u);
    expect(second.stderr).toMatch(/ann@contoso\.com \(line 1\), ben@contoso\.com \(line 2\), cat@contoso\.com \(line 3\)/u);
    await serveKey(second, keys, 'k4', 1);
    await keys.unplug('k4');
    await serveKey(second, keys, 'k5', 2);
    await keys.unplug('k5');
    const { code } = await second.exited;
    expect(code).toBe(0);
    expect(second.stdout).toMatch(/Summary: 2 programmed, 0 failed, 0 skipped\./u);
    expect(second.stdout).not.toMatch(/still without a key/u);

    const ledger = await readLedger(out);
    expect(ledger.entries.map((e) => [e.token.upn, e.state])).toEqual(UPNS.map((u) => [u, 'done']));
    const rows = seedFormat('entra').read(readFileSync(join(out, 'tseeds.csv')));
    expect(rows.map((t) => t.upn).sort()).toEqual([...UPNS].sort());
    // Each key holds its own user's seed: the key's code is oathtool's for that user's seed.
    for (const [index, name] of ['k1', 'k2', 'k3', 'k4', 'k5'].entries()) {
      const [id, stored] = [...keys.stored(name).entries()][0]!;
      expect(id).toBe(UPNS[index]);
      const entry = entryForStoredKey(ledger.entries, stored)!;
      expect(entry.token.upn).toBe(UPNS[index]);
      const row = rows.find((t) => t.upn === UPNS[index])!;
      expect(row.serial).toBe(entry.token.serial);
      const time = Math.floor(Date.now() / 1000);
      const ours = await keys.keytap(['code', '--virtual', keys.file(name), UPNS[index]!]);
      const theirs = await Promise.all([time, time + 2].map((t) => oathtool({ hexSecret: hexEncode(row.secret), type: 'TOTP', time: t })));
      expect(theirs).toContain(ours.stdout.trim());
    }

    // Run again: nobody is left, nothing is programmed; --again would give everyone a second key.
    const third = await runKeytap(args, { env: keys.env });
    expect(third.code).toBe(0);
    expect(third.stdout).toMatch(/Every user in .* has a token in the ledger; no key to program/u);
  });

  it('stopped early, the summary names the users still without a key', async () => {
    keys = new VirtualKeys();
    const dir = tempDir();
    const users = join(dir, 'users.csv');
    writeFileSync(users, `upn\n${UPNS.slice(0, 3).join('\n')}\n`);
    const programmer = new Programmer(['program', '--batch', '--yes', '--users', users, '--formats', 'pskc', '--out', join(dir, 'seeds')], keys.env);
    await serveKey(programmer, keys, 'only', 1);
    await keys.unplug('only');
    await programmer.waitFor(/Insert key 2 /u);
    programmer.child.kill('SIGINT');
    const { code } = await programmer.exited;
    expect(code).toBe(0);
    expect(programmer.stdout).toMatch(/Users still without a key \(2\): ben@contoso\.com \(line 3\), cat@contoso\.com \(line 4\)\./u);
  });
});
