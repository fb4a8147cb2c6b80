/**
 * Deepnet DualShield token file, v5 `<data>` format (docs/seed-formats.md §3.1): `tseeds.xml` /
 * `hseeds.xml`. Not PSKC. The header applies to the whole file, so a file holds one kind of token
 * (type, digits, hash, time step); the writer refuses a mix. Seeds in upper-case HEX, no
 * encryption; timeWindow for TOTP only; productCode ST for 60 s TOTP, STE for 30 s TOTP (DualShield's
 * built-in ST product is 60 s; a 30 s product must be defined, STE is the wiki's example) and SE
 * for HOTP, all overridable. The reader also takes BASE64 and BASE32 seeds and
 * Google-Authenticator-style `synchronisation`.
 *
 * The format has no counter, so a server starts every HOTP token at 0. A programmer's
 * verification reads one code, which leaves the key's next code at counter 1. RFC 4226 §7.4 has
 * the server look ahead a window of counters past the one it expects, and counter 1 is the first
 * step of any such window, so keytap writes tokens whose next code is at counter 0 or 1 and refuses
 * higher ones: how far a site's window reaches is not known here, and a token beyond it would
 * fail at every login.
 */
import type { HashAlgorithm, OathType } from '../otp/credential.js';
import { base32Decode } from '../otp/encoding.js';
import type { SeedFormat, SeedReadOptions, SeedToken, SeedWriteOptions } from './token.js';
import { SerialRegistry, assertWritable, badInput, checkToken, quoteSerial } from './token.js';
import { controlCharacterProblem, decodeText, excelScientificMessage, findLostLeadingZeros, isExcelScientific, shown, shownSerial } from './text.js';
import type { XmlElement } from './xml.js';
import { childNamed, childrenNamed, elementPath, escapeText, parseXml, shownName } from './xml.js';

const WHAT = 'DualShield XML file';
/** The highest HOTP counter written (see above): that of a token verified once from 0. */
export const DUALSHIELD_MAX_HOTP_COUNTER = 1;
const CRYPTO: Record<HashAlgorithm, string> = { SHA1: 'HmacSHA1', SHA256: 'HmacSHA256', SHA512: 'HmacSHA512' };

export const dualShieldFormat: SeedFormat = {
  name: 'dualshield',
  title: 'DualShield XML',
  defaultFileName: (type: OathType) => (type === 'TOTP' ? 'tseeds.xml' : 'hseeds.xml'),
  accepts(token) {
    const base = checkToken(token);
    if (base !== null) return base;
    if (token.digits !== 6 && token.digits !== 8) return `DualShield tokens have 6 or 8 digits, not ${token.digits}`;
    if (token.type === 'TOTP' && token.period !== 30 && token.period !== 60) return `DualShield takes a time window of 30 or 60 s, not ${token.period}`;
    if (token.type === 'HOTP' && token.counter > DUALSHIELD_MAX_HOTP_COUNTER) {
      return `the DualShield format has no counter, so the server starts at 0, and this token's next code is at counter ${token.counter}; keytap writes HOTP tokens whose next code is at counter 0 or ${DUALSHIELD_MAX_HOTP_COUNTER} (a token verified once from 0), which every server's look-ahead window reaches`;
    }
    return null;
  },
  write: writeDualShield,
  read: readDualShield,
};

function writeDualShield(tokens: readonly SeedToken[], options: SeedWriteOptions = {}): Buffer {
  assertWritable(dualShieldFormat, tokens);
  const first = tokens[0] ?? { type: 'TOTP', digits: 6, period: 60, algorithm: 'SHA1' };
  tokens.forEach((token, index) => {
    const differs =
      token.type !== first.type ? 'type' : token.digits !== first.digits ? 'digits' : token.algorithm !== first.algorithm ? 'hash' : token.type === 'TOTP' && token.period !== first.period ? 'time step' : undefined;
    if (differs) {
      throw badInput(`${WHAT}: token ${index + 1} (serial ${quoteSerial(token.serial)}) differs from the first in its ${differs}; a DualShield file holds one kind of token, so write one file per kind.`);
    }
  });
  const productCode = options.dualshield?.productCode ?? (first.type === 'HOTP' ? 'SE' : first.period === 60 ? 'ST' : 'STE');
  const manufacturerCode = options.dualshield?.manufacturerCode ?? 'DN';
  const out = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<data>',
    '  <header>',
    `    <manufacturerCode>${escapeText(manufacturerCode)}</manufacturerCode>`,
    `    <productCode>${escapeText(productCode)}</productCode>`,
    '    <encrypt>NONE</encrypt>',
    '    <encode>HEX</encode>',
    `    <digits>${first.digits}</digits>`,
  ];
  if (first.type === 'TOTP') out.push(`    <timeWindow>${first.period}</timeWindow>`);
  out.push(`    <crypto>${CRYPTO[first.algorithm]}</crypto>`, '  </header>', '  <tokens>');
  for (const token of tokens) {
    out.push(`    <token><serial>${escapeText(token.serial)}</serial><seed>${Buffer.from(token.secret).toString('hex').toUpperCase()}</seed></token>`);
  }
  out.push('  </tokens>', '</data>', '');
  return Buffer.from(out.join('\n'), 'utf8');
}

function text(parent: XmlElement, local: string): string | undefined {
  const value = childNamed(parent, local, '*')?.text.trim();
  return value ? value : undefined;
}

function readDualShield(bytes: Uint8Array, _options: SeedReadOptions = {}): SeedToken[] {
  const { root, encoding } = parseXml(decodeText(bytes, WHAT), WHAT);
  if (encoding !== undefined && !/^utf-?8$/iu.test(encoding)) throw badInput(`The ${WHAT} declares encoding ${shown(encoding)}; keytap reads UTF-8 only.`);
  if (root.local !== 'data') throw badInput(`This is not a DualShield token file: the root element is <${shownName(root.name)}>, not <data>.`);
  const header = childNamed(root, 'header', '*');
  if (!header) throw badInput(`${elementPath(root)}: the header is missing.`);
  const encrypt = (text(header, 'encrypt') ?? 'NONE').toUpperCase();
  if (encrypt !== 'NONE') throw badInput(`${elementPath(header)}: the seeds are encrypted (encrypt is ${shown(encrypt)}); keytap reads unencrypted DualShield files only.`);
  const encode = (text(header, 'encode') ?? 'HEX').toUpperCase();
  if (!['HEX', 'BASE64', 'BASE32'].includes(encode)) throw badInput(`${elementPath(header)}: encode is ${shown(encode)}; it must be HEX, BASE64 or BASE32.`);
  const digitsText = text(header, 'digits') ?? '6';
  const digits = Number(digitsText);
  if (digits !== 6 && digits !== 8) throw badInput(`${elementPath(header)}: digits is ${shown(digitsText)}; it must be 6 or 8.`);
  const cryptoText = text(header, 'crypto') ?? 'HmacSHA1';
  const algorithm = (Object.keys(CRYPTO) as HashAlgorithm[]).find((a) => CRYPTO[a].toLowerCase() === cryptoText.toLowerCase());
  if (!algorithm) throw badInput(`${elementPath(header)}: crypto is ${shown(cryptoText)}; it must be HmacSHA1, HmacSHA256 or HmacSHA512.`);
  const productCode = (text(header, 'productCode') ?? '').toUpperCase();
  const windowText = text(header, 'timeWindow') ?? text(header, 'synchronisation');
  const type: OathType = windowText !== undefined && productCode !== 'SE' ? 'TOTP' : 'HOTP';
  let period = 30;
  if (type === 'TOTP') {
    period = Number(windowText);
    if (!Number.isInteger(period) || period < 1 || period > 0xffff) throw badInput(`${elementPath(header)}: timeWindow is not a number of seconds.`);
  }
  const tokensElement = childNamed(root, 'tokens', '*');
  const tokenElements = tokensElement ? childrenNamed(tokensElement, 'token', '*') : [];
  if (tokenElements.length === 0) throw badInput(`${elementPath(tokensElement ?? root)}: the file has no tokens.`);
  const serials = new SerialRegistry();
  const tokens: SeedToken[] = [];
  for (const element of tokenElements) {
    const place = elementPath(element);
    const serial = text(element, 'serial');
    if (!serial) throw badInput(`${place}: the serial is missing.`);
    const control = controlCharacterProblem('serial number', serial);
    if (control) throw badInput(`${place}: ${control}.`);
    if (isExcelScientific(serial)) throw badInput(`${place}: ${excelScientificMessage(serial)}.`);
    const earlier = serials.claim(serial, place);
    if (earlier !== undefined) throw badInput(`${place}: the serial number ${shownSerial(serial)} repeats ${earlier}.`);
    const seedText = (text(element, 'seed') ?? '').replace(/\s+/gu, '');
    if (!seedText) throw badInput(`${place}: the seed is missing.`);
    const secret = decodeSeed(seedText, encode, place);
    tokens.push({ serial, secret, type, algorithm, digits, period, counter: 0 });
  }
  const lost = findLostLeadingZeros(tokens.map((t, i) => ({ serial: t.serial, place: elementPath(tokenElements[i]!) })));
  if (lost.length > 0) throw badInput(`${lost[0]!.place}: ${lost[0]!.message}.`);
  return tokens;
}

function decodeSeed(seed: string, encode: string, place: string): Uint8Array {
  if (encode === 'HEX') {
    if (!/^(?:[0-9A-Fa-f]{2})+$/u.test(seed)) {
      throw badInput(`${place}: the seed is not hex${/^[0-9A-Fa-f]+$/u.test(seed) ? ' (an odd number of digits: cut short?)' : /[+/=]/u.test(seed) ? ' (it looks like Base64, but the header says HEX)' : ''}.`);
    }
    return Uint8Array.from(Buffer.from(seed, 'hex'));
  }
  if (encode === 'BASE64') {
    if (!/^[A-Za-z0-9+/]+={0,2}$/u.test(seed) || seed.length % 4 !== 0) throw badInput(`${place}: the seed is not valid Base64.`);
    return Uint8Array.from(Buffer.from(seed, 'base64'));
  }
  try {
    return base32Decode(seed);
  } catch {
    throw badInput(`${place}: the seed is not valid Base32.`);
  }
}
