// `keytap program --batch --entra` over two virtual keys: each token is created, assigned and
// activated in the Graph stand-in while its key is inserted, with a code read from the key.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hexEncode } from '../../src/otp/encoding.js';
import { readLedger } from '../../src/provision/ledger.js';
import { oathtool, runKeytap, tempDir } from '../support/cli.js';
import { Programmer, keysWithGraphPerTest } from '../provision/support.js';

const perTest = keysWithGraphPerTest();

describe('keytap program --batch --entra', () => {
  it('creates, assigns and activates each key\'s token in Entra ID with a code read from the key', async () => {
    const { keys, standin } = perTest.create();
    standin.addUser('alice@contoso.example');
    await standin.start();
    const out = join(tempDir(), 'seeds');
    const env = { ...keys.env, ...standin.clientEnv() };
    const programmer = new Programmer(['program', '--batch', '--yes', '--entra', '--upn', 'alice@contoso.example', '--formats', 'pskc', '--out', out], env);
    await programmer.waitFor(/Insert key 1/u);
    // Signed in before the first key.
    expect(standin.requests.some((r) => r.path.endsWith('/oauth2/v2.0/token'))).toBe(true);
    expect(standin.graphRequests()).toEqual([]);

    for (const [i, name] of ['A', 'B'].entries()) {
      await keys.plug(name);
      await programmer.waitFor(/Remove virtual key [AB]\.json/u, i + 1);
      await keys.unplug(name);
      await programmer.waitFor(/Insert key \d/u, i + 2);
    }
    programmer.child.kill('SIGINT');
    const { code } = await programmer.exited;
    expect(programmer.stderr).not.toMatch(/error/iu);
    expect(code).toBe(0);
    expect(programmer.stdout.match(/KT\d{8} alice@contoso\.example: activated \(this run: created, assigned, activated\)/gu)).toHaveLength(2);

    const graph = standin.graphRequests();
    expect(graph.filter((r) => r.method === 'POST' && r.path.endsWith('/hardwareOathDevices'))).toHaveLength(2);
    expect(graph.filter((r) => r.method === 'POST' && r.path.endsWith('/hardwareOathMethods'))).toHaveLength(2);
    expect(standin.activations).toHaveLength(2);
    expect(standin.activations.every((a) => a.accepted)).toBe(true);
    expect(standin.devices.map((d) => d.status)).toEqual(['activated', 'activated']);

    // The codes came from the keys: oathtool computes the same from each ledger seed at the time
    // the stand-in received it (or a second before, across a step boundary).
    const ledger = await readLedger(out);
    expect(ledger.entries.map((e) => e.state)).toEqual(['done', 'done']);
    for (const activation of standin.activations) {
      const entry = ledger.entries.find((e) => e.token.serial === activation.serial)!;
      const seconds = Math.floor(activation.time / 1000);
      const expected = await Promise.all([seconds, seconds - 1].map((t) => oathtool({ hexSecret: hexEncode(entry.token.secret), type: 'TOTP', time: t })));
      expect(expected).toContain(activation.code);
    }
  });

  it('a token Entra ID refuses is reported once, named in the summary with the command that enrolls it later, and the exit code says so', async () => {
    const { keys, standin } = perTest.create();
    // dan is not a user of the tenant.
    standin.addUser('ann@contoso.example');
    await standin.start();
    const dir = tempDir();
    const out = join(dir, 'seeds');
    const users = join(dir, 'users.txt');
    writeFileSync(users, 'ann@contoso.example\ndan@contoso.example\n');
    const env = { ...keys.env, ...standin.clientEnv() };
    const programmer = new Programmer(['program', '--batch', '--yes', '--entra', '--users', users, '--formats', 'pskc', '--out', out], env);
    for (const [i, name] of ['A', 'B'].entries()) {
      await programmer.waitFor(new RegExp(`Insert key ${i + 1} `, 'u'));
      await keys.plug(name);
      await programmer.waitFor(new RegExp(`Remove virtual key ${name}\\.json`, 'u'));
      await keys.unplug(name);
    }
    const { code } = await programmer.exited;
    const ledger = await readLedger(out);
    const dan = ledger.entries.find((e) => e.token.upn === 'dan@contoso.example')!;
    expect(dan.state).toBe('done');
    const output = `${programmer.stdout}\n${programmer.stderr}`;
    // Once, not as an Entra line and again as the key's follow-up.
    expect(output.match(/dan@contoso\.example was not found in the tenant/gu)).toHaveLength(1);
    expect(programmer.stdout).toMatch(/Summary: 2 programmed, 0 failed, 0 skipped\./u);
    expect(programmer.stdout).toContain(`Not enrolled in Entra ID (1): serial ${dan.token.serial}; "keytap entra push --ledger ${out}" enrolls`);
    expect(code).toBe(1);

    // Fixed (the user now exists), entra push enrolls it; ann's token is matched, not created again.
    standin.addUser('dan@contoso.example');
    const push = await runKeytap(['entra', 'push', '--ledger', out], { env });
    expect(push.code).toBe(0);
    expect(standin.devices.map((d) => [d.serialNumber, d.status]).sort()).toEqual(ledger.entries.map((e) => [e.token.serial, 'activated']).sort());
  });
});
