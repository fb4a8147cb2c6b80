// The single executable's asset cache (src/util/asset-cache.ts), on real folders: what is written,
// when it is written again, and what happens to damaged files, hostile folders and racing processes.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AssetCache, cacheRoot } from '../../src/util/asset-cache.js';
import type { AssetManifest } from '../../src/util/asset-cache.js';
import { tempDir } from '../support/cli.js';

const PROGRAM = Buffer.from('#!/bin/sh\necho helper\n');
const LIBRARY = randomBytes(300_000);

function manifestOf(files: Record<string, { bytes: Uint8Array; executable?: boolean }>): AssetManifest {
  const assets: AssetManifest['assets'] = {};
  for (const [key, { bytes, executable }] of Object.entries(files)) {
    assets[key] = { sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length, ...(executable ? { executable } : {}) };
  }
  return { version: '9.8.7', target: 'linux-x64', assets };
}

const FILES = { 'native/lib.node': { bytes: LIBRARY, executable: true }, 'helper/bin/tool': { bytes: PROGRAM, executable: true }, 'icons/a.png': { bytes: Buffer.from('png') } };

/** A cache over FILES whose reads are counted. */
function cacheIn(root: string, bytesOf: (key: string) => Uint8Array = (key) => FILES[key as keyof typeof FILES].bytes) {
  const reads: string[] = [];
  const cache = new AssetCache({ manifest: manifestOf(FILES), root, platform: 'linux', read: (key) => (reads.push(key), bytesOf(key)) });
  return { cache, reads };
}

const mode = (path: string): number => statSync(path).mode & 0o777;

describe('the asset cache', () => {
  it('writes an asset on first use into ROOT/VERSION, owner-only, with the execute bit where the build set it', () => {
    const root = join(tempDir(), 'keytap');
    const { cache, reads } = cacheIn(root);
    const library = cache.file('native/lib.node');
    expect(library).toBe(join(root, '9.8.7', 'native', 'lib.node'));
    expect(readFileSync(library).equals(LIBRARY)).toBe(true);
    expect(mode(library)).toBe(0o700);
    expect(mode(cache.file('icons/a.png'))).toBe(0o600);
    expect([mode(root), mode(join(root, '9.8.7')), mode(join(root, '9.8.7', 'native'))]).toEqual([0o700, 0o700, 0o700]);
    expect(reads).toEqual(['native/lib.node', 'icons/a.png']);
    // Asked again in the same process: neither read nor hashed again.
    expect(cache.file('native/lib.node')).toBe(library);
    expect(reads).toHaveLength(2);
    expect(cache.temporary).toBe(false);
  });

  it('leaves intact files alone on the next start: same inode, same time, nothing read from the executable', () => {
    const root = join(tempDir(), 'keytap');
    const first = cacheIn(root).cache.file('native/lib.node');
    const before = statSync(first);
    const next = cacheIn(root);
    expect(next.cache.file('native/lib.node')).toBe(first);
    const after = statSync(first);
    expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs]);
    expect(next.reads).toEqual([]);
  });

  it('replaces a damaged file (same size, other bytes), a truncated one and a missing one', () => {
    const root = join(tempDir(), 'keytap');
    const path = cacheIn(root).cache.file('native/lib.node');
    const damaged = Buffer.from(LIBRARY);
    damaged[1234] = damaged[1234]! ^ 0xff;
    writeFileSync(path, damaged);
    expect(readFileSync(cacheIn(root).cache.file('native/lib.node')).equals(LIBRARY)).toBe(true);
    writeFileSync(path, LIBRARY.subarray(0, 1000));
    expect(readFileSync(cacheIn(root).cache.file('native/lib.node')).equals(LIBRARY)).toBe(true);
    rmSync(path);
    const again = cacheIn(root);
    expect(readFileSync(again.cache.file('native/lib.node')).equals(LIBRARY)).toBe(true);
    expect(again.reads).toEqual(['native/lib.node']);
  });

  it('refuses an asset whose bytes in the executable do not match the build, and writes nothing', () => {
    const root = join(tempDir(), 'keytap');
    const { cache } = cacheIn(root, () => Buffer.from('not what the build hashed'));
    expect(() => cache.file('icons/a.png')).toThrow(/"icons\/a\.png" inside this keytap executable is damaged; download keytap again/u);
    expect(existsSync(join(root, '9.8.7', 'icons', 'a.png'))).toBe(false);
    expect(() => cache.file('no/such')).toThrow(/no asset "no\/such" \(built for linux-x64\)/u);
  });

  it('writes out a folder of assets at once and names the folder', () => {
    const root = join(tempDir(), 'keytap');
    const { cache } = cacheIn(root);
    const helper = cache.folder('helper');
    expect(helper).toBe(join(root, '9.8.7', 'helper'));
    expect(readFileSync(join(helper, 'bin', 'tool')).equals(PROGRAM)).toBe(true);
    // A package may look for files a target does not carry: the folder's name, nothing in it.
    expect(cache.folder('clipboardy')).toBe(join(root, '9.8.7', 'clipboardy'));
    expect(existsSync(join(root, '9.8.7', 'clipboardy'))).toBe(false);
  });

  it('makes an existing group- or world-writable folder private again', () => {
    const root = join(tempDir(), 'keytap');
    mkdirSync(join(root, '9.8.7'), { recursive: true });
    chmodSync(root, 0o777);
    chmodSync(join(root, '9.8.7'), 0o775);
    const { cache } = cacheIn(root);
    cache.file('icons/a.png');
    expect([mode(root), mode(join(root, '9.8.7'))]).toEqual([0o700, 0o700]);
    expect(cache.temporary).toBe(false);
  });

  it('does not use a version folder that is a symbolic link, or a root it cannot create: a private temp folder instead', () => {
    const dir = tempDir();
    const elsewhere = join(dir, 'elsewhere');
    mkdirSync(elsewhere);
    mkdirSync(join(dir, 'keytap'));
    symlinkSync(elsewhere, join(dir, 'keytap', '9.8.7'));
    const linked = cacheIn(join(dir, 'keytap')).cache;
    const path = linked.file('native/lib.node');
    expect(linked.temporary).toBe(true);
    expect(path.startsWith(join(dir, 'keytap'))).toBe(false);
    expect(existsSync(join(elsewhere, 'native'))).toBe(false);
    expect(readFileSync(path).equals(LIBRARY)).toBe(true);

    writeFileSync(join(dir, 'a-file'), '');
    const blocked = cacheIn(join(dir, 'a-file', 'keytap')).cache;
    expect(readFileSync(blocked.file('icons/a.png')).toString()).toBe('png');
    expect(blocked.temporary).toBe(true);
  });

  it.skipIf(process.getuid?.() !== 0)('does not use a folder that belongs to another user', () => {
    const root = join(tempDir(), 'keytap');
    mkdirSync(join(root, '9.8.7'), { recursive: true, mode: 0o700 });
    chownSync(join(root, '9.8.7'), 4321, 4321);
    const { cache } = cacheIn(root);
    expect(cache.file('icons/a.png').startsWith(root)).toBe(false);
    expect(cache.temporary).toBe(true);
  });

  it('lets several processes write the same assets at once: every one of them gets whole files', async () => {
    const root = join(tempDir(), 'keytap');
    const big = randomBytes(8_000_000);
    const manifest = manifestOf({ 'native/big.node': { bytes: big }, 'helper/bin/tool': { bytes: PROGRAM, executable: true } });
    const blob = join(tempDir(), 'big.bin');
    writeFileSync(blob, big);
    const script = `
      import { readFileSync } from 'node:fs';
      import { createHash } from 'node:crypto';
      import { AssetCache } from ${JSON.stringify(join(import.meta.dirname, '..', '..', 'src', 'util', 'asset-cache.ts'))};
      const manifest = ${JSON.stringify(manifest)};
      const bytes = { 'native/big.node': readFileSync(${JSON.stringify(blob)}), 'helper/bin/tool': Buffer.from(${JSON.stringify(PROGRAM.toString())}) };
      const cache = new AssetCache({ manifest, root: ${JSON.stringify(root)}, read: (key) => bytes[key] });
      const path = cache.file('native/big.node');
      cache.folder('helper');
      console.log(createHash('sha256').update(readFileSync(path)).digest('hex'), cache.temporary);`;
    const runs = Array.from({ length: 4 }, () =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.on('close', (code) => resolve({ code, out }));
      }),
    );
    const results = await Promise.all(runs);
    const expected = `${manifest.assets['native/big.node']!.sha256} false`;
    expect(results).toEqual(Array.from({ length: 4 }, () => ({ code: 0, out: `${expected}\n` })));
    expect(readFileSync(join(root, '9.8.7', 'native', 'big.node')).equals(big)).toBe(true);
  });
});

describe('where the cache lives', () => {
  it('follows each platform\'s convention for per-user caches', () => {
    expect(cacheRoot('linux', { XDG_CACHE_HOME: '/x/cache' }, '/home/u')).toBe('/x/cache/keytap');
    expect(cacheRoot('linux', {}, '/home/u')).toBe('/home/u/.cache/keytap');
    // A relative XDG_CACHE_HOME is invalid by the XDG spec and is ignored.
    expect(cacheRoot('linux', { XDG_CACHE_HOME: 'rel/cache' }, '/home/u')).toBe('/home/u/.cache/keytap');
    expect(cacheRoot('darwin', {}, '/Users/u')).toBe('/Users/u/Library/Caches/keytap');
    expect(cacheRoot('win32', { LOCALAPPDATA: 'C:\\Users\\u\\AppData\\Local' }, 'C:\\Users\\u')).toMatch(/^C:\\Users\\u\\AppData\\Local[\\/]keytap$/u);
  });
});
