// The Windows single executable (dist/keytap-VERSION-win-x64.exe) under Wine 8, through the
// harness in test/support/wine.ts (output on files: Node's stdio on a pipe fails under Wine).
// What a Windows user does first: the version, a code from a virtual key (oathtool is the
// reference), checking an Entra seed file, programming a key with seed files that the Linux build
// reads back; and what must never crash: looking for real keys where Wine's HID and PC/SC are
// stubs. The asset cache goes to %LOCALAPPDATA%\keytap\VERSION, in a prefix of its own.
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { base32Decode } from '../../src/otp/encoding.js';
import { oathtool, runProgram, tempDir } from '../support/cli.js';
import type { RunResult } from '../support/cli.js';
import { VERSION, artifact } from '../support/dist.js';
import type { IsolatedPrefix, WineRunResult } from '../support/wine.js';
import { isolatedWinePrefix, localAppData, runUnderWine, toWindowsPath } from '../support/wine.js';

const DEMO_SECRET_HEX = Buffer.from('12345678901234567890').toString('hex');
const RFC_SECRET = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
const ENTRA_HEADER = 'upn,serial number,secret key,time interval,manufacturer,model';

let prefix: IsolatedPrefix;
let dir: string;

function keytap(args: string[], env: Record<string, string> = {}): Promise<WineRunResult> {
  return runUnderWine(artifact('win-x64'), args, { prefix: prefix.path, env, timeoutMs: 90_000 });
}

/** The Linux executable, for reading back what the Windows one wrote. */
function linux(args: string[]): Promise<RunResult> {
  return runProgram(artifact('linux-x64'), args, { env: { ...process.env, XDG_CACHE_HOME: join(dir, 'linux-cache') } });
}

function expectClean(result: WineRunResult): void {
  expect(result.crashed, result.stderr).toBe(false);
  expect(result.stderr).not.toMatch(/\n\s+at .+:\d+:\d+/u); // no stack trace
}

describe('the Windows executable under Wine', () => {
  beforeAll(async () => {
    prefix = await isolatedWinePrefix();
    dir = tempDir('keytap-win-');
  }, 120_000);
  afterAll(async () => {
    await prefix?.dispose();
  });

  it('prints its version and extracts its files to %LOCALAPPDATA%\\keytap\\VERSION on first use', async () => {
    const result = await keytap(['--version']);
    expectClean(result);
    expect([result.code, result.stdout.trim()]).toEqual([0, VERSION]);
    const cache = join(localAppData(prefix.path), 'keytap', VERSION);
    expect(readdirSync(join(cache, 'bundle'))).toEqual(['keytap-cli.cjs']);
  });

  it('reads a code from a virtual key, equal to oathtool\'s', async () => {
    const keyFile = toWindowsPath(join(dir, 'demo.json'));
    const result = await keytap(['code', '--virtual', keyFile, '--demo', 'Demo:alice', '--json']);
    expectClean(result);
    expect(result.code, result.stderr).toBe(0);
    const { code, validFrom } = JSON.parse(result.stdout) as { code: string; validFrom: string };
    expect(code).toBe(await oathtool({ hexSecret: DEMO_SECRET_HEX, type: 'TOTP', time: Date.parse(validFrom) / 1000 }));
  });

  it('checks Entra seed files: a good one exits 0, a bad one 4 with the line named', async () => {
    const good = join(dir, 'good.csv');
    const bad = join(dir, 'bad.csv');
    writeFileSync(good, `${ENTRA_HEADER}\nalice@contoso.com,1001,${RFC_SECRET},30,A,B\n`);
    writeFileSync(bad, `${ENTRA_HEADER}\nalice@contoso.com,1001,${RFC_SECRET},30,A,B\nbob@contoso.com,1002,${RFC_SECRET},45,A,B\n`);
    const ok = await keytap(['seeds', 'check', toWindowsPath(good)]);
    expectClean(ok);
    expect([ok.code, ok.stdout]).toEqual([0, expect.stringMatching(/good\.csv: OK, 1 token/u)]);
    const refused = await keytap(['seeds', 'check', toWindowsPath(bad)]);
    expectClean(refused);
    expect(refused.code).toBe(4);
    expect(refused.stdout).toMatch(/^bad\.csv:3: error: .*interval/mu);
  });

  it('programs a virtual key and writes Entra and PSKC files that the Linux build reads back', async () => {
    const key = join(dir, 'programmed.json');
    const out = join(dir, 'seeds');
    const result = await keytap(['program', '--virtual', toWindowsPath(key), '--yes', '--formats', 'entra,pskc', '--upn', 'alice@contoso.com', '--out', toWindowsPath(out)]);
    expectClean(result);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/programmed serial KT\d{8} as "alice@contoso\.com" on virtual key .*programmed\.json; verified\./u);
    expect(readdirSync(out).sort()).toEqual(['ledger.jsonl', 'tseeds.csv', 'tseeds.pskcxml']);
    // Linux reads both files: the same token, whose code at a given time is oathtool's, and is
    // what the programmed key itself computes.
    const time = Math.floor(Date.now() / 1000);
    const tokens = [];
    for (const file of ['tseeds.csv', 'tseeds.pskcxml']) {
      const read = await linux(['seeds', 'codes', join(out, file), '--time', String(time), '--show-secrets']);
      expect(read.code, read.stderr).toBe(0);
      // "SERIAL  CODE  UPN  TOTP 30 s, N s left  SECRET"
      const fields = read.stdout.trim().split(/\s+/u);
      tokens.push({ serial: fields[0], code: fields[1], upn: fields[2], secret: fields.at(-1)! });
    }
    expect(tokens[1]).toEqual(tokens[0]);
    const secretHex = Buffer.from(base32Decode(tokens[0]!.secret)).toString('hex');
    expect(tokens[0]).toMatchObject({ upn: 'alice@contoso.com', code: await oathtool({ hexSecret: secretHex, type: 'TOTP', time }) });
    const fromKey = await linux(['code', '--virtual', key, 'alice', '--json']);
    expect(fromKey.code, fromKey.stderr).toBe(0);
    const { code, validFrom } = JSON.parse(fromKey.stdout) as { code: string; validFrom: string };
    expect(code).toBe(await oathtool({ hexSecret: secretHex, type: 'TOTP', time: Date.parse(validFrom) / 1000 }));
  });

  it('looks for real keys without crashing where Wine\'s HID and PC/SC are stubs: the reason, not a stack trace', async () => {
    // Wine 8's cfgmgr32 lacks what hidapi needs (test/support/wine.ts), so node-hid cannot start;
    // its PC/SC is a stub that answers SCARD_F_INTERNAL_ERROR. With no key anywhere, the HID
    // failure is the likelier reason and is what keytap reports.
    for (const command of [['list'], ['keys']]) {
      const result = await keytap(command);
      expectClean(result);
      expect(result.code, result.stderr).not.toBe(0);
      expect(result.stderr).toMatch(/^keytap: .*cannot talk to USB keys/mu);
    }
  });

  it('reuses its extracted files on the next run, and replaces a damaged one', async () => {
    const cache = join(localAppData(prefix.path), 'keytap', VERSION);
    const bundle = join(cache, 'bundle', 'keytap-cli.cjs');
    const original = readFileSync(bundle);
    writeFileSync(bundle, Buffer.alloc(original.length, 0x20));
    const result = await keytap(['--version']);
    expectClean(result);
    expect([result.code, result.stdout.trim()]).toEqual([0, VERSION]);
    expect(readFileSync(bundle).equals(original)).toBe(true);
    expect(existsSync(join(cache, 'native'))).toBe(true); // `list` above needed node-hid's addon
  });
});
