// writeFileAtomic and the enrollment ledger: durability rules, torn lines, encryption, locking,
// and which ledger entries a seed file gets.
import { execFile, spawn } from 'node:child_process';
import { appendFileSync, chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { isKeytapError } from '../../src/errors.js';
import { Ledger, ledgerTokens, readLedger } from '../../src/provision/ledger.js';
import type { KeyIdentity } from '../../src/provision/ledger.js';
import { DEFAULT_PARAMETERS, buildToken } from '../../src/provision/token.js';
import { removeStaleTempFiles, writeFileAtomic } from '../../src/util/atomic-file.js';
import { tempDir } from '../support/cli.js';

const KEY: KeyIdentity = { id: 'virtual:test', name: 'virtual key test', dialect: 'yubikey' };
const SECRET = Uint8Array.from(Buffer.from('12345678901234567890'));

async function rejection(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    return isKeytapError(error) ? `${error.code}: ${error.message}` : String(error);
  }
  return 'resolved';
}

/** `rejection(writeFileAtomic(path, 'x'))` run as the unprivileged user nobody (65534), for a root test run. */
/**
 * Runs writeFileAtomic as the user "nobody" and returns what it threw. The module is bundled into
 * a world-readable temp folder first, so the child needs nothing from the checkout, wherever CI
 * cloned it.
 */
async function rejectionAsNobody(path: string): Promise<string> {
  const code = [
    'const { writeFileAtomic } = await import(process.env.KT_MODULE);',
    'try { await writeFileAtomic(process.env.KT_PATH, "x"); console.log("resolved"); }',
    'catch (e) { console.log(e.code ? `${e.code}: ${e.message}` : String(e)); }',
  ].join('\n');
  const outdir = mkdtempSync(join(tmpdir(), 'keytap-nobody-'));
  chmodSync(outdir, 0o755);
  const module = join(outdir, 'atomic-file.mjs');
  await build({
    entryPoints: [join(import.meta.dirname, '..', '..', 'src', 'util', 'atomic-file.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    outfile: module,
    logLevel: 'silent',
  });
  chmodSync(module, 0o644);
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', code], { uid: 65534, gid: 65534, cwd: outdir, env: { PATH: process.env.PATH, KT_MODULE: module, KT_PATH: path } }, (error, stdout, stderr) =>
      error ? reject(new Error(`the child failed: ${stderr}`)) : resolve(stdout.trim()),
    );
  });
}

describe('writeFileAtomic', () => {
  it('writes mode 0600, never replaces without overwrite, replaces with it, and leaves no temp file', async () => {
    const dir = tempDir();
    const path = join(dir, 'f.txt');
    await writeFileAtomic(path, 'one');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(await rejection(writeFileAtomic(path, 'two'))).toMatch(/EXISTS: .*already exists/u);
    expect(readFileSync(path, 'utf8')).toBe('one');
    await writeFileAtomic(path, 'three', { overwrite: true, mode: 0o640 });
    expect(readFileSync(path, 'utf8')).toBe('three');
    expect(statSync(path).mode & 0o777).toBe(0o640);
    expect(readdirSync(dir)).toEqual(['f.txt']);
  });

  it('a failure before the commit leaves the old file and no temp file', async () => {
    const dir = tempDir();
    const path = join(dir, 'f.txt');
    writeFileSync(path, 'old');
    const failing = writeFileAtomic(path, 'new', {
      overwrite: true,
      beforeCommit: () => {
        throw new Error('disk on fire');
      },
    });
    expect(await rejection(failing)).toMatch(/Cannot write .*disk on fire/u);
    expect(readFileSync(path, 'utf8')).toBe('old');
    expect(readdirSync(dir)).toEqual(['f.txt']);
  });

  it('a folder it cannot write to is a clear error and leaves nothing', async () => {
    const dir = tempDir();
    const locked = join(dir, 'locked');
    mkdirSync(locked, { mode: 0o500 });
    // Root writes anywhere (CI runs as root): there the write is tried by "nobody" in a child process.
    const asRoot = process.getuid?.() === 0;
    if (asRoot) chmodSync(dir, 0o755);
    const message = asRoot ? await rejectionAsNobody(join(locked, 'f')) : await rejection(writeFileAtomic(join(locked, 'f'), 'x'));
    expect(message).toMatch(/^DEVICE_ERROR: Cannot write .*: permission denied\.$/u);
    chmodSync(locked, 0o700);
    expect(readdirSync(locked)).toEqual([]);
  });

  it('removes temp files of dead writers only', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, '.tseeds.csv.999999.0badcafe.tmp'), 'half');
    writeFileSync(join(dir, `.tseeds.csv.${process.pid}.0badcafe.tmp`), 'mine, in flight');
    writeFileSync(join(dir, 'tseeds.csv'), 'keep');
    expect(await removeStaleTempFiles(dir)).toEqual(['.tseeds.csv.999999.0badcafe.tmp']);
    expect(readdirSync(dir).sort()).toEqual([`.tseeds.csv.${process.pid}.0badcafe.tmp`, 'tseeds.csv'].sort());
  });
});

describe('the ledger', () => {
  it('records pending → done with the HOTP counter after verification, mode 0600, readable again', async () => {
    const dir = tempDir();
    const ledger = await Ledger.open(dir);
    const token = buildToken({ ...DEFAULT_PARAMETERS, type: 'HOTP', counter: 5, upn: 'a@b.example' }, SECRET, 'S1');
    const entry = await ledger.appendPending(token, KEY, 'a@b.example');
    // Already on disk before anything else happens.
    expect((await readLedger(dir)).entries.map((e) => e.state)).toEqual(['pending']);
    await ledger.markDone(entry, 6);
    await ledger.close();
    expect(statSync(join(dir, 'ledger.jsonl')).mode & 0o777).toBe(0o600);
    const contents = await readLedger(dir);
    expect(contents.problems).toEqual([]);
    expect(contents.entries).toHaveLength(1);
    expect(contents.entries[0]).toMatchObject({ state: 'done', counterAfter: 6, credentialId: 'a@b.example', key: KEY });
    expect(Buffer.from(contents.entries[0]!.token.secret).equals(Buffer.from(SECRET))).toBe(true);
    expect(ledgerTokens(contents.entries).tokens[0]).toMatchObject({ serial: 'S1', counter: 6 });
  });

  it('tolerates a torn last line, reports it, and appends after it on a fresh line', async () => {
    const dir = tempDir();
    const ledger = await Ledger.open(dir);
    await ledger.markDone(await ledger.appendPending(buildToken(DEFAULT_PARAMETERS, SECRET, 'S1'), KEY, 'S1'));
    await ledger.close();
    appendFileSync(join(dir, 'ledger.jsonl'), '{"record":"enroll","entry":"abc","sta');
    const torn = await readLedger(dir);
    expect(torn.entries).toHaveLength(1);
    expect(torn.problems).toEqual([{ line: 4, message: expect.stringMatching(/last line is incomplete/u) }]);
    const again = await Ledger.open(dir);
    await again.appendPending(buildToken(DEFAULT_PARAMETERS, SECRET, 'S2'), KEY, 'S2');
    await again.close();
    const after = await readLedger(dir);
    expect(after.entries.map((e) => [e.token.serial, e.state])).toEqual([
      ['S1', 'done'],
      ['S2', 'pending'],
    ]);
    expect(after.problems.map((p) => p.line)).toEqual([4]);
  });

  it('encrypted: no secret or UPN in the file; the right passphrase reads it, a wrong one or none is refused before writing', async () => {
    const dir = tempDir();
    const ledger = await Ledger.open(dir, { passphrase: 'correct horse' });
    expect(ledger.encrypted).toBe(true);
    await ledger.markDone(await ledger.appendPending(buildToken({ ...DEFAULT_PARAMETERS, upn: 'alice@contoso.com' }, SECRET, 'S1'), KEY, 'x'));
    await ledger.close();
    const raw = readFileSync(join(dir, 'ledger.jsonl'), 'utf8');
    expect(raw).not.toContain('alice');
    expect(raw).not.toContain(Buffer.from(SECRET).toString('hex'));
    expect(raw).toContain('"kdf":"scrypt"');
    expect((await readLedger(dir, { passphrase: 'correct horse' })).entries[0]!.token.upn).toBe('alice@contoso.com');
    expect(await rejection(readLedger(dir, { passphrase: 'wrong' }))).toMatch(/WRONG_PASSWORD/u);
    expect(await rejection(Ledger.open(dir, { passphrase: 'wrong' }))).toMatch(/WRONG_PASSWORD/u);
    expect(await rejection(readLedger(dir))).toMatch(/AUTH_REQUIRED: .*encrypted/u);
    expect(readFileSync(join(dir, 'ledger.jsonl'), 'utf8')).toBe(raw);
    // A tampered line is reported, not trusted.
    const lines = raw.trimEnd().split('\n');
    const sealed = JSON.parse(lines[1]!) as { ct: string };
    sealed.ct = Buffer.from(Buffer.from(sealed.ct, 'base64').map((b, i) => (i === 3 ? b ^ 1 : b))).toString('base64');
    lines[1] = JSON.stringify(sealed);
    writeFileSync(join(dir, 'ledger.jsonl'), `${lines.join('\n')}\n`);
    const tampered = await readLedger(dir, { passphrase: 'correct horse' });
    expect(tampered.problems.map((p) => p.line)).toEqual([2, 3]);
  });

  it('a plaintext ledger refuses a passphrase (no mixed files)', async () => {
    const dir = tempDir();
    await (await Ledger.open(dir)).close();
    expect(await rejection(Ledger.open(dir, { passphrase: 'p' }))).toMatch(/BAD_INPUT: .*not encrypted/u);
  });

  it('one writer at a time; a lock left by a killed programmer is taken over', async () => {
    const dir = tempDir();
    const first = await Ledger.open(dir);
    expect(await rejection(Ledger.open(dir))).toMatch(/BUSY/u);
    await first.close();
    const child = spawn(process.execPath, ['-e', '']);
    await new Promise((resolve) => child.on('exit', resolve));
    writeFileSync(join(dir, 'ledger.lock'), String(child.pid));
    await (await Ledger.open(dir)).close();
  });

  it('exports: done always; pending and failed-but-maybe-on-the-key only on request; the latest entry of a serial wins', async () => {
    const dir = tempDir();
    const ledger = await Ledger.open(dir);
    const t = (serial: string, counter = 0): ReturnType<typeof buildToken> => buildToken({ ...DEFAULT_PARAMETERS, type: 'HOTP', counter }, SECRET, serial);
    await ledger.markDone(await ledger.appendPending(t('A'), KEY, 'A'), 1);
    await ledger.appendPending(t('B', 3), KEY, 'B');
    await ledger.markFailed(await ledger.appendPending(t('C'), KEY, 'C'), 'mismatch', false);
    await ledger.markFailed(await ledger.appendPending(t('D'), KEY, 'D'), 'key removed', true);
    // A replacement key for A, programmed later with counter 10.
    await ledger.markDone(await ledger.appendPending(t('A', 10), KEY, 'A'), 11);
    await ledger.close();
    const { entries } = await readLedger(dir);
    const plain = ledgerTokens(entries);
    expect(plain.tokens.map((x) => [x.serial, x.counter])).toEqual([['A', 11]]);
    expect(plain.leftOut.map((e) => e.token.serial)).toEqual(['B', 'D']);
    const all = ledgerTokens(entries, { includePending: true });
    // Pending HOTP keeps its initial counter: the key may not have advanced.
    expect(all.tokens.map((x) => [x.serial, x.counter])).toEqual([
      ['B', 3],
      ['D', 0],
      ['A', 11],
    ]);
    expect(all.pending.map((e) => e.token.serial)).toEqual(['B', 'D']);
  });
});
