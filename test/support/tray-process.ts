/**
 * The resident process (`keytap` with no command) as a child process, for the tests of what the
 * CLI does through it: an environment with its own runtime, settings and data folders and no
 * desktop (the tray, toasts and shortcut fail softly; IPC is what is tested).
 */
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { requestIpc } from '../../src/app/ipc.js';
import { spawnKeytap } from './cli.js';

export interface TrayProcess {
  child: ChildProcess;
  /** The log so far. */
  readonly stderr: string;
  exited: Promise<{ code: number | null; stderr: string }>;
}

/** Folders of its own under `dir`, and no display, session bus or tray host. */
export function trayEnv(dir: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    KEYTAP_RUNTIME_DIR: join(dir, 'run'),
    KEYTAP_CONFIG_DIR: join(dir, 'config'),
    KEYTAP_DATA_DIR: join(dir, 'data'),
    XDG_RUNTIME_DIR: join(dir, 'xdg'),
    XDG_CONFIG_HOME: join(dir, 'xdg-config'),
    DISPLAY: '',
    WAYLAND_DISPLAY: '',
    DBUS_SESSION_BUS_ADDRESS: '',
    ...extra,
  };
}

/** Starts the resident process (`keytap`, or `keytap ARGS`); resolves once it says it runs. */
export function startTray(env: NodeJS.ProcessEnv, args: string[] = []): Promise<TrayProcess> {
  return new Promise((resolve, reject) => {
    const child = spawnKeytap(args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    const exited = new Promise<{ code: number | null; stderr: string }>((r) => child.on('close', (code) => r({ code, stderr })));
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (stderr.includes('running (pid')) {
        resolve({
          child,
          get stderr() {
            return stderr;
          },
          exited,
        });
      }
    });
    void exited.then((r) => reject(new Error(`the tray exited ${r.code}: ${r.stderr}`)));
  });
}

/** Asks it to quit and waits until it has. */
export async function quitTray(tray: TrayProcess, env: NodeJS.ProcessEnv): Promise<{ code: number | null; stderr: string }> {
  tray.child.kill('SIGCONT');
  await requestIpc({ op: 'quit' }, { path: join(env.KEYTAP_RUNTIME_DIR!, 'keytap.sock') }).catch(() => undefined);
  return tray.exited;
}
