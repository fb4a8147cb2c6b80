/**
 * Peer test: yubikit from Debian's python3-ykman 4.0.9 runs OathSession against the virtual key
 * (YubiKey dialect), over CTAPHID vendor command 0x70 on the virtual key's socket. See
 * test/peers/ykman_oath.py for what is checked. Skipped where /usr/bin/python3 has no yubikit
 * (the pyenv python3 on PATH would not have the Debian packages).
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { virtualKeyId } from '../../src/emulator/registry.js';
import { serveVirtualKey } from '../../src/emulator/server.js';
import type { VirtualKeyServer } from '../../src/emulator/server.js';
import { VirtualKey } from '../../src/emulator/virtual-key.js';

const PYTHON = '/usr/bin/python3';
const HERE = join(import.meta.dirname, '.');
const SCRIPT = join(HERE, 'ykman_oath.py');

function havePeer(): boolean {
  if (!existsSync(PYTHON) || !existsSync(join(HERE, 'virtual_hid.py'))) return false;
  try {
    execFileSync(PYTHON, ['-c', 'import yubikit.oath, fido2.hid'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe.runIf(havePeer())('yubikit 4.0.9 OathSession against the virtual key', () => {
  let dir: string;
  let key: VirtualKey;
  let server: VirtualKeyServer;
  const savedRuntimeDir = process.env.KEYTAP_RUNTIME_DIR;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'keytap-ykman-'));
    process.env.KEYTAP_RUNTIME_DIR = join(dir, 'run');
    const file = join(dir, 'key.json');
    // The touch credential is touched by itself shortly after the key asks.
    key = await VirtualKey.open({ file, dialect: 'yubikey', touch: { mode: 'auto', delayMs: 50 } });
    server = await serveVirtualKey(key, { id: virtualKeyId(file), file, dialect: 'yubikey', serial: key.serial });
  });

  afterAll(async () => {
    await server?.close();
    await key?.close();
    if (savedRuntimeDir === undefined) delete process.env.KEYTAP_RUNTIME_DIR;
    else process.env.KEYTAP_RUNTIME_DIR = savedRuntimeDir;
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('put, list, calculate, calculate_all, rename, delete, password, reset: codes match Python hmac', async () => {
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(PYTHON, [SCRIPT, server.socketPath], { timeout: 90_000, env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } }, (error, out, err) => {
        const exit = error ? ((error as { code?: unknown }).code as number | undefined) ?? 1 : 0;
        resolve({ code: typeof exit === 'number' ? exit : 1, stdout: out, stderr: err });
      });
    });
    expect({ code, stderr: stderr.slice(-3000) }).toEqual({ code: 0, stderr: expect.any(String) });
    expect(stdout).toContain('all ykman OATH checks passed');
  }, 120_000);
});
