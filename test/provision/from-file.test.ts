import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chooseToken, readSeedFile, replacementToken } from '../../src/provision/from-file.js';
import type { SeedToken } from '../../src/seeds/index.js';
import { seedFormat } from '../../src/seeds/index.js';
import { tempDir } from '../support/cli.js';
import { rejection } from '../support/rejection.js';

const SECRET = Uint8Array.from(Buffer.from('3132333435363738393031323334353637383930', 'hex'));
const A: SeedToken = { serial: 'KT0001', secret: SECRET, type: 'TOTP', algorithm: 'SHA1', digits: 6, period: 30, counter: 0, upn: 'alice@example.com', issuer: 'Corp', account: 'alice' };
const B: SeedToken = { ...A, serial: 'KT0002', upn: 'bob@example.com', account: 'bob', manufacturer: 'Nitrokey', model: 'NK3' };
const LABELS = { upn: undefined, issuer: undefined, account: undefined, manufacturer: undefined, model: undefined, touch: false };

describe('a token from a seed file', () => {
  it('reads a plain and an encrypted PSKC file, the format recognised from the content', async () => {
    const dir = tempDir();
    const plain = join(dir, 'tokens.xml');
    writeFileSync(plain, seedFormat('pskc').write([A, B]));
    const read = await readSeedFile(plain);
    expect(read.map((t) => [t.serial, Buffer.from(t.secret).toString('hex')])).toEqual([
      ['KT0001', Buffer.from(SECRET).toString('hex')],
      ['KT0002', Buffer.from(SECRET).toString('hex')],
    ]);

    const locked = join(dir, 'locked.pskcxml');
    writeFileSync(locked, seedFormat('pskc').write([A], { pskc: { kind: 'passphrase', passphrase: 'correct horse' } }));
    expect((await readSeedFile(locked, { passphrase: 'correct horse' })).map((t) => t.serial)).toEqual(['KT0001']);
    const wrong = await rejection(readSeedFile(locked, { passphrase: 'guess-9137' }));
    expect(wrong.code).toBe('BAD_INPUT');
    expect(`${wrong.message} ${wrong.hint ?? ''}`).not.toContain('guess-9137');
  });

  it('a file that cannot be read says which and why, without its content', async () => {
    const missing = join(tempDir(), 'nope.xml');
    const error = await rejection(readSeedFile(missing));
    expect(error.code).toBe('INPUT_FILE');
    expect(error.message).toBe(`Cannot read ${missing}: no such file.`);
  });

  it('chooses by serial, or the only token; otherwise says what is missing, naming no option', () => {
    expect(chooseToken([A, B], 'KT0002')).toEqual({ kind: 'chosen', token: B });
    expect(chooseToken([A], undefined)).toEqual({ kind: 'chosen', token: A });
    expect(chooseToken([A, B], 'KT9999')).toEqual({ kind: 'no-such-serial', serial: 'KT9999' });
    expect(chooseToken([A, B], undefined)).toEqual({ kind: 'serial-needed', count: 2 });
    expect(chooseToken([], undefined)).toEqual({ kind: 'serial-needed', count: 0 });
  });

  it('several keys of one device (RFC 6030 Figure 10): the serial chooses among them with the key id', () => {
    const key3: SeedToken = { ...A, serial: '9999999', keyId: '3' };
    const key4: SeedToken = { ...A, serial: '9999999', keyId: '4', account: 'four' };
    expect(chooseToken([A, key3, key4], '9999999')).toEqual({ kind: 'key-id-needed', serial: '9999999', keyIds: ['3', '4'] });
    expect(chooseToken([A, key3, key4], '9999999', '4')).toEqual({ kind: 'chosen', token: key4 });
    expect(chooseToken([A, key3, key4], '9999999', '5')).toEqual({ kind: 'no-such-key-id', serial: '9999999', keyId: '5', keyIds: ['3', '4'] });
    // A key id alone is enough when it names one token.
    expect(chooseToken([A, key3, key4], undefined, '3')).toEqual({ kind: 'chosen', token: key3 });
  });

  it('keeps the seed and parameters of the file and takes the labels given anew', () => {
    const kept = replacementToken(B, LABELS);
    expect(kept).toEqual({ ...B, touch: false });
    const relabelled = replacementToken(B, { ...LABELS, upn: 'carol@example.com', issuer: 'New', manufacturer: 'Yubico', touch: true });
    expect(relabelled).toMatchObject({ serial: 'KT0002', secret: SECRET, upn: 'carol@example.com', issuer: 'New', account: 'bob', manufacturer: 'Yubico', model: 'NK3', touch: true });
    // With no account anywhere: the UPN given, then the file's UPN, then the serial.
    const bare: SeedToken = { ...A, account: undefined, upn: undefined };
    expect(replacementToken(bare, { ...LABELS, upn: 'dave@example.com' }).account).toBe('dave@example.com');
    expect(replacementToken({ ...A, account: undefined }, LABELS).account).toBe('alice@example.com');
    expect(replacementToken(bare, LABELS).account).toBe('KT0001');
  });
});
