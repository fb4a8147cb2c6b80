// Seed files made to be slow or big, shared by the tests that read them and bench/seeds-hostile.ts.
import type { SeedFormatName } from '../../src/seeds/index.js';
import { ENTRA_HEADER } from '../../src/seeds/index.js';
import { PSKC_NS } from '../../src/seeds/pskc.js';

const TOTP_URN = 'urn:ietf:params:xml:ns:keyprov:pskc:totp';

const pskcKeyPackage = (secret: string, extra = ''): string =>
  `<KeyPackage>${extra}<Key Id="10001001" Algorithm="${TOTP_URN}"><Data><Secret><PlainValue>${secret}</PlainValue></Secret></Data></Key></KeyPackage>`;

/** Per format: a file whose secret field is `n` "=" and one "X". */
export const HOSTILE_PADDING: Record<SeedFormatName, (n: number) => string> = {
  entra: (n) => `${ENTRA_HEADER}\na@contoso.com,1,${'='.repeat(n)}X,30,V,M\n`,
  hexcsv: (n) => `A1,${'='.repeat(n)}X,0\n`,
  privacyidea: (n) => `A1, ${'='.repeat(n)}X, totp, 6, 30\n`,
  graph: (n) => JSON.stringify({ value: [{ serialNumber: '1', manufacturer: 'm', model: 'm', secretKey: `${'='.repeat(n)}X`, timeIntervalInSeconds: 30 }] }),
  otpauth: (n) => `otpauth://totp/A:b?secret=${'='.repeat(n)}X&serial=1\n`,
  dualshield: (n) =>
    `<data><header><encode>BASE32</encode><timeWindow>30</timeWindow></header><tokens><token><serial>1</serial><seed>${'='.repeat(n)}X</seed></token></tokens></data>`,
  pskc: (n) => `<KeyContainer xmlns="${PSKC_NS}" Version="1.0">${pskcKeyPackage(`${'='.repeat(n)}X`)}</KeyContainer>`,
};

/** A PSKC file whose KeyContainer has `n` more attributes; with `repeat`, the last repeats the first. */
export function hostileAttributes(n: number, repeat = false): string {
  const attributes = Array.from({ length: n }, (_, i) => ` a${repeat && i === n - 1 ? 0 : i}="1"`).join('');
  return `<KeyContainer xmlns="${PSKC_NS}" Version="1.0"${attributes}>${pskcKeyPackage('MTIzNDU2Nzg5MDEyMzQ1Njc4OTA=')}</KeyContainer>`;
}

/** A PSKC file with `n` prefixes declared on the root and `n` Extensions elements that each declare one more. */
export function hostileNamespaces(n: number): string {
  const declarations = Array.from({ length: n }, (_, i) => ` xmlns:p${i}="urn:p${i}"`).join('');
  const extensions = Array.from({ length: n }, (_, i) => `<Extensions xmlns:q${i}="urn:q${i}"/>`).join('');
  return `<KeyContainer xmlns="${PSKC_NS}" Version="1.0"${declarations}>${pskcKeyPackage('MTIzNDU2Nzg5MDEyMzQ1Njc4OTA=', extensions)}</KeyContainer>`;
}
