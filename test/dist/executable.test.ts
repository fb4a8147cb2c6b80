// The Linux single executable (npm run dist) as a downloaded program: its version, its asset cache
// (first run extracts, later runs do not, a damaged file is replaced, racing first runs both
// work), and SHA256SUMS. The CLI behaviour itself is tested by the "executable" project in
// vitest.config.ts, which runs the CLI stack tests against this same file.
import { execFile } from 'node:child_process';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { oathtool, runProgram, tempDir } from '../support/cli.js';
import type { RunResult } from '../support/cli.js';
import { DIST, VERSION, artifact } from '../support/dist.js';

const SECRET_B32 = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
const SECRET_HEX = Buffer.from('12345678901234567890').toString('hex');

/** The executable itself, whatever KEYTAP_UNDER_TEST says; `env` is added to this process's environment. */
function runExecutable(args: string[], env: NodeJS.ProcessEnv): Promise<RunResult> {
  return runProgram(artifact('linux-x64'), args, { env: { ...process.env, ...env } });
}

/** A fresh user: an empty cache folder and a virtual key with one account. */
async function freshUser(): Promise<{ env: NodeJS.ProcessEnv; cache: string; keyFile: string }> {
  const dir = tempDir('keytap-exe-');
  const env = { XDG_CACHE_HOME: join(dir, 'cache'), KEYTAP_RUNTIME_DIR: join(dir, 'run'), KEYTAP_CONFIG_DIR: join(dir, 'config'), KEYTAP_DATA_DIR: join(dir, 'data') };
  const keyFile = join(dir, 'key.json');
  const added = await runExecutable(['add', '--virtual', keyFile, '--issuer', 'Exe', '--account', 'alice', '--secret', SECRET_B32], env);
  expect(added.code, added.stderr).toBe(0);
  return { env, cache: join(dir, 'cache', 'keytap', VERSION), keyFile };
}

function filesUnder(dir: string): Map<string, { ino: number; mtimeMs: number }> {
  const found = new Map<string, { ino: number; mtimeMs: number }>();
  const walk = (at: string): void => {
    for (const entry of readdirSync(at, { withFileTypes: true })) {
      const path = join(at, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'compile-cache') walk(path);
      } else {
        const { ino, mtimeMs } = statSync(path);
        found.set(path, { ino, mtimeMs });
      }
    }
  };
  walk(dir);
  return found;
}

describe('the Linux single executable', () => {
  it('prints its version with --version and -V', async () => {
    for (const flag of ['--version', '-V']) {
      const result = await runExecutable([flag], {});
      expect(result).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
    }
  });

  it('extracts what a command needs on the first run, nothing on the second, and replaces a damaged file', async () => {
    const { env, cache, keyFile } = await freshUser();
    const first = await runExecutable(['code', '--virtual', keyFile, '--json'], env);
    expect(first.code, first.stderr).toBe(0);
    const entry = JSON.parse(first.stdout) as { code: string; validFrom: string };
    expect(entry.code).toBe(await oathtool({ hexSecret: SECRET_HEX, type: 'TOTP', time: Date.parse(entry.validFrom) / 1000 }));
    // A plain `list` looks for real keys: node-hid's addon is written out as well, loads, and finds none here.
    const listed = await runExecutable(['list'], env);
    expect([listed.code, listed.stderr.split('\n')[0]]).toEqual([3, 'keytap: No key found.']);
    const written = filesUnder(cache);
    expect([...written.keys()].map((path) => path.slice(cache.length + 1))).toEqual(expect.arrayContaining(['bundle/keytap-cli.cjs', 'native/HID_hidraw.node']));
    expect(statSync(cache).mode & 0o777).toBe(0o700);

    const again = await runExecutable(['code', '--virtual', keyFile], env);
    expect(again.code, again.stderr).toBe(0);
    expect(filesUnder(cache)).toEqual(written);

    const bundle = join(cache, 'bundle', 'keytap-cli.cjs');
    const original = readFileSync(bundle);
    writeFileSync(bundle, Buffer.alloc(original.length, 0x20)); // same size, all spaces: would "run" and do nothing
    const repaired = await runExecutable(['code', '--virtual', keyFile], env);
    expect(repaired.code, repaired.stderr).toBe(0);
    expect(repaired.stdout).toMatch(/^\d{6}\n$/u);
    expect(readFileSync(bundle).equals(original)).toBe(true);
  });

  it('works when two first runs race for the same empty cache', async () => {
    const { env, keyFile, cache } = await freshUser();
    const { rmSync } = await import('node:fs');
    rmSync(cache, { recursive: true, force: true });
    const runs = await Promise.all([1, 2, 3].map(() => runExecutable(['code', '--virtual', keyFile], env)));
    for (const run of runs) {
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toMatch(/^\d{6}\n$/u);
    }
  });

  it('is listed in SHA256SUMS with its true digest, as is every other artifact there', async () => {
    const sums = readFileSync(artifact('sums'), 'utf8');
    expect(sums).toContain(`  keytap-${VERSION}-linux-x64\n`);
    const checked = await new Promise<{ code: number | null; out: string }>((resolve) => {
      execFile('sha256sum', ['--check', '--strict', 'SHA256SUMS'], { cwd: DIST }, (error, stdout) => resolve({ code: error ? (error.code as number) : 0, out: stdout }));
    });
    expect(checked.code, checked.out).toBe(0);
    expect(checked.out.trim().split('\n').every((line) => line.endsWith(': OK'))).toBe(true);
  });
});
