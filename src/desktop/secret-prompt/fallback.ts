/**
 * Where no pinentry is installed: the desktop's own dialog programs. Linux: zenity (GNOME) or
 * kdialog (KDE), each with a hidden-text entry; macOS: osascript's "display dialog … with hidden
 * answer". The secret comes back on stdout, never on a command line. Cancel is exit code 1 for
 * all three. (Windows has no such program that keytap relies on: Gpg4win's pinentry, or the
 * terminal.)
 */
import type { ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import { KeytapError } from '../../errors.js';
import type { SecretPrompt, SecretRequest } from './types.js';
import { spawnPromptChild } from './child.js';

export type FallbackName = 'zenity' | 'kdialog' | 'osascript';

const DEFAULT_TIMEOUT_MS = 5 * 60_000;

function argv(name: FallbackName, request: SecretRequest): string[] {
  const text = request.error === undefined ? request.description : `${request.error}\n\n${request.description}`;
  switch (name) {
    case 'zenity':
      // --no-markup: a key's name with '<' or '&' is text, not Pango markup.
      return ['--entry', '--hide-text', '--no-markup', `--title=${request.title}`, `--text=${text}`];
    case 'kdialog':
      return ['--title', request.title, '--password', text];
    case 'osascript': {
      const quoted = (s: string): string => `"${s.replace(/[\\"]/gu, (c) => `\\${c}`)}"`;
      return ['-e', `display dialog ${quoted(text)} with title ${quoted(request.title)} default answer "" with hidden answer`, '-e', 'text returned of result'];
    }
  }
}

export function fallbackPrompt(name: FallbackName, program: string = name, options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): SecretPrompt {
  return {
    name,
    ask: (request, signal) =>
      new Promise((resolve, reject) => {
        const fail = (reason: string, code: 'DEVICE_ERROR' | 'TIMEOUT' = 'DEVICE_ERROR'): KeytapError =>
          new KeytapError(code, `The secret prompt ${name} failed: ${reason}.`, { detail: { kind: 'secret-prompt-failed', program: name, reason } });
        if (signal?.aborted) {
          reject(new KeytapError('CANCELLED', 'The question was cancelled.'));
          return;
        }
        const prompt = spawnPromptChild<ChildProcessByStdio<null, Readable, null>>(program, argv(name, request), ['ignore', 'pipe', 'ignore'], options.env);
        const child = prompt.process;
        let out = '';
        const timer = setTimeout(() => {
          prompt.stop();
          reject(fail('nobody answered in time', 'TIMEOUT'));
        }, options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
        const onAbort = (): void => {
          clearTimeout(timer);
          prompt.stop();
          reject(new KeytapError('CANCELLED', 'The question was cancelled.'));
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
        child.on('error', (error: NodeJS.ErrnoException) => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          reject(fail(error.code === 'ENOENT' ? 'it is not installed' : error.message));
        });
        child.on('close', (code) => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          if (code === 0) resolve(out.replace(/\r?\n$/u, ''));
          else if (code === 1) reject(new KeytapError('CANCELLED', 'The question was cancelled.'));
          else reject(fail(`it ended with exit code ${code}`));
        });
      }),
  };
}
