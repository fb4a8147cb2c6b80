// The batch flow end to end: `keytap program --batch` as a child process, virtual keys plugged in
// and out with `keytap virtual start|stop` — one programmed (Nitrokey 3), one skipped (the name
// is taken), one failed (never touched), one more programmed, then Ctrl+C between keys.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { hexEncode } from '../../src/otp/encoding.js';
import { readLedger } from '../../src/provision/ledger.js';
import { seedFormat } from '../../src/seeds/index.js';
import { oathtool, tempDir } from '../support/cli.js';
import { Programmer, VirtualKeys, entryForStoredKey } from '../provision/support.js';

let keys: VirtualKeys | undefined;
afterEach(async () => {
  await keys?.unplugAll();
  keys = undefined;
});

describe('keytap program --batch over keytap virtual start|stop', () => {
  it('programmed, skipped, failed, programmed; Ctrl+C between keys ends with the summary', async () => {
    keys = new VirtualKeys();
    const out = join(tempDir(), 'seeds');
    // Key B already has the account: it must be skipped with nothing written.
    const add = await keys.keytap(['add', '--virtual', keys.file('B'), '--account', 'shared', '--secret', '-'], 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ');
    expect(add.code).toBe(0);
    // A key plugged in before the batch starts is left alone.
    await keys.plug('present');
    const programmer = new Programmer(['program', '--batch', '--yes', '--touch', '--account', 'shared', '--upn', 'alice@contoso.com', '--formats', 'entra,pskc', '--out', out], keys.env);
    await programmer.waitFor(/Insert key 1/u);
    expect(programmer.stderr).toMatch(/Leaving alone the key\(s\) already plugged in: virtual key present\.json/u);

    await keys.plug('A', ['--dialect', 'nitrokey3', '--touch', 'auto', '--touch-delay', '0']);
    await programmer.waitFor(/Remove virtual key A\.json/u);
    expect(programmer.stdout).toMatch(/Key 1: programmed serial KT\d{8} as "shared" on virtual key A\.json; verified\./u);
    await keys.unplug('A');

    await programmer.waitFor(/Insert key 2/u);
    await keys.plug('B');
    await programmer.waitFor(/Remove virtual key B\.json/u);
    expect(programmer.stdout).toMatch(/Key 2: skipped \(nothing written\): virtual key B\.json already has an account "shared"/u);
    await keys.unplug('B');

    await programmer.waitFor(/Insert key 3/u);
    await keys.plug('C', ['--touch', 'never', '--touch-timeout', '200']);
    await programmer.waitFor(/Remove virtual key C\.json/u);
    expect(programmer.stdout).toMatch(/Key 3: failed \(removed from the key again\): Verification failed: The key was not touched in time/u);
    await keys.unplug('C');

    await programmer.waitFor(/Insert key 4/u);
    await keys.plug('D');
    await programmer.waitFor(/Remove virtual key D\.json/u);
    programmer.child.kill('SIGINT');
    const { code } = await programmer.exited;
    expect(programmer.stdout).toMatch(/Summary: 2 programmed, 1 failed, 1 skipped\./u);
    expect(code).toBe(1);
    await keys.unplugAll();

    // What is on the keys is exactly what the ledger and the seed files say.
    expect([...keys.stored('present').keys()]).toEqual([]);
    expect([...keys.stored('C').keys()]).toEqual([]);
    expect([...keys.stored('B').keys()]).toEqual(['shared']);
    const ledger = await readLedger(out);
    expect(ledger.entries.map((e) => e.state)).toEqual(['done', 'failed', 'done']);
    const tokens = seedFormat('entra').read(readFileSync(join(out, 'tseeds.csv')));
    expect(tokens).toHaveLength(2);
    expect(new Set(tokens.map((t) => t.serial)).size).toBe(2);
    for (const name of ['A', 'D']) {
      const entry = entryForStoredKey(ledger.entries, keys.stored(name).get('shared')!);
      expect(entry?.state).toBe('done');
      const token = tokens.find((t) => t.serial === entry!.token.serial)!;
      const time = Math.floor(Date.now() / 1000);
      const ours = await keys.keytap(['code', '--virtual', keys.file(name), 'shared']);
      expect(ours.code).toBe(0);
      const theirs = await Promise.all([time, time + 2].map((t) => oathtool({ hexSecret: hexEncode(token.secret), type: 'TOTP', time: t })));
      expect(theirs).toContain(ours.stdout.trim());
    }
  });
});
