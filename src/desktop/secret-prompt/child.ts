/**
 * Starting a secret prompt's program (a pinentry, zenity, kdialog, osascript): every prompt child
 * is spawned here, so each gets the same environment rules.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess, StdioOptions } from 'node:child_process';

/**
 * Variables that may hold a secret keytap was given (commander reads --password, --new-password and
 * --pin from them). A prompt program has no use for them, and a child's environment can be read by
 * other processes of the user (/proc/PID/environ) for as long as the dialog stays open.
 */
export const SECRET_VARIABLES: readonly string[] = ['KEYTAP_PASSWORD', 'KEYTAP_NEW_PASSWORD', 'KEYTAP_PIN'];

/** `env` without the variables that may hold a secret. */
export function promptEnvironment(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const clean: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(env)) if (!SECRET_VARIABLES.includes(name.toUpperCase())) clean[name] = value;
  return clean;
}

/** Spawns a prompt program with `promptEnvironment(env)`. */
export function spawnPromptChild(program: string, args: readonly string[], stdio: StdioOptions, env?: NodeJS.ProcessEnv): ChildProcess {
  return spawn(program, args, { stdio, env: promptEnvironment(env ?? process.env), windowsHide: true });
}
