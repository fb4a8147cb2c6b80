/**
 * The virtual key's store (persistence, 0600, atomic writes, broken files) and its touch button.
 */
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { existsSync } from 'node:fs';
import type { KeytapError } from '../../src/errors.js';
import { isKeytapError } from '../../src/errors.js';
import type { OpenStoreOptions } from '../../src/emulator/store.js';
import { VirtualKeyStore } from '../../src/emulator/store.js';
import { TouchButton } from '../../src/emulator/touch.js';
import { DEFAULT_TOUCH_TIMEOUT_MS } from '../../src/emulator/types.js';

const posix = process.platform !== 'win32';
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keytap-store-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function openError(file: string, options?: OpenStoreOptions): Promise<unknown> {
  return VirtualKeyStore.open(file, options).then(
    () => undefined,
    (error: unknown) => error,
  );
}

describe('VirtualKeyStore', () => {
  it('creates a new store: random 8-byte salt, 4-byte serial, dialect, default timeout, mode 0600', async () => {
    const file = join(dir, 'sub', 'key.json');
    const store = await VirtualKeyStore.open(file, { dialect: 'nitrokey3' });
    expect(store.dialect).toBe('nitrokey3');
    // Four random bytes, shown as the Nitrokey 3 serial is shown: upper-case hex.
    expect(store.serial).toMatch(/^[0-9A-F]{8}$/u);
    expect(store.serial).toBe(store.serialBytes.toString('hex').toUpperCase());
    expect(store.salt).toHaveLength(8);
    expect(store.touchTimeoutMs).toBe(DEFAULT_TOUCH_TIMEOUT_MS);
    expect(store.credentials).toHaveLength(0);
    if (posix) expect((await stat(file)).mode & 0o777).toBe(0o600);
    const other = await VirtualKeyStore.open(join(dir, 'other.json'));
    expect(other.dialect).toBe('yubikey');
    expect(other.salt.equals(store.salt)).toBe(false);
  });

  it('persists every mutation across re-open, with secrets as hex; no temp files are left', async () => {
    const file = join(dir, 'key.json');
    const store = await VirtualKeyStore.open(file);
    await store.putCredential({
      id: Buffer.from('Demo:bob'),
      type: 'HOTP',
      algorithm: 'SHA256',
      digits: 8,
      key: Buffer.from('00112233445566778899aabbccdd', 'hex'),
      counter: 41,
      touch: true,
      increasing: false,
      pinProtected: false,
    });
    await store.putCredential({ ...store.credentials[0]!, id: Buffer.from([0xff, 0xfe]) });
    await store.setAccessKey({ algorithm: 'SHA1', key: Buffer.alloc(16, 0xab) });
    await store.setTouchTimeoutMs(5000);
    const again = await VirtualKeyStore.open(file);
    expect(again.serial).toBe(store.serial);
    expect(again.salt.equals(store.salt)).toBe(true);
    expect(again.touchTimeoutMs).toBe(5000);
    expect(again.credentials).toHaveLength(2);
    expect(again.findCredential(Buffer.from('Demo:bob'))).toMatchObject({ type: 'HOTP', algorithm: 'SHA256', digits: 8, counter: 41, touch: true });
    expect(Buffer.from(again.findCredential(Buffer.from([0xff, 0xfe]))!.key).toString('hex')).toBe('00112233445566778899aabbccdd');
    expect(Buffer.from(again.accessKey!.key).toString('hex')).toBe('ab'.repeat(16));
    const json = JSON.parse(await readFile(file, 'utf8'));
    expect(json.credentials[0].id).toBe('Demo:bob');
    expect(json.credentials[1].idHex).toBe('fffe');
    expect(json.credentials[0].key).toBe('00112233445566778899aabbccdd');
    expect((await readdir(dir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    await store.reset();
    const wiped = await VirtualKeyStore.open(file);
    expect(wiped.credentials).toHaveLength(0);
    expect(wiped.accessKey).toBeUndefined();
    expect(wiped.salt.equals(store.salt)).toBe(true);
    expect(wiped.salt.equals(again.salt)).toBe(false);
  });

  it('demo accounts; the nitrokey3 dialect skips SHA512', async () => {
    const yk = await VirtualKeyStore.open(join(dir, 'yk.json'), { demo: true });
    const ids = yk.credentials.map((c) => Buffer.from(c.id).toString());
    expect(ids).toEqual(expect.arrayContaining(['Demo:alice@example.com', 'GitHub:alice', '60/Bank:alice', 'VPN:alice']));
    expect(yk.findCredential(Buffer.from('GitHub:alice'))).toMatchObject({ algorithm: 'SHA256', touch: true });
    expect(yk.findCredential(Buffer.from('60/Bank:alice'))).toMatchObject({ digits: 8 });
    expect(yk.findCredential(Buffer.from('VPN:alice'))).toMatchObject({ type: 'HOTP' });
    expect(yk.credentials.every((c) => c.key.length >= 14)).toBe(true);
    const nk = await VirtualKeyStore.open(join(dir, 'nk.json'), { dialect: 'nitrokey3', demo: true });
    expect(nk.credentials.some((c) => c.algorithm === 'SHA512')).toBe(false);
    expect(nk.credentials.length).toBeGreaterThanOrEqual(4);
  });

  it.runIf(posix)('re-chmods an existing store to 0600', async () => {
    const file = join(dir, 'key.json');
    await VirtualKeyStore.open(file);
    await chmod(file, 0o644);
    await VirtualKeyStore.open(file);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });

  it('a broken file gives BAD_INPUT naming the file and the problem, and is left untouched', async () => {
    const cases: Array<[string, RegExp]> = [
      ['{ not json', /not valid JSON/u],
      ['[]', /not a JSON object/u],
      ['{"format":"keytap-virtual-key","version":1,"dialect":"yubikey","serial":"xyz","salt":"0011223344556677","credentials":[]}', /"serial"/u],
      ['{"format":"keytap-virtual-key","version":1,"dialect":"yubikey","serial":"01020304","salt":"00","credentials":[]}', /"salt"/u],
      ['{"format":"keytap-virtual-key","version":1,"dialect":"yubikey","serial":"01020304","salt":"0011223344556677","credentials":[{"id":"a","type":"TOTP","algorithm":"MD5","digits":6,"key":"00"}]}', /credentials\[0\]\.algorithm/u],
      ['{"format":"keytap-virtual-key","version":1,"dialect":"yubikey","serial":"01020304","salt":"0011223344556677","credentials":[{"id":"a","type":"TOTP","algorithm":"SHA1","digits":6,"key":"zz"}]}', /credentials\[0\]\.key/u],
      ['{"format":"keytap-virtual-key","version":2}', /"version"/u],
    ];
    for (const [i, [text, problem]] of cases.entries()) {
      const file = join(dir, `broken${i}.json`);
      await writeFile(file, text);
      const error = await openError(file);
      expect(isKeytapError(error, 'BAD_INPUT')).toBe(true);
      expect((error as Error).message).toContain(file);
      expect((error as Error).message).toMatch(problem);
      expect(await readFile(file, 'utf8')).toBe(text);
    }
    // The secret in a bad key field is never echoed.
    const file = join(dir, 'secret.json');
    await writeFile(file, '{"format":"keytap-virtual-key","version":1,"dialect":"yubikey","serial":"01020304","salt":"0011223344556677","credentials":[{"id":"a","type":"TOTP","algorithm":"SHA1","digits":6,"key":"SECRETSECRET"}]}');
    expect(((await openError(file)) as Error).message).not.toContain('SECRETSECRET');
  });

  it('an unreadable path (a directory) gives INPUT_FILE in words, not a crash', async () => {
    const file = join(dir, 'adir');
    await mkdir(file);
    const error = await openError(file);
    expect(isKeytapError(error, 'INPUT_FILE')).toBe(true);
    expect((error as Error).message).toBe(`Cannot read the virtual key store ${file}: it is a folder.`);
  });

  it('a missing file is not created when creation is not asked for', async () => {
    const file = join(dir, 'typo', 'key.json');
    const error = await openError(file, { create: false });
    expect(isKeytapError(error, 'INPUT_FILE')).toBe(true);
    expect((error as KeytapError).detail).toEqual({ kind: 'no-virtual-key', file });
    expect(existsSync(join(dir, 'typo'))).toBe(false);
  });
});

describe('TouchButton', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('auto: true after delayMs; never: false after the timeout; no timers left behind', async () => {
    vi.useFakeTimers();
    const button = new TouchButton({ mode: 'auto', delayMs: 100 }, 1000);
    const auto = button.wait();
    await vi.advanceTimersByTimeAsync(100);
    await expect(auto).resolves.toBe(true);
    expect(vi.getTimerCount()).toBe(0);
    button.policy = { mode: 'never' };
    const never = button.wait();
    expect(button.press()).toBe(false);
    await vi.advanceTimersByTimeAsync(999);
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    await expect(never).resolves.toBe(false);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('manual: true on press(), false after the timeout; a press with nobody waiting does nothing', async () => {
    vi.useFakeTimers();
    const button = new TouchButton({ mode: 'manual' }, 500);
    expect(button.press()).toBe(false);
    const pressed = button.wait();
    expect(button.waiting).toBe(true);
    expect(button.press()).toBe(true);
    await expect(pressed).resolves.toBe(true);
    expect(button.waiting).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
    const timedOut = button.wait();
    await vi.advanceTimersByTimeAsync(500);
    await expect(timedOut).resolves.toBe(false);
    expect(button.press()).toBe(false);
  });

  it('rejects with CANCELLED when the signal aborts (also when already aborted), leaving no timer', async () => {
    vi.useFakeTimers();
    const button = new TouchButton({ mode: 'manual' }, 15_000);
    const controller = new AbortController();
    const wait = button.wait(controller.signal);
    controller.abort();
    await expect(wait).rejects.toSatisfy((e: unknown) => isKeytapError(e, 'CANCELLED'));
    expect(vi.getTimerCount()).toBe(0);
    expect(button.waiting).toBe(false);
    await expect(button.wait(controller.signal)).rejects.toSatisfy((e: unknown) => isKeytapError(e, 'CANCELLED'));
  });
});
