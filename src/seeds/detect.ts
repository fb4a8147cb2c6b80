/**
 * What a file is, from its content first and its name second: a seed file in one of the formats,
 * or a keytap ledger (which holds seeds but is no seed file). Pure: bytes in.
 */
import { basename, dirname } from 'node:path';
import type { KeytapError } from '../errors.js';
import { dualShieldFormat } from './dualshield.js';
import { ENTRA_HEADER, entraFormat } from './entra.js';
import { graphFormat } from './graph.js';
import { hexCsvFormat } from './hexcsv.js';
import { otpauthFormat } from './otpauth.js';
import { privacyIdeaFormat } from './privacyidea.js';
import { pskcFormat } from './pskc.js';
import type { SeedFormat, SeedReadOptions, SeedToken } from './token.js';
import { SEED_FORMAT_NAMES, badInput } from './token.js';

/** The first line of every keytap enrollment ledger (src/provision/ledger.ts) says this is its format. */
export const LEDGER_FORMAT = 'keytap-ledger';

/**
 * What a file is: a seed file in a format (`certain` when its content says so — an XML root, JSON,
 * otpauth URIs, a header row — rather than a guess from a column count or the name), or a keytap
 * ledger, which holds seeds but is no seed file. BAD_INPUT when neither content nor name tells.
 * Only looks at the start of the file; reading it fully is the format's job.
 */
type FileIdentity = { kind: 'seed-file'; format: SeedFormat; certain: boolean } | { kind: 'ledger' };

function identifyFile(bytes: Uint8Array, fileName = ''): FileIdentity {
  let start = 0;
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) start = 3;
  const head = Buffer.from(bytes.subarray(start, start + 4096)).toString('utf8');
  const trimmed = head.replace(/^\s+/u, '');
  const name = fileName.toLowerCase();
  const certain = (format: SeedFormat): FileIdentity => ({ kind: 'seed-file', format, certain: true });
  const guess = (format: SeedFormat): FileIdentity => ({ kind: 'seed-file', format, certain: false });
  // Classic Mac files end lines with CR alone.
  const lines = trimmed.split(/\r\n|\r|\n/u);
  if (trimmed.startsWith('<')) {
    // Skip the declaration, comments and processing instructions to the root's name.
    const root = /<([A-Za-z_][\w.-]*:)?([A-Za-z_][\w.-]*)[\s/>]/u.exec(trimmed.replace(/<\?[\s\S]*?\?>|<!--[\s\S]*?-->/gu, ''));
    if (root?.[2] === 'KeyContainer') return certain(pskcFormat);
    if (root?.[2] === 'data') return certain(dualShieldFormat);
    if (name.endsWith('.pskcxml') || name.endsWith('.pskc')) return guess(pskcFormat);
    throw badInput(`Cannot tell the format of ${fileName || 'the file'}: it is XML, but neither PSKC (<KeyContainer>) nor DualShield (<data>).`, undefined, {
      kind: 'seed-format-unknown',
      formats: SEED_FORMAT_NAMES,
    });
  }
  if (trimmed.startsWith('{') && isLedgerHeader(lines[0] ?? '')) return { kind: 'ledger' };
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) return certain(graphFormat);
  const firstLine = lines[0] ?? '';
  const dataLine = lines.find((l) => l.trim() !== '' && !l.trimStart().startsWith('#')) ?? '';
  if (/^otpauth:\/\//iu.test(firstLine) || (firstLine.startsWith('#') && /^\s*otpauth:\/\//iu.test(dataLine))) return certain(otpauthFormat);
  const lowerFirst = firstLine.trim().toLowerCase();
  if (lowerFirst.startsWith('upn,') || lowerFirst.startsWith('"upn"') || lowerFirst === ENTRA_HEADER) return certain(entraFormat);
  if (/^#\s*version:\s*2/iu.test(firstLine)) return certain(privacyIdeaFormat);
  const fields = dataLine.split(',').map((f) => f.trim());
  if (fields.length >= 3 && /^(totp|hotp|ocra|tan)$/iu.test(fields[2] ?? '')) return certain(privacyIdeaFormat);
  if (fields.length >= 4) return guess(privacyIdeaFormat);
  if (fields.length >= 2 && fields.length <= 3) return guess(hexCsvFormat);
  if (name.endsWith('.pskcxml') || name.endsWith('.pskc')) return guess(pskcFormat);
  if (name.endsWith('.json')) return guess(graphFormat);
  throw badInput(`Cannot tell the format of ${fileName || 'the file'} from its content.`, undefined, { kind: 'seed-format-unknown', formats: SEED_FORMAT_NAMES });
}

function isLedgerHeader(line: string): boolean {
  try {
    const header = JSON.parse(line) as unknown;
    return typeof header === 'object' && header !== null && (header as { format?: unknown }).format === LEDGER_FORMAT;
  } catch {
    return false;
  }
}

/** The format of a seed file (see identifyFile); BAD_INPUT saying so when it is a keytap ledger. */
export function detectFormat(bytes: Uint8Array, fileName = ''): SeedFormat {
  const identity = identifyFile(bytes, fileName);
  if (identity.kind === 'seed-file') return identity.format;
  throw notASeedFile(fileName);
}

/** A keytap ledger where a seed file was expected. */
function notASeedFile(fileName: string): KeytapError {
  return badInput(`${fileName ? basename(fileName) : 'The file'} is a keytap ledger (the enrollment ledger of a programming run), not a seed file.`, undefined, {
    kind: 'not-a-seed-file',
    found: 'ledger',
    dir: dirname(fileName),
  });
}

/**
 * What the file is when its content says for certain that it is not in `expected` ("a PSKC (RFC
 * 6030) file", "a keytap ledger"); undefined when it may be.
 */
export function otherKindOfFile(bytes: Uint8Array, expected: SeedFormat): string | undefined {
  let identity: FileIdentity;
  try {
    identity = identifyFile(bytes);
  } catch {
    return undefined;
  }
  if (identity.kind === 'ledger') return 'a keytap ledger';
  return identity.certain && identity.format !== expected ? `a ${identity.format.title} file` : undefined;
}

/** `bytes` read as `format`, named by the user: BAD_INPUT saying once what the file is when its content says it is something else. */
export function readAs(format: SeedFormat, bytes: Uint8Array, fileName: string, options?: SeedReadOptions): SeedToken[] {
  const other = otherKindOfFile(bytes, format);
  if (other !== undefined) throw badInput(`${basename(fileName) || 'The file'} is ${other}, not ${/^[aeiou]/iu.test(format.title) ? 'an' : 'a'} ${format.title} file.`);
  return format.read(bytes, options);
}
