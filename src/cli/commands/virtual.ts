/**
 * `keytap virtual start|stop|touch|status`: a virtual key served to other processes. Starting
 * and stopping one is what plugging in and unplugging mean to the tray and to `keytap code`.
 */
import { spawn } from 'node:child_process';
import { closeSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { Option } from 'commander';
import { runVirtualKeyServer } from '../../emulator/daemon.js';
import type { RunningVirtualKey } from '../../device/discovery/virtual-keys.js';
import { virtualKeyId } from '../../emulator/registry.js';
import { listRunningVirtualKeys } from '../../device/discovery/virtual-keys.js';
import { runtimeDir } from '../../util/runtime-dir.js';
import { openFreshPrivateFile } from '../../util/private-folder.js';
import { sendControl } from '../../device/transport/socket-link.js';
import { parseVpcdAddress } from '../../emulator/vpcd.js';
import type { CodeTyper } from '../../emulator/feitian-applet.js';
import type { TouchPolicy } from '../../emulator/types.js';
import type { KeyDialect } from '../../device/key-dialect.js';
import { KEY_DIALECTS } from '../../device/key-dialect.js';
import { KeytapError } from '../../errors.js';
import type { CliIo } from '../output.js';
import { printJson } from '../output.js';
import { integerIn } from '../parse.js';
import { selfCommand } from '../self.js';

interface StartOptions {
  dialect?: KeyDialect;
  touch: 'auto' | 'manual' | 'never';
  touchDelay?: number;
  touchTimeout?: number;
  demo?: boolean;
  foreground?: boolean;
  /** `--vpcd` alone is true; with a value, HOST:PORT. */
  vpcd?: string | true;
  /** Feitian dialect: where a touch types the code. */
  typeCodes?: 'display' | 'file';
}

const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;

export function registerVirtual(program: Command, io: CliIo): void {
  const virtual = program.command('virtual').description('a software key that other keytap processes can use as if it were plugged in');

  virtual
    .command('start')
    .description('start serving the virtual key kept in FILE (created if missing)')
    .argument('<file>', 'the JSON file that holds the virtual key')
    .addOption(new Option('--dialect <dialect>', 'answer like this kind of key (when FILE is created)').choices(KEY_DIALECTS))
    .addOption(new Option('--touch <policy>', 'auto: touched by itself; manual: waits for "keytap virtual touch"; never: touch times out').choices(['auto', 'manual', 'never']).default('manual'))
    .addOption(new Option('--touch-delay <ms>', 'with --touch auto: how long until the touch').argParser(integerIn(0, 600_000)))
    .addOption(new Option('--touch-timeout <ms>', 'how long the key waits for a touch (default 15000)').argParser(integerIn(100, 600_000)))
    .addOption(new Option('--demo', 'put demo accounts on the key when FILE is created'))
    .addOption(new Option('--foreground', 'serve in this process until interrupted instead of in the background'))
    .addOption(
      new Option('--type-codes <where>', 'a feitian key types its code when touched: file (appended to FILE.typed, the default) or display (XTEST into the focused window of $DISPLAY)').choices(['display', 'file']),
    )
    .addOption(new Option('--vpcd [host:port]', 'also insert the key as a smart card into vsmartcard\'s virtual reader (vpcd), for PC/SC clients (default 127.0.0.1:35963)'))
    .action(async (file: string, options: StartOptions) => {
      const absolute = resolve(file);
      const touch = touchPolicy(options);
      const vpcd = options.vpcd === undefined ? undefined : parseVpcdAddress(options.vpcd === true ? undefined : options.vpcd);
      if (options.foreground) {
        await runVirtualKeyServer({
          file: absolute,
          dialect: options.dialect,
          typer: await codeTyper(options.typeCodes),
          demo: options.demo,
          touch,
          touchTimeoutMs: options.touchTimeout,
          vpcd,
          // Connection progress of the vpcd card (it reconnects on its own) is worth seeing.
          log: vpcd ? (line) => io.err(`keytap virtual key: ${line}`) : undefined,
          onReady: (info) => io.err(`Virtual key ${info.file} is plugged in (${info.dialect}, serial ${info.serial ?? 'none'}); stop it with Ctrl+C.`),
        });
        return;
      }
      const running = await findRunning(absolute);
      if (running) {
        io.err(`The virtual key ${absolute} is already running (pid ${running.pid}).`);
        return;
      }
      const info = await startInBackground(absolute, options);
      io.err(`Virtual key ${info.file} is plugged in (${info.dialect}, serial ${info.serial ?? 'none'}, touch ${touch.mode}).`);
    });

  virtual
    .command('stop')
    .description('stop (unplug) a running virtual key')
    .argument('[file]', 'its file; may be left out when only one runs')
    .action(async (file: string | undefined) => {
      const key = await chooseRunning(file);
      await control(key, { op: 'stop' });
      const deadline = Date.now() + STOP_TIMEOUT_MS;
      while (await findRunning(key.file)) {
        if (Date.now() > deadline) throw new KeytapError('TIMEOUT', `The virtual key ${key.file} did not stop within ${STOP_TIMEOUT_MS / 1000} s (pid ${key.pid}).`);
        await sleep(25);
      }
      io.err(`Virtual key ${key.file} is unplugged.`);
    });

  virtual
    .command('touch')
    .description('touch a running virtual key (for --touch manual)')
    .argument('[file]', 'its file; may be left out when only one runs')
    .action(async (file: string | undefined) => {
      await control(await chooseRunning(file), { op: 'touch' });
    });

  virtual
    .command('status')
    .description('list the running virtual keys')
    .addOption(new Option('--json', 'print a JSON array'))
    .action(async (options: { json?: boolean }) => {
      const keys = await listRunningVirtualKeys();
      if (options.json) {
        printJson(io, keys.map(({ file, dialect, serial, pid, socket, startedAt }) => ({ file, dialect, serial: serial ?? null, pid, socket, startedAt })));
        return;
      }
      if (keys.length === 0) io.out('No virtual key is running.');
      for (const k of keys) io.out(`${k.file}  ${k.dialect}  serial ${k.serial ?? '-'}  pid ${k.pid}`);
    });
}

/**
 * Where a feitian virtual key types: into the focused X window through XTEST, as a real key's
 * keyboard interface would (the emulator may not use the desktop layer, so the typer is made
 * here), or undefined for the emulator's default, the file beside the key's (feitian-applet.ts).
 * The file is the default even with a display: a key that types into whatever window has the
 * focus must be asked for. XTEST is desktop code, in the full bundle only (bin/bundle-choice.cjs
 * sends `virtual start --type-codes display` there), hence loaded only when asked for.
 */
async function codeTyper(where: StartOptions['typeCodes']): Promise<CodeTyper | undefined> {
  if (where !== 'display') return undefined;
  const display = process.env.DISPLAY;
  if (!display) throw new KeytapError('USAGE', '--type-codes display needs an X display, and DISPLAY is not set.');
  const { XtestTypist } = await import('../../desktop/typing/xtest.js');
  const typist = new XtestTypist({ display });
  // The code, then Enter, as the key's keyboard interface sends it.
  return (code) => typist.type(`${code}\n`);
}

function touchPolicy(options: StartOptions): TouchPolicy {
  if (options.touchDelay !== undefined && options.touch !== 'auto') throw new KeytapError('USAGE', '--touch-delay only applies to --touch auto.');
  if (options.touch === 'auto') return { mode: 'auto', delayMs: options.touchDelay ?? 0 };
  return { mode: options.touch };
}

async function findRunning(file: string): Promise<RunningVirtualKey | undefined> {
  const id = virtualKeyId(file);
  return (await listRunningVirtualKeys()).find((k) => k.id === id);
}

async function chooseRunning(file: string | undefined): Promise<RunningVirtualKey> {
  if (file !== undefined) {
    const key = await findRunning(resolve(file));
    if (!key) throw new KeytapError('NO_KEY', `The virtual key ${resolve(file)} is not running.`, { hint: `Start it with: keytap virtual start ${file}` });
    return key;
  }
  const keys = await listRunningVirtualKeys();
  if (keys.length === 1) return keys[0]!;
  if (keys.length === 0) throw new KeytapError('NO_KEY', 'No virtual key is running.', { hint: 'Start one with: keytap virtual start FILE' });
  throw new KeytapError('USAGE', `${keys.length} virtual keys are running: ${keys.map((k) => k.file).join(', ')}.`, { hint: 'Name the file.' });
}

async function control(key: RunningVirtualKey, request: Parameters<typeof sendControl>[1]): Promise<void> {
  const response = await sendControl(key.socket, request);
  if (!response.ok) throw new KeytapError('DEVICE_ERROR', `The virtual key ${key.file} refused "${request.op}": ${response.error}`);
}

/** Spawns `keytap virtual start FILE --foreground` detached, and waits until it has announced itself. */
async function startInBackground(file: string, options: StartOptions): Promise<RunningVirtualKey> {
  const self = selfCommand();
  const args = [...self.args, 'virtual', 'start', file, '--foreground', '--touch', options.touch];
  if (options.dialect) args.push('--dialect', options.dialect);
  if (options.touchDelay !== undefined) args.push('--touch-delay', String(options.touchDelay));
  if (options.touchTimeout !== undefined) args.push('--touch-timeout', String(options.touchTimeout));
  if (options.demo) args.push('--demo');
  if (options.typeCodes !== undefined) args.push('--type-codes', options.typeCodes);
  if (options.vpcd !== undefined) args.push(options.vpcd === true ? '--vpcd' : `--vpcd=${options.vpcd}`);
  // Its messages go to a log file: nobody reads a detached process's terminal.
  const logPath = join(runtimeDir(), `${virtualKeyId(file)}.log`);
  const log = openFreshPrivateFile(logPath);
  let exited: number | null | undefined;
  try {
    const child = spawn(self.command, args, { detached: true, stdio: ['ignore', log, log], windowsHide: true });
    child.once('exit', (code) => {
      exited = code;
    });
    child.unref();
  } finally {
    closeSync(log);
  }
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    const info = await findRunning(file);
    if (info) return info;
    if (exited !== undefined || Date.now() > deadline) {
      let detail = '';
      try {
        detail = readFileSync(logPath, 'utf8').trim();
      } catch {
        // no log: nothing to add
      }
      throw new KeytapError('DEVICE_ERROR', `The virtual key ${file} did not start${exited !== undefined ? ` (exit code ${exited})` : ''}.${detail ? `\n${detail}` : ''}`, {
        hint: 'Run "keytap virtual start FILE --foreground" to see what happens.',
      });
    }
    await sleep(20);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
