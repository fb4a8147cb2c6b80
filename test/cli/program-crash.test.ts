// Crash safety: the batch programmer is killed with SIGKILL at every step of programming its
// second key (after the ledger append, after the put, after verification, after the ledger's
// done record, in the middle of an export). Afterwards every seed that is on a virtual key is in
// the ledger, and `keytap seeds export` writes it (pending ones with --include-pending).
// The programmer is the real CLI run from source by program-crash-entry.ts, which installs the hook that
// kills it; production code has no such switch.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PROGRAM_STEPS } from '../../src/provision/steps.js';
import { readLedger } from '../../src/provision/ledger.js';
import { seedFormat } from '../../src/seeds/index.js';
import { runKeytap, tempDir } from '../support/cli.js';
import { Programmer, VirtualKeys, entryForStoredKey } from '../provision/support.js';

const CRASH_ENTRY = ['--import', 'tsx', join(import.meta.dirname, 'program-crash-entry.ts')];

let keys: VirtualKeys | undefined;
afterEach(async () => {
  await keys?.unplugAll();
  keys = undefined;
});

describe('SIGKILL at every step of a batch', () => {
  it.each(PROGRAM_STEPS)('killed %s of key 2: every seed on a key is in the ledger and exports', async (point) => {
    keys = new VirtualKeys();
    const out = join(tempDir(), 'seeds');
    const programmer = new Programmer(['program', '--batch', '--yes', '--formats', 'pskc', '--out', out], keys.env, [...CRASH_ENTRY, `${point}@2`]);
    await programmer.waitFor(/Insert key 1/u);
    await keys.plug('A');
    await programmer.waitFor(/Remove virtual key A\.json/u);
    await keys.unplug('A');
    await programmer.waitFor(/Insert key 2/u);
    await keys.plug('B', ['--dialect', 'nitrokey3', '--touch', 'auto', '--touch-delay', '0']);
    const { signal } = await programmer.exited;
    expect(signal).toBe('SIGKILL');
    await keys.unplugAll();

    const ledger = await readLedger(out);
    expect(ledger.problems).toEqual([]);
    const onKeys = [...keys.stored('A').values(), ...keys.stored('B').values()];
    const expectedOnB = point === 'after-ledger-append' ? 0 : 1;
    expect(keys.stored('B').size).toBe(expectedOnB);
    const entries = onKeys.map((storedKey) => entryForStoredKey(ledger.entries, storedKey));
    // The promise: nothing on a key that the ledger does not have.
    expect(entries.every((e) => e !== undefined)).toBe(true);

    const exportDir = join(tempDir(), 'export');
    const exported = await runKeytap(['seeds', 'export', '--ledger', out, '--format', 'pskc', '--out', exportDir, '--include-pending']);
    expect(exported.code).toBe(0);
    const serials = seedFormat('pskc').read(readFileSync(join(exportDir, 'tseeds.pskcxml'))).map((t) => t.serial);
    for (const entry of entries) expect(serials).toContain(entry!.token.serial);
    const stillPending = ['after-ledger-append', 'after-put', 'after-verify'].includes(point);
    if (stillPending) expect(exported.stderr).toMatch(/Including serial KT\d{8} \(pending, .*\): it was never verified/u);

    // Without --include-pending only verified tokens, and the rest is named.
    const doneOnly = await runKeytap(['seeds', 'export', '--ledger', out, '--format', 'pskc', '--out', join(tempDir(), 'done')]);
    expect(doneOnly.code).toBe(0);
    if (stillPending) expect(doneOnly.stderr).toMatch(/Left out 1 token\(s\) that may be on a key but were never verified/u);

    // The next run into the folder cleans up after the killed one: lock, temp files.
    const files = readdirSync(out);
    if (point === 'mid-export') expect(files.some((f) => f.endsWith('.tmp'))).toBe(true);
    const next = await runKeytap(['program', '--virtual', keys.file('C'), '--yes', '--formats', 'pskc', '--out', out], { env: keys.env });
    expect(next.code).toBe(0);
    if (stillPending) expect(next.stderr).toMatch(/1 token\(s\) that may be on a key but were never verified/u);
    expect(readdirSync(out).filter((f) => f.endsWith('.tmp') || f === 'ledger.lock')).toEqual([]);
    // The rewritten file has every verified token, including key 2's when it got as far as `done`.
    const done = (await readLedger(out)).entries.filter((e) => e.state === 'done').map((e) => e.token.serial);
    expect(seedFormat('pskc').read(readFileSync(join(out, 'tseeds.pskcxml'))).map((t) => t.serial).sort()).toEqual(done.sort());
    expect(done).toHaveLength(point === 'after-ledger-done' || point === 'mid-export' ? 3 : 2);
  });
});
