/** Where the CLI writes: results to stdout, prompts and errors to stderr. */
import { KeytapError } from '../errors.js';
import { printableLines } from '../util/printable.js';
import type { CliCommand } from './explain.js';
import { explainForCli } from './explain.js';

export interface CliIo {
  out(line: string): void;
  err(line: string): void;
}

/** Every line is printableLines(): names, serials and messages can come from files and keys. */
export const processIo: CliIo = {
  out: (line) => process.stdout.write(`${printableLines(line)}\n`),
  err: (line) => process.stderr.write(`${printableLines(line)}\n`),
};

export function printJson(io: CliIo, value: unknown): void {
  io.out(JSON.stringify(value, null, 2));
}

/**
 * One line "keytap: message" plus the hint, worded for the running command (its own options).
 * Unexpected errors keep their stack only with KEYTAP_DEBUG.
 */
export function describeError(error: unknown, command?: CliCommand): string[] {
  if (error instanceof KeytapError) {
    const { message, hint } = explainForCli(error, command);
    return [`keytap: ${message}`, ...(hint ? [`  ${hint}`] : [])];
  }
  const lines = [`keytap: unexpected error: ${error instanceof Error ? error.message : String(error)}`];
  if (process.env.KEYTAP_DEBUG && error instanceof Error && error.stack) lines.push(error.stack);
  else lines.push('  This is a bug in keytap. Run again with KEYTAP_DEBUG=1 for details and report it.');
  return lines;
}

export function isoTime(seconds: number | undefined): string | null {
  return seconds === undefined ? null : new Date(seconds * 1000).toISOString();
}
