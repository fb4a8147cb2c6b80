// `keytap seeds check FILE` for Entra CSVs: every kind of problem, all of them, line-numbered,
// never a secret.
import { describe, expect, it } from 'vitest';
import { checkEntraCsv, entraFormat } from '../../src/seeds/index.js';

const HEADER = 'upn,serial number,secret key,time interval,manufacturer,model';
const B32 = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
const check = (text: string): ReturnType<typeof checkEntraCsv> => checkEntraCsv(Buffer.from(text, 'utf8'));

describe('checkEntraCsv', () => {
  it('a file keytap wrote passes with no problems', () => {
    const bytes = entraFormat.write([{ serial: '1001', secret: Buffer.from('12345678901234567890'), type: 'TOTP', algorithm: 'SHA1', digits: 6, period: 60, counter: 0, upn: 'a@contoso.com', manufacturer: 'V', model: 'M' }]);
    expect(checkEntraCsv(bytes)).toEqual({ ok: true, problems: [], warnings: [], tokenCount: 1 });
  });

  it('reports every kind of problem, all of them, each with its line', () => {
    const lines = [
      'UPN,Serial Number,Secret Key,Time Interval,Manufacturer,Model', // 1 header case
      `alice@contoso.com,1001,${B32},30,V,M`, // 2 fine
      `bob@contoso,1002,${B32},30,V,M`, // 3 UPN without a dotted domain
      `carol contoso.com,1003,${B32},30,V,M`, // 4 UPN without @
      `dave@contoso.com,1004,MTIzNDU2Nzg5MDEyMzQ1Njc4OTA=,30,V,M`, // 5 Base64
      `erin@contoso.com,1005,3132333435363738393031323334353637383930,30,V,M`, // 6 hex
      `frank@contoso.com,1006,${B32}=,30,V,M`, // 7 bad padding → Base64
      `grace@contoso.com,1007,GEZDGNBVGY3TQOJQ====,30,V,M`, // 8 padded Base32
      `heidi@contoso.com,1008,${'A'.repeat(136)},30,V,M`, // 9 too long
      `ivan@contoso.com,1009,${B32},45,V,M`, // 10 interval
      `judy@contoso.com,1001,${B32.slice(0, 16)},30,V,M`, // 11 duplicate serial
      `mallory@contoso.com,1.00101E+11,${B32},30,V,M`, // 12 Excel
      `niaj@contoso.com,1012,GEZ DGNBV,30,V,M`, // 13 space in secret
      `olivia@contoso.com,1013,${B32}`, // 14 missing fields
      `,1014,${B32},30,V,M`, // 15 empty UPN
      `peggy@contoso.com,1015,GEZDGNBVG,30,V,M`, // 16 impossible length
    ];
    const result = check(lines.join('\r\n'));
    expect(result.ok).toBe(false);
    const byLine = new Map(result.problems.map((p) => [p.line, p.message]));
    expect([...byLine.keys()]).toEqual([1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
    expect(byLine.get(1)).toMatch(/header must be exactly/u);
    expect(byLine.get(3)).toMatch(/domain of the UPN/u);
    expect(byLine.get(4)).toMatch(/white space|exactly one "@"/u);
    expect(byLine.get(5)).toMatch(/this looks like Base64; Entra wants Base32/u);
    expect(byLine.get(6)).toMatch(/looks like hex/u);
    expect(byLine.get(7)).toMatch(/this looks like Base64/u);
    expect(byLine.get(8)).toMatch(/"=" padding; Entra wants Base32 without padding/u);
    expect(byLine.get(9)).toMatch(/136 characters; Entra takes at most 128/u);
    expect(byLine.get(10)).toMatch(/time interval is "45"/u);
    expect(byLine.get(11)).toMatch(/serial number 1001 repeats line 2/u);
    expect(byLine.get(12)).toMatch(/scientific notation/u);
    expect(byLine.get(13)).toMatch(/characters other than A–Z and 2–7/u);
    expect(byLine.get(14)).toMatch(/3 fields; it needs 6/u);
    expect(byLine.get(15)).toMatch(/upn is empty/u);
    expect(byLine.get(16)).toMatch(/length Base32 never has/u);
    for (const p of result.problems) expect(p.message).not.toContain(B32);
    expect(result.warnings).toContainEqual({ line: 11, message: expect.stringMatching(/10 bytes; RFC 4226 asks for at least 16/u) as string });
  });

  it('Deepnet\'s "timeinterval" header, a missing header, semicolons, lost leading zeros, encodings', () => {
    expect(check(`upn,serial number,secret key,timeinterval,manufacturer,model\n`).problems[0]).toEqual({ line: 1, message: expect.stringMatching(/Deepnet's spelling/u) as string });
    expect(check(`a@b.com,1,${B32},30,V,M\n`).problems[0]).toEqual({ line: 1, message: expect.stringMatching(/header row is missing/u) as string });
    expect(check(`upn;serial number;secret key;time interval;manufacturer;model\n`).problems[0]!.message).toMatch(/";"/u);
    const zeros = check(`${HEADER}\na@b.com,0000123,${B32},30,V,M\nb@b.com,124,${B32.slice(0, 24)},30,V,M\n`);
    expect(zeros.problems).toEqual([{ line: 3, message: expect.stringMatching(/124 is shorter than 0000123 \(line 2\).*0000124/u) as string }]);
    expect(checkEntraCsv(Buffer.from(`${HEADER}\nj\u00fcrgen@b.com,1,${B32},30,V,M\n`, 'latin1')).problems[0]).toEqual({ line: 2, message: expect.stringMatching(/not UTF-8.*Latin-1/u) as string });
    expect(checkEntraCsv(Buffer.alloc(0)).ok).toBe(false);
  });

  it('warnings do not fail the check: empty model, mixed case, repeated secret', () => {
    const result = check(`${HEADER}\na@b.com,1,${B32},30,V,\nb@b.com,2,${B32},60,V,M\nc@b.com,3,GEZDGNBVgy3tqojq,30,V,M\n`);
    expect(result.ok).toBe(true);
    expect([...new Set(result.warnings.map((w) => w.line))]).toEqual([2, 3, 4]);
  });
});
