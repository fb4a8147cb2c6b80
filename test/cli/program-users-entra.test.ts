// The roll-out of issue 10 end to end: `keytap program --batch --users FILE --entra` over 5
// virtual keys against the Graph stand-in. A users file with a repeated line is refused with its
// line before anything is written or sent; the batch is killed after key 3 and run again: each
// user has exactly one token, the Entra CSV has the 5 users, and the stand-in received 5 devices,
// 5 assignments and 5 activations whose codes oathtool computes from each seed at the time sent.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hexEncode } from '../../src/otp/encoding.js';
import { readLedger } from '../../src/provision/ledger.js';
import { seedFormat } from '../../src/seeds/index.js';
import { oathtool, runKeytap, tempDir } from '../support/cli.js';
import { Programmer, keysWithGraphPerTest, serveKey } from '../provision/support.js';

const UPNS = ['ann@contoso.example', 'ben@contoso.example', 'cat@contoso.example', 'dan@contoso.example', 'eve@contoso.example'];

const perTest = keysWithGraphPerTest();

describe('keytap program --batch --users --entra', () => {
  it('5 users, killed after key 3 and resumed: one token each, in the CSV and activated in Entra with codes oathtool confirms', async () => {
    const { keys, standin } = perTest.create();
    for (const upn of UPNS) standin.addUser(upn);
    await standin.start();
    const dir = tempDir();
    const out = join(dir, 'seeds');
    const env = { ...keys.env, ...standin.clientEnv() };
    const users = join(dir, 'users.csv');
    const args = ['program', '--batch', '--yes', '--entra', '--users', users, '--formats', 'entra,pskc', '--manufacturer', 'Acme', '--model', 'K1', '--out', out];

    // One line repeats another: refused with its line; no ledger, nothing sent to Graph.
    writeFileSync(users, `userPrincipalName,displayName\n${UPNS.map((u) => `${u},${u.slice(0, 3)}`).join('\n')}\nCAT@contoso.example,Cat again\n`);
    const refused = await runKeytap(args, { env });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/line 7: CAT@contoso\.example repeats line 4/u);
    expect(existsSync(out)).toBe(false);
    expect(standin.graphRequests()).toEqual([]);

    writeFileSync(users, `userPrincipalName,displayName\n${UPNS.map((u) => `${u},${u.slice(0, 3)}`).join('\n')}\n`);
    const first = new Programmer(args, env);
    for (const [index, name] of ['k1', 'k2', 'k3'].entries()) await serveKey(first, keys, name, index + 1);
    await first.waitFor(/Insert key 4 /u);
    first.child.kill('SIGKILL');
    await first.exited;

    const second = new Programmer(args, env);
    await second.waitFor(/3 user\(s\) in .* already have a token in the ledger and get no key/u);
    await serveKey(second, keys, 'k4', 1);
    await serveKey(second, keys, 'k5', 2);
    const { code } = await second.exited;
    expect(code).toBe(0);

    const ledger = await readLedger(out);
    expect(ledger.entries.map((e) => [e.token.upn, e.state])).toEqual(UPNS.map((u) => [u, 'done']));
    const rows = seedFormat('entra').read(readFileSync(join(out, 'tseeds.csv')));
    expect(rows.map((t) => t.upn)).toEqual(UPNS);

    const graph = standin.graphRequests();
    expect(graph.filter((r) => r.method === 'POST' && r.path.endsWith('/hardwareOathDevices'))).toHaveLength(5);
    expect(graph.filter((r) => r.method === 'POST' && r.path.endsWith('/hardwareOathMethods'))).toHaveLength(5);
    expect(standin.activations).toHaveLength(5);
    expect(standin.devices.map((d) => [d.serialNumber, d.status]).sort()).toEqual(ledger.entries.map((e) => [e.token.serial, 'activated']).sort());
    for (const activation of standin.activations) {
      expect(activation.accepted).toBe(true);
      const entry = ledger.entries.find((e) => e.token.serial === activation.serial)!;
      const seconds = Math.floor(activation.time / 1000);
      const expected = await Promise.all([seconds, seconds - 1].map((t) => oathtool({ hexSecret: hexEncode(entry.token.secret), type: 'TOTP', time: t })));
      expect(expected).toContain(activation.code);
    }
  });
});
