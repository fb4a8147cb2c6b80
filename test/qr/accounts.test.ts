// What the QR codes in an image hold, as accounts: otpauth URIs, Google Authenticator exports
// (payloads from Google's protobuf runtime), and codes that hold something else, described
// without repeating them.
import { describe, expect, it } from 'vitest';
import { isKeytapError } from '../../src/errors.js';
import { accountsFromCodes, scanAndWipe, scanImage } from '../../src/qr/accounts.js';
import { readImage } from '../../src/qr/image.js';
import { migrationUri } from '../support/migration-payload.js';
import { qrPng, screenPng } from '../support/qr-images.js';

const URI_A = 'otpauth://totp/ACME%20Co:alice@example.com?secret=JBSWY3DPEHPK3PXP&issuer=ACME%20Co';

async function thrown(action: () => Promise<unknown>): Promise<Error & { code?: string; hint?: string }> {
  try {
    await action();
  } catch (error) {
    return error as Error;
  }
  throw new Error('nothing was thrown');
}

describe('accountsFromCodes', () => {
  it('an otpauth URI is one account; an export is each of its accounts, and a split one says which part', () => {
    const exported = migrationUri({
      batch_size: 2,
      batch_index: 0,
      batch_id: 99,
      otp_parameters: [
        { secret_hex: '0102030405060708090a', name: 'bob', issuer: 'Bank', type: 1, counter: 3 },
        { secret_hex: '0102030405060708090a', name: 'old', issuer: 'Legacy', algorithm: 4 },
      ],
    });
    const scan = accountsFromCodes([URI_A, exported]);
    expect(scan.codes).toBe(2);
    expect(scan.accounts.map((a) => [a.credential.issuer, a.credential.account, a.credential.type, a.source])).toEqual([
      ['ACME Co', 'alice@example.com', 'TOTP', 'otpauth URI'],
      ['Bank', 'bob', 'HOTP', 'Google Authenticator export (QR code 1 of 2)'],
    ]);
    expect(scan.skipped).toEqual(['Legacy: old from the Google Authenticator export (QR code 1 of 2): it uses MD5, which OATH keys do not support']);
    expect(scan.incomplete).toEqual([{ id: 99, size: 2, missing: [2] }]);
  });

  it('an export split over three codes: the numbers of those not read, none when all three were', () => {
    const part = (index: number, id = 7): string => migrationUri({ batch_size: 3, batch_index: index, batch_id: id, otp_parameters: [{ secret_hex: '0102030405060708090a', name: `user${index}`, issuer: 'Bank', type: 2 }] });
    expect(accountsFromCodes([part(0)]).incomplete).toEqual([{ id: 7, size: 3, missing: [2, 3] }]);
    expect(accountsFromCodes([part(2), part(0)]).incomplete).toEqual([{ id: 7, size: 3, missing: [2] }]);
    const all = accountsFromCodes([part(1), part(2), part(0)]);
    expect(all.incomplete).toEqual([]);
    expect(all.accounts.map((a) => a.credential.account)).toEqual(['user1', 'user2', 'user0']);
    // Two exports at once: each is counted on its own.
    expect(accountsFromCodes([part(0), part(1), part(2), part(1, 8)]).incomplete).toEqual([{ id: 8, size: 3, missing: [1, 3] }]);
  });

  it('the same text found twice (a window and its thumbnail) gives its accounts once', () => {
    const exported = migrationUri({ otp_parameters: [{ secret_hex: '0102030405060708090a', name: 'bob', issuer: 'Bank', type: 2 }] });
    const scan = accountsFromCodes([URI_A, exported, ` ${URI_A}`, exported]);
    expect(scan.codes).toBe(2);
    expect(scan.accounts.map((a) => `${a.credential.issuer}:${a.credential.account}`)).toEqual(['ACME Co:alice@example.com', 'Bank:bob']);
    expect(scan.skipped).toEqual([]);
  });

  it('describes a web address by its host, other text by its length, a broken URI by its fault — never repeating them', () => {
    const scan = accountsFromCodes([
      'https://login.example.com/setup?token=SECRETTOKEN',
      'JBSWY3DPEHPK3PXP',
      'mailto:alice@example.com',
      'otpauth://totp/a?secret=NOT*BASE32',
    ]);
    expect(scan.accounts).toEqual([]);
    expect(scan.skipped).toEqual([
      'a web address on login.example.com, not an otpauth:// URI',
      'text of 16 characters, not an otpauth:// URI',
      'a mailto: URI, not an otpauth:// URI',
      "an otpauth URI that cannot be read (The otpauth URI's secret parameter is not valid Base32)",
    ]);
    expect(scan.skipped.join('\n')).not.toMatch(/SECRETTOKEN|JBSWY3DP|NOT\*BASE32|alice/);
  });
});

describe('scanAndWipe', () => {
  const zeroed = (bytes: Uint8Array): boolean => bytes.length > 0 && bytes.every((byte) => byte === 0);

  it('pixels and a PNG file\'s bytes are zeroed once searched, found or not', async () => {
    const pixels = { format: 'rgba' as const, ...readImage(await qrPng(URI_A)) };
    expect((await scanAndWipe(pixels, 'screen')).accounts.map((a) => a.credential.account)).toEqual(['alice@example.com']);
    expect(zeroed(pixels.data)).toBe(true);

    const png = { format: 'png' as const, data: new Uint8Array(await qrPng(URI_A)) };
    expect((await scanAndWipe(png, 'screen')).accounts).toHaveLength(1);
    expect(zeroed(png.data)).toBe(true);

    const blank = { format: 'file' as const, data: new Uint8Array(await screenPng(300, 200, [])) };
    expect((await thrown(() => scanAndWipe(blank, 'image'))).message).toBe('No QR code found in the image.');
    expect(zeroed(blank.data)).toBe(true);
  });
});

describe('scanImage', () => {
  it('finds the account in a code on a screen', async () => {
    const image = readImage(await screenPng(800, 600, [{ text: URI_A, x: 300, y: 200 }]));
    const scan = await scanImage(image, 'screen');
    expect(scan.accounts.map((a) => a.credential.account)).toEqual(['alice@example.com']);
    expect(Buffer.from(scan.accounts[0]!.credential.secret).toString('hex')).toBe('48656c6c6f21deadbeef');
  });

  it('no code: BAD_INPUT saying so, and what to try', async () => {
    const blank = readImage(await screenPng(400, 300, []));
    const screen = await thrown(() => scanImage(blank, 'screen'));
    expect(isKeytapError(screen, 'BAD_INPUT')).toBe(true);
    expect(screen.message).toBe('No QR code found on the screen.');
    expect(screen.hint).toMatch(/zoom in/);
    expect((await thrown(() => scanImage(blank, 'image'))).message).toBe('No QR code found in the image.');
  });

  it('codes that hold no account: BAD_INPUT naming what each holds', async () => {
    const image = readImage(await qrPng('https://example.com/welcome'));
    const one = await thrown(() => scanImage(image, 'image'));
    expect(isKeytapError(one, 'BAD_INPUT')).toBe(true);
    expect(one.message).toBe('The QR code holds no account: a web address on example.com, not an otpauth:// URI.');
    expect(one.hint).toMatch(/otpauth-migration/);
  });
});
