/**
 * PC/SC is loaded only when a command looks at smart card readers, and a machine without
 * libpcsclite loses just that:
 * - `keytap code --virtual FILE` never loads koffi (a preload counts every require of it);
 * - with libpcsclite.so.1 made unloadable (an empty file bind-mounted over it in a mount namespace
 *   of the command's own: `unshare -m`, root only), `keytap keys` still lists the other keys and
 *   `keytap code --virtual` still works, and the PC/SC library error is the install hint.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { KEYTAP, oathtool, tempDir } from '../support/cli.js';
import { findExecutable } from './pcscd.js';

const LIBRARY = '/usr/lib/x86_64-linux-gnu/libpcsclite.so.1';
const SECRET_HEX = Buffer.from('12345678901234567890').toString('hex');

function canHideLibrary(): boolean {
  if (process.platform !== 'linux' || !findExecutable('unshare')) return false;
  try {
    realpathSync(LIBRARY);
  } catch {
    return false;
  }
  return spawnSync('unshare', ['-m', 'true'], { stdio: 'ignore' }).status === 0;
}

let dir = '';
let preload = '';
let loads = '';

beforeAll(() => {
  dir = tempDir('keytap-no-pcsc-');
  loads = join(dir, 'koffi-loads.txt');
  preload = join(dir, 'count-koffi.cjs');
  writeFileSync(
    preload,
    `const Module = require('node:module');
const { appendFileSync } = require('node:fs');
const load = Module._load;
Module._load = function (request, ...rest) {
  if (request === 'koffi' || request.startsWith('@koromix/')) appendFileSync(${JSON.stringify(loads)}, request + '\\n');
  return load.call(this, request, ...rest);
};
`,
  );
  writeFileSync(loads, '');
});

function run(args: string[], options: { hideLibrary?: boolean } = {}): { code: number | null; stdout: string; stderr: string } {
  const env = { ...process.env, KEYTAP_RUNTIME_DIR: join(dir, 'run'), NODE_OPTIONS: `--require ${preload}` };
  const command = options.hideLibrary
    ? ['unshare', ['-m', 'sh', '-c', `mount --bind "$0" "${realpathSync(LIBRARY)}" && exec "$@"`, join(dir, 'empty'), process.execPath, KEYTAP, ...args]] as const
    : [process.execPath, [KEYTAP, ...args]] as const;
  const result = spawnSync(command[0], command[1], { env, encoding: 'utf8', timeout: 30_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

function koffiLoads(): string {
  return execFileSync('cat', [loads], { encoding: 'utf8' });
}

describe('without PC/SC', () => {
  it('keytap code --virtual never loads koffi', async () => {
    writeFileSync(loads, '');
    const result = run(['code', 'Demo:alice@example.com', '--virtual', join(dir, 'key.json'), '--demo', '--json']);
    expect(result.code, result.stderr).toBe(0);
    const json = JSON.parse(result.stdout) as { code: string; validFrom: string };
    expect(json.code).toBe(await oathtool({ hexSecret: SECRET_HEX, type: 'TOTP', time: Date.parse(json.validFrom) / 1000 }));
    expect(koffiLoads()).toBe('');
    // …while a command that looks at readers does load it: the preload sees it.
    expect(run(['keys', '--json']).code).toBe(0);
    expect(koffiLoads()).toContain('koffi');
  });

  describe.skipIf(!canHideLibrary())('with libpcsclite.so.1 unloadable', () => {
    beforeAll(() => writeFileSync(join(dir, 'empty'), ''));

    it('keytap keys and keytap code --virtual still work', async () => {
      const keys = run(['keys', '--json'], { hideLibrary: true });
      expect(keys.code, keys.stderr).toBe(0);
      expect((JSON.parse(keys.stdout) as Array<{ kind: string }>).filter((k) => k.kind === 'pcsc')).toEqual([]);
      const code = run(['code', 'Demo:alice@example.com', '--virtual', join(dir, 'key.json'), '--json'], { hideLibrary: true });
      expect(code.code, code.stderr).toBe(0);
      const json = JSON.parse(code.stdout) as { code: string; validFrom: string };
      expect(json.code).toBe(await oathtool({ hexSecret: SECRET_HEX, type: 'TOTP', time: Date.parse(json.validFrom) / 1000 }));
    });

    it('the PC/SC library error says what to install', () => {
      const script = `import('${join(import.meta.dirname, '..', '..', 'src', 'device', 'transport', 'pcsc-api.ts')}').then(({ loadPcsc }) => loadPcsc()).then(() => console.log('loaded'), (e) => console.log(JSON.stringify({ code: e.code, message: e.message, hint: e.hint })))`;
      const result = spawnSync('unshare', ['-m', 'sh', '-c', `mount --bind "$0" "${realpathSync(LIBRARY)}" && exec "$@"`, join(dir, 'empty'), process.execPath, '--import', 'tsx', '-e', script], {
        encoding: 'utf8',
        timeout: 30_000,
      });
      expect(JSON.parse(result.stdout.trim())).toEqual({
        code: 'UNSUPPORTED',
        message: 'keytap cannot use smart card readers: the library libpcsclite is missing.',
        hint: 'Install it: sudo apt install libpcsclite1 pcscd (Debian, Ubuntu), sudo dnf install pcsc-lite-libs pcsc-lite (Fedora).',
      });
    });
  });
});
