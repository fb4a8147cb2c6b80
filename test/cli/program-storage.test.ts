// The ledger's folder and lock on storage that refuses writes (here: a folder the user may not
// write to; disk full and read-only are in test/provision/ledger-storage.test.ts) give the same
// clear message as every other write, not "unexpected error"; and a programmer killed between a
// token's `done` record and the export leaves seed files that the next run, or `keytap seeds
// export`, makes whole again.
import { chmodSync, chownSync, cpSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readLedger } from '../../src/provision/ledger.js';
import { seedFormat } from '../../src/seeds/index.js';
import { keytapCommand, runKeytap, runProgram, tempDir } from '../support/cli.js';

const CRASH_ENTRY = ['--import', 'tsx', join(import.meta.dirname, 'program-crash-entry.ts')];
const asRoot = process.getuid?.() === 0;

/** keytap run as the unprivileged user nobody when the tests run as root (CI), else as this user. */
function runKeytapUnprivileged(args: string[]): ReturnType<typeof runProgram> {
  const { command, args: argv } = keytapCommand(args);
  const env = { PATH: process.env.PATH, HOME: '/tmp', KEYTAP_NO_INSTANCE: '1' };
  return asRoot ? runProgram('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', command, ...argv], { env }) : runProgram(command, argv, { env });
}

function serialsIn(file: string): string[] {
  return seedFormat('pskc').read(readFileSync(file)).map((t) => t.serial).sort();
}

describe('storage the ledger cannot be written to', () => {
  it('a folder without write permission: the lock and the folder are named with "permission denied", exit 1, no bug report', async () => {
    const dir = tempDir();
    chmodSync(dir, 0o755);
    const locked = join(dir, 'locked');
    mkdirSync(locked, { mode: 0o555 });
    // The user's own folder, only not writable: one of another user's is refused before any write.
    if (asRoot) chownSync(locked, 65534, 65534);
    const program = await runKeytapUnprivileged(['program', '--virtual', join('/tmp', `keytap-nobody-${process.pid}.json`), '--yes', '--out', locked]);
    expect(program.stderr).toContain(`keytap: Cannot write ${join(locked, 'ledger.lock')}: permission denied.`);
    expect(program.stderr).not.toMatch(/unexpected error|bug in keytap/u);
    expect(program.code).toBe(1);

    const inside = await runKeytapUnprivileged(['program', '--virtual', join('/tmp', `keytap-nobody-${process.pid}.json`), '--yes', '--out', join(locked, 'seeds')]);
    expect(inside.stderr).toContain(`keytap: Cannot write ${join(locked, 'seeds')}: permission denied.`);
    expect(inside.stderr).not.toMatch(/unexpected error|does not exist/u);
    expect(inside.code).toBe(1);
  });
});

describe('killed between the done record and the export', () => {
  it('the next run rewrites the seed files first, even when it programs nothing; seeds export does the same', async () => {
    const dir = tempDir();
    const out = join(dir, 'seeds');
    const first = await runKeytap(['program', '--virtual', join(dir, 'A.json'), '--yes', '--formats', 'pskc', '--out', out]);
    expect(first.code).toBe(0);
    const killed = await runProgram(process.execPath, [...CRASH_ENTRY, 'after-ledger-done@1', 'program', '--virtual', join(dir, 'B.json'), '--yes', '--formats', 'pskc', '--out', out]);
    expect(killed.code).toBeNull();
    const done = (await readLedger(out)).entries.filter((e) => e.state === 'done').map((e) => e.token.serial).sort();
    expect(done).toHaveLength(2);
    // The gap the README describes: the second token is verified and in the ledger, not yet in the file.
    const file = join(out, 'tseeds.pskcxml');
    expect(serialsIn(file)).toHaveLength(1);
    const copy = join(dir, 'copy');
    cpSync(out, copy, { recursive: true });

    // A run that fails before it touches a key (no such key) still repairs the files first.
    const next = await runKeytap(['program', '--device', 'no-such-key', '--yes', '--formats', 'pskc', '--out', out]);
    expect(next.code).toBe(3);
    expect(next.stderr).toMatch(/Rewrote tseeds\.pskcxml from the ledger: an earlier run stopped before writing its verified token\(s\) there\./u);
    expect(serialsIn(file)).toEqual(done);

    // seeds export into the ledger's own folder rewrites the file without --force: it holds only ledger tokens.
    const exported = await runKeytap(['seeds', 'export', '--ledger', copy, '--format', 'pskc']);
    expect(exported.stderr).toBe('');
    expect(exported.code).toBe(0);
    expect(serialsIn(join(copy, 'tseeds.pskcxml'))).toEqual(done);
  });
});
