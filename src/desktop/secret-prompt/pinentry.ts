/**
 * A pinentry (GnuPG's secret prompt: pinentry-gnome3, -qt, -gtk, -curses, -tty, pinentry-mac,
 * Gpg4win's) driven over its Assuan protocol (assuan.ts): one process per question, OPTIONs for the
 * terminal of the curses and tty ones, SETTITLE/SETDESC/SETPROMPT/SETERROR/SETOK/SETCANCEL and
 * SETTIMEOUT, then GETPIN, then BYE. A question withdrawn (aborted, timed out) stops the pinentry at
 * once (child.ts): it is busy in its dialog and would not read a BYE. What the pinentry is told and answers is never logged: the D line is the secret.
 */
import type { ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { KeytapError } from '../../errors.js';
import { MAX_LINE_BYTES, errorCodeOf, escapeParameter, GPG_ERR_TIMEOUT, isCancel, parseServerLine, unescapeData } from './assuan.js';
import type { SecretPrompt, SecretRequest } from './types.js';
import { spawnPromptChild } from './child.js';

export interface PinentryOptions {
  /** The program: a name on PATH or a path. */
  program: string;
  /** For pinentry-curses/-tty: the terminal to draw on (/dev/pts/3) and its type ($TERM). */
  ttyName?: string | undefined;
  ttyType?: string | undefined;
  /**
   * How long the user has to answer: the pinentry is told (SETTIMEOUT, whole seconds) and closes its
   * dialog itself; a moment later keytap stops it anyway. Default 5 minutes.
   */
  timeoutMs?: number | undefined;
  env?: NodeJS.ProcessEnv | undefined;
}

const DEFAULT_TIMEOUT_MS = 5 * 60_000;
/** Past the pinentry's own timeout, how long keytap waits for its answer before stopping it. */
const OWN_TIMEOUT_GRACE_MS = 2_000;
/** After BYE, how long a pinentry has to leave by itself. */
const BYE_GRACE_MS = 2_000;

export function pinentryPrompt(options: PinentryOptions): SecretPrompt {
  const name = options.program.split(/[\\/]/u).pop() ?? options.program;
  return {
    name,
    ask: (request, signal) => converse(options, name, request, signal),
  };
}

function failed(program: string, reason: string, code: 'DEVICE_ERROR' | 'TIMEOUT' = 'DEVICE_ERROR'): KeytapError {
  return new KeytapError(code, `The secret prompt ${program} failed: ${reason}.`, { detail: { kind: 'secret-prompt-failed', program, reason } });
}

/** A command line, escaped, refused if longer than Assuan allows (a description that long is cut). */
function command(verb: string, parameter?: string): string {
  if (parameter === undefined) return `${verb}\n`;
  let escaped = escapeParameter(parameter);
  while (Buffer.byteLength(`${verb} ${escaped}\n`) > MAX_LINE_BYTES) escaped = escapeParameter((parameter = parameter.slice(0, -16)));
  return `${verb} ${escaped}\n`;
}

async function converse(options: PinentryOptions, program: string, request: SecretRequest, signal?: AbortSignal): Promise<string> {
  if (signal?.aborted) throw new KeytapError('CANCELLED', 'The question was cancelled.');
  const prompt = spawnPromptChild<ChildProcessByStdio<Writable, Readable, null>>(options.program, [], ['pipe', 'pipe', 'ignore'], options.env);
  const child = prompt.process;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let buffered = '';
  const lines: string[] = [];
  let wake: (() => void) | undefined;
  let ended: KeytapError | undefined;
  const finish = (error: KeytapError): void => {
    ended ??= error;
    wake?.();
  };
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    let newline: number;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      lines.push(buffered.slice(0, newline).replace(/\r$/u, ''));
      buffered = buffered.slice(newline + 1);
    }
    if (buffered.length > MAX_LINE_BYTES * 4) finish(failed(program, 'it sent a line longer than Assuan allows'));
    wake?.();
  });
  child.on('error', (error: NodeJS.ErrnoException) => finish(failed(program, error.code === 'ENOENT' ? 'it is not installed' : error.message)));
  const onExit = (code: number | null, sig: NodeJS.Signals | null): void => finish(failed(program, sig ? `it was ended by ${sig}` : `it ended (exit code ${code}) in the middle of the conversation`));
  child.on('exit', onExit);
  child.stdin.on('error', () => undefined);
  // Withdrawn: the dialog goes now, not when the conversation unwinds.
  const withdraw = (error: KeytapError): void => {
    finish(error);
    prompt.stop();
  };
  const timer = setTimeout(() => withdraw(failed(program, 'nobody answered in time', 'TIMEOUT')), timeoutMs + OWN_TIMEOUT_GRACE_MS);
  const onAbort = (): void => withdraw(new KeytapError('CANCELLED', 'The question was cancelled.'));
  signal?.addEventListener('abort', onAbort, { once: true });

  const nextLine = async (): Promise<string> => {
    for (;;) {
      const line = lines.shift();
      if (line !== undefined) return line;
      if (ended) throw ended;
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
  };
  /** Sends a command (undefined: only reads the greeting) and reads to its OK/ERR; D lines are collected. */
  const transact = async (line: string | undefined): Promise<{ ok: boolean; code: number; data: string[] }> => {
    if (line !== undefined) child.stdin.write(line);
    const data: string[] = [];
    for (;;) {
      const answer = parseServerLine(await nextLine());
      if (answer.kind === 'ok') return { ok: true, code: 0, data };
      if (answer.kind === 'err') return { ok: false, code: answer.code, data };
      if (answer.kind === 'data') data.push(answer.data);
      // Nothing keytap asks for inquires back; CAN declines, and the server then ends the command.
      else if (answer.kind === 'inquire') child.stdin.write('CAN\n');
      else if (answer.kind === 'unknown') throw failed(program, 'it does not speak the Assuan protocol');
    }
  };

  try {
    const greeting = await transact(undefined);
    if (!greeting.ok) throw failed(program, 'it refused to start');
    // OPTIONs a pinentry does not know are answered with ERR and are harmless.
    if (options.ttyName) await transact(command('OPTION', `ttyname=${options.ttyName}`));
    if (options.ttyType) await transact(command('OPTION', `ttytype=${options.ttyType}`));
    await transact(command('SETTITLE', request.title));
    await transact(command('SETDESC', request.description));
    await transact(command('SETPROMPT', request.prompt));
    if (request.error !== undefined) await transact(command('SETERROR', request.error));
    if (request.ok !== undefined) await transact(command('SETOK', request.ok));
    if (request.cancel !== undefined) await transact(command('SETCANCEL', request.cancel));
    // Older pinentries answer ERR to SETTIMEOUT; keytap's own timer still stops them.
    await transact(command('SETTIMEOUT', String(Math.max(1, Math.ceil(timeoutMs / 1000)))));
    const answer = await transact('GETPIN\n');
    if (!answer.ok) {
      if (isCancel(answer.code)) throw new KeytapError('CANCELLED', 'The question was cancelled.');
      if (errorCodeOf(answer.code) === GPG_ERR_TIMEOUT) throw failed(program, 'nobody answered in time', 'TIMEOUT');
      throw failed(program, `it answered error ${errorCodeOf(answer.code)}`);
    }
    const secret = unescapeData(answer.data.join(''));
    try {
      return secret.toString('utf8');
    } finally {
      secret.fill(0);
    }
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
    child.off('exit', onExit);
    if (prompt.running) {
      if (ended) prompt.stop();
      else {
        child.stdin.end('BYE\n');
        // A pinentry that does not leave after BYE is not waited for.
        const stop = setTimeout(() => prompt.stop(), BYE_GRACE_MS);
        stop.unref();
        child.once('exit', () => clearTimeout(stop));
      }
    }
  }
}
