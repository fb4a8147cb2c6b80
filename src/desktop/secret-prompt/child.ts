/**
 * Starting and stopping a secret prompt's program (a pinentry, zenity, kdialog, osascript): every
 * prompt child is spawned here, so each gets the same environment and the same end. A dialog left
 * open after its question was withdrawn (cancelled, timed out, the key unplugged, keytap gone)
 * would still take a secret nobody waits for, so it is stopped at once: SIGTERM, then SIGKILL if
 * it is still there a moment later; and SIGTERM when this process exits.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess, StdioOptions } from 'node:child_process';

/**
 * Variables that may hold a secret keytap was given (commander reads --password, --new-password and
 * --pin from them). A prompt program has no use for them, and a child's environment can be read by
 * other processes of the user (/proc/PID/environ) for as long as the dialog stays open.
 */
export const SECRET_VARIABLES: readonly string[] = ['KEYTAP_PASSWORD', 'KEYTAP_NEW_PASSWORD', 'KEYTAP_PIN'];

/** How long a prompt program has between SIGTERM and SIGKILL. */
export const KILL_GRACE_MS = 1_500;

/** `env` without the variables that may hold a secret. */
export function promptEnvironment(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const clean: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(env)) if (!SECRET_VARIABLES.includes(name.toUpperCase())) clean[name] = value;
  return clean;
}

export interface PromptChild<P extends ChildProcess = ChildProcess> {
  readonly process: P;
  /** Still running (no exit seen yet). */
  readonly running: boolean;
  /** SIGTERM now, SIGKILL after KILL_GRACE_MS if it has not exited by then. Idempotent. */
  stop(): void;
}

/** Spawns a prompt program with `promptEnvironment(env)`; it is sent SIGTERM if this process exits first. */
export function spawnPromptChild<P extends ChildProcess = ChildProcess>(program: string, args: readonly string[], stdio: StdioOptions, env?: NodeJS.ProcessEnv): PromptChild<P> {
  const child = spawn(program, args, { stdio, env: promptEnvironment(env ?? process.env), windowsHide: true }) as P;
  let exited = false;
  let stopping = false;
  // At exit only synchronous work runs: a SIGTERM is all there is time for.
  const onProcessExit = (): void => {
    if (!exited) child.kill('SIGTERM');
  };
  process.on('exit', onProcessExit);
  const gone = (): void => {
    exited = true;
    process.off('exit', onProcessExit);
  };
  child.once('exit', gone);
  child.once('error', () => {
    // A program that could not start has no process to wait for.
    if (child.pid === undefined) gone();
  });
  return {
    process: child,
    get running() {
      return !exited;
    },
    stop: () => {
      if (exited || stopping) return;
      stopping = true;
      child.kill('SIGTERM');
      const kill = setTimeout(() => {
        if (!exited) child.kill('SIGKILL');
      }, KILL_GRACE_MS);
      kill.unref();
      child.once('exit', () => clearTimeout(kill));
    },
  };
}
