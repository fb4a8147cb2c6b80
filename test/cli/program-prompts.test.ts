// `keytap program` on a pseudo-terminal (`script` from util-linux): each answer is checked when it
// is given and asked again at once; with several keys connected the key is picked first.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { hexEncode } from '../../src/otp/encoding.js';
import { readLedger } from '../../src/provision/ledger.js';
import { seedFormat } from '../../src/seeds/index.js';
import { keytapCommand, oathtool, runKeytap, tempDir } from '../support/cli.js';
import { VirtualKeys, entryForStoredKey } from '../provision/support.js';

const RFC_SECRET = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
const RFC_HEX = hexEncode(Buffer.from('12345678901234567890'));

/** Runs keytap on a terminal with the answers typed ahead; the terminal stays open until keytap has ended. */
function onTerminal(args: string[], answers: string[], env: NodeJS.ProcessEnv = {}): Promise<{ output: string; code: number }> {
  const self = keytapCommand(args);
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qfec', `${[self.command, ...self.args].join(' ')}; echo program-ended=$?`, '/dev/null'], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString();
      if (/program-ended=\d+/u.test(output)) child.stdin.end();
    });
    child.on('error', reject);
    child.on('exit', () => resolve({ output, code: Number(/program-ended=(\d+)/u.exec(output)?.[1] ?? -1) }));
    child.stdin.write(`${answers.join('\n')}\n`);
  });
}

const hasScript = existsSync('/usr/bin/script');

describe('keytap program on a terminal: ask, then check at once', () => {
  const keys = new VirtualKeys();
  afterEach(() => keys.unplugAll());

  it.skipIf(!hasScript)('a secret that is not Base32 is asked again at once with the reason; the next answer is programmed', async () => {
    const dir = tempDir();
    const key = join(dir, 'k.json');
    const out = join(dir, 'seeds');
    // Hash, digits, secret (bad, then good), serial, issuer, account, touch, manufacturer, model.
    const answers = ['', '', 'not-base32!', RFC_SECRET, 'S-1', '', '', '', '', ''];
    const { output, code } = await onTerminal(['program', '--virtual', key, '--type', 'hotp', '--counter', '0', '--formats', 'pskc', '--upn', 'bob@contoso.com', '--out', out], answers);
    expect(code).toBe(0);
    const firstSecret = output.indexOf('Secret (Base32 or hex:…) [generate]:');
    const reason = output.indexOf('The secret is not valid Base32', firstSecret);
    const secondSecret = output.indexOf('Secret (Base32 or hex:…) [generate]:', firstSecret + 1);
    const serial = output.indexOf('Serial number [generate]:');
    expect(firstSecret).toBeGreaterThanOrEqual(0);
    expect(reason).toBeGreaterThan(firstSecret);
    expect(secondSecret).toBeGreaterThan(reason);
    expect(serial).toBeGreaterThan(secondSecret);
    expect(output).toMatch(/programmed serial S-1 as "bob@contoso\.com"/u);
    const ledger = await readLedger(out);
    expect(hexEncode(ledger.entries[0]!.token.secret)).toBe(RFC_HEX);
    // Verification read counter 0; the key's next code is oathtool's at counter 1.
    const next = await runKeytap(['code', '--virtual', key, 'bob']);
    expect(next.stdout.trim()).toBe(await oathtool({ hexSecret: RFC_HEX, type: 'HOTP', counter: 1 }));
  });

  it.skipIf(!hasScript)('with two keys connected the key is picked from a list before the first question, and that key is programmed', async () => {
    await keys.plug('first');
    await keys.plug('second');
    const out = join(tempDir(), 'seeds');
    // Key 2, then hash, digits, serial, issuer, account, touch, manufacturer, model.
    const answers = ['2', '', '', 'S-2', '', '', '', '', ''];
    const { output, code } = await onTerminal(['program', '--type', 'hotp', '--counter', '0', '--secret', RFC_SECRET, '--formats', 'pskc', '--upn', 'carol@contoso.com', '--out', out], answers, keys.env);
    expect(code).toBe(0);
    expect(output).toMatch(/2 keys are connected:/u);
    const listed = [...output.matchAll(/^ {2}(\d)\) virtual key (\w+)\.json \(serial \w+, yubikey; id [^)]+\)/gmu)].map((m) => [m[1], m[2]]);
    expect(listed.map(([n]) => n)).toEqual(['1', '2']);
    const picked = listed[1]![1]!;
    const other = listed[0]![1]!;
    expect(output.indexOf('Key to program (1-2):')).toBeLessThan(output.indexOf('Hash ('));
    expect(output).toMatch(/programmed serial S-2 as "carol@contoso\.com"/u);
    expect(keys.stored(picked).size).toBe(1);
    expect(keys.stored(other).size).toBe(0);
    const [stored] = [...keys.stored(picked).values()];
    expect(hexEncode(entryForStoredKey((await readLedger(out)).entries, stored!)!.token.secret)).toBe(RFC_HEX);
  });
  it.skipIf(!hasScript)('Entra ID asked for and no user: the user is asked again with the reason; "-" drops the Entra file instead', async () => {
    const dir = tempDir();
    const out = join(dir, 'seeds');
    // Hash, digits, period, user (none, a bad one, then "-"), issuer, account, touch, manufacturer, model.
    const answers = ['', '', '', '', 'bob', '-', '', '', '', '', ''];
    const { output, code } = await onTerminal(['program', '--virtual', join(dir, 'k.json'), '--type', 'totp', '--secret', RFC_SECRET, '--serial', 'S-3', '--formats', 'entra,pskc', '--out', out], answers);
    expect(code).toBe(0);
    expect(output).toContain('User (UPN, user@domain), or - to write no Entra ID CSV file:');
    expect(output).toContain('The Entra ID CSV file gives every token to a user: give a UPN, or - to write no Entra ID CSV file.');
    expect(output).toContain('The UPN must have exactly one "@" (user@domain).');
    expect(output).toContain('Writing pskc only.');
    expect(readdirSync(out).sort()).toEqual(['ledger.jsonl', 'tseeds.pskcxml']);
  });

  it.skipIf(!hasScript)('an issuer the key cannot store and a manufacturer the Entra CSV cannot carry are asked again at once, not refused after the last question', async () => {
    const dir = tempDir();
    const out = join(dir, 'seeds');
    // Hash, digits, period, issuer (bad, then good), account, touch, manufacturer (bad, then good), model.
    const answers = ['', '', '', 'Ac:me', 'Acme', '', '', 'Acme, Inc.', 'Acme Corp', 'K1'];
    const { output, code } = await onTerminal(
      ['program', '--virtual', join(dir, 'k.json'), '--type', 'totp', '--secret', RFC_SECRET, '--serial', 'S-4', '--upn', 'bob@contoso.com', '--formats', 'entra,pskc', '--out', out],
      answers,
    );
    expect(code).toBe(0);
    const issuerReason = output.indexOf('The issuer must not contain ":".');
    expect(issuerReason).toBeGreaterThan(output.indexOf('Issuer on the key:'));
    expect(output.indexOf('Issuer on the key:', issuerReason)).toBeGreaterThan(issuerReason);
    const manufacturerReason = output.indexOf('The Entra ID CSV file cannot carry this manufacturer: the manufacturer contains a comma or a quote');
    expect(manufacturerReason).toBeGreaterThan(output.indexOf('Manufacturer (for the seed files):'));
    expect(output.indexOf('Manufacturer (for the seed files):', manufacturerReason)).toBeGreaterThan(manufacturerReason);
    expect(output.indexOf('Model (for the seed files):')).toBeGreaterThan(manufacturerReason);
    expect(output).toMatch(/programmed serial S-4 as "Acme:bob@contoso\.com"/u);
    expect(seedFormat('entra').read(readFileSync(join(out, 'tseeds.csv')))).toMatchObject([{ serial: 'S-4', upn: 'bob@contoso.com', manufacturer: 'Acme Corp', model: 'K1' }]);
  });
});
