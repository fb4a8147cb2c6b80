/**
 * Peer test: Debian's python3-fido2 0.9.1 (test/peers/fido2_ctaphid.py, through the socket
 * harness test/peers/virtual_hid.py) against a virtual key served in this process. Skipped, with
 * the reason, only where /usr/bin/python3 has no fido2 (CI installs python3-fido2); the pyenv
 * python3 on PATH would not have the Debian packages.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { virtualKeyId } from '../../src/emulator/registry.js';
import { serveVirtualKey } from '../../src/emulator/server.js';
import type { VirtualKeyServer } from '../../src/emulator/server.js';
import type { Dialect } from '../../src/device/oath/dialect.js';
import { VirtualKey } from '../../src/emulator/virtual-key.js';

const PYTHON = '/usr/bin/python3';
const SCRIPT = join(import.meta.dirname, 'fido2_ctaphid.py');
const HELD_SCRIPT = join(import.meta.dirname, 'fido2_ctaphid_held.py');

function missingPeer(): string | undefined {
  try {
    execFileSync(PYTHON, ['-c', 'import fido2.hid'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return `${PYTHON} cannot import fido2 (install the Debian package python3-fido2)`;
  }
}

const missing = missingPeer();
if (missing) console.warn(`skipping the python3-fido2 peer test: ${missing}`);

interface PeerResult {
  ok: boolean;
  checks: Array<{ name: string; ok: boolean; detail: unknown }>;
  init: { cid: number; version: number; device_version: number[]; capabilities: number };
}

function runPeer(socketPath: string, script = SCRIPT): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(PYTHON, [script, socketPath], { timeout: 60_000, env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

describe.skipIf(missing !== undefined)('python3-fido2 0.9.1 CTAPHID against the virtual key', () => {
  let dir: string;
  const served: Array<{ key: VirtualKey; server: VirtualKeyServer }> = [];
  const savedRuntimeDir = process.env.KEYTAP_RUNTIME_DIR;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'keytap-fido2-'));
    process.env.KEYTAP_RUNTIME_DIR = join(dir, 'run');
  });

  afterAll(async () => {
    for (const { key, server } of served) {
      await server.close();
      await key.close();
    }
    if (savedRuntimeDir === undefined) delete process.env.KEYTAP_RUNTIME_DIR;
    else process.env.KEYTAP_RUNTIME_DIR = savedRuntimeDir;
    await rm(dir, { recursive: true, force: true });
  });

  it.each<[Dialect, number[]]>([
    ['yubikey', [5, 4, 3]],
    ['nitrokey3', [1, 6, 0]],
  ])('INIT, PING up to the maximum, WINK, 0x70 with SW first, MSG in ISO order (%s)', async (dialect, version) => {
    const file = join(dir, `${dialect}.json`);
    const key = await VirtualKey.open({ file, dialect });
    const server = await serveVirtualKey(key, { id: virtualKeyId(file), file, dialect, serial: key.serial });
    served.push({ key, server });
    const { code, stdout, stderr } = await runPeer(server.socketPath);
    let result: PeerResult | undefined;
    try {
      result = JSON.parse(stdout) as PeerResult;
    } catch {
      result = undefined;
    }
    expect(result, `peer output:\n${stdout}\n${stderr}`).toBeDefined();
    expect(result!.checks.filter((c) => !c.ok)).toEqual([]);
    expect(result!.checks.length).toBeGreaterThanOrEqual(15);
    expect(result!.init).toMatchObject({ version: 2, device_version: version, capabilities: 1 });
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    if (process.env.KEYTAP_DEBUG_PEER) console.log(stdout);
  });

  it('answers CHANNEL_BUSY while another client holds a message open, ends that message with MSG_TIMEOUT, then answers (issue 9 item 9)', async () => {
    // The YubiKey dialect takes the longest message (7609 bytes), which takes longest to send.
    const file = join(dir, 'held.json');
    const key = await VirtualKey.open({ file, dialect: 'yubikey' });
    const server = await serveVirtualKey(key, { id: virtualKeyId(file), file, dialect: 'yubikey', serial: key.serial });
    served.push({ key, server });
    const { code, stdout, stderr } = await runPeer(server.socketPath, HELD_SCRIPT);
    let result: { ok: boolean; checks: Array<{ name: string; ok: boolean; detail: unknown }> } | undefined;
    try {
      result = JSON.parse(stdout) as typeof result;
    } catch {
      result = undefined;
    }
    expect(result, `peer output:\n${stdout}\n${stderr}`).toBeDefined();
    expect(result!.checks.filter((c) => !c.ok)).toEqual([]);
    expect(result!.checks).toHaveLength(4);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
  }, 30_000);
});
