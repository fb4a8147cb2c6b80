// Storage errors on the ledger's paths (its folder, its lock, the ledger itself) come out in the
// same words as every other write keytap makes (fsError in src/util/atomic-file.ts): a disk that
// is full, a read-only file system, no permission. The file system's answer is injected at
// node:fs/promises, the seam the ledger writes through; a folder that really cannot be written is
// in test/cli/program-storage.test.ts. A ledger header cannot make keytap derive with other scrypt
// parameters than keytap writes.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { basename, join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { KeytapError } from '../../src/errors.js';
import { Ledger, StorageError } from '../../src/provision/ledger.js';
import { DEFAULT_PARAMETERS, buildToken } from '../../src/provision/token.js';
import { tempDir } from '../support/cli.js';
import { rejection } from '../support/rejection.js';

vi.mock('node:fs/promises', async (original) => {
  const actual = await original<typeof fsp>();
  return { ...actual, open: vi.fn(actual.open), mkdir: vi.fn(actual.mkdir) };
});

const SECRET = Uint8Array.from(Buffer.from('12345678901234567890'));
const KEY = { id: 'virtual:test', name: 'virtual key test' };

function errno(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: injected`), { code });
}

const actual = await vi.importActual<typeof fsp>('node:fs/promises');

/** Makes `fn` (open or mkdir) fail with `code` for paths named `name`. */
function failFor(fn: 'open' | 'mkdir', name: string, code: string): void {
  const real = actual[fn] as (...args: unknown[]) => unknown;
  vi.mocked(fsp[fn]).mockImplementation(((path: unknown, ...rest: unknown[]) => {
    if (basename(String(path)) === name) return Promise.reject(errno(code));
    return real(path, ...rest);
  }) as never);
}

afterEach(() => {
  vi.mocked(fsp.open).mockImplementation(actual.open);
  vi.mocked(fsp.mkdir).mockImplementation(actual.mkdir);
});

const WORDS: [string, string][] = [
  ['ENOSPC', 'the disk is full'],
  ['EROFS', 'the file system is read-only'],
  ['EACCES', 'permission denied'],
  ['EPERM', 'permission denied'],
];

describe('storage errors on the ledger paths', () => {
  it.each(WORDS)('taking the lock: %s is "%s", a StorageError naming the lock file; nothing is left behind', async (code, words) => {
    const dir = tempDir();
    failFor('open', 'ledger.lock', code);
    const error = await rejection(Ledger.open(dir));
    expect(error).toBeInstanceOf(StorageError);
    expect(error.code).toBe('DEVICE_ERROR');
    expect(error.message).toBe(`Cannot write ${join(dir, 'ledger.lock')}: ${words}.`);
    expect(readdirSync(dir)).toEqual([]);
  });

  it.each(WORDS)('creating the folder: %s is "%s"', async (code, words) => {
    const dir = join(tempDir(), 'seeds');
    failFor('mkdir', 'seeds', code);
    const error = await rejection(Ledger.open(dir));
    expect(error).toBeInstanceOf(StorageError);
    expect(error.message).toBe(`Cannot write ${dir}: ${words}.`);
  });

  it.each(WORDS)('opening the ledger for appending: %s is "%s", and the lock is released', async (code, words) => {
    const dir = tempDir();
    await (await Ledger.open(dir)).close();
    failFor('open', 'ledger.jsonl', code);
    const error = await rejection(Ledger.open(dir));
    expect(error).toBeInstanceOf(StorageError);
    expect(error.message).toBe(`Cannot write ${join(dir, 'ledger.jsonl')}: ${words}.`);
    expect(readdirSync(dir).sort()).toEqual(['ledger.jsonl']);
  });

  it('appending a record when the disk is full: the same words, naming the ledger', async () => {
    const dir = tempDir();
    const ledger = await Ledger.open(dir);
    const handle = (ledger as unknown as { handle: fsp.FileHandle }).handle;
    vi.spyOn(handle, 'write').mockRejectedValue(errno('ENOSPC'));
    const error = await rejection(ledger.appendPending(buildToken(DEFAULT_PARAMETERS, SECRET, 'KT00000001'), KEY, 'KT00000001'));
    expect(error).toBeInstanceOf(StorageError);
    expect(error.message).toBe(`Cannot write ${join(dir, 'ledger.jsonl')}: the disk is full.`);
    await ledger.close();
  });
});

describe('an encrypted ledger header', () => {
  it('with scrypt parameters keytap does not write is refused before deriving', async () => {
    const dir = tempDir();
    await (await Ledger.open(dir, { passphrase: 'correct horse' })).close();
    const path = join(dir, 'ledger.jsonl');
    const [headerLine, ...rest] = readFileSync(path, 'utf8').split('\n');
    const header = JSON.parse(headerLine!) as { encryption: { p: number } };
    // p = 2^20 would take hours of scrypt at N = 2^15, r = 8.
    header.encryption.p = 2 ** 20;
    writeFileSync(path, [JSON.stringify(header), ...rest].join('\n'));
    const started = process.hrtime.bigint();
    const error = await rejection(Ledger.open(dir, { passphrase: 'correct horse' }));
    expect(error).toBeInstanceOf(KeytapError);
    expect(error.code).toBe('BAD_INPUT');
    expect(error.message).toMatch(/scrypt parameters N=32768, r=8, p=1048576 are not the ones keytap writes \(N=32768, r=8, p=1\)/u);
    // A guard against a hang, not a timing assertion: hours would never get here.
    expect(process.hrtime.bigint() - started).toBeLessThan(60_000_000_000n);
  });
});
