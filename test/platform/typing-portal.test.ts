// The RemoteDesktop portal typist against a stand-in org.freedesktop.portal.Desktop on a private
// session bus: CreateSession → SelectDevices (keyboard, persist, the restore token the next time) →
// Start, then NotifyKeyboardKeysym press/release per character; a refused dialog; no portal.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Message, sessionBus, Variant } from 'dbus-next';
import type { MessageBus } from 'dbus-next';

import { FirstWorkingTypist } from '../../src/desktop/typing/index.js';
import { PortalTypist } from '../../src/desktop/typing/portal.js';
import { restoreTokenFile } from '../../src/desktop/typing/restore-token.js';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Desktop, missingTool, skipMessage } from './desktop.js';
import { oathtool, runKeytap } from '../support/cli.js';
import { trayEnv } from '../support/tray-process.js';

const PATH = '/org/freedesktop/portal/desktop';
const IFACE = 'org.freedesktop.portal.RemoteDesktop';

class FakeRemoteDesktop {
  bus: MessageBus;
  calls: { member: string; body: unknown[] }[] = [];
  keys: [number, number][] = [];
  /** A number answers Start with it; 'never' leaves the dialog up. */
  startResponse: number | 'never' = 0;
  closedRequests: string[] = [];
  /** Refuse NotifyKeyboardKeysym once this many key events were taken (a revoked session). */
  failAfterKeys = Infinity;
  private sessions = 0;

  constructor(address: string) {
    this.bus = sessionBus({ busAddress: address });
    this.bus.on('error', () => undefined);
    this.bus.addMethodHandler((msg: Message) => this.handle(msg));
  }

  async start(): Promise<void> {
    await this.bus.requestName('org.freedesktop.portal.Desktop', 0);
  }

  private handle(msg: Message): boolean {
    const reply = (signature?: string, body?: unknown[]) => this.bus.send(Message.newMethodReturn(msg, signature, body));
    if (msg.interface === 'org.freedesktop.DBus.Properties' && msg.member === 'Get') {
      if (msg.body[0] !== IFACE) this.bus.send(Message.newError(msg as unknown as string, 'org.freedesktop.DBus.Error.InvalidArgs', 'No such interface'));
      else reply('v', [new Variant('u', 2)]);
      return true;
    }
    if (msg.interface === 'org.freedesktop.portal.Session' && msg.member === 'Close') {
      reply();
      return true;
    }
    if (msg.interface === 'org.freedesktop.portal.Request' && msg.member === 'Close') {
      this.closedRequests.push(msg.path);
      reply();
      return true;
    }
    if (msg.interface !== IFACE) return false;
    this.calls.push({ member: msg.member, body: msg.body });
    if (msg.member === 'NotifyKeyboardKeysym') {
      if (this.keys.length >= this.failAfterKeys) {
        this.bus.send(Message.newError(msg as unknown as string, 'org.freedesktop.DBus.Error.AccessDenied', 'Session revoked'));
        return true;
      }
      this.keys.push([Number(msg.body[2]), Number(msg.body[3])]);
      reply();
      return true;
    }
    const options = msg.body[msg.body.length - 1] as Record<string, Variant>;
    const token = String(options.handle_token?.value);
    const request = `${PATH}/request/${msg.sender.replace(/^:/, '').replace(/\./g, '_')}/${token}`;
    reply('o', [request]);
    const respond = (code: number, results: Record<string, Variant>) =>
      setTimeout(() => this.bus.send(Message.newSignal(request, 'org.freedesktop.portal.Request', 'Response', 'ua{sv}', [code, results])), 10);
    if (msg.member === 'CreateSession') {
      respond(0, { session_handle: new Variant('s', `${PATH}/session/x/${++this.sessions}`) });
    } else if (msg.member === 'SelectDevices') {
      respond(0, {});
    } else if (msg.member === 'Start') {
      if (this.startResponse === 'never') return true;
      respond(this.startResponse, this.startResponse === 0 ? { devices: new Variant('u', 1), restore_token: new Variant('s', `token-${this.sessions}`) } : {});
    }
    return true;
  }

  stop(): void {
    this.bus.disconnect();
  }
}

const missing = missingTool('dbus-daemon');

describe.skipIf(missing !== undefined)(`org.freedesktop.portal.RemoteDesktop ${skipMessage(missing, 'dbus')}`, () => {
  const desktop = new Desktop();
  let portal: FakeRemoteDesktop;
  let address: string;

  beforeAll(async () => {
    desktop.startBus();
    address = desktop.env.DBUS_SESSION_BUS_ADDRESS!;
    portal = new FakeRemoteDesktop(address);
    await portal.start();
  });
  afterAll(async () => {
    portal?.stop();
    await desktop.stop();
  });

  it('asks for the keyboard once and sends each digit as a keysym press and release', async () => {
    portal.calls = [];
    portal.keys = [];
    const typist = new PortalTypist({ busAddress: address, releaseWaitMs: 0, keyDelayMs: 0 });
    await typist.type('0429');
    expect(portal.calls.map((c) => c.member)).toEqual(['CreateSession', 'SelectDevices', 'Start', ...Array(8).fill('NotifyKeyboardKeysym')]);
    const select = portal.calls[1]!.body[1] as Record<string, Variant>;
    expect(select.types?.value).toBe(1);
    expect(select.persist_mode?.value).toBe(2);
    expect(select.restore_token).toBeUndefined();
    // XK_0 = 0x30 … XK_9 = 0x39.
    expect(portal.keys).toEqual([[0x30, 1], [0x30, 0], [0x34, 1], [0x34, 0], [0x32, 1], [0x32, 0], [0x39, 1], [0x39, 0]]);

    // The session is kept: the next code goes straight to the keys.
    await typist.type('7');
    expect(portal.calls.slice(11).map((c) => c.member)).toEqual(['NotifyKeyboardKeysym', 'NotifyKeyboardKeysym']);
    await typist.close();

    // A new session brings the restore token the desktop gave, so it need not ask again.
    portal.calls = [];
    await typist.type('1');
    expect((portal.calls[1]!.body[1] as Record<string, Variant>).restore_token?.value).toBe('token-1');
    await typist.close();
  });

  it('the restore token outlives the process: kept in a 0600 file, sent by the next keytap', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'keytap-token-'));
    const path = join(folder, 'data', 'remote-desktop-token');
    try {
      const first = new PortalTypist({ busAddress: address, releaseWaitMs: 0, keyDelayMs: 0, restoreToken: restoreTokenFile(path) });
      await first.type('1');
      await first.close();
      await until(() => existsSync(path));
      const saved = readFileSync(path, 'utf8').trim();
      expect(saved).toMatch(/^token-\d+$/u);
      expect(statSync(path).mode & 0o777).toBe(0o600);

      // A new process: a new store on the same file.
      portal.calls = [];
      const nextStore = restoreTokenFile(path);
      const next = new PortalTypist({ busAddress: address, releaseWaitMs: 0, keyDelayMs: 0, restoreToken: nextStore });
      await next.type('2');
      await next.close();
      // The desktop's new token is being saved; the folder is removed only once that is done.
      await nextStore.saved();
      expect((portal.calls[1]!.body[1] as Record<string, Variant>).restore_token?.value).toBe(saved);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });

  it('keytap code --type without a tray sends the restore token the tray saved, and saves the one the desktop gives back', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'keytap-token-cli-'));
    try {
      const env = trayEnv(folder, { WAYLAND_DISPLAY: 'wayland-0', DBUS_SESSION_BUS_ADDRESS: address, KEYTAP_NO_INSTANCE: '1' });
      const key = join(folder, 'key.json');
      const secret = '3132333435363738393031323334353637383930';
      const added = await runKeytap(['add', '--virtual', key, '--issuer', 'VPN', '--account', 'alice', '--type', 'hotp', '--secret', `hex:${secret}`], { env });
      expect(added.code, added.stderr).toBe(0);
      // What the tray saved when the desktop last said yes.
      mkdirSync(join(folder, 'data'), { recursive: true });
      const tokenFile = join(folder, 'data', 'remote-desktop-token');
      writeFileSync(tokenFile, 'token-from-the-tray\n', { mode: 0o600 });
      portal.calls = [];
      portal.keys = [];
      const typed = await runKeytap(['code', '--type', 'VPN', '--virtual', key], { env });
      expect([typed.code, typed.stdout, typed.stderr]).toEqual([0, '', '']);
      expect((portal.calls.find((c) => c.member === 'SelectDevices')!.body[1] as Record<string, Variant>).restore_token?.value).toBe('token-from-the-tray');
      const expected = await oathtool({ hexSecret: secret, type: 'HOTP', counter: 0 });
      expect(portal.keys.filter(([, down]) => down === 1).map(([keysym]) => String.fromCharCode(keysym)).join('')).toBe(expected);
      // The token the desktop gave back replaces it (written before keytap exited), still 0600.
      expect(readFileSync(tokenFile, 'utf8')).toMatch(/^token-\d+\n$/u);
      expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });

  it('a dialog the user refused is PERMISSION_DENIED, and nothing is typed', async () => {
    portal.startResponse = 1;
    portal.keys = [];
    try {
      await expect(new PortalTypist({ busAddress: address, releaseWaitMs: 0 }).type('12')).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
      expect(portal.keys).toEqual([]);
    } finally {
      portal.startResponse = 0;
    }
  });

  it('a portal failing part-way through the code is NOT_DELIVERED, and the next backend types nothing', async () => {
    portal.keys = [];
    portal.failAfterKeys = 3;
    const typedByNext: string[] = [];
    const next = { name: 'wtype', type: (text: string) => Promise.resolve(void typedByNext.push(text)) };
    try {
      const chain = new FirstWorkingTypist([new PortalTypist({ busAddress: address, releaseWaitMs: 0, keyDelayMs: 0 }), next]);
      await expect(chain.type('0429')).rejects.toMatchObject({ code: 'NOT_DELIVERED', message: expect.stringMatching(/part-way/) });
      expect(portal.keys).toEqual([[0x30, 1], [0x30, 0], [0x34, 1]]);
      expect(typedByNext).toEqual([]);
    } finally {
      portal.failAfterKeys = Infinity;
    }
  });

  it('a portal refusing the first key passes the turn to the next backend', async () => {
    portal.keys = [];
    portal.failAfterKeys = 0;
    const typedByNext: string[] = [];
    const next = { name: 'wtype', type: (text: string) => Promise.resolve(void typedByNext.push(text)) };
    try {
      await new FirstWorkingTypist([new PortalTypist({ busAddress: address, releaseWaitMs: 0, keyDelayMs: 0 }), next]).type('0429');
      expect(typedByNext).toEqual(['0429']);
    } finally {
      portal.failAfterKeys = Infinity;
    }
  });

  it('a cancel while the desktop\'s dialog is up rejects CANCELLED at once and closes the Request', async () => {
    portal.startResponse = 'never';
    portal.closedRequests = [];
    portal.keys = [];
    const abort = new AbortController();
    try {
      const typing = new PortalTypist({ busAddress: address, releaseWaitMs: 0 }).type('12', abort.signal);
      await until(() => portal.calls.at(-1)?.member === 'Start');
      const started = Date.now();
      abort.abort();
      await expect(typing).rejects.toMatchObject({ code: 'CANCELLED' });
      expect(Date.now() - started).toBeLessThan(1_000);
      await until(() => portal.closedRequests.length === 1);
      expect(portal.closedRequests[0]).toMatch(/\/request\/.+\/keytap_/u);
      expect(portal.keys).toEqual([]);
    } finally {
      portal.startResponse = 0;
    }
  });

  it('a dialog that never answers times out UNSUPPORTED and its Request is closed', async () => {
    portal.startResponse = 'never';
    portal.closedRequests = [];
    try {
      await expect(new PortalTypist({ busAddress: address, releaseWaitMs: 0, responseTimeoutMs: 300 }).type('12')).rejects.toMatchObject({ code: 'UNSUPPORTED', message: expect.stringMatching(/did not answer Start/u) });
      await until(() => portal.closedRequests.length === 1);
    } finally {
      portal.startResponse = 0;
    }
  });

  it('without a portal on the bus: UNSUPPORTED, saying so', async () => {
    const empty = new Desktop();
    empty.startBus();
    try {
      await expect(new PortalTypist({ busAddress: empty.env.DBUS_SESSION_BUS_ADDRESS }).type('1')).rejects.toMatchObject({ code: 'UNSUPPORTED', message: expect.stringMatching(/No XDG desktop portal/) });
    } finally {
      await empty.stop();
    }
  });
});

async function until(condition: () => boolean, ms = 3_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
