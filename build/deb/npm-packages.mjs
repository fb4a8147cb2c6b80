// The npm packages inside the single executable, for the package's copyright file: every package
// esbuild bundles into the program's JavaScript (its metafile says which files it read), plus the
// packages the bundle leaves external because they carry native addons or helper programs (the
// executable takes those in as assets), with what they depend on at run time.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { build } from 'esbuild';
import { ROOT, fullBundle } from '../bundle-options.mjs';

/** A package folder, relative to the repository root with '/' ('node_modules/conf/node_modules/ajv'). */
function packageDirOf(file) {
  const parts = file.split('/');
  const last = parts.lastIndexOf('node_modules');
  if (last === -1) return undefined;
  const length = parts[last + 1]?.startsWith('@') ? last + 3 : last + 2;
  return parts.slice(0, length).join('/');
}

/** Where Node would find `name` from the package folder `from` (nested node_modules first). */
function resolvePackageDir(name, from) {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(ROOT, candidate, 'package.json'))) return candidate.split(sep).join('/');
    if (dir === '.' || dir === '') return undefined;
  }
}

function readManifest(dir) {
  return JSON.parse(readFileSync(join(ROOT, dir, 'package.json'), 'utf8'));
}

/** Package folders whose code esbuild puts into the full bundle (the one the executable runs). */
export async function bundledPackageDirs() {
  const result = await build({ ...fullBundle, write: false, metafile: true, sourcemap: false, logLevel: 'silent' });
  const dirs = new Set();
  for (const input of Object.keys(result.metafile.inputs)) {
    const dir = packageDirOf(relative(ROOT, join(ROOT, input)).split(sep).join('/'));
    if (dir) dirs.add(dir);
  }
  return dirs;
}

/**
 * keytap's own dependencies that the bundle does not contain (external on purpose), and what they
 * need at run time: their dependencies, and those optional dependencies npm installed here (the
 * platform packages that carry a prebuilt addon, such as @koromix/koffi-linux-x64).
 */
export function externalPackageDirs(bundled) {
  const own = readManifest('.');
  const found = new Set();
  const visit = (dir) => {
    if (found.has(dir)) return;
    found.add(dir);
    const manifest = readManifest(dir);
    for (const name of [...Object.keys(manifest.dependencies ?? {}), ...Object.keys(manifest.optionalDependencies ?? {})]) {
      const child = resolvePackageDir(name, dir);
      if (child) visit(child);
      else if (!(name in (manifest.optionalDependencies ?? {}))) throw new Error(`${dir} depends on ${name}, which is not installed: run npm ci.`);
    }
  };
  for (const name of Object.keys(own.dependencies ?? {})) {
    const dir = `node_modules/${name}`;
    if (bundled.has(dir)) continue;
    if (!existsSync(join(ROOT, dir, 'package.json'))) throw new Error(`keytap depends on ${name}, which is not installed: run npm ci.`);
    visit(dir);
  }
  return found;
}

/** Every npm package in the executable: { dir, name, version, license, author, bundled }. */
export async function executablePackages() {
  const bundled = await bundledPackageDirs();
  const external = externalPackageDirs(bundled);
  const packages = [];
  for (const dir of [...new Set([...bundled, ...external])].sort()) {
    const manifest = readManifest(dir);
    packages.push({ dir, name: manifest.name, version: manifest.version, license: manifest.license ?? manifest.licenses, author: manifest.author, bundled: bundled.has(dir) });
  }
  return packages;
}
