// The users file's display-name column is what people know a user by: it names the Graph device
// (hardwareOathTokenAuthenticationMethodDevice.displayName), the batch's report and summary, and
// the USER column of `seeds codes --activation`.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readLedger } from '../../src/provision/ledger.js';
import { runKeytap, tempDir } from '../support/cli.js';
import { Programmer, keysWithGraphPerTest } from '../provision/support.js';

const perTest = keysWithGraphPerTest();

describe('keytap program --batch --users FILE with a display-name column', () => {
  it('names the Graph device, the key\'s report, the users still without a key and the activation view\'s user', async () => {
    const { keys, standin } = perTest.create();
    standin.addUser('ann@contoso.example');
    standin.addUser('ben@contoso.example');
    await standin.start();
    const dir = tempDir();
    const out = join(dir, 'seeds');
    const users = join(dir, 'users.csv');
    writeFileSync(users, 'userPrincipalName,displayName\nann@contoso.example,Ann Vance\nben@contoso.example,Ben Stone\n');
    const env = { ...keys.env, ...standin.clientEnv() };
    const programmer = new Programmer(['program', '--batch', '--yes', '--entra', '--users', users, '--count', '1', '--formats', 'entra', '--out', out], env);
    await programmer.waitFor(/Insert key 1 /u);
    await keys.plug('k1');
    const { code } = await programmer.exited;
    expect(code).toBe(0);
    expect(programmer.stdout).toMatch(/Key 1: programmed serial KT\d{8} as "ann@contoso\.example" on virtual key k1\.json; verified; for Ann Vance <ann@contoso\.example>\./u);
    expect(programmer.stdout).toContain('Users still without a key (1): Ben Stone <ben@contoso.example> (line 3).');

    const [device] = standin.devices;
    expect(device?.displayName).toBe('Ann Vance');
    expect(device?.status).toBe('activated');

    const ledger = await readLedger(out);
    expect(ledger.entries[0]?.token.displayName).toBe('Ann Vance');
    const view = await runKeytap(['seeds', 'codes', '--ledger', out, '--activation']);
    expect(view.code).toBe(0);
    const [, row] = view.stdout.trimEnd().split('\n');
    expect(row!.split(/\s{2,}/u).slice(0, 2)).toEqual([ledger.entries[0]!.token.serial, 'Ann Vance <ann@contoso.example>']);
  });
});
