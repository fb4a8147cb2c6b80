/**
 * A virtual key served by `keytap virtual start` in another process, reached over its socket as a
 * real key is reached over hidraw: found by discovery, touched by `keytap virtual touch`, unplugged
 * by `keytap virtual stop`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { oathtool, runKeytap, spawnKeytap, tempDir, stopServedKeys } from '../support/cli.js';

const SHA1_HEX = Buffer.from('12345678901234567890').toString('hex');
const SHA1_B32 = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';

let env: NodeJS.ProcessEnv = {};

afterEach(() => stopServedKeys(env));

function newEnvironment(): { dir: string; file: string } {
  const dir = tempDir();
  env = { KEYTAP_RUNTIME_DIR: join(dir, 'run') };
  return { dir, file: join(dir, 'served.json') };
}

async function ok(args: string[]): Promise<string> {
  const result = await runKeytap(args, { env });
  if (result.code !== 0) throw new Error(`keytap ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
  return result.stdout;
}

/** Starts `keytap …` and resolves once `text` appeared on its stderr; returns the running process. */
function startUntil(args: string[], text: string): Promise<{ done: Promise<{ code: number | null; stdout: string; stderr: string }> }> {
  return new Promise((resolve, reject) => {
    const child = spawnKeytap(args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((r) => child.on('close', (code) => r({ code, stdout, stderr })));
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (stderr.includes(text)) resolve({ done });
    });
    child.on('error', reject);
    void done.then((r) => reject(new Error(`exited ${r.code} before "${text}": ${r.stderr}`)));
  });
}

describe('a virtual key served to other processes', () => {
  it('exits 3 when no key is connected', async () => {
    newEnvironment();
    const result = await runKeytap(['code'], { env });
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('No key found');
    expect(result.stderr).toContain('--virtual');
  });

  it('is found by discovery, and a manual touch lets the code through', async () => {
    const { file } = newEnvironment();
    await ok(['virtual', 'start', file, '--touch', 'manual']);
    const status = JSON.parse(await ok(['virtual', 'status', '--json'])) as Array<{ file: string; dialect: string }>;
    expect(status).toMatchObject([{ file, dialect: 'yubikey' }]);
    const keys = JSON.parse(await ok(['keys', '--json'])) as Array<{ kind: string }>;
    expect(keys.map((k) => k.kind)).toEqual(['virtual']);

    await ok(['add', '--issuer', 'Served', '--account', 'alice', '--secret', SHA1_B32, '--touch']);
    const reading = await startUntil(['code', 'Served', '--json'], 'Touch your key');
    await ok(['virtual', 'touch', file]);
    const result = await reading.done;
    expect(result.code).toBe(0);
    const json = JSON.parse(result.stdout) as { code: string; validFrom: string };
    expect(json.code).toBe(await oathtool({ hexSecret: SHA1_HEX, type: 'TOTP', time: Date.parse(json.validFrom) / 1000 }));
    await ok(['virtual', 'stop']);
    expect(JSON.parse(await ok(['virtual', 'status', '--json']))).toEqual([]);
  });

  it('exits 5 when the key is not touched in time', async () => {
    const { file } = newEnvironment();
    // A Nitrokey 3 wants a touch to store a touch account too: store it in-process (touched at once), then serve.
    await ok(['add', '--virtual', file, '--dialect', 'nitrokey3', '--account', 'needs-touch', '--secret', SHA1_B32, '--touch']);
    await ok(['virtual', 'start', file, '--touch', 'never', '--touch-timeout', '1000']);
    const result = await runKeytap(['code', 'needs-touch'], { env });
    expect(result.code).toBe(5);
    expect(result.stderr).toContain('not touched in time');
  });

  it('gives a clear error, exit 3, when the key is unplugged while waiting for a touch', async () => {
    const { file } = newEnvironment();
    await ok(['virtual', 'start', file, '--touch', 'manual']);
    await ok(['add', '--account', 'pulled', '--secret', SHA1_B32, '--touch']);
    const reading = await startUntil(['code', 'pulled'], 'Touch your key');
    await ok(['virtual', 'stop', file]);
    const result = await reading.done;
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/removed|unplugged/u);
    expect(result.stderr).not.toMatch(/\n\s+at .+:\d+:\d+/u);
  });

  it('shows each key\'s serial in `keys`, as the key reports it, and --device SERIAL reaches that key (issue 9 item 13)', async () => {
    const { dir, file } = newEnvironment();
    const nk3File = join(dir, 'second.json');
    await ok(['virtual', 'start', file, '--touch', 'auto', '--demo']);
    await ok(['virtual', 'start', nk3File, '--touch', 'auto', '--dialect', 'nitrokey3', '--demo']);
    // The four bytes each store keeps, written as ykman writes a YubiKey's serial (decimal) and as
    // the Nitrokey 3's SELECT tag 8F is written (upper-case hex).
    const bytes = (path: string) => Buffer.from((JSON.parse(readFileSync(path, 'utf8')) as { serial: string }).serial, 'hex');
    const yubikeySerial = String(bytes(file).readUInt32BE(0));
    const nitrokeySerial = bytes(nk3File).toString('hex').toUpperCase();

    const keys = JSON.parse(await ok(['keys', '--json'])) as Array<{ id: string; serial: string | null }>;
    expect(keys.map((k) => k.serial).sort()).toEqual([yubikeySerial, nitrokeySerial].sort());
    const human = await ok(['keys']);
    expect(human).toContain(yubikeySerial);
    expect(human).toContain(nitrokeySerial);

    // --device takes the serial in either case; the PC/SC test reads it from the card itself.
    for (const [serial, dialect] of [
      [yubikeySerial, 'yubikey'],
      [nitrokeySerial, 'nitrokey3'],
      [nitrokeySerial.toLowerCase(), 'nitrokey3'],
    ] as const) {
      const listed = await runKeytap(['list', '--device', serial, '--json'], { env });
      expect(listed.code, `${serial}: ${listed.stderr}`).toBe(0);
      const ids = (JSON.parse(listed.stdout) as Array<{ id: string }>).map((c) => c.id);
      expect(ids.length, dialect).toBeGreaterThan(0);
    }
    const wrong = await runKeytap(['list', '--device', '12345'], { env });
    expect(wrong.code).toBe(3);
    expect(wrong.stderr).toContain('No key with id or serial "12345"');
  });

  it('with several keys connected and none chosen, names the keys and --device when accounts on different keys match', async () => {
    const { dir, file } = newEnvironment();
    await ok(['virtual', 'start', file, '--touch', 'auto', '--demo']);
    await ok(['virtual', 'start', join(dir, 'second.json'), '--touch', 'auto', '--dialect', 'nitrokey3', '--demo']);
    const keys = JSON.parse(await ok(['keys', '--json'])) as Array<{ id: string; serial: string }>;
    // Every demo name is on both keys: "Demo" is one account (read from the first key), "alice" several.
    expect((await runKeytap(['code', 'Demo'], { env: { ...env, KEYTAP_NO_INSTANCE: '1' } })).code).toBe(0);
    const result = await runKeytap(['code', 'alice'], { env: { ...env, KEYTAP_NO_INSTANCE: '1' } });
    expect(result.code).toBe(4);
    expect(result.stderr).toMatch(/accounts match "alice"/u);
    expect(result.stderr).toContain('--device');
    for (const key of keys) expect(result.stderr).toContain(key.serial);
    const chosen = await runKeytap(['code', 'Demo:alice@example.com', '--device', keys[1]!.id], { env });
    expect(chosen.code).toBe(0);
    expect(chosen.stdout).toMatch(/^\d{6}\n$/u);
  });

  it('reads the same account on a key and its backup from the first key, without --device (issue 9 item 19)', async () => {
    const { dir, file } = newEnvironment();
    await ok(['virtual', 'start', file, '--touch', 'auto']);
    await ok(['virtual', 'start', join(dir, 'backup.json'), '--touch', 'auto', '--dialect', 'nitrokey3']);
    const keys = JSON.parse(await ok(['keys', '--json'])) as Array<{ id: string }>;
    expect(keys).toHaveLength(2);
    for (const key of keys) await ok(['add', '--device', key.id, '--issuer', 'VPN', '--account', 'alice', '--secret', SHA1_B32]);
    await ok(['add', '--device', keys[1]!.id, '--issuer', 'Bank', '--account', 'alice', '--secret', SHA1_B32]);
    const direct = { ...env, KEYTAP_NO_INSTANCE: '1' };
    const before = Math.floor(Date.now() / 1000);
    const result = await runKeytap(['code', 'VPN'], { env: direct });
    const after = Math.floor(Date.now() / 1000);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const expected = [await oathtool({ hexSecret: SHA1_HEX, type: 'TOTP', time: before }), await oathtool({ hexSecret: SHA1_HEX, type: 'TOTP', time: after })];
    expect(expected).toContain(result.stdout.trim());
    // An account on one key only is found there, whichever key it is on.
    expect((await runKeytap(['code', 'Bank'], { env: direct })).code).toBe(0);
    // Different accounts on different keys: ambiguous, and the keys are named.
    const both = await runKeytap(['code', 'alice'], { env: direct });
    expect(both.code).toBe(4);
    expect(both.stderr).toContain('--device');
  });

});
