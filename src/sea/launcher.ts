/**
 * The single executable's main script (build/dist.mjs makes it the SEA's `main`). It does as
 * little as it can before the program runs: reads the asset manifest, picks the bundle for the
 * command (bin/bundle-choice.cjs), makes sure that bundle is intact in the asset cache, turns on
 * Node's compile cache there (so from the second run on V8 does not compile the bundle again —
 * the start-up time `keytap code` is judged by), and requires it. The bundle then finds its native
 * addons and helper programs through the same cache (installedAssetCache(), used by the shims in
 * build/sea-shims.mjs).
 *
 * A SEA's own `require` only knows Node's built-in modules; a real one, made by createRequire for
 * the extracted bundle's path, loads the bundle and everything it requires from disk.
 */
import { createRequire } from 'node:module';
import * as nodeModule from 'node:module';
import { getAsset, getRawAsset } from 'node:sea';
import { AssetCache, installAssetCache } from '../util/asset-cache.js';
import type { AssetManifest } from '../util/asset-cache.js';
// eslint-disable-next-line @typescript-eslint/no-require-imports -- a CommonJS file shared with bin/keytap.cjs
const { bundleFor } = require('../../bin/bundle-choice.cjs') as { bundleFor: (args: readonly string[]) => string };

function main(): void {
  // koffi runs blocking PC/SC calls on libuv's thread pool (4 threads by default): the tray's
  // reader watch holds one for good and a touch wait another, which would leave file system work
  // two. Read by libuv when the pool first starts, so it must be set before any async work.
  process.env.UV_THREADPOOL_SIZE ??= '8';
  const manifest = JSON.parse(getAsset('manifest.json', 'utf8')) as AssetManifest;
  const cache = new AssetCache({ manifest, read: (key) => new Uint8Array(getRawAsset(key) as ArrayBuffer) });
  installAssetCache(cache);
  const bundle = cache.file(`bundle/${bundleFor(process.argv.slice(2))}`);
  // Node ≥ 22.1; a cache it cannot write is not an error (it says so in the returned status).
  (nodeModule as { enableCompileCache?: (this: void, dir: string) => unknown }).enableCompileCache?.(cache.compileCacheDir);
  createRequire(bundle)(bundle);
}

main();
