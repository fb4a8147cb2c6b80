/**
 * Seed files: one module per format, each a writer and a reader (docs/seed-formats.md), the registry
 * by name, format detection, and the Entra CSV check. Pure: bytes in, bytes out; writing files
 * (atomically, mode 0600) is the caller's job.
 */
import { dualShieldFormat } from './dualshield.js';
import { ENTRA_HEADER, entraFormat } from './entra.js';
import { graphFormat } from './graph.js';
import { hexCsvFormat } from './hexcsv.js';
import { otpauthFormat } from './otpauth.js';
import { privacyIdeaFormat } from './privacyidea.js';
import { pskcFormat } from './pskc.js';
import type { SeedFormat, SeedFormatName } from './token.js';
import { SEED_FORMAT_NAMES, badInput } from './token.js';

export type { HashAlgorithm, OathType, PskcProtection, SeedFormat, SeedFormatName, SeedReadOptions, SeedToken, SeedWarning, SeedWriteOptions } from './token.js';
export { SEED_FORMAT_NAMES, checkToken, normalizeToken } from './token.js';
export { ENTRA_HEADER, checkUpn } from './entra.js';
export { checkEntraCsv } from './check.js';
export type { EntraCheckResult } from './check.js';
export { PSKC_DEFAULT_ITERATIONS, PSKC_MAX_ITERATIONS } from './pskc.js';
export { dualShieldFormat, entraFormat, graphFormat, hexCsvFormat, otpauthFormat, privacyIdeaFormat, pskcFormat };

export const SEED_FORMATS: Readonly<Record<SeedFormatName, SeedFormat>> = {
  entra: entraFormat,
  pskc: pskcFormat,
  dualshield: dualShieldFormat,
  hexcsv: hexCsvFormat,
  privacyidea: privacyIdeaFormat,
  otpauth: otpauthFormat,
  graph: graphFormat,
};

/** The format by name; BAD_INPUT listing the names for an unknown one. */
export function seedFormat(name: string): SeedFormat {
  const format = SEED_FORMATS[name.toLowerCase() as SeedFormatName];
  if (!format) throw badInput(`Unknown seed file format "${name.slice(0, 30)}"; known: ${SEED_FORMAT_NAMES.join(', ')}.`);
  return format;
}

/**
 * Which format a file is in, from its content first and its name second. BAD_INPUT when neither
 * tells. Only looks at the start of the file; reading it fully is the format's job.
 */
export function detectFormat(bytes: Uint8Array, fileName = ''): SeedFormat {
  let start = 0;
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) start = 3;
  const head = Buffer.from(bytes.subarray(start, start + 4096)).toString('utf8');
  const trimmed = head.replace(/^\s+/u, '');
  const name = fileName.toLowerCase();
  if (trimmed.startsWith('<')) {
    // Skip the declaration, comments and processing instructions to the root's name.
    const root = /<([A-Za-z_][\w.-]*:)?([A-Za-z_][\w.-]*)[\s/>]/u.exec(trimmed.replace(/<\?[\s\S]*?\?>|<!--[\s\S]*?-->/gu, ''));
    if (root?.[2] === 'KeyContainer') return pskcFormat;
    if (root?.[2] === 'data') return dualShieldFormat;
    if (name.endsWith('.pskcxml') || name.endsWith('.pskc')) return pskcFormat;
    throw badInput(`Cannot tell the format of ${fileName || 'the file'}: it is XML, but neither PSKC (<KeyContainer>) nor DualShield (<data>).`, undefined, {
      kind: 'seed-format-unknown',
      formats: SEED_FORMAT_NAMES,
    });
  }
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) return graphFormat;
  const firstLine = trimmed.split(/\r?\n/u, 1)[0] ?? '';
  if (/^otpauth:\/\//iu.test(firstLine) || /^#[^\n]*\n\s*otpauth:\/\//iu.test(trimmed)) return otpauthFormat;
  const lowerFirst = firstLine.trim().toLowerCase();
  if (lowerFirst.startsWith('upn,') || lowerFirst.startsWith('"upn"') || lowerFirst === ENTRA_HEADER) return entraFormat;
  if (/^#\s*version:\s*2/iu.test(firstLine)) return privacyIdeaFormat;
  const dataLine = trimmed.split(/\r?\n/u).find((l) => l.trim() !== '' && !l.trimStart().startsWith('#')) ?? '';
  const fields = dataLine.split(',').map((f) => f.trim());
  if (fields.length >= 3 && /^(totp|hotp|ocra|tan)$/iu.test(fields[2] ?? '')) return privacyIdeaFormat;
  if (fields.length >= 4) return privacyIdeaFormat;
  if (fields.length >= 2 && fields.length <= 3) return hexCsvFormat;
  if (name.endsWith('.pskcxml') || name.endsWith('.pskc')) return pskcFormat;
  if (name.endsWith('.json')) return graphFormat;
  throw badInput(`Cannot tell the format of ${fileName || 'the file'} from its content.`, undefined, { kind: 'seed-format-unknown', formats: SEED_FORMAT_NAMES });
}
