/**
 * Input files that are missing or cannot be read — a virtual key's file, a seed file, a ledger —
 * end every command with exit code 6 and the system's reason in words; `--virtual FILE` creates
 * FILE only for a command that writes to the key, or when --demo / --dialect ask for it.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RunResult } from '../support/cli.js';
import { runKeytap, tempDir } from '../support/cli.js';

const B32 = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
const INPUT_FILE = 6;

function keytap(args: string[]): Promise<RunResult> {
  return runKeytap(args, { env: { KEYTAP_NO_INSTANCE: '1' } });
}

/** No errno names, no stack: the reason in words. */
function expectWords(stderr: string): void {
  expect(stderr).not.toMatch(/\bE[A-Z]{3,}\b/u);
  expect(stderr).not.toMatch(/\n\s+at /u);
}

describe('--virtual FILE creates the key only when asked to', () => {
  it.each([
    ['list', []],
    ['code', ['Demo']],
    ['delete', ['Demo']],
    ['reset', ['--force']],
  ])('%s with a missing FILE: "there is no virtual key", exit 6, nothing created', async (command, rest) => {
    const dir = tempDir();
    const file = join(dir, 'typo', 'key.json');
    const result = await keytap([command, ...rest, '--virtual', file]);
    expect(result.code).toBe(INPUT_FILE);
    expect(result.stderr).toContain(`keytap: There is no virtual key at ${file}.`);
    // The hint says how to make one, with this command's own options.
    expect(result.stderr).toMatch(/--demo|keytap add --virtual/u);
    expectWords(result.stderr);
    expect(existsSync(join(dir, 'typo'))).toBe(false);
  });

  it('the README\'s first command (code with --demo) creates the key, folders included, and prints a code', async () => {
    const file = join(tempDir(), 'new', 'demo-key.json');
    const result = await keytap(['code', 'Demo', '--virtual', file, '--demo']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^\d{6}\n$/u);
    expect(existsSync(file)).toBe(true);
  });

  it('--dialect asks for creation too; add and password create a missing key', async () => {
    const dir = tempDir();
    const listed = await keytap(['list', '--virtual', join(dir, 'a.json'), '--dialect', 'nitrokey3']);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/holds no accounts/u);
    const added = await keytap(['add', '--virtual', join(dir, 'b', 'key.json'), '--account', 'alice', '--secret', B32]);
    expect(added.code).toBe(0);
    expect(existsSync(join(dir, 'b', 'key.json'))).toBe(true);
    const password = await keytap(['password', '--virtual', join(dir, 'c.json'), '--new-password', 'pw']);
    expect(password.code).toBe(0);
    expect(existsSync(join(dir, 'c.json'))).toBe(true);
  });

  it('a FILE that is a folder: exit 6, "it is a folder"', async () => {
    const dir = tempDir();
    const result = await keytap(['list', '--virtual', dir]);
    expect(result.code).toBe(INPUT_FILE);
    expect(result.stderr).toContain(`${dir}: it is a folder.`);
    expectWords(result.stderr);
  });
});

describe('missing and unreadable input files exit 6 in every command', () => {
  it('seeds check on a mistyped path: exit 6 (not 4, which means "problems found"), "no such file"', async () => {
    const file = join(tempDir(), 'tseeds.cvs');
    const result = await keytap(['seeds', 'check', file]);
    expect(result.code).toBe(INPUT_FILE);
    expect(result.stderr).toContain(`Cannot read ${file}: no such file.`);
    expect(result.stdout).toBe('');
    expectWords(result.stderr);
  });

  it('seeds codes on a folder: exit 6, "it is a folder"', async () => {
    const dir = tempDir();
    const result = await keytap(['seeds', 'codes', dir]);
    expect(result.code).toBe(INPUT_FILE);
    expect(result.stderr).toContain(`Cannot read ${dir}: it is a folder.`);
    expectWords(result.stderr);
  });

  it('program --from a missing seed file: exit 6 before the key is touched', async () => {
    const dir = tempDir();
    const file = join(dir, 'missing.pskcxml');
    const result = await keytap(['program', '--yes', '--from', file, '--virtual', join(dir, 'key.json'), '--out', join(dir, 'out')]);
    expect(result.code).toBe(INPUT_FILE);
    expect(result.stderr).toContain(`${file}: no such file.`);
    expectWords(result.stderr);
  });

  it('seeds export --ledger a folder without a ledger, or a path that is not a folder: exit 6', async () => {
    const dir = tempDir();
    const none = await keytap(['seeds', 'export', '--ledger', join(dir, 'nothing-here'), '--format', 'pskc']);
    expect(none.code).toBe(INPUT_FILE);
    expect(none.stderr).toContain('There is no ledger in');
    expectWords(none.stderr);
    mkdirSync(join(dir, 'empty'));
    const empty = await keytap(['seeds', 'export', '--ledger', join(dir, 'empty'), '--format', 'pskc']);
    expect(empty.code).toBe(INPUT_FILE);
    const notFolder = await keytap(['seeds', 'export', '--ledger', import.meta.filename, '--format', 'pskc']);
    expect(notFolder.code).toBe(INPUT_FILE);
    expect(notFolder.stderr).toContain('a part of the path is not a folder');
    expectWords(notFolder.stderr);
  });
});
