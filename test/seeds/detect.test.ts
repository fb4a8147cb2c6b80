// What a file is: detection names the format (or that the file is a keytap ledger, not a seed
// file), whatever its line ends; a command that expects one format says once what the file is
// instead of a line error for every line; Graph JSON errors say where, with line and column.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { KeytapError } from '../../src/errors.js';
import { Ledger } from '../../src/provision/ledger.js';
import { DEFAULT_PARAMETERS, buildToken } from '../../src/provision/token.js';
import type { SeedToken } from '../../src/seeds/index.js';
import { SEED_FORMATS, checkEntraCsv, detectFormat, graphFormat, readAs } from '../../src/seeds/index.js';
import { tempDir } from '../support/cli.js';

const SECRET = Uint8Array.from(Buffer.from('12345678901234567890'));
const HOTP: SeedToken = { serial: 'H1', secret: SECRET, type: 'HOTP', algorithm: 'SHA1', digits: 6, period: 30, counter: 3 };
const TOTP: SeedToken = { serial: 'T1', secret: SECRET, type: 'TOTP', algorithm: 'SHA1', digits: 6, period: 30, counter: 0, upn: 'alice@contoso.com', manufacturer: 'Acme', model: 'K1' };

function thrown(run: () => unknown): KeytapError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(KeytapError);
    return error as KeytapError;
  }
  throw new Error('expected an error');
}

describe('format detection', () => {
  const crOnly = (bytes: Buffer): Buffer => Buffer.from(bytes.toString('utf8').replace(/\r\n|\n/gu, '\r'), 'utf8');

  it.each([
    ['hexcsv', [HOTP, { ...HOTP, serial: 'H2' }, { ...HOTP, serial: 'H3' }]],
    ['privacyidea', [HOTP, TOTP]],
    ['entra', [TOTP, { ...TOTP, serial: 'T2', upn: 'bob@contoso.com' }]],
    ['otpauth', [TOTP, { ...TOTP, serial: 'T2', upn: 'bob@contoso.com' }]],
  ] as const)('%s with CR-only line ends (classic Mac) is recognised and read whole', (name, tokens) => {
    const format = SEED_FORMATS[name];
    const written = tokens.filter((t) => format.accepts(t) === null);
    expect(written.length).toBeGreaterThanOrEqual(2);
    const bytes = crOnly(format.write(written));
    expect(bytes.includes('\n')).toBe(false);
    expect(detectFormat(bytes, 'seeds.txt').name).toBe(name);
    expect(format.read(bytes).map((t) => t.serial)).toEqual(written.map((t) => t.serial));
  });

  it('a keytap ledger is named as what it is, not read as a Graph file with a JSON error', async () => {
    const dir = tempDir();
    const ledger = await Ledger.open(dir);
    await ledger.appendPending(buildToken(DEFAULT_PARAMETERS, SECRET, 'KT00000001'), { id: 'v', name: 'virtual key v' }, 'KT00000001');
    await ledger.close();
    const error = thrown(() => detectFormat(readFileSync(join(dir, 'ledger.jsonl')), join(dir, 'ledger.jsonl')));
    expect(error.code).toBe('BAD_INPUT');
    expect(error.message).toMatch(/^ledger\.jsonl is a keytap ledger .*, not a seed file\.$/u);
    expect(error.message).not.toMatch(/JSON/u);
    expect(error.detail).toEqual({ kind: 'not-a-seed-file', found: 'ledger', dir });
  });
});

describe('seeds check on a file that is not an Entra CSV', () => {
  it.each([
    ['PSKC (RFC 6030)', SEED_FORMATS.pskc.write([TOTP, HOTP])],
    ['DualShield XML', SEED_FORMATS.dualshield.write([TOTP])],
    ['Microsoft Graph hardwareOathDevices JSON', SEED_FORMATS.graph.write([TOTP])],
    ['otpauth URIs', SEED_FORMATS.otpauth.write([TOTP, HOTP])],
    ['privacyIDEA OATH CSV', SEED_FORMATS.privacyidea.write([TOTP, HOTP])],
  ])('%s: one problem saying what the file is', (title, bytes) => {
    const result = checkEntraCsv(bytes);
    expect(result.ok).toBe(false);
    expect(result.problems).toEqual([{ line: 1, message: `this is a ${title} file, not an Entra ID CSV` }]);
  });

  it('a headerless Entra CSV still gets its line errors (it is not taken for another format)', () => {
    const result = checkEntraCsv(Buffer.from('a@b.com,1,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,30,V,M\n'));
    expect(result.problems[0]!.message).toMatch(/header row is missing/u);
  });
});

describe('a format named by the user', () => {
  it('a file whose content says it is another format: one error saying what it is, not a line error per line', () => {
    const bytes = SEED_FORMATS.pskc.write([TOTP, HOTP]);
    const error = thrown(() => readAs(SEED_FORMATS.entra, bytes, '/tmp/x/tokens.pskcxml'));
    expect(error.code).toBe('BAD_INPUT');
    expect(error.message).toBe('tokens.pskcxml is a PSKC (RFC 6030) file, not an Entra ID CSV file.');
  });

  it('a guess does not overrule the user: a two-column file read as privacyIDEA is read as privacyIDEA', () => {
    const bytes = Buffer.from(`S1, ${Buffer.from(SECRET).toString('hex')}\n`);
    expect(detectFormat(bytes).name).toBe('hexcsv');
    expect(readAs(SEED_FORMATS.privacyidea, bytes, 's.csv').map((t) => [t.serial, t.type])).toEqual([['S1', 'HOTP']]);
  });
});

describe('Graph JSON errors say where', () => {
  it.each([
    // "n" may still begin null: the first character no JSON text can have there is the "o".
    ['an unexpected word', '{\n  "value": [\n    {"serialNumber": "1", "secretKey": nope}\n  ]\n}\n', 3, 41],
    ['a missing comma', '{\n  "value": [\n    {"serialNumber": "1"\n     "secretKey": "A"}\n  ]\n}\n', 4, 6],
    ['a trailing comma', '{\r\n  "value": [],\r\n}\r\n', 3, 1],
  ])('%s: line and column', (_what, text, line, column) => {
    const error = thrown(() => graphFormat.read(Buffer.from(text, 'utf8')));
    expect(error.code).toBe('BAD_INPUT');
    expect(error.message).toContain(`not valid JSON (line ${line}, column ${column})`);
  });
});
