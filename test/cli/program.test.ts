// The built CLI: `keytap program --virtual FILE` in both dialects, --from, existing files and
// --force, `seeds check` (exit 4, line numbers), `seeds codes` against oathtool, `seeds export`.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { base32Encode, hexEncode } from '../../src/otp/encoding.js';
import { readLedger } from '../../src/provision/ledger.js';
import { seedFormat } from '../../src/seeds/index.js';
import { keytapCommand, oathtool, runKeytap, tempDir } from '../support/cli.js';

const RFC_SECRET = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';

describe('keytap program --virtual FILE', () => {
  it.each(['yubikey', 'nitrokey3'])('%s: programs, verifies, writes the ledger and the seed files (0600); no secret on stdout', async (dialect) => {
    const dir = tempDir();
    const out = join(dir, 'seeds');
    const key = join(dir, 'key.json');
    const result = await runKeytap(
      ['program', '--virtual', key, '--dialect', dialect, '--yes', '--upn', 'alice@contoso.com', '--formats', 'entra,pskc,graph', '--out', out, '--manufacturer', 'Acme', '--model', 'K1', '--touch'],
    );
    expect(result.stderr).toMatch(/Touch your key to verify/u);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/programmed serial KT\d{8} as "alice@contoso.com" on virtual key \S*key\.json; verified\./u);
    const ledger = await readLedger(out);
    const secret = ledger.entries[0]!.token.secret;
    expect(result.stdout + result.stderr).not.toContain(base32Encode(secret));
    expect(readdirSync(out).sort()).toEqual(['ledger.jsonl', 'tseeds-graph.json', 'tseeds.csv', 'tseeds.pskcxml']);
    for (const name of readdirSync(out)) expect(statSync(join(out, name)).mode & 0o777).toBe(0o600);
    const [row] = seedFormat('entra').read(readFileSync(join(out, 'tseeds.csv')));
    expect(row).toMatchObject({ upn: 'alice@contoso.com', manufacturer: 'Acme', model: 'K1', serial: ledger.entries[0]!.token.serial });
    // The key's code now equals oathtool's for the exported secret.
    const now = Math.floor(Date.now() / 1000);
    const code = await runKeytap(['code', '--virtual', key, 'alice']);
    const expected = await oathtool({ hexSecret: hexEncode(row!.secret), type: 'TOTP', time: now });
    const later = await oathtool({ hexSecret: hexEncode(row!.secret), type: 'TOTP', time: now + 1 });
    expect([expected, later]).toContain(code.stdout.trim());
  });

  it('--show-secrets prints the secret; --secret - reads it from stdin; a short one is refused with the reason, before the key is touched', async () => {
    const dir = tempDir();
    const key = join(dir, 'key.json');
    const out = join(dir, 'seeds');
    const shown = await runKeytap(['program', '--virtual', key, '--yes', '--secret', '-', '--serial', 'RFC1', '--out', out, '--show-secrets'], { input: RFC_SECRET });
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain(`secret (Base32): ${RFC_SECRET}`);
    const short = await runKeytap(['program', '--virtual', key, '--yes', '--secret', '-', '--account', 'short', '--out', out], { input: 'hex:00112233445566778899' });
    expect(short.code).toBe(2);
    expect(short.stderr).toMatch(/The secret is 10 bytes; RFC 4226 requires at least 16 bytes/u);
    expect(short.stderr).not.toContain('00112233445566778899');
    const list = await runKeytap(['list', '--virtual', key]);
    expect(list.stdout).not.toContain('short');
    // The same serial again is refused: the ledger has it.
    const again = await runKeytap(['program', '--virtual', key, '--yes', '--serial', 'RFC1', '--account', 'other', '--out', out]);
    expect(again.stderr).toMatch(/serial RFC1 is already in the ledger/u);
  });

  it('refusals say why and leave the key as it was: existing name, SHA-512 on a Nitrokey 3, Entra for HOTP', async () => {
    const dir = tempDir();
    const key = join(dir, 'nk.json');
    const out = join(dir, 'seeds');
    expect((await runKeytap(['program', '--virtual', key, '--dialect', 'nitrokey3', '--yes', '--account', 'alice', '--out', out])).code).toBe(0);
    const exists = await runKeytap(['program', '--virtual', key, '--yes', '--account', 'alice', '--out', out]);
    expect(exists.code).toBe(1);
    expect(exists.stderr).toMatch(/already has an account "alice"/u);
    const sha512 = await runKeytap(['program', '--virtual', key, '--yes', '--algorithm', 'SHA512', '--account', 'bob', '--out', out]);
    expect(sha512.stderr).toMatch(/cannot compute SHA512 codes/u);
    const entra = await runKeytap(['program', '--virtual', key, '--yes', '--type', 'hotp', '--upn', 'bob@contoso.com', '--formats', 'entra', '--out', out]);
    expect(entra.code).toBe(2);
    expect(entra.stderr).toMatch(/Entra ID does not support HOTP/u);
    const list = await runKeytap(['list', '--virtual', key]);
    expect(list.stdout.trim().split('\n')).toHaveLength(1);
    const ledger = await readLedger(out);
    expect(ledger.entries.map((e) => e.state)).toEqual(['done']);
  });

  it('an existing seed file with tokens the ledger does not know is not overwritten without --force', async () => {
    const dir = tempDir();
    const out = join(dir, 'seeds');
    const key = join(dir, 'key.json');
    const foreign = 'upn,serial number,secret key,time interval,manufacturer,model\nzed@contoso.com,999,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,30,X,Y\n';
    await runKeytap(['program', '--virtual', key, '--yes', '--account', 'first', '--out', out, '--formats', 'pskc']);
    writeFileSync(join(out, 'tseeds.csv'), foreign);
    const refused = await runKeytap(['program', '--virtual', key, '--yes', '--upn', 'a@contoso.com', '--out', out, '--formats', 'entra']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/Not overwriting .*tseeds\.csv: .*not in the ledger \(e\.g\. serial 999\)/u);
    expect(readFileSync(join(out, 'tseeds.csv'), 'utf8')).toBe(foreign);
    expect((await runKeytap(['list', '--virtual', key])).stdout).not.toContain('a@contoso.com');
    // Its own files from an earlier run are rewritten freely (the ledger holds all their tokens).
    const second = await runKeytap(['program', '--virtual', key, '--yes', '--account', 'second', '--out', out, '--formats', 'pskc']);
    expect(second.code).toBe(0);
    expect(seedFormat('pskc').read(readFileSync(join(out, 'tseeds.pskcxml')))).toHaveLength(2);
    const forced = await runKeytap(['program', '--virtual', key, '--yes', '--upn', 'a@contoso.com', '--out', out, '--formats', 'entra', '--force']);
    expect(forced.code).toBe(0);
    expect(seedFormat('entra').read(readFileSync(join(out, 'tseeds.csv'))).map((t) => t.upn)).toEqual(['a@contoso.com']);
  });

  it('--from FILE --serial S re-programs a replacement key with the same seed and serial', async () => {
    const dir = tempDir();
    const out = join(dir, 'seeds');
    await runKeytap(['program', '--virtual', join(dir, 'old.json'), '--yes', '--type', 'hotp', '--counter', '3', '--formats', 'hexcsv', '--out', out, '--serial', 'H1']);
    await runKeytap(['program', '--virtual', join(dir, 'old.json'), '--yes', '--type', 'hotp', '--formats', 'hexcsv', '--out', out, '--serial', 'H2']);
    const file = join(out, 'hseeds.csv');
    const [h1] = seedFormat('hexcsv').read(readFileSync(file)).filter((t) => t.serial === 'H1');
    expect(h1!.counter).toBe(4);
    const replacement = join(dir, 'new.json');
    const result = await runKeytap(['program', '--virtual', replacement, '--dialect', 'nitrokey3', '--yes', '--from', file, '--serial', 'H1', '--out', join(dir, 'replaced'), '--formats', 'hexcsv']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/programmed serial H1/u);
    const code = await runKeytap(['code', '--virtual', replacement, 'H1']);
    // Verification read counter 4; the key's next code is at 5.
    expect(code.stdout.trim()).toBe(await oathtool({ hexSecret: hexEncode(h1!.secret), type: 'HOTP', counter: 5 }));
    const bad = await runKeytap(['program', '--virtual', replacement, '--yes', '--from', file, '--out', join(dir, 'replaced')]);
    expect(bad.stderr).toMatch(/holds 2 tokens; choose one with --serial/u);
    const mixed = await runKeytap(['program', '--virtual', replacement, '--yes', '--from', file, '--serial', 'H2', '--digits', '8', '--out', join(dir, 'replaced')]);
    expect(mixed.stderr).toMatch(/leave out --digits/u);
  });
});

describe('keytap program on a terminal', () => {
  // `script` gives the programmer a pseudo-terminal, so it asks; answers come through it.
  const hasScript = existsSync('/usr/bin/script');
  it.skipIf(!hasScript)('asks one question per missing field with the default shown; Enter takes the default', async () => {
    const dir = tempDir();
    const answers = ['hotp', '', '', '7', '', 'S-42', 'hexcsv,pskc', 'bob@contoso.com', 'Acme', '', 'y', '', '', ''];
    const self = keytapCommand(['program', '--virtual', join(dir, 'k.json'), '--out', join(dir, 'seeds')]);
    const command = [self.command, ...self.args].join(' ');
    const result = await new Promise<string>((resolve, reject) => {
      const child = spawn('script', ['-qfec', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (d: Buffer) => (output += d.toString()));
      child.on('error', reject);
      child.on('exit', () => resolve(output));
      child.stdin.write(`${answers.join('\n')}\n`);
      // Keep the terminal open until the programmer is done (EOF would cancel the questions).
      const timer = setInterval(() => {
        if (/verified\./u.test(output) || /keytap:/u.test(output)) {
          clearInterval(timer);
          child.stdin.end();
        }
      }, 50);
    });
    for (const prompt of ['Type (totp/hotp) [totp]:', 'Hash (SHA1/SHA256/SHA512) [SHA1]:', 'Digits (6/8) [6]:', 'Initial counter [0]:', 'Serial number [generate]:', 'Account on the key [bob@contoso.com]:', "Seed files (entra,pskc,dualshield,hexcsv,privacyidea,otpauth,graph) [the vendor tool's for the type, plus pskc]:"]) {
      expect(result).toContain(prompt);
    }
    expect(result).not.toContain('Time interval');
    expect(result).not.toContain('Output folder');
    expect(result).toMatch(/programmed serial S-42 as "Acme:bob@contoso.com"/u);
    const [token] = seedFormat('hexcsv').read(readFileSync(join(dir, 'seeds', 'hseeds.csv')));
    expect(token).toMatchObject({ serial: 'S-42', counter: 8 });
    const pskc = seedFormat('pskc').read(readFileSync(join(dir, 'seeds', 'hseeds.pskcxml')));
    expect(pskc[0]).toMatchObject({ upn: 'bob@contoso.com', issuer: 'Acme', digits: 6 });
  });

  it('without a terminal nothing is asked and the defaults are taken', async () => {
    const dir = tempDir();
    const result = await runKeytap(['program', '--virtual', join(dir, 'k.json'), '--out', join(dir, 'seeds')], { input: 'hotp\n' });
    expect(result.code).toBe(0);
    expect(result.stderr).not.toContain('Type (totp/hotp)');
    expect(seedFormat('pskc').read(readFileSync(join(dir, 'seeds', 'tseeds.pskcxml')))[0]).toMatchObject({ type: 'TOTP', algorithm: 'SHA1', digits: 6, period: 30 });
  });
});

describe('keytap seeds', () => {
  it('check: a bad Entra CSV → every problem with its line, exit 4; a good one → exit 0', async () => {
    const dir = tempDir();
    const bad = join(dir, 'bad.csv');
    writeFileSync(
      bad,
      [
        'upn,serial number,secret key,time interval,manufacturer,model',
        'alice@contoso.com,1001,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,30,A,B',
        'bob@contoso.com,1001,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,45,A,B',
        'carol,1002,3132333435363738393031323334353637383930,30,A,B',
        '',
      ].join('\n'),
    );
    const result = await runKeytap(['seeds', 'check', bad]);
    expect(result.code).toBe(4);
    expect(result.stdout).toMatch(/^bad\.csv:3: error: .*(serial|interval)/mu);
    expect(result.stdout).toMatch(/^bad\.csv:4: error: /mu);
    expect(result.stdout).not.toMatch(/^bad\.csv:2: error/mu);
    expect(result.stderr).toMatch(/problem\(s\); fix them before uploading/u);
    const good = join(dir, 'good.csv');
    writeFileSync(good, 'upn,serial number,secret key,time interval,manufacturer,model\nalice@contoso.com,1001,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,30,A,B\n');
    const ok = await runKeytap(['seeds', 'check', good]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/good\.csv: OK, 1 token/u);
  });

  it('codes: each token\'s code equals oathtool\'s; secrets only with --show-secrets', async () => {
    const dir = tempDir();
    const file = join(dir, 'tseeds.csv');
    writeFileSync(
      file,
      'upn,serial number,secret key,time interval,manufacturer,model\nalice@contoso.com,10001001,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,30,A,B\nbob@contoso.com,10001002,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,60,A,B\n',
    );
    const time = 1111111109;
    const result = await runKeytap(['seeds', 'codes', file, '--time', String(time)]);
    expect(result.code).toBe(0);
    const rows = result.stdout.trim().split('\n').map((l) => l.split(/\s+/u));
    const hex = Buffer.from('12345678901234567890').toString('hex');
    expect(rows.map((r) => [r[0], r[1]])).toEqual([
      ['10001001', await oathtool({ hexSecret: hex, type: 'TOTP', time, period: 30 })],
      ['10001002', await oathtool({ hexSecret: hex, type: 'TOTP', time, period: 60 })],
    ]);
    expect(rows[0]![1]).toBe('081804');
    expect(result.stdout).not.toContain(RFC_SECRET);
    const shown = await runKeytap(['seeds', 'codes', file, '--time', String(time), '--show-secrets']);
    expect(shown.stdout).toContain(RFC_SECRET);
  });

  it('export: from the ledger at any time, any format; existing files with tokens the ledger does not know need --force; an encrypted ledger needs its passphrase', async () => {
    const dir = tempDir();
    const out = join(dir, 'seeds');
    const env = { KEYTAP_LEDGER_PASSPHRASE: 'ledger pass' };
    for (const account of ['a', 'b']) {
      const r = await runKeytap(['program', '--virtual', join(dir, 'k.json'), '--yes', '--account', account, '--out', out, '--formats', 'pskc'], { env });
      expect(r.code).toBe(0);
    }
    expect(readFileSync(join(out, 'ledger.jsonl'), 'utf8')).not.toContain('"secret"');
    const noPass = await runKeytap(['seeds', 'export', '--ledger', out, '--format', 'otpauth']);
    expect(noPass.stderr).toMatch(/encrypted/u);
    const exported = await runKeytap(['seeds', 'export', '--ledger', out, '--format', 'otpauth,dualshield,pskc', '--out', join(dir, 'x')], {
      env: { ...env, KEYTAP_PSKC_PASSPHRASE: 'file pass' },
    });
    expect(exported.code).toBe(0);
    const tokens = seedFormat('otpauth').read(readFileSync(join(dir, 'x', 'tseeds-otpauth.txt')));
    expect(tokens.map((t) => t.account)).toEqual(['a', 'b']);
    expect(seedFormat('pskc').read(readFileSync(join(dir, 'x', 'tseeds.pskcxml')), { passphrase: 'file pass' })).toHaveLength(2);
    // Files holding only the ledger's tokens are rewritten; one holding a token it does not know needs --force.
    const again = await runKeytap(['seeds', 'export', '--ledger', out, '--format', 'dualshield,otpauth', '--out', join(dir, 'x')], { env });
    expect(again.code).toBe(0);
    writeFileSync(join(dir, 'x', 'tseeds.xml'), seedFormat('dualshield').write([{ ...tokens[0]!, serial: 'FOREIGN-1' }]));
    const foreign = await runKeytap(['seeds', 'export', '--ledger', out, '--format', 'dualshield,otpauth', '--out', join(dir, 'x')], { env });
    expect(foreign.code).toBe(1);
    expect(foreign.stderr).toMatch(/Not overwriting .*tseeds\.xml: it exists and holds 1 token\(s\) that are not in the ledger \(e\.g\. serial FOREIGN-1\)/u);
    const forced = await runKeytap(['seeds', 'export', '--ledger', out, '--format', 'dualshield', '--out', join(dir, 'x'), '--force'], { env });
    expect(forced.code).toBe(0);
  });
});
