/**
 * The single executable's asset cache. A Node SEA carries its native addons (node-hid, koffi,
 * uiohook-napi), helper programs (the systray2 helper, the notifiers node-notifier runs) and the
 * two program bundles as assets inside the executable, but an operating system can only load or
 * run what is a file. So they are written out on first use to a per-version folder and loaded
 * from there.
 *
 * What the cache promises:
 * - every file is checked against the build's SHA-256 the first time a process uses it, so a
 *   damaged or tampered file is replaced before anything loads it; a missing or broken cache costs
 *   at most a re-extraction;
 * - the folders are the user's own and nobody else's (0700, owner checked), because whatever is
 *   in them is code keytap runs;
 * - two processes extracting at once both succeed: each writes a temp file of its own and renames
 *   it over the name (rename is atomic), so a reader sees either no file or a whole one;
 * - when the usual folder cannot be used (read-only home, owned by someone else), a private temp
 *   folder for this process takes its place.
 *
 * Synchronous on purpose: it runs while modules are being required.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, closeSync, lstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { ensurePrivateFolder } from './private-folder.js';

export interface AssetEntry {
  /** Lower-case hex SHA-256 of the content. */
  sha256: string;
  size: number;
  /** A program or library to run: written with the execute bit. */
  executable?: boolean;
}

/** What the build put into the executable (build/dist.mjs writes it as the asset "manifest.json"). */
export interface AssetManifest {
  /** keytap's version: the cache folder's name. */
  version: string;
  /** "linux-x64", "win-x64", … */
  target: string;
  /** By asset key: "bundle/keytap-cli.cjs", "native/HID_hidraw.node", "systray2/traybin/…". */
  assets: Record<string, AssetEntry>;
}

/** Where extracted assets live: the platform's per-user cache folder, then keytap. */
export function cacheRoot(platform: NodeJS.Platform, env: NodeJS.ProcessEnv, home: string): string {
  if (platform === 'win32') return join(env.LOCALAPPDATA || join(home, 'AppData', 'Local'), 'keytap');
  if (platform === 'darwin') return join(home, 'Library', 'Caches', 'keytap');
  // The XDG base directory spec: a relative $XDG_CACHE_HOME is invalid and must be ignored.
  const xdg = env.XDG_CACHE_HOME;
  return join(xdg && isAbsolute(xdg) ? xdg : join(home, '.cache'), 'keytap');
}

export interface AssetCacheOptions {
  manifest: AssetManifest;
  /** The bytes of one asset (node:sea getRawAsset). */
  read: (key: string) => Uint8Array;
  /** Default: cacheRoot() of this process. The version folder goes inside. */
  root?: string;
  platform?: NodeJS.Platform;
}

export class AssetCache {
  /** The folder holding this version's files. */
  dir: string;
  /** True when the usual folder could not be used and a temp folder of this process's took its place. */
  temporary = false;
  private readonly manifest: AssetManifest;
  private readonly read: (key: string) => Uint8Array;
  private readonly platform: NodeJS.Platform;
  /** Keys checked (or written) by this process: each is hashed once per process. */
  private readonly checked = new Map<string, string>();

  constructor(options: AssetCacheOptions) {
    this.manifest = options.manifest;
    this.read = options.read;
    this.platform = options.platform ?? process.platform;
    const root = options.root ?? cacheRoot(this.platform, process.env, homedir());
    const dir = join(root, options.manifest.version);
    try {
      privateDir(root, this.platform);
      privateDir(dir, this.platform);
      this.dir = dir;
    } catch {
      this.dir = this.useTemporaryFolder();
    }
  }

  /** This process's own folder, removed at exit: for when the usual one cannot be written. */
  private useTemporaryFolder(): string {
    this.dir = mkdtempSync(join(tmpdir(), `keytap-${this.manifest.version}-`));
    this.temporary = true;
    this.checked.clear();
    const dir = this.dir;
    process.once('exit', () => rmSync(dir, { recursive: true, force: true, maxRetries: 0 }));
    return dir;
  }

  /** The cache's folder for Node's compile cache (module.enableCompileCache). */
  get compileCacheDir(): string {
    return join(this.dir, 'compile-cache');
  }

  /** The path of asset `key`, written out (or replaced) first unless it is already intact. */
  file(key: string): string {
    const known = this.checked.get(key);
    if (known) return known;
    const entry = this.manifest.assets[key];
    if (!entry) throw new Error(`This keytap executable has no asset "${key}" (built for ${this.manifest.target}).`);
    let path = join(this.dir, ...key.split('/'));
    let usable: string;
    if (intact(path, entry)) {
      usable = path;
    } else {
      const bytes = this.read(key);
      if (bytes.length !== entry.size || sha256(bytes) !== entry.sha256) {
        throw new Error(`The asset "${key}" inside this keytap executable is damaged; download keytap again.`);
      }
      try {
        usable = this.extract(bytes, entry, path);
      } catch (error) {
        // A full disk or a folder that turned read-only: one more try in a folder of our own.
        if (this.temporary) throw error;
        this.useTemporaryFolder();
        path = join(this.dir, ...key.split('/'));
        usable = this.extract(bytes, entry, path);
      }
    }
    this.checked.set(key, usable);
    return usable;
  }

  /**
   * Writes out every asset under `prefix/` and returns the folder they are in. A target may carry
   * none of a package's files (clipboardy's fallbacks on macOS): the folder is named all the same,
   * and the package finds nothing in it, as it would in a package installed without them.
   */
  folder(prefix: string): string {
    for (const key of Object.keys(this.manifest.assets)) if (key.startsWith(`${prefix}/`)) this.file(key);
    return join(this.dir, ...prefix.split('/'));
  }

  private extract(bytes: Uint8Array, entry: AssetEntry, path: string): string {
    const folder = dirname(path);
    mkdirSync(folder, { recursive: true, mode: 0o700 });
    const temp = join(folder, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    const mode = entry.executable ? 0o700 : 0o600;
    const fd = openSync(temp, 'wx', mode);
    try {
      for (let offset = 0; offset < bytes.length; ) offset += writeSync(fd, bytes, offset, bytes.length - offset);
    } finally {
      closeSync(fd);
    }
    if (this.platform !== 'win32') chmodSync(temp, mode);
    try {
      renameSync(temp, path);
      return path;
    } catch (error) {
      // Windows does not replace a file another process has loaded (a DLL in use). If that
      // process wrote it, it is intact now; otherwise this process uses its own whole copy.
      if (intact(path, entry)) {
        unlinkSync(temp);
        return path;
      }
      if (this.platform === 'win32') return temp;
      throw error;
    }
  }
}

/** Creates `dir` owner-only, or makes sure an existing one is a real folder of ours and private. */
function privateDir(dir: string, platform: NodeJS.Platform): void {
  // Too open is tightened, not refused: every file used from here is checked against its hash.
  ensurePrivateFolder(dir, { what: "keytap's cache folder", tooOpen: 'tighten', platform });
}

function intact(path: string, entry: AssetEntry): boolean {
  try {
    const stat = lstatSync(path);
    if (!stat.isFile() || stat.size !== entry.size) return false;
    return sha256(readFileSync(path)) === entry.sha256;
  } catch {
    return false;
  }
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The running executable's cache, set by the SEA launcher; undefined when run from source or a bundle. */
const INSTALLED = Symbol.for('keytap.assetCache');

export function installAssetCache(cache: AssetCache): void {
  (globalThis as Record<symbol, unknown>)[INSTALLED] = cache;
}

export function installedAssetCache(): AssetCache | undefined {
  return (globalThis as Record<symbol, unknown>)[INSTALLED] as AssetCache | undefined;
}
