/**
 * `keytap entra push` as a whole program against the local stand-in: @azure/identity signs in with
 * a client secret at the stand-in's authority (AZURE_AUTHORITY_HOST), trusting its certificate
 * through NODE_EXTRA_CA_CERTS, and Graph requests go to the stand-in's /beta.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ledger } from '../../src/provision/ledger.js';
import type { ProvisionToken } from '../../src/provision/token.js';
import { oathtool, runKeytap, tempDir } from '../support/cli.js';
import { CLIENT_SECRET, GraphStandin, STANDIN_CA, TLS_DIR } from '../support/graph-standin.js';

const USERS = ['ada@contoso.example', 'grace@contoso.example', 'linus@contoso.example'];
const SECRETS = USERS.map((_, i) => Buffer.from(`entra-e2e-secret-${i}-0123456789`.slice(0, 20)));

/** The token without a user has no manufacturer or model either: what Entra gets is said. */
const ORPHAN_NOTE = '1 token(s) have no manufacturer or model: Entra ID gets "Unknown" (--manufacturer, --model gives one).\n';

let standin: GraphStandin;
let ledgerDir: string;

beforeAll(async () => {
  standin = new GraphStandin();
  for (const upn of USERS) standin.addUser(upn);
  await standin.start();
  ledgerDir = tempDir('keytap-entra-');
  const ledger = await Ledger.open(ledgerDir);
  for (const [i, upn] of USERS.entries()) {
    const token: ProvisionToken = { serial: `KT1000000${i}`, secret: SECRETS[i]!, type: 'TOTP', algorithm: 'SHA1', digits: 6, period: 30, counter: 0, upn, manufacturer: 'Yubico', model: 'YubiKey 5', touch: false };
    const entry = await ledger.appendPending(token, { id: `key-${i}`, name: 'Virtual key' }, `Contoso:${upn}`);
    await ledger.markDone(entry);
  }
  // One more without a user: into the inventory only.
  const orphan: ProvisionToken = { serial: 'KT10000009', secret: Buffer.from('entra-e2e-orphan-012'), type: 'TOTP', algorithm: 'SHA1', digits: 6, period: 30, counter: 0, touch: false };
  await ledger.markDone(await ledger.appendPending(orphan, { id: 'key-9', name: 'Virtual key' }, 'Contoso:spare'));
  await ledger.close();
});
afterAll(async () => {
  await standin.stop();
});

function env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...standin.clientEnv(''), ...extra };
}

describe('keytap entra push', () => {
  it('--dry-run prints the requests, sends nothing, needs no sign-in and prints no secret', async () => {
    const result = await runKeytap(['entra', 'push', '--ledger', ledgerDir, '--dry-run'], { env: env({ AZURE_TENANT_ID: '', AZURE_CLIENT_ID: '' }) });
    expect(result.stderr).toBe(ORPHAN_NOTE);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('POST /directory/authenticationMethodDevices/hardwareOathDevices {"@context":"#$delta"');
    expect(result.stdout).toContain('"secretKey":"<secret>"');
    // The placeholders read as they are and agree: the device created first (the bulk request's
    // first element, ada's) is the one assigned to ada, and her method made from it is activated.
    expect(result.stdout).toContain('POST /users/ada%40contoso.example/authentication/hardwareOathMethods {"device":{"id":"new-device-1"}}');
    expect(result.stdout).toContain('POST /users/ada%40contoso.example/authentication/hardwareOathMethods/new-method-1/activate {"verificationCode":"<secret>"}');
    expect(result.stdout).toContain('POST /users/grace%40contoso.example/authentication/hardwareOathMethods/new-method-2/activate');
    expect(result.stdout).not.toContain('%3C');
    // What a real run would do, not what this one did (it did nothing).
    expect(result.stdout).toContain('KT10000000 ada@contoso.example: would be created, assigned, activated');
    expect(result.stdout).toContain('KT10000009: would be created in the inventory only (no user)');
    expect(result.stdout).not.toContain('this run');
    for (const secret of [...SECRETS, Buffer.from('entra-e2e-orphan-012')]) {
      expect(result.stdout).not.toContain(Buffer.from(secret).toString('hex'));
      expect(result.stdout).not.toContain((await import('../../src/otp/encoding.js')).base32Encode(secret));
    }
    expect(standin.requests).toEqual([]);
  });

  it('creates, assigns and activates every token; a second run creates nothing', async () => {
    const first = await runKeytap(['entra', 'push', '--ledger', ledgerDir], { env: env({ KEYTAP_ENTRA_CLIENT_SECRET: CLIENT_SECRET }) });
    expect(first.stderr).toBe(ORPHAN_NOTE);
    expect(first.code).toBe(0);
    for (const [i, upn] of USERS.entries()) expect(first.stdout).toContain(`KT1000000${i} ${upn}: activated (this run: created, assigned, activated)`);
    expect(first.stdout).toContain('4 token(s): 3 activated, 0 assigned only, 1 in the inventory only, 0 not for Entra ID, 0 failed; 4 created by this run.');
    expect(standin.devices).toHaveLength(4);
    expect(standin.graphRequests().filter((r) => r.method === 'POST' && r.path.endsWith('/hardwareOathDevices'))).toHaveLength(1);
    expect(standin.graphRequests().every((r) => r.authorization === 'Bearer stand-in-access-1')).toBe(true);

    // The codes the stand-in received, confirmed by oathtool for each seed at the time they arrived
    // (or the step before, when the code was computed just before a step boundary).
    expect(standin.activations.map((a) => a.serial)).toEqual(['KT10000000', 'KT10000001', 'KT10000002']);
    for (const activation of standin.activations) {
      const i = Number(activation.serial.slice(-1));
      const seconds = Math.floor(activation.time / 1000);
      const expected = [await oathtool({ hexSecret: SECRETS[i]!.toString('hex'), type: 'TOTP', time: seconds }), await oathtool({ hexSecret: SECRETS[i]!.toString('hex'), type: 'TOTP', time: seconds - 1 })];
      expect(expected).toContain(activation.code);
      expect(first.stdout + first.stderr).not.toContain(activation.code);
    }

    const sent = standin.graphRequests().length;
    // The second run's token is declared expired once: @azure/identity gets a new one.
    standin.faults.expireToken = true;
    const issued = standin.tokensIssued;
    const second = await runKeytap(['entra', 'push', '--ledger', ledgerDir, '--client-secret', '-'], { env: env(), input: `${CLIENT_SECRET}\n` });
    expect(second.stderr).toBe(ORPHAN_NOTE);
    expect(second.code).toBe(0);
    expect(second.stdout).toContain('KT10000000 ada@contoso.example: activated (already there)');
    expect(second.stdout).toContain('0 created by this run.');
    expect(standin.graphRequests().slice(sent).filter((r) => r.method !== 'GET')).toEqual([]);
    expect(standin.devices).toHaveLength(4);
    expect(standin.activations).toHaveLength(3);
    expect(standin.tokensIssued).toBe(issued + 2);
    const used = new Set(standin.graphRequests().slice(sent).map((r) => r.authorization));
    expect(used).toEqual(new Set([`Bearer stand-in-access-${issued + 1}`, `Bearer stand-in-access-${issued + 2}`]));
  });

  it('signs in with a device code (the message on stderr) and with a certificate', async () => {
    const deviceCode = await runKeytap(['entra', 'push', '--ledger', ledgerDir], { env: env() });
    expect(deviceCode.stderr).toContain(`To sign in, open ${standin.url}/devicelogin and enter the code STANDIN1.`);
    expect(deviceCode.code).toBe(0);
    expect(standin.requests.some((r) => r.path.endsWith('/oauth2/v2.0/devicecode'))).toBe(true);
    const dir = tempDir('keytap-entra-cert-');
    const pem = join(dir, 'app.pem');
    writeFileSync(pem, readFileSync(STANDIN_CA, 'utf8') + readFileSync(join(TLS_DIR, 'localhost.key'), 'utf8'));
    const certificate = await runKeytap(['entra', 'push', '--ledger', ledgerDir, '--certificate', pem], { env: env() });
    expect(certificate.stderr).toBe(ORPHAN_NOTE);
    expect(certificate.code).toBe(0);
    expect(standin.requests.some((r) => (r.body as Record<string, string> | undefined)?.client_assertion !== undefined)).toBe(true);
  });

  it('status lists what Entra ID has for each serial', async () => {
    const result = await runKeytap(['entra', 'status', '--ledger', ledgerDir], { env: env({ KEYTAP_ENTRA_CLIENT_SECRET: CLIENT_SECRET }) });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('KT10000000 ada@contoso.example: activated (assigned to ada@contoso.example)');
    expect(result.stdout).toContain('KT10000009: available');
  });

  it('refuses a client secret on the command line, and names the sign-in failure', async () => {
    const onArgv = await runKeytap(['entra', 'push', '--ledger', ledgerDir, '--client-secret', CLIENT_SECRET], { env: env() });
    expect(onArgv.code).toBe(2);
    expect(onArgv.stderr).toContain('--client-secret takes only "-"');
    expect(onArgv.stderr).not.toContain(CLIENT_SECRET);
    const wrong = await runKeytap(['entra', 'push', '--ledger', ledgerDir], { env: env({ KEYTAP_ENTRA_CLIENT_SECRET: 'not-the-secret' }) });
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toContain('Signing in to Microsoft Entra ID failed');
    expect(wrong.stderr).not.toContain('not-the-secret');
  });

  it('--manufacturer and --model fill in the tokens that have none; without them the output says "Unknown" is sent', async () => {
    const dir = tempDir('keytap-entra-maker-');
    const ledger = await Ledger.open(dir);
    const bare: ProvisionToken = { serial: 'KT30000001', secret: SECRETS[1]!, type: 'TOTP', algorithm: 'SHA1', digits: 6, period: 30, counter: 0, upn: USERS[1], touch: false };
    const made: ProvisionToken = { ...bare, serial: 'KT30000002', secret: SECRETS[2]!, upn: USERS[2], manufacturer: 'Yubico', model: 'YubiKey 5' };
    for (const token of [bare, made]) await ledger.markDone(await ledger.appendPending(token, { id: token.serial, name: 'Virtual key' }, token.serial));
    await ledger.close();
    const noEnv = env({ AZURE_TENANT_ID: '', AZURE_CLIENT_ID: '' });
    const plain = await runKeytap(['entra', 'push', '--ledger', dir, '--dry-run'], { env: noEnv });
    expect(plain.code).toBe(0);
    expect(plain.stderr).toBe('1 token(s) have no manufacturer or model: Entra ID gets "Unknown" (--manufacturer, --model gives one).\n');
    expect(plain.stdout).toContain('"serialNumber":"KT30000001","manufacturer":"Unknown","model":"Unknown"');
    const given = await runKeytap(['entra', 'push', '--ledger', dir, '--dry-run', '--manufacturer', 'Acme', '--model', 'K1'], { env: noEnv });
    expect(given.code).toBe(0);
    expect(given.stderr).toBe('');
    expect(given.stdout).toContain('"serialNumber":"KT30000001","manufacturer":"Acme","model":"K1"');
    // A token's own manufacturer and model are kept.
    expect(given.stdout).toContain('"serialNumber":"KT30000002","manufacturer":"Yubico","model":"YubiKey 5"');
    const bad = await runKeytap(['entra', 'push', '--ledger', dir, '--dry-run', '--model', 'K\u001b]0;x'], { env: noEnv });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--model: the model contains a control character');
  });

  it('--dry-run exits as the real run does: 1 when a token would be refused', async () => {
    const dir = tempDir('keytap-entra-refused-');
    const ledger = await Ledger.open(dir);
    const hotp: ProvisionToken = { serial: 'KT20000001', secret: SECRETS[0]!, type: 'HOTP', algorithm: 'SHA1', digits: 6, period: 30, counter: 0, upn: USERS[0], touch: false };
    await ledger.markDone(await ledger.appendPending(hotp, { id: 'key-h', name: 'Virtual key' }, 'Contoso:hotp'), 1);
    await ledger.close();
    const dry = await runKeytap(['entra', 'push', '--ledger', dir, '--dry-run'], { env: env({ AZURE_TENANT_ID: '', AZURE_CLIENT_ID: '' }) });
    const real = await runKeytap(['entra', 'push', '--ledger', dir], { env: env({ KEYTAP_ENTRA_CLIENT_SECRET: CLIENT_SECRET }) });
    expect(real.code).toBe(1);
    expect(dry.code).toBe(real.code);
    expect(dry.stdout).toContain('KT20000001 ada@contoso.example: not for Entra ID: Entra ID does not support HOTP tokens');
    expect(dry.stderr).toMatch(/1 of 1 token\(s\) would not be in Entra ID as asked/u);
  });
});
