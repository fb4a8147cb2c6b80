/**
 * Microsoft Graph (beta) bulk body for `hardwareOathDevices` (docs/seed-formats.md §1.3):
 *
 *   {"@context":"#$delta","value":[{"@contentId":"1","serialNumber":…,"manufacturer":…,"model":…,
 *     "secretKey":"<Base32, no padding>","timeIntervalInSeconds":30,"hashFunction":"hmacsha1"}, …]}
 *
 * TOTP, 6 digits, 30 or 60 s, SHA-1 or SHA-256. `displayName` (the name Entra shows for the
 * device) carries the user's display name where a users file gave one, else the account name;
 * `assignTo.id` needs a user object id, so it is written only when the token's UPN is one (a
 * GUID). The reader also takes a bare array or a single device object.
 */
import type { OathType } from '../otp/credential.js';
import { base32Decode, base32Encode } from '../otp/encoding.js';
import type { SeedFormat, SeedReadOptions, SeedToken, SeedWriteOptions } from './token.js';
import { SerialRegistry, UNKNOWN_DEVICE_TEXT, assertWritable, badInput, checkToken } from './token.js';
import { classifySecret, controlCharacterProblem, decodeText, excelScientificMessage, findLostLeadingZeros, isExcelScientific, isImpossibleBase32Length, shownSerial, withoutPadding } from './text.js';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/iu;
const WHAT = 'Graph JSON file';

export const graphFormat: SeedFormat = {
  name: 'graph',
  title: 'Microsoft Graph hardwareOathDevices JSON',
  defaultFileName: (_type: OathType) => 'tseeds-graph.json',
  accepts(token) {
    const base = checkToken(token);
    if (base !== null) return base;
    if (token.type !== 'TOTP') return 'Entra ID does not support HOTP tokens';
    if (token.algorithm === 'SHA512') return 'Graph takes hmacsha1 or hmacsha256, not SHA-512';
    if (token.digits !== 6) return `Entra ID verifies 6-digit codes only, not ${token.digits}`;
    if (token.period !== 30 && token.period !== 60) return `Entra ID takes a time interval of 30 or 60 s, not ${token.period}`;
    if (token.secret.length > 80) return `the secret is ${token.secret.length} bytes; Entra takes at most 80 (128 Base32 characters)`;
    return null;
  },
  write: writeGraph,
  read: readGraph,
};

interface GraphDevice {
  '@contentId': string;
  serialNumber: string;
  manufacturer: string;
  model: string;
  secretKey: string;
  timeIntervalInSeconds: number;
  hashFunction: 'hmacsha1' | 'hmacsha256';
  displayName?: string;
  assignTo?: { id: string };
}

function writeGraph(tokens: readonly SeedToken[], options: SeedWriteOptions = {}): Buffer {
  assertWritable(graphFormat, tokens);
  const value = tokens.map((token, index): GraphDevice => {
    const device: GraphDevice = {
      '@contentId': String(index + 1),
      serialNumber: token.serial,
      manufacturer: token.manufacturer ?? options.manufacturer ?? UNKNOWN_DEVICE_TEXT,
      model: token.model ?? options.model ?? UNKNOWN_DEVICE_TEXT,
      secretKey: base32Encode(token.secret),
      timeIntervalInSeconds: token.period,
      hashFunction: token.algorithm === 'SHA256' ? 'hmacsha256' : 'hmacsha1',
    };
    const name = token.displayName ?? token.account;
    if (name) device.displayName = name;
    if (token.upn && GUID.test(token.upn)) device.assignTo = { id: token.upn };
    return device;
  });
  return Buffer.from(`${JSON.stringify({ '@context': '#$delta', value }, null, 2)}\n`, 'utf8');
}

function readGraph(bytes: Uint8Array, _options: SeedReadOptions = {}): SeedToken[] {
  const text = decodeText(bytes, WHAT);
  const values = jsonValueCount(text);
  if (values.containers > MAX_JSON_CONTAINERS || values.values > MAX_JSON_VALUES) {
    throw badInput(`The ${WHAT} has more than ${values.containers > MAX_JSON_CONTAINERS ? `${MAX_JSON_CONTAINERS.toLocaleString('en')} objects and arrays` : `${MAX_JSON_VALUES.toLocaleString('en')} values`}, more than any seed file.`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    // V8's messages may quote the input (a secret); keep only the place.
    const cutShort = jsonLooksCutShort(text);
    const place = cutShort ? '' : ` (${lineAndColumn(text, jsonErrorOffset(text, error instanceof Error ? error.message : ''))})`;
    throw badInput(`The ${WHAT} is not valid JSON${place}${cutShort ? ': it ends before the JSON is complete (cut short?)' : ''}.`);
  }
  let devices: unknown[];
  let base = 'value';
  if (Array.isArray(parsed)) {
    devices = parsed;
    base = '';
  } else if (isObject(parsed) && Array.isArray(parsed.value)) devices = parsed.value;
  else if (isObject(parsed) && 'serialNumber' in parsed) {
    devices = [parsed];
    base = '';
  } else throw badInput(`The ${WHAT} is neither {"value": [devices…]} nor an array of devices.`);
  if (devices.length === 0) throw badInput(`The ${WHAT} has no devices.`);
  const serials = new SerialRegistry();
  const tokens: SeedToken[] = [];
  const places: string[] = [];
  devices.forEach((device, index) => {
    const path = base ? `${base}[${index}]` : `[${index}]`;
    if (!isObject(device)) throw badInput(`${WHAT}: ${path} is not an object.`);
    const str = (name: string, required: boolean): string | undefined => {
      const v = device[name];
      if (v === undefined || v === null) {
        if (required) throw badInput(`${WHAT}: ${path}.${name} is missing.`);
        return undefined;
      }
      if (typeof v !== 'string') throw badInput(`${WHAT}: ${path}.${name} is not a string.`);
      const control = name === 'secretKey' ? null : controlCharacterProblem(name, v);
      if (control) throw badInput(`${WHAT}: ${path}.${name}: ${control}.`);
      return v.trim();
    };
    const serial = str('serialNumber', true)!;
    if (serial === '') throw badInput(`${WHAT}: ${path}.serialNumber is empty.`);
    if (isExcelScientific(serial)) throw badInput(`${WHAT}: ${path}.serialNumber: ${excelScientificMessage(serial)}.`);
    const earlier = serials.claim(serial, path);
    if (earlier !== undefined) throw badInput(`${WHAT}: ${path}.serialNumber ${shownSerial(serial)} repeats ${earlier}.`);
    if (device.secretKey === null) {
      throw badInput(`${WHAT}: ${path}.secretKey is null: Graph never returns secrets, so this file (from a GET?) cannot program a key.`);
    }
    const secretText = str('secretKey', true)!;
    const kind = classifySecret(secretText);
    if (kind === 'base64') throw badInput(`${WHAT}: ${path}.secretKey: this looks like Base64; Entra wants Base32.`);
    if (kind === 'hex') throw badInput(`${WHAT}: ${path}.secretKey looks like hex (it has 0, 1, 8 or 9); Entra wants Base32.`);
    if (kind === 'empty' || kind === 'invalid') throw badInput(`${WHAT}: ${path}.secretKey is ${kind === 'empty' ? 'empty' : 'not Base32'}.`);
    const body = withoutPadding(secretText);
    if (isImpossibleBase32Length(body.length)) throw badInput(`${WHAT}: ${path}.secretKey has a length Base32 never has (cut short?).`);
    const secret = base32Decode(body);
    const rawInterval = device.timeIntervalInSeconds;
    const period = typeof rawInterval === 'string' && /^\d+$/u.test(rawInterval.trim()) ? Number(rawInterval) : rawInterval;
    if (period !== 30 && period !== 60) throw badInput(`${WHAT}: ${path}.timeIntervalInSeconds must be 30 or 60.`);
    const hash = (str('hashFunction', false) ?? 'hmacsha1').toLowerCase();
    if (hash !== 'hmacsha1' && hash !== 'hmacsha256') throw badInput(`${WHAT}: ${path}.hashFunction must be hmacsha1 or hmacsha256.`);
    const assignTo = device.assignTo;
    const upn = isObject(assignTo) && typeof assignTo.id === 'string' && assignTo.id.trim() ? assignTo.id.trim() : undefined;
    const control = controlCharacterProblem('assignTo.id', upn);
    if (control) throw badInput(`${WHAT}: ${path}.assignTo.id: ${control}.`);
    tokens.push({
      serial,
      secret,
      type: 'TOTP',
      algorithm: hash === 'hmacsha256' ? 'SHA256' : 'SHA1',
      digits: 6,
      period,
      counter: 0,
      upn,
      account: str('displayName', false) || undefined,
      manufacturer: str('manufacturer', false) || undefined,
      model: str('model', false) || undefined,
    });
    places.push(path);
  });
  const lost = findLostLeadingZeros(tokens.map((t, i) => ({ serial: t.serial, place: places[i]! })));
  if (lost.length > 0) throw badInput(`${WHAT}: ${lost[0]!.place}.serialNumber: ${lost[0]!.message}.`);
  return tokens;
}

/**
 * Limits checked before JSON.parse, which would otherwise build whatever the file holds: 32 MiB of
 * `{},` are 11 million objects and a gigabyte of memory. A device is 2 objects and about 10 values,
 * and 32 MiB of real devices (some 110,000) stay well below both.
 */
const MAX_JSON_CONTAINERS = 500_000;
const MAX_JSON_VALUES = 4_000_000;

/** Objects and arrays, and values (members and elements, roughly: commas plus one), outside strings. */
function jsonValueCount(text: string): { containers: number; values: number } {
  let containers = 0;
  let values = 1;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // Skip the string: to the next quote that is not escaped.
      for (i++; i < text.length && text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c) i++;
    } else if (c === 0x7b || c === 0x5b) containers++;
    else if (c === 0x2c) values++;
  }
  return { containers, values };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Where JSON.parse stopped. V8 names the position for most errors but not for an unexpected token
 * ("Unexpected token 'x', … is not valid JSON"); there the longest prefix that can still begin a
 * JSON text ends at the culprit, found by bisection with JSON.parse itself.
 */
function jsonErrorOffset(text: string, message: string): number {
  const at = /at position (\d+)/u.exec(message);
  if (at) return Number(at[1]);
  let viable = 0;
  let refused = text.length;
  while (refused - viable > 1) {
    const middle = Math.floor((viable + refused) / 2);
    if (canBeginJson(text.slice(0, middle))) viable = middle;
    else refused = middle;
  }
  return viable;
}

function canBeginJson(prefix: string): boolean {
  try {
    JSON.parse(prefix);
    return true;
  } catch (error) {
    const message = error instanceof Error ? error.message : '';
    if (/end of JSON input|Unterminated string/u.test(message)) return true;
    const at = /at position (\d+)/u.exec(message);
    return at !== null && Number(at[1]) >= prefix.length;
  }
}

/** "line L, column C" (both 1-based) of an offset, whatever the line ends. */
function lineAndColumn(text: string, offset: number): string {
  const lines = text.slice(0, offset).split(/\r\n|\r|\n/u);
  return `line ${lines.length}, column ${lines[lines.length - 1]!.length + 1}`;
}

/** Brackets still open at the end, outside strings. */
function jsonLooksCutShort(text: string): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
  }
  return inString || depth > 0;
}
