// The default seed files of a run (vendorFormats) and the DualShield HOTP counter bound.
import { describe, expect, it } from 'vitest';
import { vendorFormats } from '../../src/provision/export.js';
import { DEFAULT_PARAMETERS, buildToken } from '../../src/provision/token.js';
import { dualShieldFormat } from '../../src/seeds/index.js';

const secret = new Uint8Array(20).fill(7);
const names = (choice: ReturnType<typeof vendorFormats>): string[] => choice.formats.map((f) => f.name);

describe('vendorFormats', () => {
  it("TOTP: Entra CSV only with a user, DualShield and PSKC always; HOTP: hex CSV, DualShield, PSKC", () => {
    const withUser = vendorFormats(buildToken({ ...DEFAULT_PARAMETERS, upn: 'alice@contoso.com' }, secret, 'S1'));
    expect(names(withUser)).toEqual(['entra', 'dualshield', 'pskc']);
    expect(withUser.leftOut).toEqual([]);
    const noUser = vendorFormats(buildToken(DEFAULT_PARAMETERS, secret, 'S1'));
    expect(names(noUser)).toEqual(['dualshield', 'pskc']);
    expect(noUser.leftOut.map((r) => [r.format.name, r.reason])).toEqual([['entra', expect.stringMatching(/UPN is required/u)]]);
    expect(names(vendorFormats(buildToken({ ...DEFAULT_PARAMETERS, type: 'HOTP' }, secret, 'S1')))).toEqual(['hexcsv', 'dualshield', 'pskc']);
  });

  it('leaves out what cannot carry the token as it is after verification, with the reason', () => {
    const sha256 = vendorFormats(buildToken({ ...DEFAULT_PARAMETERS, type: 'HOTP', algorithm: 'SHA256', counter: 1 }, new Uint8Array(32).fill(1), 'S1'));
    expect(names(sha256)).toEqual(['pskc']);
    expect(sha256.leftOut.map((r) => r.format.name)).toEqual(['hexcsv', 'dualshield']);
    expect(sha256.leftOut[1]!.reason).toMatch(/next code is at counter 2/u);
  });
});

describe('DualShield and HOTP', () => {
  it('takes a token whose next code is at counter 0 or 1, refuses 2 and up', () => {
    const token = buildToken({ ...DEFAULT_PARAMETERS, type: 'HOTP' }, secret, 'S1');
    expect(dualShieldFormat.accepts({ ...token, counter: 0 })).toBeNull();
    expect(dualShieldFormat.accepts({ ...token, counter: 1 })).toBeNull();
    expect(dualShieldFormat.accepts({ ...token, counter: 2 })).toMatch(/no counter.*counter 2/u);
    expect(dualShieldFormat.write([{ ...token, counter: 1 }]).toString()).toContain('<productCode>SE</productCode>');
  });
});
