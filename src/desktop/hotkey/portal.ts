/**
 * Global shortcut on Wayland through the XDG desktop portal
 * (`org.freedesktop.portal.GlobalShortcuts`, version 1), the only sanctioned way there: the
 * compositor owns the keyboard, and the user confirms (or changes) the binding in the desktop's own
 * dialog or settings. KDE Plasma 6 and recent GNOME implement it; others (wlroots, elementary, older
 * GNOME) do not, and then register() rejects UNSUPPORTED with the `keytap code` hint.
 *
 * The portal's request/response pattern: each call takes a `handle_token`, returns the object path
 * of a Request (…/request/<our unique name, ':' dropped, '.' → '_'>/<token>), and the answer comes
 * later as that Request's `Response(u code, a{sv} results)` signal (0 ok, 1 cancelled, 2 failed).
 * We subscribe to the predicted path before calling, so a fast answer is not missed.
 * Flow: CreateSession → BindShortcuts → Activated(session, id, timestamp, options) on every press.
 */
import { KeytapError } from '../../errors.js';
import { connectSessionBus, dbusErrorName, describeError, sessionBusAddress, Variant } from '../../util/session-bus.js';
import type { SessionBus } from '../../util/session-bus.js';
import type { DesktopBinding, GlobalShortcut, ShortcutBinding, ShortcutToBind } from '../platform.js';
import { PORTAL, PORTAL_PATH, portalRequest, randomToken } from '../portal-request.js';
import { formatAccelerator, parseAccelerator, toXdgTrigger } from './accelerator.js';

const SHORTCUTS = 'org.freedesktop.portal.GlobalShortcuts';
export const SHORTCUT_ID = 'keytap-code';
const HINT = 'Bind `keytap code` to a key in your desktop\'s keyboard settings.';

export interface PortalShortcutOptions {
  busAddress?: string | undefined;
  /** How long the user may take in the portal's confirmation dialog. */
  responseTimeoutMs?: number | undefined;
  /** Hears of a lost portal or bus after registration (the shortcut then stops working). */
  onError?: ((error: KeytapError) => void) | undefined;
  /** This desktop's own bindings, for when the portal has no GlobalShortcuts. */
  desktopBinding?: ((shortcuts: readonly ShortcutToBind[]) => DesktopBinding | undefined) | undefined;
}

export class PortalShortcut implements GlobalShortcut {
  readonly name = 'xdg-desktop-portal';
  private session: SessionBus | undefined;
  private sessionHandle: string | undefined;

  constructor(private readonly options: PortalShortcutOptions = {}) {}

  desktopBinding(shortcuts: readonly ShortcutToBind[]): DesktopBinding | undefined {
    return this.options.desktopBinding?.(shortcuts);
  }

  async register(accelerator: string, onPress: () => void, also: readonly ShortcutBinding[] = []): Promise<void> {
    const parsed = parseAccelerator(accelerator, 'linux');
    const more = also.map((b) => ({ ...b, parsed: parseAccelerator(b.accelerator, 'linux') }));
    const handlers = new Map<string, () => void>([[SHORTCUT_ID, onPress], ...more.map((b) => [b.id, b.onPress] as [string, () => void])]);
    await this.unregister();
    let session: SessionBus;
    try {
      session = await connectSessionBus(this.options.busAddress ?? sessionBusAddress());
    } catch (error) {
      throw unsupported(`No D-Bus session bus for the shortcut portal (${describeError(error)}).`);
    }
    try {
      await this.checkPortal(session);
      const sessionHandle = await this.createSession(session);
      this.session = session;
      this.sessionHandle = sessionHandle;
      await session.addMatch(`type='signal',interface='${SHORTCUTS}',member='Activated',path='${PORTAL_PATH}'`);
      session.onMessage((message) => {
        if (message.interface !== SHORTCUTS || message.member !== 'Activated') return;
        const pressed = handlers.get(String(message.body[1]));
        if (message.body[0] !== sessionHandle || !pressed) return;
        // Unregistered: the socket may still deliver what was in flight.
        if (this.sessionHandle !== sessionHandle) return;
        try {
          pressed();
        } catch {
          // The app reports its own failures.
        }
      });
      session.onClose((error) => {
        if (this.session !== session) return;
        this.session = undefined;
        this.sessionHandle = undefined;
        this.options.onError?.(unsupported(`The session bus went away; the global shortcut no longer works (${error.message}).`));
      });
      await this.bind(session, sessionHandle, [
        [SHORTCUT_ID, `keytap: copy a code (${formatAccelerator(parsed)})`, toXdgTrigger(parsed)],
        ...more.map((b): [string, string, string] => [b.id, `${b.description} (${formatAccelerator(b.parsed)})`, toXdgTrigger(b.parsed)]),
      ]);
    } catch (error) {
      await this.unregister();
      session.close();
      throw error instanceof KeytapError ? error : unsupported(`The shortcut portal failed (${describeError(error)}).`);
    }
  }

  async unregister(): Promise<void> {
    const session = this.session;
    const handle = this.sessionHandle;
    this.session = undefined;
    this.sessionHandle = undefined;
    if (!session) return;
    if (handle && !session.closed) {
      try {
        await session.call({ destination: PORTAL, path: handle, interface: 'org.freedesktop.portal.Session', member: 'Close' }, 2_000);
      } catch {
        // The portal dropped the session already.
      }
    }
    session.close();
  }

  private async checkPortal(session: SessionBus): Promise<void> {
    try {
      await session.call({
        destination: PORTAL,
        path: PORTAL_PATH,
        interface: 'org.freedesktop.DBus.Properties',
        member: 'Get',
        signature: 'ss',
        body: [SHORTCUTS, 'version'],
      });
    } catch (error) {
      const name = dbusErrorName(error);
      const what =
        name === 'org.freedesktop.DBus.Error.ServiceUnknown' || name === 'org.freedesktop.DBus.Error.NameHasNoOwner'
          ? 'No XDG desktop portal is running'
          : 'The desktop portal has no GlobalShortcuts interface';
      throw unsupported(`${what} (${describeError(error)}).`);
    }
  }

  private async createSession(session: SessionBus): Promise<string> {
    const results = await this.request(session, 'CreateSession', 'a{sv}', (token) => [
      { handle_token: new Variant('s', token), session_handle_token: new Variant('s', `keytap_${randomToken()}`) },
    ]);
    const handle = (results.session_handle as Variant | undefined)?.value as unknown;
    if (typeof handle !== 'string' || !handle.startsWith('/')) throw unsupported('The shortcut portal did not return a session.');
    return handle;
  }

  /** All shortcuts in one BindShortcuts call: [id, description, XDG trigger]. */
  private async bind(session: SessionBus, sessionHandle: string, shortcuts: [string, string, string][]): Promise<void> {
    await this.request(session, 'BindShortcuts', 'oa(sa{sv})sa{sv}', (token) => [
      sessionHandle,
      shortcuts.map(([id, description, trigger]) => [id, { description: new Variant('s', description), preferred_trigger: new Variant('s', trigger) }]),
      '',
      { handle_token: new Variant('s', token) },
    ]);
  }

  /** One portal call in the request/response pattern; resolves the Response's results. */
  private async request(session: SessionBus, method: string, signature: string, body: (token: string) => unknown[]): Promise<Record<string, unknown>> {
    const [code, results] = await portalRequest(
      session,
      { iface: SHORTCUTS, method, signature, body, timeoutMs: this.options.responseTimeoutMs ?? 120_000 },
      () => unsupported(`The shortcut portal did not answer ${method}.`),
    );
    if (code === 1) throw new KeytapError('CANCELLED', 'The global shortcut was not confirmed in the desktop dialog.', { hint: HINT });
    if (code !== 0) throw unsupported(`The shortcut portal refused ${method} (response ${code}).`);
    return results;
  }
}

function unsupported(message: string): KeytapError {
  return new KeytapError('UNSUPPORTED', message, { hint: HINT });
}
