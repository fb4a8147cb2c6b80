/**
 * A private pcscd for the PC/SC tests: its own client socket, its own reader configuration (vpcd
 * on ports nobody else uses), never the system's pcscd.
 *
 * - pcsc-lite 1.9.9's libpcsclite (keytap's smartcard binding, pyscard under ykman) honours
 *   PCSCLITE_CSOCK_NAME, but pcscd itself does not read it: it always creates
 *   /run/pcscd/pcscd.comm — unless systemd hands it a listening socket. So the listening socket is
 *   made here and passed the systemd way (LISTEN_FDS=1, LISTEN_PID, fd 3): a few lines of Python
 *   bind it and exec pcscd in the same process, so LISTEN_PID is pcscd's pid.
 * - `pcscd -f`, not socket-activated by the system and without --auto-exit (docs/protocols.md §5.3:
 *   with --auto-exit pcscd quits after 60 s idle and vpcd's listener goes with it).
 * - `-c DIR`: only our vpcd entry is loaded, on a free port pair (vpcd opens port and port + 1).
 * - `quickAck`: pcscd, and so vpcd's TCP listener, in a network namespace of its own whose loopback
 *   route has `quickack 1`. Debian 12's vpcd (virtualsmartcard 0.8) sends each message's 2-byte
 *   length and its payload in two send()s (upstream sends them at once since 0.9, commit 76e2679
 *   "send length + data at the same time"); Nagle holds the payload until the card's kernel ACKs the
 *   length, and a delayed ACK takes 40 ms. So every vpcd message costs ~43 ms, whichever PC/SC
 *   client asked, unless the card's side ACKs at once. The card must then run in that namespace too
 *   (`inNamespace`); PC/SC clients reach pcscd through its Unix socket, which no network namespace
 *   hides.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, join } from 'node:path';

export const VPCD_DRIVER = '/usr/lib/pcsc/drivers/serial/libifdvpcd.so';
export const PYTHON = '/usr/bin/python3';
/** pcsc-lite names readers "<FRIENDLYNAME> <reader index> <slot>". */
export const VPCD_READER = 'Virtual PCD 00 00';

export function findExecutable(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin', '/usr/bin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Why the PC/SC end-to-end tests cannot run here, or undefined when they can. */
export function pcscMissing(): string | undefined {
  const missing: string[] = [];
  if (!findExecutable('pcscd')) missing.push('pcscd (apt-get install pcscd)');
  try {
    accessSync(VPCD_DRIVER, constants.R_OK);
  } catch {
    missing.push('vpcd (apt-get install vsmartcard-vpcd)');
  }
  try {
    accessSync(PYTHON, constants.X_OK);
  } catch {
    missing.push('python3');
  }
  return missing.length > 0 ? `PC/SC tests skipped: ${missing.join(', ')} not installed` : undefined;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    // vpcd binds INADDR_ANY, so test exactly that.
    server.listen(port, '0.0.0.0', () => server.close(() => resolve(true)));
  });
}

async function freePortPair(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 41_000 + Math.floor(Math.random() * 10_000) * 2;
    if ((await portFree(port)) && (await portFree(port + 1))) return port;
  }
  throw new Error('no free port pair for vpcd');
}

export interface PrivatePcscd {
  pid: number;
  /** The command line that runs `command` in pcscd's network namespace (as is without `quickAck`). */
  inNamespace(command: string, args: string[]): [string, string[]];
  /** Give this as PCSCLITE_CSOCK_NAME to every PC/SC client. */
  socket: string;
  /** vpcd's first slot ("Virtual PCD 00 00"). */
  vpcdPort: number;
  output(): string;
  stop(): Promise<void>;
}

const ACTIVATE = `
import os, socket, sys
path, conf = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
s.listen(64)
os.dup2(s.fileno(), 3)
os.set_inheritable(3, True)
os.environ['LISTEN_FDS'] = '1'
os.environ['LISTEN_PID'] = str(os.getpid())
os.execvp('pcscd', ['pcscd', '--foreground', '--info', '--config', conf])
`;

/** Can this machine make a network namespace with a quickack loopback (root, unshare, ip)? */
export function quickAckAvailable(): boolean {
  if (!findExecutable('unshare') || !findExecutable('nsenter') || !findExecutable('ip')) return false;
  return spawnSync('unshare', ['-n', 'sh', '-c', `${LOOPBACK_QUICKACK}`], { stdio: 'ignore' }).status === 0;
}

const LOOPBACK_QUICKACK = [
  'ip link set lo up',
  ...['127.0.0.1', '127.0.0.0/8'].map((dst) => `ip route change local ${dst} dev lo table local proto kernel scope host src 127.0.0.1 quickack 1`),
].join(' && ');

export async function startPcscd(dir: string, options: { quickAck?: boolean } = {}): Promise<PrivatePcscd> {
  const vpcdPort = await freePortPair();
  const conf = join(dir, 'reader.conf.d');
  mkdirSync(conf, { recursive: true });
  const channel = `0x${vpcdPort.toString(16).toUpperCase()}`;
  writeFileSync(
    join(conf, 'vpcd'),
    `FRIENDLYNAME "Virtual PCD"\nDEVICENAME   /dev/null:${channel}\nLIBPATH      ${VPCD_DRIVER}\nCHANNELID    ${channel}\n`,
  );
  const socket = join(dir, 'pcscd.comm');
  // unshare and sh exec (no fork): the process spawned here is pcscd itself, as LISTEN_PID says.
  const [command, args] = options.quickAck
    ? ['unshare', ['-n', 'sh', '-c', `${LOOPBACK_QUICKACK} && exec "$0" "$@"`, PYTHON, '-c', ACTIVATE, socket, conf]]
    : [PYTHON, ['-c', ACTIVATE, socket, conf]];
  const child: ChildProcess = spawn(command, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PATH: `${process.env.PATH ?? ''}${delimiter}/usr/sbin${delimiter}/sbin` },
  });
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`pcscd did not get ready:\n${output}`)), 15_000);
    const onData = (data: Buffer): void => {
      output += data.toString();
      if (output.includes('daemon ready')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`pcscd exited (${code}) before it was ready:\n${output}`));
    });
  });
  const pid = child.pid!;
  return {
    pid,
    inNamespace: (cmd, cmdArgs) => (options.quickAck ? ['nsenter', [`--net=/proc/${pid}/ns/net`, cmd, ...cmdArgs]] : [cmd, cmdArgs]),
    socket,
    vpcdPort,
    output: () => output,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        return;
      }
      const killer = setTimeout(() => {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }, 5_000);
      await exited;
      clearTimeout(killer);
    },
  };
}
