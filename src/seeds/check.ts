/**
 * `keytap seeds check FILE`: everything wrong with an Entra CSV before it is uploaded — header,
 * Base32 alphabet and length, time interval, UPN syntax, duplicate and Excel-damaged serials —
 * every problem, not just the first, each with its line. Warnings are things Entra accepts but
 * that are probably not meant (an empty model, a mixed-case secret, a repeated secret).
 * Never repeats a secret.
 */
import { isKeytapError } from '../errors.js';
import type { LineProblem } from './entra.js';
import { analyzeEntraCsv, entraFormat } from './entra.js';
import { otherKindOfFile } from './detect.js';
import { decodeText } from './text.js';

export interface EntraCheckResult {
  ok: boolean;
  /** Sorted by line. */
  problems: LineProblem[];
  warnings: LineProblem[];
  /** Rows that would upload. */
  tokenCount: number;
}

export function checkEntraCsv(bytes: Uint8Array): EntraCheckResult {
  // A file that says it is something else gets that one sentence, not an error for every line.
  const other = otherKindOfFile(bytes, entraFormat);
  if (other !== undefined) return { ok: false, problems: [{ line: 1, message: `this is ${other}, not an ${entraFormat.title}` }], warnings: [], tokenCount: 0 };
  let text: string;
  try {
    text = decodeText(bytes, 'Entra CSV file');
  } catch (error) {
    if (!isKeytapError(error)) throw error;
    const line = Number(/line (\d+)/u.exec(error.message)?.[1] ?? 1);
    return { ok: false, problems: [{ line, message: error.message.replace(/\.$/u, '') }], warnings: [], tokenCount: 0 };
  }
  const { tokens, problems, warnings } = analyzeEntraCsv(text, true);
  return { ok: problems.length === 0, problems, warnings, tokenCount: tokens.length };
}

