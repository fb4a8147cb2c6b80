/**
 * Typing on Wayland through the XDG RemoteDesktop portal (`org.freedesktop.portal.RemoteDesktop`),
 * the sanctioned way for a program to send keys there: GNOME (mutter) and KDE Plasma implement it;
 * xdg-desktop-portal-wlr does not (wtype is the way there, command.ts).
 *
 * Flow: CreateSession → SelectDevices (keyboard; persist_mode 2 with the restore token of an
 * earlier session, so the desktop asks the user once, not at every code; the tray and `keytap code
 * --type` keep the token in one file across restarts, cli/typist.ts and restore-token.ts) → Start (the desktop's
 * dialog) → NotifyKeyboardKeysym(session, {}, keysym, 1 pressed / 0 released) per character.
 * Keysyms, not keycodes: the compositor finds the key in the user's layout. The session is kept
 * for the next code until the portal closes it.
 *
 * The shortcut's modifiers: the portal's virtual keyboard is merged with the real one by the
 * compositor, and the portal tells nothing about which keys are down, so we wait a moment for the
 * fingers to leave the keys before the first digit (the first time, the dialog gives them longer).
 */
import { KeytapError, isKeytapError } from '../../errors.js';
import { delay } from '../../util/abortable.js';
import { connectSessionBus, dbusErrorName, describeError, sessionBusAddress, Variant } from '../../util/session-bus.js';
import type { SessionBus } from '../../util/session-bus.js';
import type { Typist } from '../platform.js';
import { PORTAL, PORTAL_PATH, portalRequest, randomToken } from '../portal-request.js';
import { keysymOf } from './keymap.js';

const REMOTE_DESKTOP = 'org.freedesktop.portal.RemoteDesktop';
const KEYBOARD = 1;
const PERSIST_UNTIL_REVOKED = 2;
const HINT = 'On GNOME and KDE, allow keytap to control the keyboard when the desktop asks; elsewhere install wtype (sway, Hyprland). Or paste the code.';

export interface PortalTypistOptions {
  busAddress?: string | undefined;
  /** How long the user may take in the desktop's dialog. */
  responseTimeoutMs?: number | undefined;
  releaseWaitMs?: number | undefined;
  keyDelayMs?: number | undefined;
  /** The token of the last session the user allowed, and where a new one goes (kept in memory by default). */
  restoreToken?: { get(): string | undefined; set(token: string): void } | undefined;
}

export class PortalTypist implements Typist {
  readonly name = 'RemoteDesktop portal';
  private session: SessionBus | undefined;
  private sessionHandle: string | undefined;
  private token: string | undefined;

  constructor(private readonly options: PortalTypistOptions = {}) {}

  async type(text: string, signal?: AbortSignal): Promise<void> {
    const keysyms = [...text].map((char) => {
      const keysym = keysymOf(char);
      if (keysym === undefined) throw new KeytapError('UNSUPPORTED', 'This code has a character keytap cannot type.', { hint: 'Paste the code instead.' });
      return keysym;
    });
    const { session, handle } = await this.ensureSession(signal);
    let sent = 0;
    try {
      await delay(this.options.releaseWaitMs ?? 400, signal);
      for (const [index, keysym] of keysyms.entries()) {
        if (index > 0) await delay(this.options.keyDelayMs ?? 12, signal);
        for (const state of [1, 0]) {
          await session.call({ destination: PORTAL, path: PORTAL_PATH, interface: REMOTE_DESKTOP, member: 'NotifyKeyboardKeysym', signature: 'oa{sv}iu', body: [handle, {}, keysym, state] });
          sent += 1;
        }
      }
    } catch (error) {
      // The session was revoked or the portal restarted: start afresh next time.
      if (!(error instanceof KeytapError)) await this.close();
      // Part of the code may be in the window already: another backend typing it all again would
      // leave a wrong code there, so only a refusal before the first key passes the turn.
      if (sent > 0) {
        if (isKeytapError(error, 'CANCELLED')) throw error;
        const why = error instanceof KeytapError ? error.message : `The RemoteDesktop portal refused a key (${describeError(error)}).`;
        throw new KeytapError('NOT_DELIVERED', `Typing stopped part-way through the code. ${why}`, { hint: 'Clear what was typed and paste the code instead.' });
      }
      if (error instanceof KeytapError) throw error;
      throw unsupported(`The RemoteDesktop portal refused a key (${describeError(error)}).`);
    }
  }

  async close(): Promise<void> {
    const session = this.session;
    const handle = this.sessionHandle;
    this.session = undefined;
    this.sessionHandle = undefined;
    if (!session) return;
    if (handle && !session.closed) {
      await session.call({ destination: PORTAL, path: handle, interface: 'org.freedesktop.portal.Session', member: 'Close' }, 2_000).catch(() => undefined);
    }
    session.close();
  }

  private async ensureSession(signal: AbortSignal | undefined): Promise<{ session: SessionBus; handle: string }> {
    if (this.session && this.sessionHandle && !this.session.closed) return { session: this.session, handle: this.sessionHandle };
    let session: SessionBus;
    try {
      session = await connectSessionBus(this.options.busAddress ?? sessionBusAddress());
    } catch (error) {
      throw unsupported(`No D-Bus session bus for the RemoteDesktop portal (${describeError(error)}).`);
    }
    try {
      await this.checkPortal(session);
      const created = await this.request(session, signal, 'CreateSession', 'a{sv}', (token) => [
        { handle_token: new Variant('s', token), session_handle_token: new Variant('s', `keytap_${randomToken()}`) },
      ]);
      const handle = (created.session_handle as Variant | undefined)?.value as unknown;
      if (typeof handle !== 'string' || !handle.startsWith('/')) throw unsupported('The RemoteDesktop portal did not return a session.');
      const restore = this.options.restoreToken?.get() ?? this.token;
      await this.request(session, signal, 'SelectDevices', 'oa{sv}', (token) => [
        handle,
        {
          handle_token: new Variant('s', token),
          types: new Variant('u', KEYBOARD),
          persist_mode: new Variant('u', PERSIST_UNTIL_REVOKED),
          ...(restore ? { restore_token: new Variant('s', restore) } : {}),
        },
      ]);
      const started = await this.request(session, signal, 'Start', 'osa{sv}', (token) => [handle, '', { handle_token: new Variant('s', token) }]);
      const devices = Number((started.devices as Variant | undefined)?.value ?? KEYBOARD);
      if ((devices & KEYBOARD) === 0) throw new KeytapError('PERMISSION_DENIED', 'The desktop did not allow keytap to use the keyboard.', { hint: HINT });
      const next = (started.restore_token as Variant | undefined)?.value as unknown;
      if (typeof next === 'string') {
        this.token = next;
        this.options.restoreToken?.set(next);
      }
      session.addMatch(`type='signal',interface='org.freedesktop.portal.Session',member='Closed',path='${handle}'`).catch(() => undefined);
      session.onMessage((message) => {
        if (message.member === 'Closed' && message.path === handle && this.sessionHandle === handle) void this.close();
      });
      session.onClose(() => {
        if (this.session === session) {
          this.session = undefined;
          this.sessionHandle = undefined;
        }
      });
      this.session = session;
      this.sessionHandle = handle;
      return { session, handle };
    } catch (error) {
      session.close();
      throw error instanceof KeytapError ? error : unsupported(`The RemoteDesktop portal failed (${describeError(error)}).`);
    }
  }

  private async checkPortal(session: SessionBus): Promise<void> {
    try {
      await session.call({ destination: PORTAL, path: PORTAL_PATH, interface: 'org.freedesktop.DBus.Properties', member: 'Get', signature: 'ss', body: [REMOTE_DESKTOP, 'version'] });
    } catch (error) {
      const name = dbusErrorName(error);
      const what =
        name === 'org.freedesktop.DBus.Error.ServiceUnknown' || name === 'org.freedesktop.DBus.Error.NameHasNoOwner'
          ? 'No XDG desktop portal is running'
          : 'The desktop portal has no RemoteDesktop interface';
      throw unsupported(`${what} (${describeError(error)}).`);
    }
  }

  private async request(session: SessionBus, signal: AbortSignal | undefined, method: string, signature: string, body: (token: string) => unknown[]): Promise<Record<string, unknown>> {
    const [code, results] = await portalRequest(
      session,
      { iface: REMOTE_DESKTOP, method, signature, body, timeoutMs: this.options.responseTimeoutMs ?? 120_000, signal },
      () => unsupported(`The RemoteDesktop portal did not answer ${method}.`),
    );
    if (code === 1) throw new KeytapError('PERMISSION_DENIED', 'Typing was not allowed in the desktop dialog.', { hint: HINT });
    if (code !== 0) throw unsupported(`The RemoteDesktop portal refused ${method} (response ${code}).`);
    return results;
  }
}

function unsupported(message: string): KeytapError {
  return new KeytapError('UNSUPPORTED', message, { hint: HINT });
}
