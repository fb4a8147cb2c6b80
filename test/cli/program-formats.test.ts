// The seed files `keytap program` writes when --formats is left out (what Deepnet's programming
// tool writes for the token's type, plus PSKC), HOTP into DualShield (no counter) after the
// verification has used counter 0, and every format that cannot carry a token named with the
// token and the reason, by `program` and by `seeds export`.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { hexEncode } from '../../src/otp/encoding.js';
import { readLedger } from '../../src/provision/ledger.js';
import { seedFormat } from '../../src/seeds/index.js';
import { oathtool, runKeytap, tempDir } from '../support/cli.js';
import { Programmer, VirtualKeys, entryForStoredKey } from '../provision/support.js';

const PSKC_PEER = join(import.meta.dirname, '..', 'peers', 'pskc_peer.py');

/** python-pskc (Debian python3-pskc) reads the file: the peer for PSKC. */
function pskcPeer(file: string): Array<{ serial: string; secret: string; counter: number | null; algorithm: string }> {
  return (JSON.parse(execFileSync('/usr/bin/python3', [PSKC_PEER, 'read', file], { encoding: 'utf8' })) as { keys: Array<{ serial: string; secret: string; counter: number | null; algorithm: string }> }).keys;
}

describe('keytap program with the default formats', () => {
  it('HOTP: hseeds.csv, hseeds.xml and hseeds.pskcxml agree with the ledger, and with oathtool at the recorded counter the key is at', async () => {
    const dir = tempDir();
    const out = join(dir, 'seeds');
    const key = join(dir, 'key.json');
    const result = await runKeytap(['program', '--virtual', key, '--yes', '--type', 'hotp', '--serial', 'H1', '--out', out]);
    expect(result.stderr).not.toMatch(/left out|Not writing|not written/u);
    expect(result.code).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['hseeds.csv', 'hseeds.pskcxml', 'hseeds.xml', 'ledger.jsonl']);
    for (const name of ['hseeds.csv (hex CSV): 1 token(s)', 'hseeds.xml (DualShield XML): 1 token(s)', 'hseeds.pskcxml (PSKC (RFC 6030)): 1 token(s)']) expect(result.stderr).toContain(`wrote ${name}`);

    const [entry] = (await readLedger(out)).entries;
    expect(entry!.counterAfter).toBe(1);
    const seed = hexEncode(entry!.token.secret);
    const [csv] = seedFormat('hexcsv').read(readFileSync(join(out, 'hseeds.csv')));
    expect(csv).toMatchObject({ serial: 'H1', counter: 1 });
    expect(hexEncode(csv!.secret)).toBe(seed);
    // DualShield has no counter: the file reads as counter 0, and the key's next code (counter 1) is the first of the server's look-ahead window.
    const xml = readFileSync(join(out, 'hseeds.xml'), 'utf8');
    expect(xml).toContain('<productCode>SE</productCode>');
    expect(xml).not.toContain('timeWindow');
    const [dualshield] = seedFormat('dualshield').read(Buffer.from(xml));
    expect(dualshield).toMatchObject({ serial: 'H1', type: 'HOTP', digits: 6, algorithm: 'SHA1' });
    expect(hexEncode(dualshield!.secret)).toBe(seed);
    const [peer] = pskcPeer(join(out, 'hseeds.pskcxml'));
    expect(peer).toMatchObject({ serial: 'H1', secret: seed, counter: 1, algorithm: 'urn:ietf:params:xml:ns:keyprov:pskc:hotp' });

    const next = await oathtool({ hexSecret: seed, type: 'HOTP', counter: entry!.counterAfter! });
    expect((await runKeytap(['code', '--virtual', key, 'H1'])).stdout.trim()).toBe(next);
  });

  it('TOTP without a user: tseeds.xml and tseeds.pskcxml, and no tseeds.csv, saying why; with a user tseeds.csv too', async () => {
    const dir = tempDir();
    const out = join(dir, 'seeds');
    const key = join(dir, 'key.json');
    const result = await runKeytap(['program', '--virtual', key, '--yes', '--serial', 'T1', '--account', 'first', '--out', out]);
    expect(result.code).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['ledger.jsonl', 'tseeds.pskcxml', 'tseeds.xml']);
    expect(result.stderr).toMatch(/Not writing tseeds\.csv \(Entra ID CSV\) for token T1: Entra ID assigns every CSV token to a user: a UPN is required/u);
    const [dualshield] = seedFormat('dualshield').read(readFileSync(join(out, 'tseeds.xml')));
    expect(dualshield).toMatchObject({ serial: 'T1', type: 'TOTP', period: 30 });

    const other = join(dir, 'with-user');
    const withUser = await runKeytap(['program', '--virtual', key, '--yes', '--serial', 'T2', '--upn', 'alice@contoso.com', '--out', other]);
    expect(withUser.code).toBe(0);
    expect(withUser.stderr).not.toContain('Not writing');
    expect(readdirSync(other).sort()).toEqual(['ledger.jsonl', 'tseeds.csv', 'tseeds.pskcxml', 'tseeds.xml']);
    expect(seedFormat('entra').read(readFileSync(join(other, 'tseeds.csv')))[0]).toMatchObject({ serial: 'T2', upn: 'alice@contoso.com' });
  });
});

let keys: VirtualKeys | undefined;
afterEach(async () => {
  await keys?.unplugAll();
  keys = undefined;
});

describe('keytap program --batch with the default formats', () => {
  it('HOTP: every key in hseeds.csv, hseeds.xml and hseeds.pskcxml, each agreeing with the ledger, and the key at the recorded counter', async () => {
    keys = new VirtualKeys();
    const out = join(tempDir(), 'seeds');
    const programmer = new Programmer(['program', '--batch', '--yes', '--type', 'hotp', '--account', 'otp', '--count', '2', '--out', out], keys.env);
    await programmer.waitFor(/Insert key 1/u);
    await keys.plug('A');
    await programmer.waitFor(/Remove virtual key A\.json/u);
    await keys.unplug('A');
    await programmer.waitFor(/Insert key 2/u);
    await keys.plug('B');
    // --count 2: the batch ends with the second key.
    const { code } = await programmer.exited;
    await keys.unplug('B');
    expect(code).toBe(0);
    expect(programmer.stdout).toMatch(/Summary: 2 programmed, 0 failed, 0 skipped\./u);
    expect(programmer.stderr).not.toMatch(/left out|Not writing|not written/u);
    expect(readdirSync(out).sort()).toEqual(['hseeds.csv', 'hseeds.pskcxml', 'hseeds.xml', 'ledger.jsonl']);

    const ledger = await readLedger(out);
    const csv = seedFormat('hexcsv').read(readFileSync(join(out, 'hseeds.csv')));
    const dualshield = seedFormat('dualshield').read(readFileSync(join(out, 'hseeds.xml')));
    const pskc = pskcPeer(join(out, 'hseeds.pskcxml'));
    for (const name of ['A', 'B']) {
      const entry = entryForStoredKey(ledger.entries, keys.stored(name).get('otp')!)!;
      expect(entry.state).toBe('done');
      const { serial } = entry.token;
      const seed = hexEncode(entry.token.secret);
      expect(csv.find((t) => t.serial === serial)).toMatchObject({ counter: entry.counterAfter });
      expect(hexEncode(csv.find((t) => t.serial === serial)!.secret)).toBe(seed);
      expect(hexEncode(dualshield.find((t) => t.serial === serial)!.secret)).toBe(seed);
      expect(pskc.find((k) => k.serial === serial)).toMatchObject({ secret: seed, counter: entry.counterAfter });
      const ours = await keys.keytap(['code', '--virtual', keys.file(name), 'otp']);
      expect(ours.stdout.trim()).toBe(await oathtool({ hexSecret: seed, type: 'HOTP', counter: entry.counterAfter! }));
    }
  });
});

describe('formats that cannot carry a token are named, with the token and the reason', () => {
  it('program: several formats asked for, each refusing one named before the key is touched', async () => {
    const dir = tempDir();
    const key = join(dir, 'key.json');
    const result = await runKeytap(['program', '--virtual', key, '--yes', '--type', 'hotp', '--serial', 'H1', '--upn', 'bob@contoso.com', '--formats', 'entra,graph,pskc', '--out', join(dir, 'seeds')]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/The Entra ID CSV export cannot take token H1: Entra ID does not support HOTP/u);
    expect(result.stderr).toMatch(/The Microsoft Graph hardwareOathDevices JSON export cannot take it either: Entra ID does not support HOTP/u);
    expect((await runKeytap(['list', '--virtual', key])).stdout).not.toContain('H1');
  });

  it('program: DualShield refuses an HOTP token whose next code after verification is past counter 1', async () => {
    const dir = tempDir();
    const result = await runKeytap(['program', '--virtual', join(dir, 'key.json'), '--yes', '--type', 'hotp', '--counter', '1', '--serial', 'H2', '--formats', 'dualshield', '--out', join(dir, 'seeds')]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/The DualShield XML export cannot take token H2: the DualShield format has no counter.*next code is at counter 2/u);
  });

  it('seeds export: a mixed request names each dropped format with each token and the reason, and writes the rest', async () => {
    const dir = tempDir();
    const out = join(dir, 'seeds');
    const key = join(dir, 'key.json');
    for (const serial of ['H1', 'H2']) {
      expect((await runKeytap(['program', '--virtual', key, '--yes', '--type', 'hotp', '--serial', serial, '--account', serial, '--formats', 'pskc', '--out', out])).code).toBe(0);
    }
    const exported = await runKeytap(['seeds', 'export', '--ledger', out, '--format', 'entra,graph,dualshield', '--out', join(dir, 'x')]);
    expect(exported.code).toBe(0);
    expect(readdirSync(join(dir, 'x'))).toEqual(['hseeds.xml']);
    expect(exported.stdout).toMatch(/Wrote .*hseeds\.xml: 2 token\(s\)/u);
    for (const [file, title] of [['tseeds.csv', 'Entra ID CSV'], ['tseeds-graph.json', 'Microsoft Graph hardwareOathDevices JSON']] as const) {
      expect(exported.stderr).toContain(`Not written: ${file} (${title}) can carry none of the ledger's tokens for it.`);
      for (const serial of ['H1', 'H2']) expect(exported.stderr).toContain(`left out of ${file} (${title}): serial ${serial}: Entra ID does not support HOTP`);
    }
  });

  it('the Entra files get manufacturer and model "Unknown" when none is given, and the output says so', async () => {
    const dir = tempDir();
    const out = join(dir, 'seeds');
    const plain = await runKeytap(['program', '--virtual', join(dir, 'a.json'), '--yes', '--upn', 'ann@contoso.example', '--formats', 'entra,graph', '--out', out]);
    expect(plain.code).toBe(0);
    expect(plain.stderr).toContain('The token has no manufacturer or model: Entra ID gets "Unknown" (--manufacturer, --model gives one).');
    expect(readFileSync(join(out, 'tseeds.csv'), 'utf8')).toMatch(/,Unknown,Unknown\r\n$/u);
    const given = await runKeytap(['program', '--virtual', join(dir, 'b.json'), '--yes', '--upn', 'ben@contoso.example', '--formats', 'entra', '--manufacturer', 'Acme', '--out', join(dir, 'given')]);
    expect(given.code).toBe(0);
    expect(given.stderr).toContain('The token has no model: Entra ID gets "Unknown" (--model gives one).');
    expect(readFileSync(join(dir, 'given', 'tseeds.csv'), 'utf8')).toMatch(/,Acme,Unknown\r\n$/u);
  });
});
