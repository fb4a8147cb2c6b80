// The checks each interactive answer of `keytap program` goes through when it is given, and the
// numbered list a key is picked from.
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { algorithmAnswer, formatsAnswer, labelAnswer, secretAnswer, serialAnswer, upnAnswer } from '../../src/cli/program-questions.js';
import { formatsNeedingUser } from '../../src/provision/token.js';
import { choice, openPrompter } from '../../src/cli/prompt.js';
import { DEFAULT_PARAMETERS, buildToken } from '../../src/provision/token.js';
import { seedFormat } from '../../src/seeds/index.js';

const SECRET = new Uint8Array(20).fill(7);
const totp = buildToken({ ...DEFAULT_PARAMETERS }, SECRET, 'KT00000000');

describe('each answer is checked when given', () => {
  it('secret: the encoding and the length, the short one only with --allow-short-secret', () => {
    expect(secretAnswer(false)('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ')).toBe('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ');
    expect(secretAnswer(false)('hex:3132333435363738393031323334353637383930')).toBe('hex:3132333435363738393031323334353637383930');
    expect(() => secretAnswer(false)('not-base32!')).toThrow(/^The secret is not valid Base32: character \d+ is not A–Z or 2–7\.$/u);
    expect(() => secretAnswer(false)('hex:123')).toThrow(/not valid hex/u);
    expect(() => secretAnswer(false)('GEZDGNBV')).toThrow(/5 bytes; RFC 4226 requires at least 16/u);
    expect(secretAnswer(true)('GEZDGNBV')).toBe('GEZDGNBV');
  });

  it('hash: only one the chosen key computes codes with', () => {
    const nitrokey = algorithmAnswer(['SHA1', 'SHA256']);
    expect(nitrokey('sha256')).toBe('SHA256');
    expect(() => nitrokey('SHA512')).toThrow(/does not compute codes with SHA512; choose SHA1 or SHA256/u);
    expect(() => nitrokey('MD5')).toThrow();
  });

  it('seed files: each must carry the token the answers so far make, named with its reason', () => {
    expect(formatsAnswer(totp)('entra,pskc')).toBe('entra,pskc');
    const hotp = buildToken({ ...DEFAULT_PARAMETERS, type: 'HOTP', counter: 5 }, SECRET, 'KT00000000');
    expect(() => formatsAnswer(hotp)('pskc,entra')).toThrow(/^The Entra ID CSV file cannot carry this token: Entra ID does not support HOTP/u);
    const sha256 = buildToken({ ...DEFAULT_PARAMETERS, algorithm: 'SHA256' }, SECRET, 'KT00000000');
    expect(() => formatsAnswer(sha256)('entra')).toThrow(/SHA-1 tokens only, not SHA256/u);
    expect(() => formatsAnswer(totp)('entra,nonsense')).toThrow(/nonsense/u);
    expect(() => formatsAnswer(totp)(',')).toThrow(/at least one/u);
  });

  it('serial and UPN: their syntax', () => {
    expect(serialAnswer('S-42')).toBe('S-42');
    expect(() => serialAnswer('-bad serial')).toThrow(/not usable/u);
    expect(upnAnswer('bob@contoso.com')).toBe('bob@contoso.com');
    expect(() => upnAnswer('bob')).toThrow(/^The UPN must have exactly one "@"/u);
    expect(() => upnAnswer('bob smith@contoso.com')).toThrow(/white space/u);
  });

  it('labels: the name the key stores and the seed files asked for, refusing only what the answer itself brings', () => {
    const entra = [seedFormat('entra'), seedFormat('pskc')];
    const withUser = { ...DEFAULT_PARAMETERS, upn: 'bob@contoso.com' };
    const manufacturer = labelAnswer('manufacturer', (text) => buildToken({ ...withUser, manufacturer: text }, SECRET, 'KT00000000'), entra);
    expect(manufacturer('Acme')).toBe('Acme');
    expect(() => manufacturer('Acme, Inc.')).toThrow(/^The Entra ID CSV file cannot carry this manufacturer: the manufacturer contains a comma or a quote/u);
    const account = labelAnswer('account', (text) => buildToken({ ...withUser, account: text }, SECRET, 'KT00000000'), entra);
    expect(() => account('a'.repeat(65))).toThrow(/64/u);
    expect(() => labelAnswer('issuer', (text) => buildToken({ ...withUser, issuer: text }, SECRET, 'KT00000000'), [])('Ac:me')).toThrow(/^The issuer must not contain ":"\.$/u);
    // The token has no user, which the Entra CSV needs: that is not the manufacturer's doing.
    const noUser = labelAnswer('manufacturer', (text) => buildToken({ ...DEFAULT_PARAMETERS, manufacturer: text }, SECRET, 'KT00000000'), entra);
    expect(noUser('Acme')).toBe('Acme');
  });

  it('the seed files that need a user: Entra ID, not PSKC or Graph', () => {
    const formats = ['entra', 'pskc', 'graph'].map((name) => seedFormat(name));
    expect(formatsNeedingUser(totp, formats).map((f) => f.name)).toEqual(['entra']);
    expect(formatsNeedingUser({ ...totp, upn: 'bob@contoso.com' }, formats)).toEqual([]);
  });
});

describe('choice', () => {
  it('lists the items numbered and asks again until a number in range is given', async () => {
    const input = new PassThrough();
    const output = new PassThrough();
    output.resume();
    const errors: string[] = [];
    const prompter = openPrompter({ input, output, err: (line) => errors.push(line) });
    input.write('0\n\nthree\n2\n');
    try {
      expect(await choice(prompter, 'Key to program', ['alpha', 'beta'], (x) => x.toUpperCase(), (line) => errors.push(line))).toBe('beta');
    } finally {
      prompter.close();
    }
    expect(errors.slice(0, 2)).toEqual(['  1) ALPHA', '  2) BETA']);
    expect(errors.slice(2)).toEqual(['  Answer a number from 1 to 2.', '  Answer a number from 1 to 2.', '  Answer a number from 1 to 2.']);
  });
});
