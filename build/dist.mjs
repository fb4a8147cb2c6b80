// `npm run dist`: the single executables, the Debian package and SHA256SUMS, into dist/, on a
// Linux machine, from the npm registry alone.
//
//   node build/dist.mjs [--targets linux-x64,win-x64,…] [--no-deb]
//
// Per target: the Node runtime of build/runtimes.json (npm pack, checked against the pinned
// integrity), the program as three bundles (a small launcher as the SEA's main script, and the
// two program bundles as assets: src/sea/launcher.ts), the target's native addons and helper
// programs as assets (build/sea-shims.mjs says how the bundles find them), and the icons. The
// SEA blob is made by the build machine's copy of the SAME Node version (Node requires it), then
// injected into a copy of the target's binary with postject. The Windows and macOS binaries are
// signed by the Node project; injecting invalidates that signature, so it is removed first (an
// unsigned binary runs, one with a broken signature does not on macOS).
//
// Downloads are cached in node_modules/.cache/keytap-dist (KEYTAP_DIST_CACHE overrides).
import { Buffer } from 'node:buffer';
import { execFile } from 'node:child_process';
import console from 'node:console';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import process from 'node:process';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { ROOT, asciiComments, common, leaveOutResident } from './bundle-options.mjs';
import { seaShims } from './sea-shims.mjs';

const run = promisify(execFile);
const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
const runtimes = JSON.parse(readFileSync(join(ROOT, 'build', 'runtimes.json'), 'utf8'));
const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8'));
const DIST = join(ROOT, 'dist');
const WORK = join(DIST, 'sea');
const CACHE = process.env.KEYTAP_DIST_CACHE ?? join(ROOT, 'node_modules', '.cache', 'keytap-dist');
const SENTINEL_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

/** What each target is: Node's names for it, and the file name of its executable. */
export const TARGETS = {
  'linux-x64': { platform: 'linux', arch: 'x64', file: `keytap-${version}-linux-x64` },
  'linux-arm64': { platform: 'linux', arch: 'arm64', file: `keytap-${version}-linux-arm64` },
  'win-x64': { platform: 'win32', arch: 'x64', file: `keytap-${version}-win-x64.exe` },
  'darwin-x64': { platform: 'darwin', arch: 'x64', file: `keytap-${version}-darwin-x64` },
};

const nm = (...parts) => join(ROOT, 'node_modules', ...parts);

/**
 * The files each target carries besides the bundles: asset key → [file, executable?]. Only what
 * the target's code paths use: Linux draws its tray and toasts over D-Bus (no systray2 helper, no
 * node-notifier programs); clipboardy's xsel fallback is an x86-64 program.
 */
async function targetAssets(id) {
  const { platform, arch } = TARGETS[id];
  const os = platform;
  const assets = {};
  const add = (key, file, executable = false) => {
    if (!existsSync(file)) throw new Error(`dist: ${file} (asset ${key} for ${id}) is missing; run npm ci`);
    assets[key] = { file, executable };
  };
  const hidName = platform === 'linux' ? 'HID_hidraw' : 'HID';
  add(`native/${hidName}.node`, nm('node-hid', 'prebuilds', `${hidName}-${os}-${arch}`, 'node-napi-v4.node'), true);
  add('native/uiohook-napi.node', nm('uiohook-napi', 'prebuilds', `${os}-${arch}`, 'uiohook-napi.node'), true);
  add('native/koffi.node', await koffiNative(platform, arch), true);
  add('native/keyring.node', await keyringNative(platform, arch), true);
  if (platform === 'win32') {
    add('systray2/traybin/tray_windows_release.exe', nm('systray2', 'traybin', 'tray_windows_release.exe'), true);
    for (const file of ['snoreToast/snoretoast-x64.exe', 'snoreToast/snoretoast-x86.exe', 'notifu/notifu.exe', 'notifu/notifu64.exe']) {
      add(`node-notifier/vendor/${file}`, nm('node-notifier', 'vendor', ...file.split('/')), true);
    }
    add('clipboardy/fallbacks/windows/clipboard_x86_64.exe', nm('clipboardy', 'fallbacks', 'windows', 'clipboard_x86_64.exe'), true);
  }
  if (platform === 'darwin') {
    add('systray2/traybin/tray_darwin_release', nm('systray2', 'traybin', 'tray_darwin_release'), true);
    const app = nm('node-notifier', 'vendor', 'mac.noindex', 'terminal-notifier.app');
    for (const file of walk(app)) {
      add(`node-notifier/vendor/mac.noindex/terminal-notifier.app/${relative(app, file).split('\\').join('/')}`, file, (statSync(file).mode & 0o111) !== 0);
    }
  }
  if (platform === 'linux' && arch === 'x64') add('clipboardy/fallbacks/linux/xsel', nm('clipboardy', 'fallbacks', 'linux', 'xsel'), true);
  for (const file of readdirSync(join(ROOT, 'icons'))) add(`icons/${file}`, join(ROOT, 'icons', file));
  return assets;
}

function* walk(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(path);
    else yield path;
  }
}

/** koffi's native for a target: from node_modules where npm installed it (this machine's), else npm pack of the locked version. */
async function koffiNative(platform, arch) {
  const name = `@koromix/koffi-${platform}-${arch}`;
  const locked = lock.packages[`node_modules/${name}`];
  if (!locked) throw new Error(`dist: ${name} is not in package-lock.json`);
  const triplet = `${platform}_${arch}`;
  const installed = nm(...name.split('/'), triplet, 'koffi.node');
  if (existsSync(installed)) return installed;
  const dir = await unpacked(name, locked.version, locked.integrity);
  return join(dir, triplet, 'koffi.node');
}

/** @napi-rs/keyring's triplet per target (its napi "targets"): glibc on Linux, MSVC on Windows. */
const KEYRING_TRIPLETS = { 'linux-x64': 'linux-x64-gnu', 'linux-arm64': 'linux-arm64-gnu', 'win32-x64': 'win32-x64-msvc', 'darwin-x64': 'darwin-x64', 'darwin-arm64': 'darwin-arm64' };

/** @napi-rs/keyring's native for a target, as koffiNative: installed, else npm pack of the locked version. */
async function keyringNative(platform, arch) {
  const triplet = KEYRING_TRIPLETS[`${platform}-${arch}`];
  if (!triplet) throw new Error(`dist: no @napi-rs/keyring native for ${platform}-${arch}`);
  const name = `@napi-rs/keyring-${triplet}`;
  const locked = lock.packages[`node_modules/${name}`];
  if (!locked) throw new Error(`dist: ${name} is not in package-lock.json`);
  const file = `keyring.${triplet}.node`;
  const installed = nm(...name.split('/'), file);
  if (existsSync(installed)) return installed;
  return join(await unpacked(name, locked.version, locked.integrity), file);
}

/** Where unpacked() keeps a package: the cache folder's entry for name@version. */
const cacheEntry = (name, packageVersion) => join(CACHE, `${name.replace('/', '+')}-${packageVersion}`);

/** `npm pack name@version` into the cache, checked against `integrity`, unpacked once; returns the package folder. */
async function unpacked(name, packageVersion, integrity) {
  const dir = cacheEntry(name, packageVersion);
  if (existsSync(join(dir, '.complete'))) return join(dir, 'package');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const { stdout } = await run('npm', ['pack', `${name}@${packageVersion}`, '--pack-destination', dir, '--json', '--silent'], { maxBuffer: 64 << 20 });
  const [{ filename }] = JSON.parse(stdout);
  const tarball = join(dir, filename);
  const [algorithm, expected] = integrity.split(/-(.*)/s);
  const actual = createHash(algorithm).update(readFileSync(tarball)).digest('base64');
  if (actual !== expected) throw new Error(`dist: ${name}@${packageVersion} from the registry does not match its pinned integrity`);
  await run('tar', ['-xzf', tarball, '-C', dir]);
  rmSync(tarball);
  writeFileSync(join(dir, '.complete'), '');
  return join(dir, 'package');
}

/** Where the target's Node binary is once runtimeBinary() has unpacked it (the benchmarks and tests run it too). */
export function runtimeBinaryPath(id) {
  return join(cacheEntry(runtimes.packages[id].name, runtimes.version), 'package', 'bin', TARGETS[id].platform === 'win32' ? 'node.exe' : 'node');
}

/** The target's Node binary, unpacked from node-<os>-<arch>. */
async function runtimeBinary(id) {
  const { name, integrity } = runtimes.packages[id];
  await unpacked(name, runtimes.version, integrity);
  return runtimeBinaryPath(id);
}

/** The three bundles every target shares, into `dir` (launcher.cjs, keytap.cjs, keytap-cli.cjs). */
export async function buildBundles(dir = WORK) {
  const sea = { ...common, external: [], sourcemap: false, target: 'node22', plugins: [seaShims] };
  const files = { launcher: join(dir, 'launcher.cjs'), full: join(dir, 'keytap.cjs'), cli: join(dir, 'keytap-cli.cjs') };
  await Promise.all([
    build({ ...common, external: [], sourcemap: false, target: 'node22', entryPoints: ['src/sea/launcher.ts'], outfile: files.launcher }),
    build({ ...sea, outfile: files.full }),
    build({ ...sea, outfile: files.cli, plugins: [seaShims, leaveOutResident] }),
  ]);
  await Promise.all(Object.values(files).map(asciiComments));
}

const sha256 = (file) => createHash('sha256').update(readFileSync(file)).digest('hex');

/** One target's executable: manifest, SEA config, blob, injected binary. Returns its path. */
async function buildTarget(id, generator) {
  const target = TARGETS[id];
  const dir = join(WORK, id);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const files = {
    'bundle/keytap.cjs': { file: join(WORK, 'keytap.cjs'), executable: false },
    'bundle/keytap-cli.cjs': { file: join(WORK, 'keytap-cli.cjs'), executable: false },
    ...(await targetAssets(id)),
  };
  const manifest = { version, target: id, assets: {} };
  for (const [key, { file, executable }] of Object.entries(files)) {
    manifest.assets[key] = { sha256: sha256(file), size: statSync(file).size, ...(executable ? { executable: true } : {}) };
  }
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
  const config = {
    main: join(WORK, 'launcher.cjs'),
    output: join(dir, 'sea.blob'),
    disableExperimentalSEAWarning: true,
    // The code cache and the snapshot are made for the machine that makes the blob; the program
    // bundles get Node's compile cache at run time instead (src/sea/launcher.ts).
    useCodeCache: false,
    useSnapshot: false,
    assets: { 'manifest.json': join(dir, 'manifest.json'), ...Object.fromEntries(Object.entries(files).map(([key, { file }]) => [key, file])) },
  };
  writeFileSync(join(dir, 'sea-config.json'), JSON.stringify(config, null, 2));
  await run(generator, ['--experimental-sea-config', join(dir, 'sea-config.json')]);

  const binary = join(dir, target.file);
  copyFileSync(await runtimeBinary(id), binary);
  chmodSync(binary, 0o755);
  // Node's Linux binaries carry debug sections (~18 MB, and lintian refuses them in a package);
  // they can only be stripped BEFORE the program goes in: stripping the injected file breaks it.
  if (target.platform === 'linux') await stripLinuxBinary(binary, target.arch);
  if (target.platform === 'win32') await removeSignature(binary, 'portable-executable-signature');
  if (target.platform === 'darwin') await removeSignature(binary, 'macho-unsign');
  const postject = [nm('postject', 'dist', 'cli.js'), binary, 'NODE_SEA_BLOB', join(dir, 'sea.blob'), '--sentinel-fuse', SENTINEL_FUSE, ...(target.platform === 'darwin' ? ['--macho-segment-name', 'NODE_SEA'] : [])];
  await run(process.execPath, postject, { maxBuffer: 64 << 20 });
  const out = join(DIST, target.file);
  renameSync(binary, out);
  rmSync(join(dir, 'sea.blob'));
  return out;
}

/** GNU strip of binutils; for another architecture, that architecture's binutils (Debian: binutils-aarch64-linux-gnu). */
async function stripLinuxBinary(file, arch) {
  const tools = { x64: ['x86_64-linux-gnu-strip', 'binutils'], arm64: ['aarch64-linux-gnu-strip', 'binutils-aarch64-linux-gnu'] };
  const [tool, debianPackage] = arch === process.arch ? ['strip', 'binutils'] : tools[arch];
  try {
    await run(tool, ['--strip-all', '--remove-section=.comment', '--remove-section=.note', file]);
  } catch (error) {
    throw new Error(`dist: ${tool} failed on ${file}: ${error.code === 'ENOENT' ? `not installed (apt-get install ${debianPackage})` : error.message}`);
  }
}

/** Strips the Authenticode (PE) or code signature (Mach-O) the Node project put on its binary. */
async function removeSignature(file, library) {
  const mod = await import(library);
  const bytes = readFileSync(file);
  const data = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  const unsigned = library === 'macho-unsign' ? mod.unsign(data) : mod.signatureGet(data) ? mod.signatureSet(data, null) : null;
  if (unsigned) writeFileSync(file, Buffer.from(unsigned)); // null: it was not signed
}

/** Runs `jobs` with at most `limit` at once (postject is single-threaded and memory-hungry). */
async function inParallel(jobs, limit) {
  const results = [];
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const index = next++;
      results[index] = await jobs[index]();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
  return results;
}

async function main() {
  const args = process.argv.slice(2);
  const targetsArg = args.includes('--targets') ? args[args.indexOf('--targets') + 1] : undefined;
  const ids = targetsArg ? targetsArg.split(',') : Object.keys(TARGETS);
  for (const id of ids) if (!TARGETS[id]) throw new Error(`dist: unknown target ${id}; known: ${Object.keys(TARGETS).join(', ')}`);
  if (process.platform !== 'linux') throw new Error('dist: build on Linux (the Debian package and the SEA tools assume it)');
  const started = Date.now();
  mkdirSync(WORK, { recursive: true });
  const hostId = `linux-${process.arch}`;
  const [generator] = await Promise.all([runtimeBinary(hostId), buildBundles()]);
  const outputs = await inParallel(
    ids.map((id) => () => buildTarget(id, generator)),
    2,
  );
  if (ids.includes('linux-x64') && !args.includes('--no-deb')) {
    const { buildDeb } = await import('./deb.mjs');
    const runtime = await unpacked(runtimes.packages['linux-x64'].name, runtimes.version, runtimes.packages['linux-x64'].integrity);
    outputs.push(await buildDeb({ executable: join(DIST, TARGETS['linux-x64'].file), version, outDir: DIST, nodeLicense: join(runtime, 'LICENSE') }));
  }
  const sums = outputs.map((file) => `${sha256(file)}  ${relative(DIST, file)}\n`).join('');
  writeFileSync(join(DIST, 'SHA256SUMS'), sums);
  for (const file of outputs) console.log(`${relative(ROOT, file)}  ${(statSync(file).size / 1e6).toFixed(1)} MB`);
  console.log(`dist: ${outputs.length} artifacts in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
