/**
 * PSKC, RFC 6030 (docs/seed-formats.md §2): `tseeds.pskcxml` / `hseeds.pskcxml`.
 *
 * Writing: Version 1.0, the `pskc:` prefix throughout (as RFC 6030 Figure 7 and python-pskc do,
 * which also leaves the PBKDF2 parameter children in no namespace as the RFC shows them), elements
 * in the XSD's sequence order, `:hotp` / `:totp` URNs, Counter for HOTP, Time 0 + TimeInterval
 * for TOTP, `<Suite>SHA256|SHA512</Suite>` before ResponseFormat only when not SHA-1. Protection:
 * none, a pre-shared key (AES-128-CBC, IV prepended to the CipherValue, PKCS#7 padding, HMAC-SHA1
 * ValueMAC over IV ‖ ciphertext with a random 20-byte MAC key that is itself encrypted in
 * MACMethod), or a passphrase (PBKDF2-HMAC-SHA1 in the pkcs5 namespace, then as for a key).
 * Only the secret is encrypted, as python-pskc does.
 *
 * Reading: what we write, what python-pskc writes (`xenc11:PBKDF2-params`), the RFC figures, the
 * pre-RFC `#totp` / `#hotp` URNs, Suite spelled any common way (and privacyIDEA's `hashalgo`
 * attribute), AES-128/192/256-CBC, 3DES-CBC and AES key wrap, any HMAC python-pskc knows, MAC over
 * the ciphertext or (old drafts) the plaintext, encrypted Counter/Time/TimeInterval. Not RSA.
 */
import { createCipheriv, createDecipheriv, createHmac, pbkdf2Sync, timingSafeEqual } from 'node:crypto';
import type { HashAlgorithm, OathType } from '../otp/credential.js';
import { DEFAULT_PERIOD } from '../otp/credential.js';
import { printable } from '../util/printable.js';
import type { PskcProtection, SeedFormat, SeedReadOptions, SeedToken, SeedWriteOptions } from './token.js';
import { MAX_COUNTER, MAX_PERIOD, SerialRegistry, assertWritable, badInput, checkToken, defaultRandomBytes } from './token.js';
import { controlCharacterProblem, decodeText, excelScientificMessage, findLostLeadingZeros, isExcelScientific, shown, shownSerial, shownUri } from './text.js';
import type { XmlElement } from './xml.js';
import { attribute, childNamed, childrenNamed, elementPath, escapeAttribute, escapeText, parseXml, shownName } from './xml.js';

export const PSKC_NS = 'urn:ietf:params:xml:ns:keyprov:pskc';
const DS = 'http://www.w3.org/2000/09/xmldsig#';
const XENC = 'http://www.w3.org/2001/04/xmlenc#';
const XENC11 = 'http://www.w3.org/2009/xmlenc11#';
const PKCS5 = 'http://www.rsasecurity.com/rsalabs/pkcs/schemas/pkcs-5v2-0#';
const DSMORE = 'http://www.w3.org/2001/04/xmldsig-more#';
const PBKDF2_URI = `${PKCS5}pbkdf2`;
const HOTP_URN = 'urn:ietf:params:xml:ns:keyprov:pskc:hotp';
const TOTP_URN = 'urn:ietf:params:xml:ns:keyprov:pskc:totp';
const AES128_CBC = `${XENC}aes128-cbc`;
const HMAC_SHA1 = `${DS}hmac-sha1`;

export const PSKC_DEFAULT_ITERATIONS = 100_000;
/**
 * The most PBKDF2 iterations read without the caller's consent (SeedReadOptions.allowSlowKdf), and
 * the most keytap writes: 20 times python-pskc's and keytap's default, above OWASP's 1,300,000 for
 * PBKDF2-HMAC-SHA1, and about a second (npm run bench -- pskc-kdf). Without a cap a 2 KB file
 * could make keytap derive for minutes (docs/seed-formats.md §2.5).
 */
export const PSKC_MAX_ITERATIONS = 2_000_000;
/** PKCS#5's IterationCount has no bound; with consent keytap reads up to this. */
const MAX_CONSENTED_ITERATIONS = 0x7fffffff;
const WHAT = 'PSKC file';

interface Cipher {
  node: string;
  keyLength: number;
  block: number;
  wrap?: boolean;
}

const CIPHERS: Record<string, Cipher> = {
  [`${XENC}aes128-cbc`]: { node: 'aes-128-cbc', keyLength: 16, block: 16 },
  [`${XENC}aes192-cbc`]: { node: 'aes-192-cbc', keyLength: 24, block: 16 },
  [`${XENC}aes256-cbc`]: { node: 'aes-256-cbc', keyLength: 32, block: 16 },
  [`${XENC}tripledes-cbc`]: { node: 'des-ede3-cbc', keyLength: 24, block: 8 },
  [`${XENC}kw-aes128`]: { node: 'id-aes128-wrap', keyLength: 16, block: 8, wrap: true },
  [`${XENC}kw-aes192`]: { node: 'id-aes192-wrap', keyLength: 24, block: 8, wrap: true },
  [`${XENC}kw-aes256`]: { node: 'id-aes256-wrap', keyLength: 32, block: 8, wrap: true },
};

const MACS: Record<string, string> = {
  [HMAC_SHA1]: 'sha1',
  [`${DSMORE}hmac-md5`]: 'md5',
  [`${DSMORE}hmac-sha224`]: 'sha224',
  [`${DSMORE}hmac-sha256`]: 'sha256',
  [`${DSMORE}hmac-sha384`]: 'sha384',
  [`${DSMORE}hmac-sha512`]: 'sha512',
  [`${DSMORE}hmac-ripemd160`]: 'ripemd160',
};

const PRFS: Record<string, string> = {
  [`${DSMORE}hmac-sha224`]: 'sha224',
  [`${DSMORE}hmac-sha256`]: 'sha256',
  [`${DSMORE}hmac-sha384`]: 'sha384',
  [`${DSMORE}hmac-sha512`]: 'sha512',
  [HMAC_SHA1]: 'sha1',
};

export const pskcFormat: SeedFormat = {
  name: 'pskc',
  title: 'PSKC (RFC 6030)',
  defaultFileName: (type: OathType) => (type === 'TOTP' ? 'tseeds.pskcxml' : 'hseeds.pskcxml'),
  accepts: (token) => checkToken(token),
  write: writePskc,
  read: readPskc,
};

// ---------------------------------------------------------------------------------------------
// Writing

function writePskc(tokens: readonly SeedToken[], options: SeedWriteOptions = {}): Buffer {
  assertWritable(pskcFormat, tokens);
  const protection: PskcProtection = options.pskc ?? { kind: 'none' };
  const random = defaultRandomBytes(options);
  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>'];
  let key: Buffer | undefined;
  let macKey: Buffer | undefined;
  if (protection.kind === 'none') {
    out.push(`<pskc:KeyContainer xmlns:pskc="${PSKC_NS}" Version="1.0">`);
  } else if (protection.kind === 'psk') {
    if (protection.key.length !== 16) throw badInput(`The PSKC pre-shared key must be 16 bytes (AES-128), not ${protection.key.length}.`);
    key = Buffer.from(protection.key);
    out.push(`<pskc:KeyContainer xmlns:pskc="${PSKC_NS}" xmlns:ds="${DS}" xmlns:xenc="${XENC}" Version="1.0">`);
    out.push('  <pskc:EncryptionKey>');
    out.push(`    <ds:KeyName>${escapeText(protection.keyName ?? 'Pre-shared-key')}</ds:KeyName>`);
    out.push('  </pskc:EncryptionKey>');
  } else {
    if (protection.passphrase.length === 0) throw badInput('The PSKC passphrase is empty.');
    const iterations = protection.iterations ?? PSKC_DEFAULT_ITERATIONS;
    if (!Number.isInteger(iterations) || iterations < 1 || iterations > PSKC_MAX_ITERATIONS) {
      throw badInput(`The PBKDF2 iteration count must be 1 to ${PSKC_MAX_ITERATIONS}.`);
    }
    const salt = Buffer.from(protection.salt ?? random(16));
    key = pbkdf2Sync(protection.passphrase, salt, iterations, 16, 'sha1');
    out.push(`<pskc:KeyContainer xmlns:pskc="${PSKC_NS}" xmlns:xenc="${XENC}" xmlns:xenc11="${XENC11}" xmlns:pkcs5="${PKCS5}" Version="1.0">`);
    out.push('  <pskc:EncryptionKey>');
    out.push('    <xenc11:DerivedKey>');
    out.push(`      <xenc11:KeyDerivationMethod Algorithm="${PBKDF2_URI}">`);
    out.push('        <pkcs5:PBKDF2-params>');
    out.push(`          <Salt><Specified>${salt.toString('base64')}</Specified></Salt>`);
    out.push(`          <IterationCount>${iterations}</IterationCount>`);
    out.push('          <KeyLength>16</KeyLength>');
    out.push('        </pkcs5:PBKDF2-params>');
    out.push('      </xenc11:KeyDerivationMethod>');
    if (protection.keyName !== undefined) out.push(`      <xenc11:MasterKeyName>${escapeText(protection.keyName)}</xenc11:MasterKeyName>`);
    out.push('    </xenc11:DerivedKey>');
    out.push('  </pskc:EncryptionKey>');
  }
  if (key) {
    macKey = Buffer.from(random(20));
    out.push(`  <pskc:MACMethod Algorithm="${HMAC_SHA1}">`);
    out.push('    <pskc:MACKey>');
    out.push(`      <xenc:EncryptionMethod Algorithm="${AES128_CBC}"/>`);
    out.push(`      <xenc:CipherData><xenc:CipherValue>${encrypt(key, macKey, random).toString('base64')}</xenc:CipherValue></xenc:CipherData>`);
    out.push('    </pskc:MACKey>');
    out.push('  </pskc:MACMethod>');
  }
  for (const token of tokens) {
    out.push('  <pskc:KeyPackage>');
    out.push('    <pskc:DeviceInfo>');
    if (token.manufacturer) out.push(`      <pskc:Manufacturer>${escapeText(token.manufacturer)}</pskc:Manufacturer>`);
    out.push(`      <pskc:SerialNo>${escapeText(token.serial)}</pskc:SerialNo>`);
    if (token.model) out.push(`      <pskc:Model>${escapeText(token.model)}</pskc:Model>`);
    out.push('    </pskc:DeviceInfo>');
    out.push(`    <pskc:Key Id="${escapeAttribute(token.keyId ?? token.serial)}" Algorithm="${token.type === 'TOTP' ? TOTP_URN : HOTP_URN}">`);
    if (token.issuer) out.push(`      <pskc:Issuer>${escapeText(token.issuer)}</pskc:Issuer>`);
    out.push('      <pskc:AlgorithmParameters>');
    if (token.algorithm !== 'SHA1') out.push(`        <pskc:Suite>${token.algorithm}</pskc:Suite>`);
    out.push(`        <pskc:ResponseFormat Length="${token.digits}" Encoding="DECIMAL"/>`);
    out.push('      </pskc:AlgorithmParameters>');
    // As ykman writes it: the name on the key, "issuer:account"; the reader takes the issuer off again.
    if (token.account) out.push(`      <pskc:FriendlyName>${escapeText(token.issuer ? `${token.issuer}:${token.account}` : token.account)}</pskc:FriendlyName>`);
    out.push('      <pskc:Data>');
    if (key && macKey) {
      const cipherValue = encrypt(key, token.secret, random);
      const mac = createHmac('sha1', macKey).update(cipherValue).digest();
      out.push('        <pskc:Secret>');
      out.push('          <pskc:EncryptedValue>');
      out.push(`            <xenc:EncryptionMethod Algorithm="${AES128_CBC}"/>`);
      out.push(`            <xenc:CipherData><xenc:CipherValue>${cipherValue.toString('base64')}</xenc:CipherValue></xenc:CipherData>`);
      out.push('          </pskc:EncryptedValue>');
      out.push(`          <pskc:ValueMAC>${mac.toString('base64')}</pskc:ValueMAC>`);
      out.push('        </pskc:Secret>');
    } else {
      out.push(`        <pskc:Secret><pskc:PlainValue>${Buffer.from(token.secret).toString('base64')}</pskc:PlainValue></pskc:Secret>`);
    }
    if (token.type === 'HOTP') {
      out.push(`        <pskc:Counter><pskc:PlainValue>${token.counter}</pskc:PlainValue></pskc:Counter>`);
    } else {
      out.push('        <pskc:Time><pskc:PlainValue>0</pskc:PlainValue></pskc:Time>');
      out.push(`        <pskc:TimeInterval><pskc:PlainValue>${token.period}</pskc:PlainValue></pskc:TimeInterval>`);
    }
    out.push('      </pskc:Data>');
    if (token.upn) out.push(`      <pskc:UserId>${escapeText(token.upn)}</pskc:UserId>`);
    out.push('    </pskc:Key>');
    out.push('  </pskc:KeyPackage>');
  }
  out.push('</pskc:KeyContainer>', '');
  return Buffer.from(out.join('\n'), 'utf8');
}

/** IV ‖ AES-128-CBC(key, IV, PKCS#7(plaintext)). */
function encrypt(key: Buffer, plaintext: Uint8Array, random: (n: number) => Uint8Array): Buffer {
  const iv = Buffer.from(random(16));
  const cipher = createCipheriv('aes-128-cbc', key, iv);
  return Buffer.concat([iv, cipher.update(plaintext), cipher.final()]);
}

// ---------------------------------------------------------------------------------------------
// Reading

function readPskc(bytes: Uint8Array, options: SeedReadOptions = {}): SeedToken[] {
  const { root, encoding } = parseXml(decodeText(bytes, WHAT), WHAT);
  if (encoding !== undefined && !/^utf-?8$/iu.test(encoding)) {
    throw badInput(`The ${WHAT} declares encoding ${shown(encoding)}; keytap reads UTF-8 only.`, 'Save the file as UTF-8 and change the declaration to encoding="UTF-8".');
  }
  if (root.local !== 'KeyContainer' || root.namespace !== PSKC_NS) {
    throw badInput(`This is not a PSKC file: the root element is <${shownName(root.name)}>${root.namespace ? ` in namespace ${shownUri(root.namespace)}` : ''}, not <KeyContainer> in ${PSKC_NS}.`);
  }
  const version = attribute(root, 'Version');
  if (version !== '1.0') {
    throw badInput(`${elementPath(root)}: Version is ${version === undefined ? 'missing' : shown(version)}; PSKC has only version 1.0.`);
  }
  const packages = childrenNamed(root, 'KeyPackage', PSKC_NS);
  if (packages.length === 0) throw badInput(`${elementPath(root)}: the ${WHAT} has no KeyPackage.`);
  const crypto = new Decryptor(root, options);
  // One token per Key, not per device: a device (its SerialNo) may hold several keys, in one
  // KeyPackage (python-pskc) or in several (RFC 6030 Figure 10); serial and key Id name a token.
  const tokens: { token: SeedToken; place: string }[] = [];
  const seen = new SerialRegistry();
  for (const keyPackage of packages) {
    const keys = childrenNamed(keyPackage, 'Key', PSKC_NS);
    if (keys.length === 0) throw badInput(`${elementPath(keyPackage)}: there is no Key.`);
    for (const key of keys) {
      const token = readKey(keyPackage, key, crypto, options);
      const place = elementPath(keys.length === 1 ? keyPackage : key);
      if (isExcelScientific(token.serial)) throw badInput(`${place}: ${excelScientificMessage(token.serial)}.`);
      const earlier = seen.claim(JSON.stringify([token.serial, token.keyId ?? token.serial]), place);
      if (earlier !== undefined) {
        const withId = token.keyId === undefined ? '' : ` with key Id ${shownSerial(token.keyId)}`;
        throw badInput(`${place}: the serial number ${shownSerial(token.serial)}${withId} repeats ${earlier}.`);
      }
      tokens.push({ token, place });
    }
  }
  const lost = findLostLeadingZeros(tokens.map(({ token, place }) => ({ serial: token.serial, place })));
  if (lost.length > 0) throw badInput(`${lost[0]!.place}: ${lost[0]!.message}.`);
  return tokens.map(({ token }) => token);
}

function readKey(keyPackage: XmlElement, key: XmlElement, crypto: Decryptor, options: SeedReadOptions): SeedToken {
  const device = childNamed(keyPackage, 'DeviceInfo', PSKC_NS);
  const id = attribute(key, 'Id')?.trim() || undefined;
  const serial = optionalText(device, 'SerialNo') ?? id;
  if (!serial) throw badInput(`${elementPath(key)}: the key has neither DeviceInfo/SerialNo nor an Id.`);

  const algorithmUri = attribute(key, 'Algorithm')?.trim();
  let type: OathType;
  if (algorithmUri === undefined) throw badInput(`${elementPath(key)}: the Algorithm attribute is missing.`);
  if (/[:#]hotp$/iu.test(algorithmUri)) type = 'HOTP';
  else if (/[:#]totp$/iu.test(algorithmUri)) type = 'TOTP';
  else throw badInput(`${elementPath(key)}: the algorithm ${shownUri(algorithmUri)} is not HOTP or TOTP; keytap programs only those.`);

  let algorithm: HashAlgorithm = 'SHA1';
  let digits = 6;
  const parameters = childNamed(key, 'AlgorithmParameters', PSKC_NS);
  if (parameters) {
    const suite = childNamed(parameters, 'Suite', PSKC_NS);
    if (suite) algorithm = readSuite(suite);
    const format = childNamed(parameters, 'ResponseFormat', PSKC_NS);
    if (format) {
      const length = attribute(format, 'Length')?.trim() ?? '';
      digits = /^\d{1,2}$/u.test(length) ? Number(length) : Number.NaN;
      if (!(digits >= 6 && digits <= 8)) throw badInput(`${elementPath(format)}: Length is ${shown(length)}; keys show 6 to 8 digits.`);
      const encoding = attribute(format, 'Encoding')?.trim();
      if (encoding !== undefined && encoding.toUpperCase() !== 'DECIMAL') {
        throw badInput(`${elementPath(format)}: Encoding is ${shown(encoding)}; OATH keys show DECIMAL codes only.`);
      }
    }
  }

  const data = childNamed(key, 'Data', PSKC_NS);
  const secretElement = data && childNamed(data, 'Secret', PSKC_NS);
  if (!data || !secretElement) throw badInput(`${elementPath(key)}: the key has no Data/Secret.`);
  const secret = crypto.readBinary(secretElement);
  if (secret.length === 0) throw badInput(`${elementPath(secretElement)}: the secret is empty.`);

  let counter = 0;
  let period = DEFAULT_PERIOD;
  const counterElement = childNamed(data, 'Counter', PSKC_NS);
  if (type === 'HOTP') {
    if (counterElement) counter = crypto.readInteger(counterElement, 0, MAX_COUNTER);
    else options.onWarning?.({ path: elementPath(key), message: 'an HOTP key without Counter; starting at 0' });
  } else {
    const time = childNamed(data, 'Time', PSKC_NS);
    if (time) {
      const start = crypto.readInteger(time, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
      if (start !== 0) {
        throw badInput(`${elementPath(time)}: Time is ${start}, not 0; keytap programs TOTP keys that count from the Unix epoch only.`);
      }
    }
    const interval = childNamed(data, 'TimeInterval', PSKC_NS);
    if (interval) period = crypto.readInteger(interval, 1, MAX_PERIOD);
    const drift = childNamed(data, 'TimeDrift', PSKC_NS);
    if (drift && crypto.readInteger(drift, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER) !== 0) {
      options.onWarning?.({ path: elementPath(drift), message: 'TimeDrift is not 0; a key has no place for it, so it is ignored' });
    }
  }

  const issuer = optionalText(key, 'Issuer');
  let account = optionalText(key, 'FriendlyName');
  // ykman (and keytap) write FriendlyName "issuer:name" next to Issuer, and ykman's importer splits
  // it off again; kept whole, the name on a key would be "issuer:issuer:name".
  if (issuer !== undefined && account?.startsWith(`${issuer}:`) && account.length > issuer.length + 1) account = account.slice(issuer.length + 1);
  const token: SeedToken = {
    serial,
    secret,
    type,
    algorithm,
    digits,
    period,
    counter,
    upn: optionalText(key, 'UserId') ?? optionalText(device, 'UserId'),
    issuer,
    account,
    manufacturer: optionalText(device, 'Manufacturer'),
    model: optionalText(device, 'Model'),
    ...(id !== undefined && id !== serial ? { keyId: id } : {}),
  };
  const fields = [['serial number', 'serial'], ['UserId', 'upn'], ['Issuer', 'issuer'], ['FriendlyName', 'account'], ['Manufacturer', 'manufacturer'], ['Model', 'model']] as const;
  for (const [name, field] of fields) {
    const control = controlCharacterProblem(name, token[field]);
    if (control) throw badInput(`${elementPath(keyPackage)}: ${control}.`);
  }
  return token;
}

function optionalText(parent: XmlElement | undefined, local: string): string | undefined {
  const element = parent && childNamed(parent, local, PSKC_NS);
  const value = element?.text.trim();
  return value ? value : undefined;
}

function readSuite(suite: XmlElement): HashAlgorithm {
  // privacyIDEA's exporter writes <Suite hashalgo="sha1"/>.
  const text = (suite.text.trim() || attribute(suite, 'hashalgo') || '').trim();
  const normalized = text.toLowerCase().replace(/^hmac[-_ ]?/u, '').replace(/[-_ ]/gu, '');
  if (normalized === '' || normalized === 'sha1') return 'SHA1';
  if (normalized === 'sha256') return 'SHA256';
  if (normalized === 'sha512') return 'SHA512';
  throw badInput(`${elementPath(suite)}: Suite ${shown(text)} is not a hash keytap can program (SHA1, SHA256, SHA512).`);
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/u;

function decodeBase64(text: string, where: XmlElement, what: string): Buffer {
  const compact = text.replace(/\s+/gu, '');
  if (!BASE64.test(compact) || compact.length % 4 !== 0) {
    throw badInput(`${elementPath(where)}: the ${what} is not valid Base64${compact.length % 4 !== 0 ? ' (its length is wrong: cut short?)' : ''}.`);
  }
  return Buffer.from(compact, 'base64');
}

type WrongKeyKind = 'passphrase' | 'key';

/** Everything about a file's encryption, worked out when the first encrypted value needs it. */
class Decryptor {
  private readonly root: XmlElement;
  private readonly options: SeedReadOptions;
  private key: Buffer | undefined;
  private keyKind: WrongKeyKind = 'key';
  private macKey: Buffer | undefined;
  private macHash: string | undefined;
  /** The MAC key decrypted with clean PKCS#7 padding: the key is right, so a bad MAC means tampering. */
  private macKeyCertain = false;

  constructor(root: XmlElement, options: SeedReadOptions) {
    this.root = root;
    this.options = options;
  }

  /** Secret: PlainValue (Base64) or EncryptedValue. */
  readBinary(element: XmlElement): Buffer {
    const plain = childNamed(element, 'PlainValue', PSKC_NS);
    if (plain) return decodeBase64(plain.text, plain, 'PlainValue');
    return this.decryptValue(element);
  }

  /** Counter/Time/TimeInterval/TimeDrift: PlainValue (decimal) or EncryptedValue (ASCII digits or big-endian). */
  readInteger(element: XmlElement, min: number, max: number): number {
    const plain = childNamed(element, 'PlainValue', PSKC_NS);
    // Counter is xs:long and the time fields xs:int: read all 64 bits, then check the range.
    let value: bigint | undefined;
    if (plain) {
      const text = plain.text.trim();
      if (/^[+-]?\d{1,20}$/u.test(text)) value = BigInt(text);
    } else {
      const bytes = this.decryptValue(element);
      const ascii = bytes.toString('latin1');
      if (/^\d{1,20}$/u.test(ascii)) value = BigInt(ascii);
      else if (bytes.length >= 1 && bytes.length <= 8) value = bytes.reduce((n, b) => (n << 8n) | BigInt(b), 0n);
    }
    if (value !== undefined && value >= BigInt(min) && value <= BigInt(max)) return Number(value);
    throw badInput(`${elementPath(element)}: the value is not a whole number from ${min} to ${max}.`);
  }

  private decryptValue(element: XmlElement): Buffer {
    const encrypted = childNamed(element, 'EncryptedValue', PSKC_NS);
    if (!encrypted) throw badInput(`${elementPath(element)}: there is neither PlainValue nor EncryptedValue (is the file cut short?).`);
    const key = this.encryptionKey(encrypted);
    const { cipherValue, cipher } = readCipherData(encrypted);
    const plaintext = decrypt(cipher, key, cipherValue, encrypted);
    const macElement = childNamed(element, 'ValueMAC', PSKC_NS);
    const macHash = this.macAlgorithm();
    if (macElement) {
      if (!macHash) throw badInput(`${elementPath(macElement)}: there is a ValueMAC but the file has no MACMethod.`);
      const expected = decodeBase64(macElement.text, macElement, 'ValueMAC');
      const macKey = this.macKeyFor(key);
      const overCipher = createHmac(macHash, macKey).update(cipherValue).digest();
      const matches = (mac: Buffer): boolean => mac.length === expected.length && timingSafeEqual(mac, expected);
      if (!matches(overCipher) && !(plaintext && matches(createHmac(macHash, macKey).update(plaintext.value).digest()))) {
        if (this.macKeyCertain) {
          throw badInput(`${elementPath(macElement)}: the MAC does not match: the file was altered or damaged after it was written (the ${this.keyKind} is right).`);
        }
        throw this.wrongKey(`the MAC of ${elementPath(macElement)} does not match`, true);
      }
    } else if (macHash) {
      this.options.onWarning?.({ path: elementPath(element), message: 'an encrypted value without ValueMAC: it cannot be checked for tampering' });
    }
    if (!plaintext) throw this.wrongKey(`${elementPath(encrypted)} does not decrypt`, false);
    return plaintext.value;
  }

  private wrongKey(detail: string, maybeAltered: boolean): Error {
    const what = this.keyKind === 'passphrase' ? 'passphrase' : 'key';
    return badInput(`The ${what} is wrong${maybeAltered ? ', or the file was altered' : ''}: ${detail}.`, undefined, {
      kind: 'pskc-secret-wrong',
      need: this.keyKind === 'passphrase' ? 'passphrase' : 'key',
      maybeAltered,
    });
  }

  private macAlgorithm(): string | undefined {
    if (this.macHash !== undefined) return this.macHash || undefined;
    const method = childNamed(this.root, 'MACMethod', PSKC_NS);
    if (!method) {
      this.macHash = '';
      return undefined;
    }
    const uri = attribute(method, 'Algorithm')?.trim() ?? '';
    if (uri === '') {
      // python-pskc writes a MACMethod without Algorithm for key-wrap files, which need no MAC.
      this.macHash = '';
      return undefined;
    }
    const hash = MACS[uri];
    if (!hash) throw badInput(`${elementPath(method)}: the MAC algorithm ${shownUri(uri)} is not supported; keytap reads HMAC-SHA1/SHA-2/MD5/RIPEMD-160.`);
    this.macHash = hash;
    return hash;
  }

  private macKeyFor(key: Buffer): Buffer {
    if (this.macKey) return this.macKey;
    const method = childNamed(this.root, 'MACMethod', PSKC_NS)!;
    const macKeyElement = childNamed(method, 'MACKey', PSKC_NS);
    if (!macKeyElement) {
      // Older drafts: the encryption key is the MAC key (python-pskc does the same).
      this.options.onWarning?.({ path: elementPath(method), message: 'no MACKey; using the encryption key as the MAC key, as older drafts did' });
      this.macKey = key;
      return key;
    }
    const { cipherValue, cipher } = readCipherData(macKeyElement);
    const plaintext = decrypt(cipher, key, cipherValue, macKeyElement);
    if (!plaintext || plaintext.value.length === 0) throw this.wrongKey(`the MAC key in ${elementPath(macKeyElement)} does not decrypt`, false);
    this.macKeyCertain = plaintext.cleanPadding;
    this.macKey = plaintext.value;
    return plaintext.value;
  }

  private encryptionKey(encrypted: XmlElement): Buffer {
    if (this.key) return this.key;
    const { passphrase, key } = this.options;
    const encryptionKey = childNamed(this.root, 'EncryptionKey', PSKC_NS);
    const derived = encryptionKey && childNamed(encryptionKey, 'DerivedKey', '*');
    const keyName = encryptionKey && childNamed(encryptionKey, 'KeyName', DS);
    // A key's name helps to find the key; a long one is left out rather than cut.
    const shortName = (name: string | undefined): string | undefined => (name && name.length <= 20 ? printable(name) : undefined);
    const named = (name: string | undefined): string => (shortName(name) ? ` (named "${shortName(name)}")` : '');
    if (derived) {
      this.keyKind = 'passphrase';
      const masterKeyName = childNamed(derived, 'MasterKeyName', '*')?.text.trim();
      if (passphrase === undefined) {
        if (key !== undefined) {
          // A derived key given directly, as python-pskc allows.
          this.keyKind = 'key';
          this.key = Buffer.from(key);
          return this.key;
        }
        throw badInput(`This ${WHAT} is protected by a passphrase${named(masterKeyName)}; give it to read the secrets.`, undefined, {
          kind: 'pskc-secret-needed',
          need: 'passphrase',
          keyName: shortName(masterKeyName),
        });
      }
      const { cipher, uri } = readCipherData(encrypted);
      this.key = deriveKey(derived, passphrase, cipher, uri, this.options.allowSlowKdf === true);
      return this.key;
    }
    if (encryptionKey && !keyName && encryptionKey.children.length > 0) {
      const kind = encryptionKey.children[0]!.local;
      throw badInput(`${elementPath(encryptionKey)}: the secrets are encrypted with ${kind === 'X509Data' ? 'a public key (RSA)' : `a ${kind}`}; keytap reads files protected by a pre-shared key or a passphrase only.`);
    }
    if (key === undefined) {
      if (passphrase !== undefined) {
        throw badInput(`This ${WHAT} is protected by a pre-shared key${named(keyName?.text.trim())}, not a passphrase; give the key.`, undefined, {
          kind: 'pskc-secret-needed',
          need: 'key',
          keyName: shortName(keyName?.text.trim()),
        });
      }
      throw badInput(`This ${WHAT} is protected by a pre-shared key${named(keyName?.text.trim())}; give it to read the secrets.`, undefined, {
        kind: 'pskc-secret-needed',
        need: 'key',
        keyName: shortName(keyName?.text.trim()),
      });
    }
    this.key = Buffer.from(key);
    return this.key;
  }
}

function readCipherData(parent: XmlElement): { cipherValue: Buffer; cipher: Cipher; uri: string } {
  const method = childNamed(parent, 'EncryptionMethod', XENC);
  const uri = (method && attribute(method, 'Algorithm')?.trim()) ?? '';
  const cipher = CIPHERS[uri];
  if (!method) throw badInput(`${elementPath(parent)}: xenc:EncryptionMethod is missing.`);
  if (!cipher) throw badInput(`${elementPath(method)}: the cipher ${shownUri(uri)} is not supported; keytap reads AES-CBC, 3DES-CBC and AES key wrap.`);
  const data = childNamed(parent, 'CipherData', XENC);
  const value = data && childNamed(data, 'CipherValue', XENC);
  if (!value) throw badInput(`${elementPath(data ?? parent)}: xenc:CipherValue is missing (a CipherReference is not supported).`);
  const cipherValue = decodeBase64(value.text, value, 'CipherValue');
  const minimum = cipher.wrap ? 16 : 2 * cipher.block;
  if (cipherValue.length < minimum || cipherValue.length % cipher.block !== 0) {
    throw badInput(`${elementPath(value)}: the CipherValue is ${cipherValue.length} bytes, which ${cipherValue.length < minimum ? 'is too short' : 'is not a whole number of blocks'} (cut short?).`);
  }
  return { cipherValue, cipher, uri };
}

/** null when the key is wrong (padding or unwrap fails); cleanPadding when all padding bytes are right (PKCS#7). */
function decrypt(cipher: Cipher, key: Buffer, cipherValue: Buffer, where: XmlElement): { value: Buffer; cleanPadding: boolean } | null {
  if (key.length !== cipher.keyLength) {
    throw badInput(`${elementPath(where)}: the cipher needs a ${cipher.keyLength}-byte key, but the key given is ${key.length} bytes.`);
  }
  try {
    if (cipher.wrap) return unwrap(cipher, key, cipherValue);
    const iv = cipherValue.subarray(0, cipher.block);
    const decipher = createDecipheriv(cipher.node, key, iv);
    decipher.setAutoPadding(false);
    const padded = Buffer.concat([decipher.update(cipherValue.subarray(cipher.block)), decipher.final()]);
    // XML Encryption guarantees only the last padding byte.
    const n = padded[padded.length - 1]!;
    if (n < 1 || n > cipher.block) return null;
    let clean = n >= 2;
    for (let i = padded.length - n; i < padded.length; i++) if (padded[i] !== n) clean = false;
    return { value: padded.subarray(0, padded.length - n), cleanPadding: clean };
  } catch {
    return null;
  }
}

/** RFC 3394 key wrap, or RFC 5649 (with padding) for values that are not a multiple of 8 bytes. */
function unwrap(cipher: Cipher, key: Buffer, cipherValue: Buffer): { value: Buffer; cleanPadding: boolean } | null {
  for (const [suffix, iv] of [['', 'A6A6A6A6A6A6A6A6'], ['-pad', 'A65959A6']] as const) {
    try {
      const decipher = createDecipheriv(`${cipher.node}${suffix}`, key, Buffer.from(iv, 'hex'));
      return { value: Buffer.concat([decipher.update(cipherValue), decipher.final()]), cleanPadding: true };
    } catch {
      // try the other variant
    }
  }
  return null;
}

function deriveKey(derived: XmlElement, passphrase: string, cipher: Cipher, cipherUri: string, allowSlow: boolean): Buffer {
  const method = childNamed(derived, 'KeyDerivationMethod', '*');
  const uri = (method && attribute(method, 'Algorithm')?.trim()) ?? '';
  if (!method || !uri.endsWith('#pbkdf2')) {
    throw badInput(`${elementPath(method ?? derived)}: the key derivation ${shownUri(uri)} is not supported; keytap reads PBKDF2.`);
  }
  // pkcs5:PBKDF2-params as RFC 6030 writes it, xenc11:PBKDF2-params as python-pskc writes it.
  const params = childNamed(method, 'PBKDF2-params', '*');
  if (!params) throw badInput(`${elementPath(method)}: PBKDF2-params is missing.`);
  // Every parameter is checked before deriving: a derivation is the one expensive step, and a
  // file must not get one for a key that would be refused anyway.
  const saltElement = childNamed(params, 'Salt', '*');
  const specified = saltElement && childNamed(saltElement, 'Specified', '*');
  if (!specified) throw badInput(`${elementPath(saltElement ?? params)}: Salt/Specified is missing.`);
  const salt = decodeBase64(specified.text, specified, 'salt');
  if (salt.length === 0) throw badInput(`${elementPath(specified)}: the salt is empty.`);
  const iterationsElement = childNamed(params, 'IterationCount', '*');
  const iterationsText = iterationsElement?.text.trim() ?? '';
  const iterations = /^\d{1,10}$/u.test(iterationsText) ? Number(iterationsText) : Number.NaN;
  if (!iterationsElement || !(iterations >= 1 && iterations <= MAX_CONSENTED_ITERATIONS)) {
    throw badInput(`${elementPath(iterationsElement ?? params)}: IterationCount must be a whole number from 1 to ${MAX_CONSENTED_ITERATIONS}.`);
  }
  const lengthElement = childNamed(params, 'KeyLength', '*');
  if (lengthElement) {
    const lengthText = lengthElement.text.trim();
    if (lengthText !== String(cipher.keyLength)) {
      throw badInput(`${elementPath(lengthElement)}: KeyLength is ${lengthText.slice(0, 12) || 'empty'}, but the cipher ${cipherUri.slice(cipherUri.indexOf('#') + 1)} needs ${cipher.keyLength} bytes.`);
    }
  }
  const prfElement = childNamed(params, 'PRF', '*');
  const prfUri = prfElement && attribute(prfElement, 'Algorithm')?.trim();
  const prf = prfUri ? PRFS[prfUri] : 'sha1';
  if (!prf) throw badInput(`${elementPath(prfElement!)}: the PBKDF2 PRF ${shownUri(prfUri!)} is not supported.`);
  if (iterations > PSKC_MAX_ITERATIONS && !allowSlow) {
    throw badInput(
      `${elementPath(iterationsElement)}: the file asks for ${iterations} PBKDF2 iterations; keytap derives at most ${PSKC_MAX_ITERATIONS} without consent (about ${Math.ceil(iterations / PSKC_MAX_ITERATIONS)} times as long).`,
      undefined,
      { kind: 'slow-kdf', iterations, cap: PSKC_MAX_ITERATIONS },
    );
  }
  return pbkdf2Sync(passphrase, salt, iterations, cipher.keyLength, prf);
}
