/**
 * The session bus without usocket (its native build needs a compiler, so keytap does not build it):
 * a real dbus-daemon listening on a Linux abstract socket, and on a path that needs %xx escapes,
 * reached through util/session-bus.ts while any require('usocket') fails, as it does where npm ci
 * did not build it. dbus-next itself, handed the same abstract address, cannot connect then: the
 * test's block is real.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sessionBus } from 'dbus-next';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectSessionBus, escapeAddressValue } from '../../src/util/session-bus.js';
import { startPrivateBus } from '../support/private-bus.js';
import type { PrivateBus } from '../support/private-bus.js';
import { missingTool } from './desktop.js';

const missing = process.platform === 'linux' ? missingTool('dbus-daemon') : 'Linux (abstract sockets)';
if (missing) console.warn(`session bus tests skipped: ${missing} missing`);

/** Makes every require('usocket') fail, and counts the attempts. */
function blockUsocket(): { attempts: () => number; restore: () => void } {
  const Module = createRequire(import.meta.url)('node:module') as { _load: (request: string, ...rest: unknown[]) => unknown };
  const original = Module._load;
  let attempts = 0;
  Module._load = function load(this: unknown, request: string, ...rest: unknown[]) {
    if (request === 'usocket') {
      attempts++;
      throw Object.assign(new Error("Cannot find module 'usocket' (blocked by the test: not built)"), { code: 'MODULE_NOT_FOUND' });
    }
    return original.call(this, request, ...rest);
  };
  return { attempts: () => attempts, restore: () => (Module._load = original) };
}

describe.skipIf(missing !== undefined)('the session bus without usocket', () => {
  let dir = '';
  const daemons: PrivateBus[] = [];
  let block: ReturnType<typeof blockUsocket>;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'keytap-bus-'));
    block = blockUsocket();
  });

  afterAll(() => {
    block.restore();
    for (const daemon of daemons) daemon.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('connects to a dbus-daemon on an abstract socket, with Node\'s own net', async () => {
    const daemon = startPrivateBus(`unix:abstract=keytap-test-${process.pid}-${Date.now()}`);
    daemons.push(daemon);
    expect(daemon.address).toMatch(/^unix:abstract=keytap-test-[^,]+,guid=[0-9a-f]{32}$/u);

    const bus = await connectSessionBus(daemon.address, { timeoutMs: 5_000 });
    try {
      expect(bus.uniqueName).toMatch(/^:1\.\d+$/u);
      const reply = await bus.callDaemon('GetNameOwner', 's', ['org.freedesktop.DBus']);
      expect(reply.body).toEqual(['org.freedesktop.DBus']);
    } finally {
      bus.close();
    }
    expect(block.attempts()).toBe(0);

    // dbus-next alone needs usocket for this address.
    expect(() => sessionBus({ busAddress: daemon.address })).toThrow(/usocket/u);
    expect(block.attempts()).toBe(1);
  });

  it('onClose returns a remover: a removed listener is not called at close, the others are', async () => {
    const daemon = startPrivateBus(`unix:abstract=keytap-test-${process.pid}-${Date.now()}-close`);
    daemons.push(daemon);
    const bus = await connectSessionBus(daemon.address, { timeoutMs: 5_000 });
    const heard: string[] = [];
    const off = bus.onClose(() => heard.push('removed'));
    bus.onClose(() => heard.push('kept'));
    off();
    bus.close();
    expect(heard).toEqual(['kept']);
  });

  it('connects to a socket path with escaped characters, after an entry of the list that does not answer', async () => {
    const socketDir = mkdtempSync(join(dir, 'sock é,a=b;c:d '));
    const daemon = startPrivateBus(`unix:path=${escapeAddressValue(join(socketDir, 'bus'))}`);
    daemons.push(daemon);
    // dbus-daemon escapes the space, the é and , = ; : in the address it prints.
    expect(daemon.address).toContain('%20');
    expect(daemon.address).toMatch(/%c3%a9/iu);
    expect(daemon.address).toMatch(/%2c.*%3d.*%3b.*%3a/iu);
    const before = block.attempts();
    const bus = await connectSessionBus(`unix:path=${join(dir, 'no-such-bus')};${daemon.address}`, { timeoutMs: 5_000 });
    try {
      expect((await bus.callDaemon('GetId', '', [])).body[0]).toMatch(/^[0-9a-f]{32}$/u);
    } finally {
      bus.close();
    }
    expect(block.attempts()).toBe(before);
  });

  it('says why when no entry of the list can be reached', async () => {
    await expect(connectSessionBus(`unix:path=${join(dir, 'no-such-bus')};unix:tmpdir=/tmp`, { timeoutMs: 2_000 })).rejects.toThrow(/session bus at .*no-such-bus|not an address a client can connect to/u);
  });
});
