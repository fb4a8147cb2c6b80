/**
 * Choosing how to ask for a secret (docs/desktop.md "Secret prompt"): $KEYTAP_PINENTRY; else the
 * platform's pinentries found on PATH (Linux: pinentry-gnome3, -qt, -gtk-2, -gtk, -gnome, then
 * the Debian "pinentry" alternative; pinentry-curses and -tty only when a terminal is given; macOS:
 * pinentry-mac; Windows: Gpg4win's pinentry, also from its install folder); else a fallback
 * dialog (zenity, kdialog; macOS osascript); else the caller's own (the CLI's hidden terminal
 * prompt); else UNSUPPORTED, detail no-secret-prompt.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import { KeytapError } from '../../errors.js';
import type { FallbackName } from './fallback.js';
import { fallbackPrompt } from './fallback.js';
import { pinentryPrompt } from './pinentry.js';
import type { SecretPrompt } from './types.js';

export type { SecretPrompt, SecretRequest } from './types.js';

export interface PromptEnvironment {
  platform?: NodeJS.Platform | undefined;
  env?: NodeJS.ProcessEnv | undefined;
  /** The terminal the user is at, when there is one: curses/tty pinentries draw on it. */
  terminal?: { ttyName: string; ttyType?: string | undefined } | undefined;
  /** Asked when nothing else can be (the CLI's hidden prompt on its terminal). */
  last?: SecretPrompt | undefined;
  timeoutMs?: number | undefined;
}

const TERMINAL_PINENTRIES = new Set(['pinentry-curses', 'pinentry-tty']);

function pinentryNames(platform: NodeJS.Platform, terminal: boolean, graphical: boolean): string[] {
  if (platform === 'darwin') return ['pinentry-mac', ...(terminal ? ['pinentry-curses', 'pinentry-tty', 'pinentry'] : [])];
  if (platform === 'win32') return ['pinentry.exe', 'pinentry-qt.exe', 'pinentry-w32.exe', 'pinentry-basic.exe'];
  const gui = graphical ? ['pinentry-gnome3', 'pinentry-qt', 'pinentry-qt5', 'pinentry-gtk-2', 'pinentry-gtk', 'pinentry-gnome', 'pinentry'] : [];
  // "pinentry" is Debian's alternative and may be the curses one; without a display only a terminal helps.
  return [...gui, ...(terminal ? ['pinentry-curses', 'pinentry-tty', ...(graphical ? [] : ['pinentry'])] : [])];
}

function fallbackNames(platform: NodeJS.Platform, graphical: boolean): FallbackName[] {
  if (platform === 'darwin') return ['osascript'];
  if (platform === 'linux' || platform === 'freebsd') return graphical ? ['zenity', 'kdialog'] : [];
  return [];
}

/** The first executable file called `name` on PATH (and, on Windows, in Gpg4win's folders). */
export function findProgram(name: string, env: NodeJS.ProcessEnv, platform: NodeJS.Platform): string | undefined {
  const dirs = (env.PATH ?? env.Path ?? '').split(platform === 'win32' ? ';' : delimiter).filter((d) => d !== '');
  if (platform === 'win32') {
    for (const root of [env['ProgramFiles(x86)'], env.ProgramFiles]) if (root) dirs.push(join(root, 'Gpg4win', 'bin'), join(root, 'GnuPG', 'bin'));
  }
  for (const dir of dirs) {
    const path = join(dir, name);
    try {
      if (!statSync(path).isFile()) continue;
      if (platform !== 'win32') accessSync(path, constants.X_OK);
      return path;
    } catch {
      // Not here.
    }
  }
  return undefined;
}

export function chooseSecretPrompt(options: PromptEnvironment = {}): SecretPrompt {
  const platform = options.platform ?? process.platform;
  const env = options.env ?? process.env;
  const terminal = options.terminal;
  const timeoutMs = options.timeoutMs;
  const graphical = platform === 'linux' || platform === 'freebsd' ? Boolean(env.DISPLAY || env.WAYLAND_DISPLAY) : true;
  const withTerminal = (program: string): SecretPrompt =>
    pinentryPrompt({ program, env, timeoutMs, ttyName: terminal?.ttyName, ttyType: terminal?.ttyType ?? env.TERM });
  const tried: string[] = [];

  const chosen = env.KEYTAP_PINENTRY;
  if (chosen !== undefined && chosen !== '') {
    const path = isAbsolute(chosen) ? chosen : findProgram(chosen, env, platform);
    if (!path) {
      throw new KeytapError('UNSUPPORTED', `The pinentry ${chosen} (KEYTAP_PINENTRY) was not found.`, { detail: { kind: 'no-secret-prompt', platform, tried: [chosen] } });
    }
    return withTerminal(path);
  }
  for (const name of pinentryNames(platform, terminal !== undefined, graphical)) {
    tried.push(name);
    const path = findProgram(name, env, platform);
    if (!path) continue;
    if (TERMINAL_PINENTRIES.has(name) && !terminal) continue;
    return withTerminal(path);
  }
  for (const name of fallbackNames(platform, graphical)) {
    tried.push(name);
    const path = findProgram(name, env, platform);
    if (path) return fallbackPrompt(name, path, { env, ...(timeoutMs === undefined ? {} : { timeoutMs }) });
  }
  if (options.last) return options.last;
  throw new KeytapError('UNSUPPORTED', 'Nothing on this computer can ask for the secret: no pinentry and no dialog program were found.', {
    detail: { kind: 'no-secret-prompt', platform, tried },
  });
}
