// The built CLI on seed files that are valid but unusual, or not what the command expects:
// PBKDF2 above the cap (consent with --allow-slow-kdf), counters above 2^32 (refused only when
// programming a key), TimeInterval above 65535, several keys on one device (--key-id), ykman's
// FriendlyName, and a file that is something else said once (seeds check, seeds codes, program --from).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hexEncode } from '../../src/otp/encoding.js';
import type { SeedToken } from '../../src/seeds/index.js';
import { PSKC_MAX_ITERATIONS, seedFormat } from '../../src/seeds/index.js';
import { oathtool, runKeytap, tempDir } from '../support/cli.js';

const SECRET = Uint8Array.from(Buffer.from('12345678901234567890'));
const FIGURE10 = join(import.meta.dirname, '../fixtures/pskc/rfc-figure10.pskcxml');
const PEER = join(import.meta.dirname, '../peers/pskc_peer.py');

function pskcFile(dir: string, tokens: SeedToken[]): string {
  const file = join(dir, 'tokens.pskcxml');
  writeFileSync(file, seedFormat('pskc').write(tokens));
  return file;
}

describe('keytap seeds codes and program --from on valid RFC 6030 files', () => {
  it(`more than ${PSKC_MAX_ITERATIONS} PBKDF2 iterations: refused, naming --allow-slow-kdf; read with it`, async () => {
    const dir = tempDir();
    const file = join(dir, 'slow.pskcxml');
    const spec = { keys: [{ serial: 'P1', secret: hexEncode(SECRET), algorithm: 'urn:ietf:params:xml:ns:keyprov:pskc:hotp', digits: 6, counter: 4 }], protection: { kind: 'passphrase', passphrase: 'qwerty', iterations: PSKC_MAX_ITERATIONS + 1 } };
    execFileSync('/usr/bin/python3', [PEER, 'write', file, JSON.stringify(spec)]);
    const refused = await runKeytap(['seeds', 'codes', file, '--passphrase', 'qwerty']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`asks for ${PSKC_MAX_ITERATIONS + 1} PBKDF2 iterations; keytap derives at most ${PSKC_MAX_ITERATIONS} without consent`);
    expect(refused.stderr).toMatch(/give --allow-slow-kdf\./u);
    const fromFile = await runKeytap(['program', '--virtual', join(dir, 'k.json'), '--yes', '--from', file, '--from-passphrase', 'qwerty', '--out', join(dir, 'out')]);
    expect(fromFile.code).toBe(2);
    expect(fromFile.stderr).toMatch(/give --allow-slow-kdf\./u);
    const read = await runKeytap(['seeds', 'codes', file, '--passphrase', 'qwerty', '--allow-slow-kdf']);
    expect(read.code).toBe(0);
    expect(read.stdout.split(/\s+/u)[1]).toBe(await oathtool({ hexSecret: hexEncode(SECRET), type: 'HOTP', counter: 4 }));
  });

  it('an HOTP counter above 2^32: seeds codes shows its code; programming a key refuses it, saying why, before anything is written', async () => {
    const dir = tempDir();
    const counter = 2 ** 40 + 3;
    const file = pskcFile(dir, [{ serial: 'C1', secret: SECRET, type: 'HOTP', algorithm: 'SHA1', digits: 6, period: 30, counter }]);
    const codes = await runKeytap(['seeds', 'codes', file]);
    expect(codes.code).toBe(0);
    expect(codes.stdout.split(/\s+/u)[1]).toBe(await oathtool({ hexSecret: hexEncode(SECRET), type: 'HOTP', counter }));
    const out = join(dir, 'out');
    const key = join(dir, 'k.json');
    const program = await runKeytap(['program', '--virtual', key, '--yes', '--from', file, '--out', out]);
    expect(program.code).toBe(2);
    expect(program.stderr).toContain(`The HOTP counter ${counter} does not fit on a key: keys keep a 4-byte counter (0 to 4294967295).`);
    // Refused before the key was opened: not even the virtual key's file was made, and no ledger is left.
    expect(existsSync(join(out, 'ledger.jsonl'))).toBe(false);
    expect(existsSync(key)).toBe(false);
  });

  it('a TimeInterval above 65535 is programmed, and the key computes the codes oathtool computes', async () => {
    const dir = tempDir();
    const period = 172_800;
    const file = pskcFile(dir, [{ serial: 'T1', secret: SECRET, type: 'TOTP', algorithm: 'SHA1', digits: 6, period, counter: 0, account: 'two-days' }]);
    const key = join(dir, 'k.json');
    const program = await runKeytap(['program', '--virtual', key, '--yes', '--from', file, '--out', join(dir, 'out')]);
    expect(program.code).toBe(0);
    expect(program.stdout).toContain(`as "${period}/two-days"`);
    const now = Math.floor(Date.now() / 1000);
    const code = await runKeytap(['code', '--virtual', key, 'two-days']);
    expect(code.stdout.trim()).toBe(await oathtool({ hexSecret: hexEncode(SECRET), type: 'TOTP', period, time: now }));
  });

  it('ykman\'s FriendlyName "Issuer:account" next to Issuer: the name on the key has the issuer once', async () => {
    const dir = tempDir();
    const file = join(dir, 'ykman.pskcxml');
    const spec = { keys: [{ serial: '1', secret: hexEncode(SECRET), algorithm: 'urn:ietf:params:xml:ns:keyprov:pskc:totp', digits: 6, period: 30, issuer: 'Example', friendly_name: 'Example:alice@example.com', key_userid: 'CN=alice@example.com' }] };
    execFileSync('/usr/bin/python3', [PEER, 'write', file, JSON.stringify(spec)]);
    const program = await runKeytap(['program', '--virtual', join(dir, 'k.json'), '--yes', '--from', file, '--out', join(dir, 'out')]);
    expect(program.code).toBe(0);
    expect(program.stdout).toContain('as "Example:alice@example.com"');
  });

  it('RFC 6030 Figure 10 (two keys of device 9999999): every key is read; --serial asks for --key-id, which chooses', async () => {
    const dir = tempDir();
    const codes = await runKeytap(['seeds', 'codes', FIGURE10]);
    expect(codes.code).toBe(0);
    expect(codes.stdout.trim().split('\n').map((l) => l.split(/\s+/u)[0])).toEqual(['654321/1', '123456/2', '9999999/3', '9999999/4']);
    const ask = await runKeytap(['program', '--virtual', join(dir, 'k.json'), '--yes', '--from', FIGURE10, '--serial', '9999999', '--out', join(dir, 'out')]);
    expect(ask.code).toBe(2);
    expect(ask.stderr).toContain('Serial 9999999 in');
    expect(ask.stderr).toContain('has 2 keys (Id 3, 4); choose one with --key-id.');
    const chosen = await runKeytap(['program', '--virtual', join(dir, 'k.json'), '--yes', '--from', FIGURE10, '--serial', '9999999', '--key-id', '4', '--account', 'four', '--out', join(dir, 'out')]);
    expect(chosen.code).toBe(0);
    expect(chosen.stdout).toContain('programmed serial 9999999 as "Issuer:four"');
  });
});

describe('a file that is not what the command expects is named once', () => {
  it('seeds check on a PSKC file: one line saying what it is, exit 4', async () => {
    const dir = tempDir();
    const file = pskcFile(dir, [{ serial: 'T1', secret: SECRET, type: 'TOTP', algorithm: 'SHA1', digits: 6, period: 30, counter: 0 }]);
    const check = await runKeytap(['seeds', 'check', file]);
    expect(check.code).toBe(4);
    expect(check.stdout.trim().split('\n')).toEqual(['tokens.pskcxml:1: error: this is a PSKC (RFC 6030) file, not an Entra ID CSV']);
  });

  it('--format naming another format than the content says: one error saying what the file is', async () => {
    const dir = tempDir();
    const file = pskcFile(dir, [{ serial: 'T1', secret: SECRET, type: 'TOTP', algorithm: 'SHA1', digits: 6, period: 30, counter: 0 }]);
    const codes = await runKeytap(['seeds', 'codes', file, '--format', 'entra']);
    expect(codes.code).toBe(2);
    expect(codes.stderr).toBe('keytap: tokens.pskcxml is a PSKC (RFC 6030) file, not an Entra ID CSV file.\n');
    const program = await runKeytap(['program', '--virtual', join(dir, 'k.json'), '--yes', '--from', file, '--format', 'hexcsv', '--out', join(dir, 'out')]);
    expect(program.code).toBe(2);
    expect(program.stderr).toBe('keytap: tokens.pskcxml is a PSKC (RFC 6030) file, not a hex CSV file.\n');
  });

  it('seeds codes and program --from on a ledger: "a keytap ledger, not a seed file", with what to do instead', async () => {
    const dir = tempDir();
    const out = join(dir, 'seeds');
    expect((await runKeytap(['program', '--virtual', join(dir, 'k.json'), '--yes', '--out', out])).code).toBe(0);
    const ledger = join(out, 'ledger.jsonl');
    const codes = await runKeytap(['seeds', 'codes', ledger]);
    expect(codes.code).toBe(2);
    expect(codes.stderr).toBe(`keytap: ledger.jsonl is a keytap ledger (the enrollment ledger of a programming run), not a seed file.\n  "keytap seeds export --ledger ${out} --format LIST" writes seed files from it.\n`);
    const program = await runKeytap(['program', '--virtual', join(dir, 'k2.json'), '--yes', '--from', ledger, '--out', join(dir, 'other')]);
    expect(program.code).toBe(2);
    expect(program.stderr).toContain('is a keytap ledger');
  });

  it('program --from a hex CSV with CR-only line ends; --format names a format; --format without --from is a usage error', async () => {
    const dir = tempDir();
    const file = join(dir, 'hseeds.txt');
    writeFileSync(file, `H1,${hexEncode(SECRET)},5\rH2,${hexEncode(SECRET)},9\r`);
    const program = await runKeytap(['program', '--virtual', join(dir, 'k.json'), '--yes', '--from', file, '--serial', 'H2', '--out', join(dir, 'out'), '--formats', 'hexcsv']);
    expect(program.code).toBe(0);
    expect(seedFormat('hexcsv').read(readFileSync(join(dir, 'out', 'hseeds.csv'))).map((t) => [t.serial, t.counter])).toEqual([['H2', 10]]);
    // --format is what the file is read as: as privacyIDEA's CSV, its third column is a type.
    const named = await runKeytap(['program', '--virtual', join(dir, 'k2.json'), '--yes', '--from', file, '--format', 'privacyidea', '--serial', 'H1', '--out', join(dir, 'out2')]);
    expect(named.code).toBe(2);
    expect(named.stderr).toMatch(/privacyIDEA CSV file has 2 problems:\nline 1: the token type \(the third column\) is not TOTP or HOTP/u);
    const hex = await runKeytap(['program', '--virtual', join(dir, 'k2.json'), '--yes', '--from', file, '--format', 'hexcsv', '--serial', 'H1', '--out', join(dir, 'out2')]);
    expect(hex.code).toBe(0);
    const usage = await runKeytap(['program', '--virtual', join(dir, 'k3.json'), '--yes', '--format', 'hexcsv', '--out', join(dir, 'out3')]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('--format applies to the seed file of --from only.');
  });
});
