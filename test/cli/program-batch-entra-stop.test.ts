// `keytap program --batch --entra` beyond the happy path: a problem no later key can get past (the
// hardware OATH policy disabled) stops the enrollment, not the batch; and the activation code of a
// touch credential is read from the key (the key waits for a touch before Graph gets the code).
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hexEncode } from '../../src/otp/encoding.js';
import { readLedger } from '../../src/provision/ledger.js';
import { oathtool, tempDir } from '../support/cli.js';
import { Programmer, keysWithGraphPerTest } from '../provision/support.js';

const perTest = keysWithGraphPerTest();

describe('keytap program --batch --entra', () => {
  it('the policy disabled stops the enrollment for the rest of the batch, which goes on programming keys', async () => {
    const { keys, standin } = perTest.create();
    standin.addUser('alice@contoso.example');
    standin.faults.policyDisabled = true;
    await standin.start();
    const out = join(tempDir(), 'seeds');
    const programmer = new Programmer(['program', '--batch', '--yes', '--entra', '--count', '2', '--upn', 'alice@contoso.example', '--formats', 'pskc', '--out', out], { ...keys.env, ...standin.clientEnv() });
    await programmer.waitFor(/Insert key 1 /u);
    await keys.plug('A');
    await programmer.waitFor(/Remove virtual key A\.json/u);
    const sentForKey1 = standin.graphRequests().length;
    await keys.unplug('A');
    await programmer.waitFor(/Insert key 2 /u);
    await keys.plug('B');
    const { code } = await programmer.exited;
    expect(code).toBe(1);
    expect(programmer.stdout).toMatch(/Key 1: programmed serial KT\d{8}, but not enrolled in Entra ID: .*disabled.* Entra ID enrollment is off for the rest of this batch; the keys are still programmed\./u);
    expect(programmer.stdout).toMatch(/\{"state":"enabled"\}/u);
    expect(programmer.stdout).toMatch(/Key 2: programmed serial KT\d{8}, but not enrolled in Entra ID: nothing was sent: Entra ID enrollment stopped at an earlier key\./u);
    expect(programmer.stdout).toMatch(/Not enrolled in Entra ID \(2\): serials KT\d{8}, KT\d{8}; "keytap entra push --ledger /u);
    // Key 2 sent nothing to Graph; both keys are programmed and verified.
    expect(sentForKey1).toBeGreaterThan(0);
    expect(standin.graphRequests()).toHaveLength(sentForKey1);
    expect(standin.devices).toEqual([]);
    expect((await readLedger(out)).entries.map((e) => e.state)).toEqual(['done', 'done']);
  });

  it('a touch credential: the key asks for a touch before the activation code goes to Graph, and that code is the key\'s', async () => {
    const { keys, standin } = perTest.create();
    standin.addUser('alice@contoso.example');
    await standin.start();
    const out = join(tempDir(), 'seeds');
    const programmer = new Programmer(['program', '--batch', '--yes', '--entra', '--count', '1', '--touch', '--upn', 'alice@contoso.example', '--formats', 'pskc', '--out', out], { ...keys.env, ...standin.clientEnv() });
    await programmer.waitFor(/Insert key 1 /u);
    // A key that waits for "keytap virtual touch": a code computed from the seed would not wait.
    await keys.plug('T', ['--touch', 'manual']);
    await programmer.waitFor(/Touch your key to verify the token/u);
    expect((await keys.keytap(['virtual', 'touch', keys.file('T')])).code).toBe(0);
    await programmer.waitFor(/Touch virtual key T\.json to activate token KT\d{8} in Entra ID/u);
    // Nothing was activated while the key waited for its touch.
    expect(standin.activations).toEqual([]);
    const touchedAt = Date.now();
    expect((await keys.keytap(['virtual', 'touch', keys.file('T')])).code).toBe(0);
    expect((await programmer.exited).code).toBe(0);
    expect(programmer.stdout).toMatch(/KT\d{8} alice@contoso\.example: activated \(this run: created, assigned, activated\)/u);
    const [activation] = standin.activations;
    expect(activation?.accepted).toBe(true);
    expect(activation!.time).toBeGreaterThanOrEqual(touchedAt);
    const [entry] = (await readLedger(out)).entries;
    expect(entry!.token.touch).toBe(true);
    const seconds = Math.floor(activation!.time / 1000);
    const expected = await Promise.all([seconds, seconds - 1].map((t) => oathtool({ hexSecret: hexEncode(entry!.token.secret), type: 'TOTP', time: t })));
    expect(expected).toContain(activation!.code);
  });
});
