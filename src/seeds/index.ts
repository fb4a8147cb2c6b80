/**
 * Seed files: one module per format, each a writer and a reader (docs/seed-formats.md), the registry
 * by name, format detection (detect.ts), and the Entra CSV check. Pure: bytes in, bytes out; writing files
 * (atomically, mode 0600) is the caller's job.
 */
import { dualShieldFormat } from './dualshield.js';
import { entraFormat } from './entra.js';
import { graphFormat } from './graph.js';
import { hexCsvFormat } from './hexcsv.js';
import { otpauthFormat } from './otpauth.js';
import { privacyIdeaFormat } from './privacyidea.js';
import { pskcFormat } from './pskc.js';
import type { SeedFormat, SeedFormatName } from './token.js';
import { SEED_FORMAT_NAMES, badInput } from './token.js';

export type { HashAlgorithm, OathType, PskcProtection, SeedFormat, SeedFormatName, SeedReadOptions, SeedToken, SeedWarning, SeedWriteOptions } from './token.js';
export { SEED_FORMAT_NAMES, UNKNOWN_DEVICE_TEXT, checkToken, normalizeToken } from './token.js';
export { ENTRA_HEADER, checkUpn } from './entra.js';
export { checkEntraCsv } from './check.js';
export type { EntraCheckResult } from './check.js';
export { PSKC_DEFAULT_ITERATIONS, PSKC_MAX_ITERATIONS } from './pskc.js';
export { MAX_SEED_FILE_BYTES, checkSeedFileSize } from './text.js';
export { LEDGER_FORMAT, detectFormat, otherKindOfFile, readAs } from './detect.js';
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

