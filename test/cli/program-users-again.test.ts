// `--again` can be resumed: each ledger entry records the batch run that wrote it, so an
// interrupted `--again` run over the same users file, started again with `--again`, goes on with
// the users that run had not reached, instead of giving everyone another token from the top.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readLedger } from '../../src/provision/ledger.js';
import { tempDir } from '../support/cli.js';
import { Programmer, VirtualKeys, serveKey } from '../provision/support.js';

const UPNS = ['ann@contoso.com', 'ben@contoso.com', 'cat@contoso.com', 'dan@contoso.com'];

let keys: VirtualKeys | undefined;
afterEach(async () => {
  await keys?.unplugAll();
  keys = undefined;
});

describe('keytap program --batch --users --again', () => {
  it('killed after key 2 of 4 and run again with --again: resumed, each user has exactly two tokens', async () => {
    keys = new VirtualKeys();
    const dir = tempDir();
    const out = join(dir, 'seeds');
    const users = join(dir, 'users.txt');
    writeFileSync(users, `${UPNS.join('\n')}\n`);
    const base = ['program', '--batch', '--yes', '--users', users, '--formats', 'pskc', '--out', out];

    const first = new Programmer(base, keys.env);
    for (const [i, name] of ['k1', 'k2', 'k3', 'k4'].entries()) await serveKey(first, keys, name, i + 1);
    expect((await first.exited).code).toBe(0);

    const again = new Programmer([...base, '--again'], keys.env);
    await serveKey(again, keys, 'a1', 1);
    await serveKey(again, keys, 'a2', 2);
    await again.waitFor(/Insert key 3 /u);
    again.child.kill('SIGKILL');
    await again.exited;

    const resumed = new Programmer([...base, '--again'], keys.env);
    await resumed.waitFor(/Resuming the --again run over .* 2 user\(s\) got a token from it and get no key: ann@contoso\.com \(line 1\), ben@contoso\.com \(line 2\)/u);
    await serveKey(resumed, keys, 'a3', 1);
    await serveKey(resumed, keys, 'a4', 2);
    expect((await resumed.exited).code).toBe(0);

    const ledger = await readLedger(out);
    const count = (upn: string): number => ledger.entries.filter((e) => e.token.upn === upn && e.state === 'done').length;
    expect(UPNS.map(count)).toEqual([2, 2, 2, 2]);
    // The two --again invocations are one run; the first batch is another.
    const runs = new Set(ledger.entries.map((e) => e.run?.id));
    expect(runs.size).toBe(2);

    // That run is complete: started again it has nothing to do; --new-run would start another.
    const done = new Programmer([...base, '--again'], keys.env);
    expect((await done.exited).code).toBe(0);
    expect(done.stdout).toMatch(/Every user in .* has a token in the ledger from the --again run it resumes \(--new-run starts another\)/u);
  });
});
