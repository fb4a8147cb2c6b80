// Google Authenticator exports (docs/seed-formats.md §4.4): payloads built by Google's protobuf
// runtime from the published schema (test/peers/migration_payload.py), read by keytap's parser.
import { describe, expect, it } from 'vitest';
import { isKeytapError } from '../../src/errors.js';
import { parseMigrationUri } from '../../src/otp/migration.js';
import { migrationPayload, migrationUri } from '../support/migration-payload.js';

const HELLO_HEX = '48656c6c6f21deadbeef';
const SECRET_B = '3dc6caa4824a6d288767b2331e20b43166cb85d9';

function badInput(action: () => unknown): string {
  try {
    action();
  } catch (error) {
    expect(isKeytapError(error, 'BAD_INPUT'), String(error)).toBe(true);
    return (error as Error).message;
  }
  throw new Error('expected BAD_INPUT');
}

describe('parseMigrationUri', () => {
  it('reads every account of an export, with issuer, name, algorithm, digits, type and counter', () => {
    const uri = migrationUri({
      otp_parameters: [
        { secret_hex: HELLO_HEX, name: 'ACME Co:alice@example.com', issuer: 'ACME Co', algorithm: 1, digits: 1, type: 2 },
        { secret_hex: SECRET_B, name: 'bob', issuer: 'Bank', algorithm: 3, digits: 2, type: 1, counter: 42 },
        { secret_hex: SECRET_B, name: 'Forge:carol', algorithm: 2, digits: 1, type: 2 },
      ],
    });
    const { batch, accounts } = parseMigrationUri(uri);
    expect(batch).toEqual({ index: 0, size: 1, id: 0 });
    expect(accounts.map((a) => (a.ok ? { ...a.credential, secret: Buffer.from(a.credential.secret).toString('hex') } : a))).toEqual([
      { issuer: 'ACME Co', account: 'alice@example.com', type: 'TOTP', algorithm: 'SHA1', digits: 6, period: 30, counter: undefined, touch: false, secret: HELLO_HEX },
      { issuer: 'Bank', account: 'bob', type: 'HOTP', algorithm: 'SHA512', digits: 8, period: 30, counter: 42, touch: false, secret: SECRET_B },
      { issuer: 'Forge', account: 'carol', type: 'TOTP', algorithm: 'SHA256', digits: 6, period: 30, counter: undefined, touch: false, secret: SECRET_B },
    ]);
  });

  it('reads URL-safe Base64 and an unescaped data parameter too', () => {
    const base64 = migrationPayload({ otp_parameters: [{ secret_hex: 'fbff', name: 'x?>', issuer: 'I' }] });
    expect(base64).toMatch(/[+/]/);
    for (const data of [base64, base64.replace(/\+/g, '-').replace(/\//g, '_'), encodeURIComponent(base64)]) {
      const [account] = parseMigrationUri(`otpauth-migration://offline?data=${data}`).accounts;
      expect(account).toMatchObject({ ok: true, credential: { issuer: 'I', account: 'x?>' } });
    }
  });

  it('says which part of a split export a code is', () => {
    const uri = migrationUri({ batch_size: 3, batch_index: 1, batch_id: 123456, otp_parameters: [{ secret_hex: HELLO_HEX, name: 'a' }] });
    expect(parseMigrationUri(uri).batch).toEqual({ index: 1, size: 3, id: 123456 });
  });

  it('gives an account that cannot go on a key back with its names and the reason, never the secret', () => {
    const uri = migrationUri({
      otp_parameters: [
        { secret_hex: HELLO_HEX, name: 'md5', issuer: 'Old', algorithm: 4 },
        { secret_hex: HELLO_HEX, name: 'weird-alg', algorithm: 9 },
        { secret_hex: HELLO_HEX, name: 'weird-digits', digits: 5 },
        { secret_hex: HELLO_HEX, name: 'no-type', type: 0 },
        { secret_hex: HELLO_HEX, name: 'weird-type', type: 7 },
        { secret_hex: '', name: 'empty' },
        { secret_hex: HELLO_HEX, name: '' },
      ],
    });
    const accounts = parseMigrationUri(uri).accounts;
    expect(accounts).toEqual([
      { ok: false, issuer: 'Old', account: 'md5', problem: 'it uses MD5, which OATH keys do not support' },
      { ok: false, issuer: undefined, account: 'weird-alg', problem: 'its algorithm is unknown (value 9)' },
      { ok: false, issuer: undefined, account: 'weird-digits', problem: 'its number of digits is unknown (value 5)' },
      { ok: false, issuer: undefined, account: 'no-type', problem: 'its type is not given; it must be TOTP or HOTP' },
      { ok: false, issuer: undefined, account: 'weird-type', problem: 'its type is unknown (value 7); it must be TOTP or HOTP' },
      { ok: false, issuer: undefined, account: 'empty', problem: 'it has no secret' },
      { ok: false, issuer: undefined, account: '', problem: 'it has no account name' },
    ]);
  });

  it('refuses an HOTP counter of 2^32 (keys keep 4 bytes) and takes 2^32 - 1', () => {
    const uri = migrationUri({
      otp_parameters: [
        { secret_hex: SECRET_B, name: 'big', type: 1, counter: 4294967296 },
        { secret_hex: SECRET_B, name: 'max', type: 1, counter: 4294967295 },
      ],
    });
    const [big, max] = parseMigrationUri(uri).accounts;
    expect(big).toEqual({ ok: false, issuer: undefined, account: 'big', problem: 'its HOTP counter 4294967296 is above 4294967295, the largest a key keeps' });
    expect(max).toEqual(expect.objectContaining({ ok: true, credential: expect.objectContaining({ counter: 4294967295 }) }));
  });

  it('refuses what is no export, with a message that does not repeat the data', () => {
    expect(badInput(() => parseMigrationUri('otpauth://totp/a?secret=AA'))).toMatch(/not an otpauth-migration/);
    expect(badInput(() => parseMigrationUri('otpauth-migration://offline?foo=1'))).toMatch(/no data parameter/);
    expect(badInput(() => parseMigrationUri('otpauth-migration://offline?data=%%'))).toMatch(/broken %-escape/);
    expect(badInput(() => parseMigrationUri('otpauth-migration://offline?data=SECRET*'))).toBe('The data of the otpauth-migration URI is not Base64.');
    // A field 1 of wire type 2 whose length runs past the end.
    const broken = badInput(() => parseMigrationUri(`otpauth-migration://offline?data=${Buffer.from([0x0a, 0x50, 0x01]).toString('base64')}`));
    expect(broken).toMatch(/not a Google Authenticator export/);
  });
});
