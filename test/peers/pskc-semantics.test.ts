// Valid RFC 6030 files that python-pskc reads must read in keytap with the same values: counters
// above 2^32 (Counter is xs:long), TimeInterval above 65535 (xs:int), several keys on one device
// (RFC 6030 Figure 10: KeyPackages sharing a SerialNo; python-pskc: several Keys in one
// KeyPackage), ykman's FriendlyName "Issuer:account" next to Issuer, and PBKDF2 above the
// iteration cap with consent. python-pskc writes each file; the tests compare what both read.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KeytapError } from '../../src/errors.js';
import type { SeedReadOptions, SeedToken } from '../../src/seeds/index.js';
import { PSKC_MAX_ITERATIONS, pskcFormat } from '../../src/seeds/index.js';

const PYTHON = '/usr/bin/python3';
const PEER = join(import.meta.dirname, 'pskc_peer.py');
const dir = mkdtempSync(join(tmpdir(), 'keytap-pskc-semantics-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const HOTP = 'urn:ietf:params:xml:ns:keyprov:pskc:hotp';
const TOTP = 'urn:ietf:params:xml:ns:keyprov:pskc:totp';
const SECRET = Buffer.from('12345678901234567890').toString('hex');
const PSK = '000102030405060708090a0b0c0d0e0f';

interface PeerKey {
  id: string;
  serial: string | null;
  secret: string;
  counter: number | null;
  time_interval: number | null;
  issuer: string | null;
  friendly_name: string | null;
}

let n = 0;
function pythonWrites(spec: Record<string, unknown>): string {
  const file = join(dir, `f${n++}.pskcxml`);
  execFileSync(PYTHON, [PEER, 'write', file, JSON.stringify(spec)]);
  return file;
}

function pythonReads(file: string, args: string[] = []): PeerKey[] {
  return (JSON.parse(execFileSync(PYTHON, [PEER, 'read', file, ...args], { encoding: 'utf8' })) as { keys: PeerKey[] }).keys;
}

function keytapReads(file: string, options: SeedReadOptions = {}): SeedToken[] {
  return pskcFormat.read(readFileSync(file), options);
}

describe('PSKC values python-pskc reads, keytap reads the same', () => {
  it.each([
    ['plain', {}, {}, []],
    ['encrypted Counter (pre-shared key)', { kind: 'psk', key: PSK, fields: ['secret', 'counter'] }, { key: Buffer.from(PSK, 'hex') }, ['--key', PSK]],
  ] as const)('HOTP counters above 2^32 (%s)', (_what, protection, ours, peerArgs) => {
    const counters = [2 ** 32, 2 ** 40 + 7, Number.MAX_SAFE_INTEGER];
    const file = pythonWrites({ keys: counters.map((counter, i) => ({ serial: `C${i}`, secret: SECRET, algorithm: HOTP, digits: 6, counter })), protection });
    const peer = pythonReads(file, [...peerArgs]);
    expect(peer.map((k) => k.counter)).toEqual(counters);
    expect(keytapReads(file, ours).map((t) => t.counter)).toEqual(counters);
  });

  it('TimeInterval above 65535 (a two-day step) is kept', () => {
    const file = pythonWrites({ keys: [{ serial: 'T1', secret: SECRET, algorithm: TOTP, digits: 6, period: 172_800 }] });
    expect(pythonReads(file)[0]!.time_interval).toBe(172_800);
    expect(keytapReads(file)[0]!.period).toBe(172_800);
  });

  it('several keys on one device (one KeyPackage): one token per key, with the device serial and each key id', () => {
    const file = pythonWrites({
      keys: [
        { serial: '9999999', id: '3', device: 'd', secret: SECRET, algorithm: HOTP, digits: 8, counter: 0 },
        { serial: '9999999', id: '4', device: 'd', secret: 'a1'.repeat(20), algorithm: HOTP, digits: 8, counter: 5 },
        { serial: '123456', id: '5', secret: SECRET, algorithm: TOTP, digits: 6, period: 30 },
      ],
    });
    const peer = pythonReads(file);
    const ours = keytapReads(file);
    expect(ours.map((t) => [t.serial, t.keyId, Buffer.from(t.secret).toString('hex'), t.counter])).toEqual(
      peer.map((k) => [k.serial, k.id, k.secret, k.counter ?? 0]),
    );
    expect(ours).toHaveLength(3);
  });

  it('ykman\'s FriendlyName "Issuer:account" next to Issuer: the account is not prefixed twice', () => {
    // What "ykman oath accounts add --output" writes (ykman/_cli/oath.py): Issuer, FriendlyName issuer:name, UserId CN=name.
    const file = pythonWrites({
      keys: [
        { serial: '1', secret: SECRET, algorithm: TOTP, digits: 6, period: 30, issuer: 'Example', friendly_name: 'Example:alice@example.com', key_userid: 'CN=alice@example.com' },
        { serial: '2', secret: SECRET, algorithm: TOTP, digits: 6, period: 30, issuer: 'Example', friendly_name: 'Other:bob' },
        { serial: '3', secret: SECRET, algorithm: TOTP, digits: 6, period: 30, friendly_name: 'carol' },
      ],
    });
    expect(pythonReads(file).map((k) => [k.issuer, k.friendly_name])).toEqual([
      ['Example', 'Example:alice@example.com'],
      ['Example', 'Other:bob'],
      [null, 'carol'],
    ]);
    expect(keytapReads(file).map((t) => [t.issuer, t.account])).toEqual([
      ['Example', 'alice@example.com'],
      ['Example', 'Other:bob'],
      [undefined, 'carol'],
    ]);
  });

  it(`PBKDF2 with more than ${PSKC_MAX_ITERATIONS} iterations: refused without consent, read with it`, () => {
    const iterations = PSKC_MAX_ITERATIONS + 1;
    const file = pythonWrites({ keys: [{ serial: 'P1', secret: SECRET, algorithm: HOTP, digits: 6, counter: 1 }], protection: { kind: 'passphrase', passphrase: 'qwerty', iterations } });
    let refused: unknown;
    try {
      keytapReads(file, { passphrase: 'qwerty' });
    } catch (error) {
      refused = error;
    }
    expect(refused).toBeInstanceOf(KeytapError);
    expect((refused as KeytapError).detail).toEqual({ kind: 'slow-kdf', iterations, cap: PSKC_MAX_ITERATIONS });
    const [token] = keytapReads(file, { passphrase: 'qwerty', allowSlowKdf: true });
    expect(Buffer.from(token!.secret).toString('hex')).toBe(pythonReads(file, ['--passphrase', 'qwerty'])[0]!.secret);
  });
});
