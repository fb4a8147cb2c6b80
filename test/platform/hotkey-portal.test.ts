// The GlobalShortcuts portal backend against a fake org.freedesktop.portal.Desktop on a private
// session bus: the Request/Response handshake, BindShortcuts' arguments, Activated → onPress,
// Session.Close on unregister, a cancelled dialog, and a portal without the interface.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Message, sessionBus, Variant } from 'dbus-next';
import type { MessageBus } from 'dbus-next';

import { PortalShortcut, SHORTCUT_ID } from '../../src/desktop/hotkey/portal.js';
import { Desktop, missingTool, skipMessage } from './desktop.js';

const PATH = '/org/freedesktop/portal/desktop';
const IFACE = 'org.freedesktop.portal.GlobalShortcuts';

interface FakePortalOptions {
  hasInterface: boolean;
  bindResponse: number;
}

class FakePortal {
  bus: MessageBus;
  calls: { member: string; body: unknown[] }[] = [];
  sessions: string[] = [];
  closed: string[] = [];
  options: FakePortalOptions = { hasInterface: true, bindResponse: 0 };

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
      if (!this.options.hasInterface || msg.body[0] !== IFACE) {
        // dbus-next's typings declare newError's first parameter as a string; it takes the call.
        this.bus.send(Message.newError(msg as unknown as string, 'org.freedesktop.DBus.Error.InvalidArgs', 'No such interface'));
      } else {
        reply('v', [new Variant('u', 1)]);
      }
      return true;
    }
    if (msg.interface === 'org.freedesktop.portal.Session' && msg.member === 'Close') {
      this.closed.push(msg.path);
      reply();
      return true;
    }
    if (msg.interface !== IFACE) return false;
    this.calls.push({ member: msg.member, body: msg.body });
    const options = msg.body[msg.body.length - 1] as Record<string, Variant>;
    const token = String(options.handle_token?.value);
    const request = `${PATH}/request/${msg.sender.replace(/^:/, '').replace(/\./g, '_')}/${token}`;
    reply('o', [request]);
    const respond = (code: number, results: Record<string, Variant>) =>
      setTimeout(() => this.bus.send(Message.newSignal(request, 'org.freedesktop.portal.Request', 'Response', 'ua{sv}', [code, results])), 20);
    if (msg.member === 'CreateSession') {
      const session = `${PATH}/session/${msg.sender.replace(/^:/, '').replace(/\./g, '_')}/${String(options.session_handle_token?.value)}`;
      this.sessions.push(session);
      respond(0, { session_handle: new Variant('s', session) });
    } else if (msg.member === 'BindShortcuts') {
      const shortcuts = (msg.body[1] as [string, Record<string, Variant>][]).map(([id]) => [id, { trigger_description: new Variant('s', 'Ctrl+Alt+K') }]);
      respond(this.options.bindResponse, this.options.bindResponse === 0 ? { shortcuts: new Variant('a(sa{sv})', shortcuts) } : {});
    }
    return true;
  }

  activate(session: string, id = SHORTCUT_ID): void {
    this.bus.send(Message.newSignal(PATH, IFACE, 'Activated', 'osta{sv}', [session, id, BigInt(Date.now()), {}]));
  }

  stop(): void {
    this.bus.disconnect();
  }
}

const missing = missingTool('dbus-daemon');

describe.skipIf(missing !== undefined)(`org.freedesktop.portal.GlobalShortcuts ${skipMessage(missing, 'dbus')}`, () => {
  const desktop = new Desktop();
  let portal: FakePortal;
  let address: string;

  beforeAll(async () => {
    desktop.startBus();
    address = desktop.env.DBUS_SESSION_BUS_ADDRESS!;
    portal = new FakePortal(address);
    await portal.start();
  });
  afterAll(async () => {
    portal?.stop();
    await desktop.stop();
  });

  it('CreateSession → BindShortcuts with the XDG trigger; Activated calls onPress; unregister closes the session', async () => {
    portal.calls = [];
    const shortcut = new PortalShortcut({ busAddress: address });
    let presses = 0;
    await shortcut.register('Ctrl+Alt+K', () => presses++);
    expect(portal.calls.map((call) => call.member)).toEqual(['CreateSession', 'BindShortcuts']);
    const bind = portal.calls[1]!.body;
    const session = portal.sessions.at(-1)!;
    expect(bind[0]).toBe(session);
    const [id, options] = (bind[1] as [string, Record<string, Variant>][])[0]!;
    expect(id).toBe(SHORTCUT_ID);
    expect(options.preferred_trigger!.value).toBe('CTRL+ALT+k');
    expect(String(options.description!.value)).toMatch(/keytap/);

    portal.activate(session);
    portal.activate(session, 'someone-else');
    portal.activate(`${session}x`);
    await desktop.waitFor(() => presses > 0, 3_000);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(presses).toBe(1);

    await shortcut.unregister();
    expect(portal.closed).toContain(session);
    portal.activate(session);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(presses).toBe(1);
  });

  it('a second shortcut goes in the same BindShortcuts call, with its own id; each Activated calls its own handler', async () => {
    portal.calls = [];
    portal.options = { hasInterface: true, bindResponse: 0 };
    const shortcut = new PortalShortcut({ busAddress: address });
    const pressed: string[] = [];
    await shortcut.register('Ctrl+Alt+K', () => pressed.push('copy'), [{ id: 'keytap-type', accelerator: 'Ctrl+Alt+Shift+K', description: 'keytap: type a code', onPress: () => pressed.push('type') }]);
    expect(portal.calls.map((call) => call.member)).toEqual(['CreateSession', 'BindShortcuts']);
    const shortcuts = portal.calls[1]!.body[1] as [string, Record<string, Variant>][];
    expect(shortcuts.map(([id, options]) => [id, options.preferred_trigger!.value as unknown])).toEqual([
      [SHORTCUT_ID, 'CTRL+ALT+k'],
      ['keytap-type', 'CTRL+ALT+SHIFT+k'],
    ]);
    expect(String(shortcuts[1]![1].description!.value)).toBe('keytap: type a code (Ctrl+Alt+Shift+K)');
    const session = portal.sessions.at(-1)!;
    portal.activate(session, 'keytap-type');
    portal.activate(session);
    await desktop.waitFor(() => pressed.length === 2, 3_000);
    expect(pressed).toEqual(['type', 'copy']);
    await shortcut.unregister();
  });

  it('a dialog the user cancels rejects CANCELLED with the `keytap code` hint', async () => {
    portal.options = { hasInterface: true, bindResponse: 1 };
    const shortcut = new PortalShortcut({ busAddress: address });
    await expect(shortcut.register('Ctrl+Alt+K', () => undefined)).rejects.toMatchObject({ code: 'CANCELLED', hint: expect.stringMatching(/keytap code/) });
    portal.options = { hasInterface: true, bindResponse: 0 };
  });

  it('a portal without GlobalShortcuts rejects UNSUPPORTED with the hint', async () => {
    portal.options = { hasInterface: false, bindResponse: 0 };
    const shortcut = new PortalShortcut({ busAddress: address });
    await expect(shortcut.register('Ctrl+Alt+K', () => undefined)).rejects.toMatchObject({
      code: 'UNSUPPORTED',
      message: expect.stringMatching(/no GlobalShortcuts interface/),
      hint: expect.stringMatching(/keytap code/),
    });
    portal.options = { hasInterface: true, bindResponse: 0 };
  });

  it('no portal on the bus at all, or no bus: UNSUPPORTED', async () => {
    const other = new Desktop();
    other.startBus();
    try {
      const shortcut = new PortalShortcut({ busAddress: other.env.DBUS_SESSION_BUS_ADDRESS });
      await expect(shortcut.register('Ctrl+Alt+K', () => undefined)).rejects.toMatchObject({ code: 'UNSUPPORTED', message: expect.stringMatching(/No XDG desktop portal/) });
    } finally {
      await other.stop();
    }
    const nobus = new PortalShortcut({ busAddress: `unix:path=${desktop.dir}/none` });
    await expect(nobus.register('Ctrl+Alt+K', () => undefined)).rejects.toMatchObject({ code: 'UNSUPPORTED' });
  });
});
