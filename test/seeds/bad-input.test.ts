// Bad input: every reader answers with BAD_INPUT naming the line (CSV) or element (XML) and the
// problem, never a secret; nothing is written while reading.
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { KeytapError } from '../../src/errors.js';
import type { SeedReadOptions, SeedToken, SeedWarning } from '../../src/seeds/index.js';
import { SEED_FORMATS, detectFormat, entraFormat, pskcFormat, seedFormat } from '../../src/seeds/index.js';

const FIXTURES = join(import.meta.dirname, '../fixtures/pskc');
const HEADER = 'upn,serial number,secret key,time interval,manufacturer,model';
const SECRET_B32 = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
const SECRET_B64 = 'MTIzNDU2Nzg5MDEyMzQ1Njc4OTA=';
const SECRET_HEX = '3132333435363738393031323334353637383930';

function readError(read: () => unknown): KeytapError {
  try {
    read();
  } catch (error) {
    expect(error).toBeInstanceOf(KeytapError);
    const e = error as KeytapError;
    expect(e.code).toBe('BAD_INPUT');
    for (const secret of [SECRET_B32, SECRET_B64, SECRET_HEX, 'qwerty', 'wrong-passphrase']) {
      expect(e.message).not.toContain(secret);
      expect(e.hint ?? '').not.toContain(secret);
    }
    return e;
  }
  throw new Error('expected a BAD_INPUT error');
}

const entra = (text: string, options?: SeedReadOptions): KeytapError => readError(() => entraFormat.read(Buffer.from(text, 'utf8'), options));
const row = (serial: string, secret = SECRET_B32, interval = '30', upn = 'alice@contoso.com'): string => `${upn},${serial},${secret},${interval},Vendor,Model`;

describe('Entra CSV reader', () => {
  it('reads a BOM and CRLF', () => {
    const tokens = entraFormat.read(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(`${HEADER}\r\n${row('1001')}\r\n${row('1002')}\r\n`)]));
    expect(tokens.map((t) => t.serial)).toEqual(['1001', '1002']);
    expect(Buffer.from(tokens[0]!.secret).toString()).toBe('12345678901234567890');
  });

  it('Base64 where Base32 belongs: "this looks like Base64; Entra wants Base32", with the line', () => {
    expect(entra(`${HEADER}\n${row('1001')}\n${row('1002', SECRET_B64)}\n`).message).toMatch(/line 3: the secret key: this looks like Base64; Entra wants Base32 \(its "=" padding fits Base64/u);
    expect(entra(`${HEADER}\n${row('1001', 'ab+cdEFG')}\n`).message).toMatch(/line 2: .*this looks like Base64.*"\+" or "\/"/u);
    expect(entra(`${HEADER}\n${row('1001', 'MTIzNDU2Nzg5MDEyMzQ1Njc4OTA')}\n`).message).toMatch(/line 2: .*this looks like Base64/u);
  });

  it('mixed case Base32 of an impossible length says Base64', () => {
    expect(entra(`${HEADER}\n${row('1001', 'AbcdEf')}\n`).message).toMatch(/line 2: .*length Base32 never has.*Base64/u);
  });

  it('a hex secret says hex; with secretEncoding hex it reads', () => {
    expect(entra(`${HEADER}\n${row('1001', SECRET_HEX)}\n`).message).toMatch(/line 2: the secret key looks like hex.*Entra wants Base32/u);
    const [t] = entraFormat.read(Buffer.from(`${HEADER}\n${row('1001', SECRET_HEX)}\n`), { secretEncoding: 'hex' });
    expect(Buffer.from(t!.secret).toString()).toBe('12345678901234567890');
    const [b] = entraFormat.read(Buffer.from(`${HEADER}\n${row('1001', SECRET_B64)}\n`), { secretEncoding: 'base64' });
    expect(Buffer.from(b!.secret).toString()).toBe('12345678901234567890');
  });

  it('lower-case Base32 is fine; padded Base32 reads with a warning', () => {
    const warnings: SeedWarning[] = [];
    const tokens = entraFormat.read(Buffer.from(`${HEADER}\n${row('1', SECRET_B32.toLowerCase())}\n${row('2', 'GEZDGNBV')}\n${row('3', 'GEZDGNA=')}\n`), { onWarning: (w) => warnings.push(w) });
    expect(tokens).toHaveLength(3);
    expect(warnings).toContainEqual({ line: 4, message: expect.stringMatching(/padding/u) as string });
  });

  it('duplicate serials name both lines', () => {
    expect(entra(`${HEADER}\n${row('1001')}\n${row('1002')}\n${row('1001')}\n`).message).toMatch(/line 4: the serial number 1001 repeats line 2/u);
  });

  it('Excel-mangled serials: scientific notation and lost leading zeros', () => {
    expect(entra(`${HEADER}\n${row('1.23457E+11')}\n`).message).toMatch(/line 2: the serial number 1\.23457E\+11 is in scientific notation.*Excel/u);
    expect(entra(`${HEADER}\n${row('00012345')}\n${row('12346')}\n`).message).toMatch(/line 3: the serial number 12346 is shorter than 00012345 \(line 2\); did Excel drop its leading zeros\? The real serial may be 00012346/u);
  });

  it('a truncated file: the last line lacks fields, or its secret is cut short', () => {
    expect(entra(`${HEADER}\n${row('1001')}\nbob@contoso.com,1002,GEZDG`).message).toMatch(/line 3: the line has 3 fields; it needs 6.*cut short/u);
    expect(entra(`${HEADER}\n${row('1001', 'GEZDGNBVG')}\n`).message).toMatch(/line 2: the secret key is 9 characters, a length Base32 never has \(cut short\?\)/u);
  });

  it('wrong encodings: UTF-16 (with and without BOM) and Latin-1 say so', () => {
    const text = `${HEADER}\n${row('1001', SECRET_B32, '30', 'jürgen@contoso.com')}\n`;
    expect(readError(() => entraFormat.read(Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]))).message).toMatch(/is UTF-16/u);
    expect(readError(() => entraFormat.read(Buffer.from(text, 'utf16le'))).message).toMatch(/looks like UTF-16/u);
    expect(readError(() => entraFormat.read(Buffer.from(text, 'latin1'))).message).toMatch(/not UTF-8: line 2 .*Latin-1/u);
  });

  it('header problems, bad interval, several problems at once', () => {
    expect(entra(`${row('1001')}\n`).message).toMatch(/line 1: the header row is missing/u);
    expect(entra(`upn;serial number;secret key;time interval;manufacturer;model\n`).message).toMatch(/line 1: .*";".*commas/u);
    const e = entra(`${HEADER}\n${row('1', SECRET_B32, '45')}\n${row('2', SECRET_HEX)}\n${row('3', '')}\n`);
    expect(e.message).toMatch(/3 problems/u);
    expect(e.message).toMatch(/line 2: the time interval is "45"/u);
    expect(e.message).toMatch(/line 3: the secret key looks like hex/u);
    expect(e.message).toMatch(/line 4: the secret key is empty/u);
  });
});

describe('PSKC reader', () => {
  const fixture = (name: string): string => readFileSync(`${FIXTURES}/${name}`, 'utf8');
  const pskc = (text: string, options?: SeedReadOptions): KeytapError => readError(() => pskcFormat.read(Buffer.from(text, 'utf8'), options));

  it('wrong passphrase, wrong key, missing passphrase/key: says which', () => {
    expect(pskc(fixture('hotp-pbkdf2.pskcxml'), { passphrase: 'wrong-passphrase' }).message).toMatch(/^The passphrase is wrong/u);
    expect(pskc(fixture('totp-aes128cbc-psk.pskcxml'), { key: Buffer.alloc(16, 9) }).message).toMatch(/^The key is wrong/u);
    expect(pskc(fixture('hotp-pbkdf2.pskcxml')).message).toMatch(/protected by a passphrase \(named "Example password"\)/u);
    expect(pskc(fixture('totp-aes128cbc-psk.pskcxml')).message).toMatch(/protected by a pre-shared key \(named "Pre-shared-key"\); give it/u);
    expect(pskc(fixture('totp-aes128cbc-psk.pskcxml'), { passphrase: 'qwerty' }).message).toMatch(/pre-shared key.*not a passphrase/u);
    expect(pskc(fixture('totp-aes128cbc-psk.pskcxml'), { key: Buffer.alloc(32) }).message).toMatch(/needs a 16-byte key, but the key given is 32 bytes/u);
  });

  it('a wrong MAC (file altered) names the element and says the key is right', () => {
    const altered = fixture('totp-aes128cbc-psk.pskcxml').replace('yfMFUGGawzl72FFULyjd55ac+Go=', 'AAAAUGGawzl72FFULyjd55ac+Go=');
    const e = pskc(altered, { key: Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex') });
    expect(e.message).toMatch(/KeyContainer\/KeyPackage\/Key\/Data\/Secret\/ValueMAC \(line 29\): the MAC does not match: the file was altered or damaged .*the key is right/u);
  });

  it('a truncated file names where it ends', () => {
    const text = fixture('totp-plain.pskcxml');
    expect(pskc(text.slice(0, text.indexOf('</Data>'))).message).toMatch(/line 1[0-9]: the file ends inside <Data> opened on line 12: it was cut short/u);
    expect(pskc(text.slice(0, text.indexOf('MTIzNDU2') + 10)).message).toMatch(/cut short/u);
  });

  it('duplicate serials, Excel serials, bad digits, unknown algorithm, missing secret: element paths', () => {
    const two = fixture('totp-plain.pskcxml').replace(/(<KeyPackage>[\s\S]*<\/KeyPackage>)/u, '$1\n$1');
    expect(pskc(two).message).toMatch(/KeyContainer\/KeyPackage\[2\] \(line \d+\): the serial number 10001001 repeats KeyContainer\/KeyPackage\[1\] \(line 3\)/u);
    expect(pskc(fixture('totp-plain.pskcxml').replace('<SerialNo>10001001', '<SerialNo>1.00E+07')).message).toMatch(/scientific notation/u);
    expect(pskc(fixture('totp-plain.pskcxml').replace('Length="6"', 'Length="10"')).message).toMatch(/ResponseFormat \(line 10\): Length is "10"/u);
    expect(pskc(fixture('totp-plain.pskcxml').replace(':totp"', ':ocra"')).message).toMatch(/Key \(line 8\): the algorithm .*:ocra is not HOTP or TOTP/u);
    expect(pskc(fixture('totp-plain.pskcxml').replace(/<Secret>.*<\/Secret>/u, '')).message).toMatch(/Key \(line 8\): the key has no Data\/Secret/u);
    expect(pskc(fixture('totp-plain.pskcxml').replace('MTIzNDU2Nzg5MDEyMzQ1Njc4OTA=', 'MTIzNDU2Nzg5MDEyMzQ1Njc4OTA')).message).toMatch(/PlainValue \(line 13\): the PlainValue is not valid Base64 \(its length is wrong: cut short\?\)/u);
    expect(pskc(fixture('totp-plain.pskcxml').replace('<Time><PlainValue>0', '<Time><PlainValue>5')).message).toMatch(/Time \(line 14\): Time is 5, not 0/u);
  });

  it('not PSKC, wrong version, DOCTYPE, wrong declared encoding, UTF-16', () => {
    expect(pskc('<?xml version="1.0"?><data/>').message).toMatch(/not a PSKC file: the root element is <data>/u);
    expect(pskc(fixture('totp-plain.pskcxml').replace('Version="1.0"', 'Version="2.0"')).message).toMatch(/Version is "2\.0"/u);
    expect(pskc('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><KeyContainer/>').message).toMatch(/line 1: a DOCTYPE/u);
    expect(pskc(fixture('totp-plain.pskcxml').replace('encoding="UTF-8"', 'encoding="ISO-8859-1"')).message).toMatch(/declares encoding "ISO-8859-1"/u);
    expect(readError(() => pskcFormat.read(Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(fixture('totp-plain.pskcxml'), 'utf16le')]))).message).toMatch(/UTF-16/u);
  });

  it('accepts a BOM and CRLF', () => {
    const text = fixture('totp-plain.pskcxml').replace(/\n/gu, '\r\n');
    expect(pskcFormat.read(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)]))).toHaveLength(1);
  });
});

describe('the other readers', () => {
  const read = (name: string, text: string): KeytapError => readError(() => seedFormat(name).read(Buffer.from(text, 'utf8')));

  it('hex CSV: line numbers for Base32 seeds, odd lengths, bad counters, duplicates', () => {
    expect(seedFormat('hexcsv').read(Buffer.from(`\uFEFFserial,seed,counter\r\nA1,${SECRET_HEX},5\r\n`))[0]!.counter).toBe(5);
    expect(read('hexcsv', `A1,${SECRET_B32},0\n`).message).toMatch(/line 1: the seed looks like Base32; this file carries hex seeds/u);
    expect(read('hexcsv', `A1,${SECRET_HEX},0\nA2,${SECRET_HEX.slice(0, 9)}`).message).toMatch(/line 2: the seed has an odd number of hex digits \(9; cut short\?\)/u);
    expect(read('hexcsv', `A1,${SECRET_HEX},x\n`).message).toMatch(/line 1: the counter/u);
    expect(read('hexcsv', `A1,${SECRET_HEX}\n\nA1,${SECRET_HEX}\n`).message).toMatch(/line 3: the serial number A1 repeats line 1/u);
  });

  it('privacyIDEA CSV: OCRA refused, bad length, SHA-224 seeds', () => {
    expect(read('privacyidea', `# comment\nA1, ${SECRET_HEX}, OCRA, OCRA-1:HOTP-SHA1-6:QN08\n`).message).toMatch(/line 2: the token type is OCRA/u);
    expect(read('privacyidea', `A1, ${SECRET_HEX}, totp, 7, 30\n`).message).toMatch(/line 1: the OTP length is "7"/u);
    expect(read('privacyidea', `A1, ${'ab'.repeat(28)}, totp, 6, 30\n`).message).toMatch(/line 1: privacyIDEA reads a 28-byte seed as SHA224/u);
    const [v2] = seedFormat('privacyidea').read(Buffer.from(`# version: 2\nalice, ldap, realm1, A1, ${SECRET_HEX}, totp, 8, 60\n`));
    expect(v2).toMatchObject({ upn: 'alice', serial: 'A1', type: 'TOTP', digits: 8, period: 60, algorithm: 'SHA1' });
  });

  it('otpauth: the line and the URI problem, never the URI', () => {
    expect(read('otpauth', `otpauth://totp/A:b?secret=${SECRET_B32}&serial=1\notpauth://totp/A:c?secret=${SECRET_HEX}189&serial=2\n`).message).toMatch(/line 2: The otpauth URI's secret parameter is not valid Base32/u);
    expect(read('otpauth', `otpauth://totp/A:b?secret=${SECRET_B32}&serial=1\notpauth://totp/A:c?secret=${SECRET_B32}&serial=1\n`).message).toMatch(/line 2: the serial number 1 repeats line 1/u);
  });

  it('Graph JSON: paths, Base64 secrets, null secrets, truncation', () => {
    const device = (secretKey: unknown): string => JSON.stringify({ value: [{ serialNumber: '1', manufacturer: 'm', model: 'm', secretKey, timeIntervalInSeconds: 30 }] });
    expect(read('graph', device(SECRET_B64)).message).toMatch(/value\[0\]\.secretKey: this looks like Base64; Entra wants Base32/u);
    expect(read('graph', device(null)).message).toMatch(/value\[0\]\.secretKey is null: Graph never returns secrets/u);
    expect(read('graph', device(SECRET_B32).slice(0, 60)).message).toMatch(/not valid JSON.*cut short/u);
    expect(seedFormat('graph').read(Buffer.from(device(SECRET_B32).replace('30', '"60"')))[0]!.period).toBe(60);
  });

  it('DualShield: encrypted files, bad hex, truncation', () => {
    const file = SEED_FORMATS.dualshield.write([{ serial: '71358472', secret: Buffer.from(SECRET_HEX, 'hex'), type: 'TOTP', algorithm: 'SHA1', digits: 6, period: 60, counter: 0 }]).toString();
    expect(read('dualshield', file.replace('<encrypt>NONE', '<encrypt>AES256')).message).toMatch(/header \(line 3\): the seeds are encrypted \(encrypt is "AES256"\)/u);
    expect(read('dualshield', file.replace(SECRET_HEX.toUpperCase(), SECRET_B64)).message).toMatch(/token \(line 13\): the seed is not hex \(it looks like Base64, but the header says HEX\)/u);
    expect(read('dualshield', file.slice(0, file.indexOf('</tokens>'))).message).toMatch(/the file ends inside <tokens> opened on line 12: it was cut short/u);
  });

  it('detectFormat refuses what it cannot tell', () => {
    expect(() => detectFormat(Buffer.from('<foo/>'), 'x.xml')).toThrow(/neither PSKC/u);
    expect(() => detectFormat(Buffer.from('just one field\n'), 'x.bin')).toThrow(/Cannot tell the format/u);
  });
});

describe('writers refuse what a format cannot carry, naming the token', () => {
  const base: SeedToken = { serial: 'S1', secret: Buffer.alloc(20, 1), type: 'TOTP', algorithm: 'SHA1', digits: 6, period: 30, counter: 0, upn: 'a@b.com' };
  it.each([
    ['entra', { type: 'HOTP' as const }, /does not support HOTP/u],
    ['entra', { digits: 8 }, /6-digit codes only/u],
    ['entra', { algorithm: 'SHA256' as const }, /SHA-1 tokens only.*Graph/u],
    ['entra', { period: 45 }, /30 or 60/u],
    ['entra', { upn: undefined }, /UPN is required/u],
    ['entra', { upn: 'not a upn' }, /white space/u],
    ['graph', { algorithm: 'SHA512' as const }, /not SHA-512/u],
    ['hexcsv', {}, /HOTP tokens only/u],
    ['privacyidea', { secret: Buffer.alloc(32), algorithm: 'SHA1' as const }, /would read this 32-byte seed as SHA256/u],
    ['dualshield', { type: 'HOTP' as const, counter: 5 }, /no counter/u],
  ])('%s refuses %o', (name, change, message) => {
    const format = seedFormat(name);
    const token = { ...base, ...change };
    expect(format.accepts(token)).toMatch(message);
    if (format.accepts(base) !== null) return;
    expect(() => format.write([base, token].map((t, i) => ({ ...t, serial: `S${i}` })))).toThrow(/token 2 \(serial "S1"\) cannot be written/u);
  });

  it('repeated serials and mixed DualShield kinds', () => {
    expect(() => pskcFormat.write([base, base])).toThrow(/tokens 1 and 2 have the same serial number "S1"/u);
    expect(() => SEED_FORMATS.dualshield.write([base, { ...base, serial: 'S2', period: 60 }])).toThrow(/token 2 .* time step; a DualShield file holds one kind/u);
  });
});

describe('reading never writes anything', () => {
  it('no file appears in the working directory or the temp directory while every reader runs', () => {
    const snapshot = (d: string): string[] => readdirSync(d).map((f) => `${f}:${statSync(`${d}/${f}`, { throwIfNoEntry: false })?.mtimeMs ?? 0}`).sort();
    // A temp folder of this test's own: the system one changes under tests running in other
    // workers. os.tmpdir() reads TMPDIR on every call, so whatever a reader put there lands here.
    const systemTemp = process.env.TMPDIR;
    const privateTemp = mkdtempSync(join(tmpdir(), 'keytap-reader-temp-'));
    process.env.TMPDIR = privateTemp;
    try {
      expect(tmpdir()).toBe(privateTemp);
      const before = [snapshot(process.cwd()), snapshot(tmpdir()), snapshot(FIXTURES)];
      for (const file of readdirSync(FIXTURES).filter((f) => f.endsWith('.pskcxml'))) {
        try {
          pskcFormat.read(readFileSync(`${FIXTURES}/${file}`), { passphrase: 'qwerty' });
        } catch {
          // PSK files without a key: the error is the point elsewhere
        }
      }
      for (const format of Object.values(SEED_FORMATS)) {
        try {
          format.read(Buffer.from('garbage,\n'));
        } catch {
          // expected
        }
      }
      expect([snapshot(process.cwd()), snapshot(tmpdir()), snapshot(FIXTURES)]).toEqual(before);
    } finally {
      if (systemTemp === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = systemTemp;
      rmSync(privateTemp, { recursive: true, force: true });
    }
  });
});
