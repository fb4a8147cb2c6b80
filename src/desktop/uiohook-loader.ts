/**
 * Loads uiohook-napi once for the whole process, for both the global shortcut (hotkey/uiohook.ts)
 * and typing (typing/uiohook.ts). Starting the hook has hung (no reachable X display) and crashed
 * host processes (macOS without the Accessibility permission, uiohook-napi #24), so before this
 * process loads the addon it is started once in a throwaway child with a deadline; if that child
 * hangs, crashes or fails, the load rejects and this process never touches the addon. The outcome
 * is kept: the probe runs once, whoever asks first.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';

export type UiohookKeyTable = Record<string, number>;

export interface UiohookModule {
  /** uIOhook: each caller types the part it uses. */
  hook: unknown;
  keys: UiohookKeyTable;
}

/** Why uiohook is not usable here: the probe failed (`probe`), or the addon did not load (`load`). */
export class UiohookLoadError extends Error {
  constructor(
    message: string,
    readonly stage: 'probe' | 'load',
  ) {
    super(message);
  }
}

let loading: Promise<UiohookModule> | undefined;

/** The memoised load; `probe` replaces the child-process probe (tests). */
export function loadUiohook(env: NodeJS.ProcessEnv, probe?: () => Promise<void>): Promise<UiohookModule> {
  loading ??= (async () => {
    await (probe ?? (() => probeInChild(env)))().catch((error: unknown) => {
      throw new UiohookLoadError(error instanceof Error ? error.message : String(error), 'probe');
    });
    try {
      const module = (await import('uiohook-napi')) as unknown as { uIOhook: unknown; UiohookKey: UiohookKeyTable; default?: { uIOhook: unknown; UiohookKey: UiohookKeyTable } };
      const loaded = module.default ?? module;
      return { hook: loaded.uIOhook, keys: loaded.UiohookKey };
    } catch (error) {
      throw new UiohookLoadError(`uiohook-napi could not be loaded (${error instanceof Error ? error.message : String(error)}).`, 'load');
    }
  })();
  return loading;
}

/** For tests: forget the memoised outcome. */
export function resetUiohookLoader(): void {
  loading = undefined;
}

/**
 * Starts and stops the hook in a child process with a deadline. Skipped in a single-executable
 * build, whose binary does not take `-e`; there only the callers' session checks protect us.
 */
async function probeInChild(env: NodeJS.ProcessEnv): Promise<void> {
  const sea = await import('node:sea').then((m) => m.isSea(), () => false);
  if (sea) return;
  let modulePath: string;
  try {
    const require = createRequire(resolve(process.argv[1] ?? join(process.cwd(), 'keytap.cjs')));
    modulePath = require.resolve('uiohook-napi');
  } catch {
    throw new Error('uiohook-napi is not installed.');
  }
  const script = `const { uIOhook } = require(${JSON.stringify(modulePath)}); uIOhook.start(); setTimeout(() => { uIOhook.stop(); process.exit(0); }, 50);`;
  await new Promise<void>((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['-e', script], { env, stdio: 'ignore', windowsHide: true });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('The keyboard hook did not start (no reachable display, or no permission to watch the keyboard).'));
    }, 4_000);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolvePromise();
      else reject(new Error(`The keyboard hook failed to start (${signal ?? `exit ${code}`}).`));
    });
  });
}
