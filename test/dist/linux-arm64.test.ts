// The Linux arm64 executable, run on this x86-64 machine by qemu's user-mode emulator with
// Debian's arm64 C and C++ runtimes (qemu-user, libc6-arm64-cross, libstdc++6-arm64-cross from
// .ci/run). Slow (seconds per run), so only the essentials: it starts, prints its version, and
// computes the code oathtool computes.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { oathtool, tempDir } from '../support/cli.js';
import { VERSION, artifact } from '../support/dist.js';

const SECRET_B32 = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
const SECRET_HEX = Buffer.from('12345678901234567890').toString('hex');
const ARM64_RUNTIME = '/usr/aarch64-linux-gnu';

function underQemu(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('qemu-aarch64', [artifact('linux-arm64'), ...args], { env: { ...process.env, ...env, QEMU_LD_PREFIX: ARM64_RUNTIME }, timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr }),
    );
  });
}

describe('the Linux arm64 executable (under qemu-aarch64)', () => {
  it('is an aarch64 program that prints its version and the code oathtool computes', async () => {
    const file = await import('node:fs').then((fs) => fs.readFileSync(artifact('linux-arm64')).subarray(0, 20));
    expect([file.subarray(0, 4).toString('latin1'), file.readUInt16LE(18)]).toEqual(['\x7fELF', 183]); // EM_AARCH64
    const dir = tempDir('keytap-arm64-');
    const env = { XDG_CACHE_HOME: join(dir, 'cache'), KEYTAP_RUNTIME_DIR: join(dir, 'run'), KEYTAP_DATA_DIR: join(dir, 'data') };
    expect(await underQemu(['--version'], env)).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
    const keyFile = join(dir, 'key.json');
    const added = await underQemu(['add', '--virtual', keyFile, '--issuer', 'Arm', '--account', 'a', '--secret', SECRET_B32], env);
    expect(added.code, added.stderr).toBe(0);
    const read = await underQemu(['code', '--virtual', keyFile, '--json'], env);
    expect(read.code, read.stderr).toBe(0);
    const { code, validFrom } = JSON.parse(read.stdout) as { code: string; validFrom: string };
    expect(code).toBe(await oathtool({ hexSecret: SECRET_HEX, type: 'TOTP', time: Date.parse(validFrom) / 1000 }));
  }, 120_000);
});
