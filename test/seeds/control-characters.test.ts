// Control characters (a terminal escape such as ESC ] 0; … BEL, which retitles the terminal) in the
// text fields of a seed file — serials, UPNs, names, issuers, accounts — are refused by every
// reader, naming the line or element and the character, never printing it.
import { describe, expect, it } from 'vitest';
import { KeytapError } from '../../src/errors.js';
import type { SeedFormatName, SeedToken } from '../../src/seeds/index.js';
import { checkEntraCsv, seedFormat } from '../../src/seeds/index.js';

const SECRET = Buffer.from('12345678901234567890');
const TOKEN: SeedToken = {
  serial: 'SERIALX1',
  secret: SECRET,
  type: 'TOTP',
  algorithm: 'SHA1',
  digits: 6,
  period: 30,
  counter: 0,
  upn: 'alice@contoso.com',
  issuer: 'ISSUERX1',
  account: 'ACCOUNTX1',
  manufacturer: 'MAKERX1',
  model: 'MODELX1',
};
/** ESC ] 0 ; title BEL: sets the terminal's title. */
const OSC_TITLE = '\u001b]0;pwned\u0007';

function refusal(format: SeedFormatName, text: string): KeytapError {
  try {
    seedFormat(format).read(Buffer.from(text, 'utf8'));
  } catch (error) {
    expect(error).toBeInstanceOf(KeytapError);
    // eslint-disable-next-line no-control-regex -- what must not be there
    expect(JSON.stringify({ ...(error as KeytapError), message: (error as KeytapError).message })).not.toMatch(/\\u001b|\u001b|\\u009b|\u009b|\\u0007/u);
    return error as KeytapError;
  }
  throw new Error(`${format} read a file with a control character`);
}

const written = (format: SeedFormatName, token: Partial<SeedToken> = {}): string =>
  seedFormat(format)
    .write([{ ...TOKEN, ...(format === 'hexcsv' ? { type: 'HOTP' as const } : {}), ...token }])
    .toString('utf8');

describe('control characters in text fields are refused, with the place', () => {
  it.each([
    ['entra', 'SERIALX1', /line 2: the serial number contains a control character \(U\+001B\)/u],
    ['entra', 'alice@contoso.com', /line 2: the upn contains a control character \(U\+001B\)/u],
    ['entra', 'MODELX1', /line 2: the model contains a control character \(U\+001B\)/u],
    ['hexcsv', 'SERIALX1', /line 1: the serial number contains a control character \(U\+001B\)/u],
    ['privacyidea', 'SERIALX1', /line 1: the serial number contains a control character \(U\+001B\)/u],
  ] as const)('%s: ESC in %s', (format, field, message) => {
    expect(refusal(format, written(format).replace(field, `${field}${OSC_TITLE}`)).message).toMatch(message);
  });

  it('privacyIDEA version 2: the user column', () => {
    const text = `# version: 2\nalice\u009b31m, ldap, realm1, A1, ${SECRET.toString('hex')}, totp, 6, 30\n`;
    expect(refusal('privacyidea', text).message).toMatch(/line 2: the user contains a control character \(U\+009B\)/u);
  });

  // XML 1.0 cannot carry C0 controls at all (the parser says so), but C1 controls such as U+009B
  // (CSI, the 8-bit form of ESC [) are legal XML characters.
  it.each([
    ['SerialNo', 'SERIALX1', /KeyPackage \(line \d+\): the serial number contains a control character \(U\+009B\)/u],
    ['Issuer', 'ISSUERX1', /KeyPackage \(line \d+\): the Issuer contains a control character \(U\+009B\)/u],
    ['FriendlyName', 'ACCOUNTX1', /KeyPackage \(line \d+\): the FriendlyName contains a control character \(U\+009B\)/u],
    ['UserId', 'alice@contoso.com', /KeyPackage \(line \d+\): the UserId contains a control character \(U\+009B\)/u],
    ['Model', 'MODELX1', /KeyPackage \(line \d+\): the Model contains a control character \(U\+009B\)/u],
  ])('PSKC: CSI in %s', (_element, value, message) => {
    // The value's end, not its start: the writer puts FriendlyName as "issuer:account", as ykman does.
    expect(refusal('pskc', written('pskc').replaceAll(`${value}<`, `${value}\u009b2J<`)).message).toMatch(message);
    expect(refusal('pskc', written('pskc').replace(`${value}<`, `${value}&#27;<`)).message).toMatch(/U\+001B|not allowed in XML|character XML does not allow/u);
  });

  it('DualShield: the serial', () => {
    expect(refusal('dualshield', written('dualshield').replace('>SERIALX1<', '>SERIALX1\u009b2J<')).message).toMatch(/token \(line \d+\): the serial number contains a control character \(U\+009B\)/u);
  });

  it.each(['serialNumber', 'manufacturer', 'model', 'displayName'])('Graph JSON: %s', (field) => {
    const device = JSON.parse(written('graph')) as { value: Record<string, unknown>[] };
    device.value[0]![field] = `X${OSC_TITLE}`;
    expect(refusal('graph', JSON.stringify(device)).message).toMatch(new RegExp(`value\\[0\\]\\.${field}: the ${field} contains a control character \\(U\\+001B\\)`, 'u'));
  });

  it.each([
    ['serial', '&serial=SERIALX1', '&serial=SERIALX1%1B%5D0%3Bpwned%07', /line 1: the serial parameter contains a control character \(U\+001B\)/u],
    ['issuer', 'issuer=ISSUERX1', 'issuer=ISSUERX1%1B', /line 1: .*control character \(U\+001B\)/u],
    ['account', 'ACCOUNTX1?', 'ACCOUNTX1%C2%9B?', /line 1: the account name contains a control character \(U\+009B\)/u],
  ])('otpauth: the %s', (_what, from, to, message) => {
    expect(refusal('otpauth', written('otpauth').replace(from, to)).message).toMatch(message);
  });

  it('writers refuse C1 controls as they refuse C0 ones', () => {
    for (const field of ['serial', 'upn', 'issuer', 'account', 'manufacturer', 'model'] as const) {
      expect(seedFormat('pskc').accepts({ ...TOKEN, [field]: 'X\u009b2J' })).toMatch(/contains a control character/u);
      expect(seedFormat('pskc').accepts({ ...TOKEN, [field]: 'X\u007f' })).toMatch(/contains a control character/u);
    }
  });

  it('seeds check reports them as problems', () => {
    const result = checkEntraCsv(Buffer.from(written('entra').replace('SERIALX1', `SERIALX1${OSC_TITLE}`)));
    expect(result.ok).toBe(false);
    expect(result.problems).toContainEqual({ line: 2, message: expect.stringMatching(/the serial number contains a control character \(U\+001B\)/u) as string });
  });
});
