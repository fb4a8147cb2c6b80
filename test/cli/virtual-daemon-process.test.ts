/**
 * The daemon as its own process, as the CLI spawns it: it announces itself, answers on its socket,
 * stops on a `stop` request or SIGTERM, withdraws, and then exits by itself (nothing left running).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { virtualKeyId } from '../../src/emulator/registry.js';
import { listRunningVirtualKeys } from '../../src/device/discovery/virtual-keys.js';
import type { RunningVirtualKey } from '../../src/device/discovery/virtual-keys.js';
import { SocketHidLink, sendControl } from '../../src/device/transport/socket-link.js';
import { CtapHidApduTransport } from '../../src/device/transport/ctaphid.js';
import { OATH_SELECT } from '../emulator/helpers.js';

const MAIN = join(import.meta.dirname, '..', 'emulator', 'fixtures', 'daemon-main.ts');
let runtime: string;
const savedRuntimeDir = process.env.KEYTAP_RUNTIME_DIR;
const children: ChildProcess[] = [];

beforeAll(async () => {
  runtime = await mkdtemp(join(tmpdir(), 'keytap-daemon-'));
  process.env.KEYTAP_RUNTIME_DIR = runtime;
});
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});
afterAll(async () => {
  if (savedRuntimeDir === undefined) delete process.env.KEYTAP_RUNTIME_DIR;
  else process.env.KEYTAP_RUNTIME_DIR = savedRuntimeDir;
  await rm(runtime, { recursive: true, force: true });
});

function start(file: string, dialect: string): { child: ChildProcess; exited: Promise<{ code: number | null; signal: string | null; output: string }> } {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, file, dialect], {
    env: { ...process.env, KEYTAP_RUNTIME_DIR: runtime },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: string | null; output: string }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal, output }));
  });
  return { child, exited };
}

async function announced(id: string): Promise<RunningVirtualKey> {
  let found: RunningVirtualKey | undefined;
  await expect
    .poll(async () => (found = (await listRunningVirtualKeys()).find((k) => k.id === id)), { timeout: 20_000, interval: 50 })
    .toBeDefined();
  return found!;
}

describe('the virtual key daemon process', () => {
  it('serves, stops on a stop request, withdraws and exits 0 by itself', async () => {
    const file = join(runtime, 'a.json');
    const { child, exited } = start(file, 'nitrokey3');
    const info = await announced(virtualKeyId(file));
    expect(info.pid).toBe(child.pid);
    expect(info.dialect).toBe('nitrokey3');
    const transport = await CtapHidApduTransport.open(await SocketHidLink.connect(info.socket));
    expect((await transport.transmit(OATH_SELECT)).sw).toBe(0x9000);
    expect(await sendControl(info.socket, { op: 'stop' })).toEqual({ ok: true });
    const { code, output } = await exited;
    expect({ code, output }).toEqual({ code: 0, output: expect.stringMatching(/listening on[\s\S]*stopping \(stop request\)/) });
    await transport.close().catch(() => undefined);
    expect(await listRunningVirtualKeys()).toEqual([]);
    expect(existsSync(info.socket)).toBe(false);
  });

  it('stops on SIGTERM and exits 0', async () => {
    const file = join(runtime, 'b.json');
    const { child, exited } = start(file, 'yubikey');
    const info = await announced(virtualKeyId(file));
    const link = await SocketHidLink.connect(info.socket);
    const pending = expect(link.read(20_000)).rejects.toMatchObject({ code: 'KEY_REMOVED' });
    child.kill('SIGTERM');
    const { code, signal, output } = await exited;
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(output).toMatch(/stopping \(SIGTERM\)/);
    await pending;
    expect(await listRunningVirtualKeys()).toEqual([]);
    expect(existsSync(info.socket)).toBe(false);
  });
});
