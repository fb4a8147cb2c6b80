import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/identity';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GraphClient, retryAfterMs } from '../../src/entra-id/client.js';
import { DryRunTransport, pushTokens } from '../../src/entra-id/push.js';
import { KeytapError } from '../../src/errors.js';
import { totp } from '../../src/otp/hotp.js';
import type { SeedToken } from '../../src/seeds/token.js';
import { GraphStandin } from '../support/graph-standin.js';

const SECRETS = ['12345678901234567890', 'abcdefghijabcdefghij', 'ABCDEFGHIJKLMNOPQRST'];

function tokens(upns: (string | undefined)[]): SeedToken[] {
  return upns.map((upn, i) => ({
    serial: `KT0000000${i + 1}`,
    secret: Buffer.from(SECRETS[i % SECRETS.length]!),
    type: 'TOTP',
    algorithm: 'SHA1',
    digits: 6,
    period: 30,
    counter: 0,
    upn,
    manufacturer: 'Yubico',
    model: 'YubiKey 5',
  }));
}

/** A credential that hands out the stand-in's tokens, counting the requests. */
class StandinCredential implements TokenCredential {
  calls = 0;
  claims: (string | undefined)[] = [];
  getToken(_scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken> {
    this.calls++;
    this.claims.push(options?.claims);
    return Promise.resolve({ token: `stand-in-access-${this.calls}`, expiresOnTimestamp: Date.now() + 3_600_000 });
  }
}

let standin: GraphStandin;
let credential: StandinCredential;
let client: GraphClient;

beforeEach(async () => {
  standin = new GraphStandin();
  standin.addUser('alice@contoso.example');
  standin.addUser('bob@contoso.example');
  await standin.start({ tls: false });
  credential = new StandinCredential();
  client = new GraphClient({ credential, baseUrl: standin.graphUrl });
});
afterEach(async () => {
  await standin.stop();
});

function secretWords(list: SeedToken[]): string[] {
  return list.flatMap((t) => [Buffer.from(t.secret).toString('hex'), Buffer.from(t.secret).toString('latin1')]);
}

async function failure(promise: Promise<unknown>): Promise<KeytapError> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(KeytapError);
  return error as KeytapError;
}

describe('pushing tokens to Entra ID', () => {
  it('creates several in one bulk request, assigns and activates each, and a second run creates nothing', async () => {
    const list = tokens(['alice@contoso.example', 'bob@contoso.example', undefined]);
    const first = await pushTokens(client, list);
    expect(first.map((o) => o.state)).toEqual(['activated', 'activated', 'inventory']);
    const posts = standin.graphRequests().filter((r) => r.method === 'POST' && r.path.endsWith('/hardwareOathDevices'));
    expect(posts).toHaveLength(1);
    expect((posts[0]!.body as { value: unknown[] }).value).toHaveLength(3);
    expect(standin.devices.map((d) => d.status)).toEqual(['activated', 'activated', 'available']);
    expect(standin.activations.every((a) => a.accepted)).toBe(true);

    const before = standin.graphRequests().length;
    const second = await pushTokens(client, list);
    expect(second.map((o) => [o.state, o.created, o.assigned, o.activated])).toEqual([
      ['activated', false, false, false],
      ['activated', false, false, false],
      ['inventory', false, false, false],
    ]);
    expect(standin.graphRequests().slice(before).filter((r) => r.method !== 'GET')).toEqual([]);
    expect(standin.devices).toHaveLength(3);
  });

  it('creates a single token with a single POST and activates it with the code of the time of sending', async () => {
    const [token] = tokens(['alice@contoso.example']);
    await pushTokens(client, [token!]);
    const create = standin.graphRequests().find((r) => r.method === 'POST' && r.path.endsWith('/hardwareOathDevices'))!;
    expect(create.body).toMatchObject({ serialNumber: 'KT00000001', timeIntervalInSeconds: 30, hashFunction: 'hmacsha1' });
    expect(create.body).not.toHaveProperty('@context');
    const activation = standin.activations[0]!;
    expect(activation.code).toBe(totp(token!.secret, activation.time / 1000, 30));
  });

  it('quotes a serial with a quote in the $filter', async () => {
    const [token] = tokens(['alice@contoso.example']);
    await pushTokens(client, [{ ...token!, serial: "O'Brien-1" }]);
    expect(standin.graphRequests()[0]!.url).toContain("$filter=serialNumber eq 'O''Brien-1'");
    expect(standin.devices[0]!.serialNumber).toBe("O'Brien-1");
  });

  it('refuses HOTP, 8 digits and SHA-512 per token with the reason and goes on with the others', async () => {
    const [a, b, c] = tokens(['alice@contoso.example', 'bob@contoso.example', 'bob@contoso.example']);
    const good = { ...tokens(['alice@contoso.example'])[0]!, serial: 'KT00000009' };
    const outcomes = await pushTokens(client, [{ ...a!, type: 'HOTP' }, { ...b!, digits: 8 }, { ...c!, algorithm: 'SHA512' }, good]);
    expect(outcomes.map((o) => o.state)).toEqual(['refused', 'refused', 'refused', 'activated']);
    expect(outcomes[0]!.reason).toMatch(/HOTP/u);
    expect(outcomes[1]!.reason).toMatch(/6-digit/u);
    expect(outcomes[2]!.reason).toMatch(/SHA-512/u);
  });

  it('honours Retry-After on 429 and then succeeds', async () => {
    standin.faults.throttle = { times: 1, retryAfter: '1' };
    const waits: number[] = [];
    client = new GraphClient({ credential, baseUrl: standin.graphUrl, onRetry: (ms) => waits.push(ms) });
    const outcomes = await pushTokens(client, tokens(['alice@contoso.example']));
    expect(outcomes[0]!.state).toBe('activated');
    expect(waits).toEqual([1000]);
    const [throttled, retried] = standin.graphRequests();
    expect(throttled!.url).toBe(retried!.url);
  });

  it('honours Retry-After on 503 (Service Unavailable) as on 429, and then succeeds', async () => {
    standin.faults.throttle = { times: 2, retryAfter: '1', status: 503 };
    const retries: Array<[number, number]> = [];
    client = new GraphClient({ credential, baseUrl: standin.graphUrl, onRetry: (ms, status) => retries.push([ms, status]) });
    const outcomes = await pushTokens(client, tokens(['alice@contoso.example']));
    expect(outcomes[0]!.state).toBe('activated');
    expect(retries).toEqual([[1000, 503], [1000, 503]]);
    const [first, second, third] = standin.graphRequests();
    expect([second!.url, third!.url]).toEqual([first!.url, first!.url]);
  });

  it('a wait for Retry-After ends at once when the signal aborts: the run is cancelled, not one token failed', async () => {
    standin.faults.throttle = { times: 1, retryAfter: '30' };
    const abort = new AbortController();
    client = new GraphClient({ credential, baseUrl: standin.graphUrl, onRetry: () => abort.abort() });
    await client.signIn();
    const error = await failure(pushTokens(client.withSignal(abort.signal), tokens(['alice@contoso.example'])));
    expect(error.code).toBe('CANCELLED');
    expect(standin.graphRequests()).toHaveLength(1);
  });

  it('makes the activation code anew after a Retry-After wait: the first may have expired meanwhile', async () => {
    standin.faults.throttleActivation = { times: 1, retryAfter: '1' };
    const made: string[] = [];
    const outcomes = await pushTokens(client, tokens(['alice@contoso.example']), {
      code: (token) => {
        const code = totp(token.secret, Date.now() / 1000, token.period, token.digits, token.algorithm);
        made.push(code);
        return Promise.resolve(code);
      },
    });
    expect(outcomes[0]!.state).toBe('activated');
    expect(made).toHaveLength(2);
    const activations = standin.graphRequests().filter((r) => r.path.endsWith('/activate'));
    expect(activations).toHaveLength(2);
    expect(standin.activations.map((a) => a.code)).toEqual([made[1]]);
  });

  it('reads Retry-After as seconds or as an HTTP date', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(retryAfterMs('5', now)).toBe(5000);
    expect(retryAfterMs('Thu, 01 Jan 2026 00:00:07 GMT', now)).toBe(7000);
    expect(retryAfterMs('soon', now)).toBeUndefined();
  });

  it('gives up after a few throttled attempts with a message that says so', async () => {
    standin.faults.throttle = { times: 10, retryAfter: '0' };
    client = new GraphClient({ credential, baseUrl: standin.graphUrl, maxAttempts: 3 });
    const outcomes = await pushTokens(client, tokens(['alice@contoso.example']));
    const error = outcomes[0]!.error!;
    expect(error.detail).toMatchObject({ kind: 'graph', problem: 'throttled', status: 429, serial: 'KT00000001' });
    expect(standin.graphRequests()).toHaveLength(3);
  });

  it('refreshes an expired token once', async () => {
    standin.faults.expireToken = true;
    const outcomes = await pushTokens(client, tokens(['alice@contoso.example']));
    expect(outcomes[0]!.state).toBe('activated');
    expect(credential.calls).toBe(2);
    // The claims challenge goes to the credential, which is what makes @azure/identity bypass its cache.
    expect(credential.claims).toEqual([undefined, '{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}']);
    expect(standin.graphRequests()[0]!.authorization).toBe('Bearer stand-in-access-1');
    expect(standin.graphRequests()[1]!.authorization).toBe('Bearer stand-in-access-2');
  });

  it('names the inventory permission and role on 403, and stops the run', async () => {
    standin.faults.forbidInventory = true;
    const list = tokens(['alice@contoso.example', 'bob@contoso.example']);
    const error = await failure(pushTokens(client, list));
    expect(error.message).toContain('KT00000001');
    expect(error.message).toContain('alice@contoso.example');
    expect(error.hint).toContain('Policy.ReadWrite.AuthenticationMethod');
    expect(error.hint).toContain('Authentication Policy Administrator');
    expect(error.detail).toMatchObject({ kind: 'graph', problem: 'permission', permission: 'Policy.ReadWrite.AuthenticationMethod' });
    expect(error.message).toMatch(/request-id [0-9a-f-]{36}/u);
  });

  it('names the user-methods permission on 403 for assignment', async () => {
    standin.faults.forbidUserMethods = true;
    const error = await failure(pushTokens(client, tokens(['alice@contoso.example'])));
    expect(error.hint).toContain('UserAuthenticationMethod.ReadWrite.All');
  });

  it('says how to enable the policy when it is disabled', async () => {
    standin.faults.policyDisabled = true;
    const error = await failure(pushTokens(client, tokens(['alice@contoso.example'])));
    expect(error.detail).toMatchObject({ kind: 'graph', problem: 'policy-disabled' });
    expect(error.hint).toContain('PATCH /policies/authenticationMethodsPolicy/authenticationMethodConfigurations/hardwareOath');
    expect(error.hint).toContain('{"state":"enabled"}');
  });

  it('reports an unknown user for that token and goes on with the others', async () => {
    const list = tokens(['nobody@contoso.example', 'bob@contoso.example']);
    const outcomes = await pushTokens(client, list);
    expect(outcomes.map((o) => o.state)).toEqual(['failed', 'activated']);
    expect(outcomes[0]!.error!.detail).toMatchObject({ kind: 'graph', problem: 'user-not-found', serial: 'KT00000001', upn: 'nobody@contoso.example' });
    expect(outcomes[0]!.reason).toContain('nobody@contoso.example');
  });

  it('reports a rejected verification code without the code', async () => {
    const outcomes = await pushTokens(client, tokens(['alice@contoso.example']), { code: () => Promise.resolve('739184') });
    expect(outcomes[0]!.state).toBe('failed');
    expect(outcomes[0]!.error!.detail).toMatchObject({ kind: 'graph', problem: 'invalid-code' });
    expect(outcomes[0]!.reason).not.toContain('739184');
    expect(outcomes[0]!.error!.hint).toMatch(/clock/u);
  });

  it('reports a token assigned to someone else', async () => {
    const [token] = tokens(['alice@contoso.example']);
    await pushTokens(client, [token!]);
    const outcomes = await pushTokens(client, [{ ...token!, upn: 'bob@contoso.example' }]);
    expect(outcomes[0]!.state).toBe('failed');
    expect(outcomes[0]!.error!.detail).toMatchObject({ kind: 'graph', problem: 'assigned-elsewhere' });
    expect(outcomes[0]!.reason).toContain('alice@contoso.example');
  });

  it('maps a duplicate serial refused on creation', async () => {
    const [a, b] = tokens(['alice@contoso.example', 'bob@contoso.example']);
    // Another tool creates the serial between keytap's look-up and its POST.
    await pushTokens(client, [a!], { activate: false });
    const error = await failure(client.send('POST', '/directory/authenticationMethodDevices/hardwareOathDevices', { serialNumber: 'KT00000001', manufacturer: 'x', model: 'y', secretKey: 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ', timeIntervalInSeconds: 30 }, { serial: 'KT00000001', area: 'inventory' }));
    expect(error.detail).toMatchObject({ kind: 'graph', problem: 'duplicate-serial' });
    expect(error.hint).toMatch(/CSV/u);
    void b;
  });

  it('never puts a secret or a code in any error message or hint', async () => {
    const list = tokens(['alice@contoso.example', 'nobody@contoso.example']);
    const messages: string[] = [];
    for (const fault of ['forbidInventory', 'forbidUserMethods', 'policyDisabled'] as const) {
      const fresh = new GraphStandin();
      fresh.addUser('alice@contoso.example');
      await fresh.start({ tls: false });
      fresh.faults[fault] = true;
      const error = await failure(pushTokens(new GraphClient({ credential, baseUrl: fresh.graphUrl }), list));
      messages.push(error.message, error.hint ?? '', JSON.stringify(error.detail));
      await fresh.stop();
    }
    const outcomes = await pushTokens(client, list, { code: () => Promise.resolve('739184') });
    for (const o of outcomes) messages.push(o.reason ?? '', o.error?.hint ?? '');
    const forbidden = [...secretWords(list), '739184', ...list.map((t) => Buffer.from(t.secret).toString('base64')), 'GEZDGNBV', 'stand-in-access'];
    for (const message of messages) for (const word of forbidden) expect(message).not.toContain(word);
  });

  it('a dry run records the requests of a first run with secrets and codes replaced', async () => {
    const dry = new DryRunTransport();
    const list = tokens(['alice@contoso.example', 'bob@contoso.example']);
    await pushTokens(dry, list);
    expect(dry.requests.map((r) => `${r.method} ${r.path.split('?')[0]}`)).toEqual([
      'GET /directory/authenticationMethodDevices/hardwareOathDevices',
      'GET /directory/authenticationMethodDevices/hardwareOathDevices',
      'POST /directory/authenticationMethodDevices/hardwareOathDevices',
      'GET /users/alice%40contoso.example/authentication/hardwareOathMethods',
      'POST /users/alice%40contoso.example/authentication/hardwareOathMethods',
      'POST /users/alice%40contoso.example/authentication/hardwareOathMethods/new-method-1/activate',
      'GET /users/bob%40contoso.example/authentication/hardwareOathMethods',
      'POST /users/bob%40contoso.example/authentication/hardwareOathMethods',
      'POST /users/bob%40contoso.example/authentication/hardwareOathMethods/new-method-2/activate',
    ]);
    const text = JSON.stringify(dry.requests);
    expect(text).toContain('"secretKey":"<secret>"');
    expect(text).toContain('"verificationCode":"<secret>"');
    expect(text).not.toMatch(/GEZDGNBV|MFRGGZDF/u);
    expect(standin.requests).toEqual([]);
  });
});
