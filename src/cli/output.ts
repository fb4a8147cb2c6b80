/** Where the CLI writes: results to stdout, prompts and errors to stderr. */
import { KeytapError } from '../errors.js';
import { printableLines } from '../util/printable.js';
import type { CliCommand } from './explain.js';
import { explainForCli } from './explain.js';

export interface CliIo {
  out(line: string): void;
  err(line: string): void;
}

/** Streams whose reader went away (EPIPE): what is still written to them is dropped. */
const closedStreams = new Set<NodeJS.WriteStream>();

/**
 * A reader that goes away (`keytap list | head -1`) ends the output, not the command: without a
 * listener the EPIPE would be an unhandled 'error' event and a stack trace; with one, the rest of
 * the output is dropped and the command ends with its usual exit code. Called once by main.ts, so
 * that every writer to stdout and stderr (the prompts, the traffic trace) is covered too.
 */
export function endOutputQuietlyWhenClosed(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') throw error;
      closedStreams.add(stream);
    });
  }
}

function writeLine(stream: NodeJS.WriteStream, line: string): void {
  if (!closedStreams.has(stream) && !stream.destroyed) stream.write(`${printableLines(line)}\n`);
}

/** Every line is printableLines(): names, serials and messages can come from files and keys. */
export const processIo: CliIo = {
  out: (line) => writeLine(process.stdout, line),
  err: (line) => writeLine(process.stderr, line),
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

/** A user as people know them: "Name <upn>" where a display name is known (from a users file), else the UPN. */
export function userLabel(upn: string | undefined, displayName: string | undefined): string {
  if (upn === undefined) return displayName ?? '-';
  return displayName === undefined ? upn : `${displayName} <${upn}>`;
}
