/**
 * Linux toasts over `org.freedesktop.Notifications` (Desktop Notifications Specification 1.2),
 * spoken directly over D-Bus: unlike notify-send this gets the notification id back, so "Touch
 * your key" is replaced in place by "Code copied" (`replaces_id`) and closed when done.
 *
 * The server is optional and may come and go (a dunst restart, a desktop shell crash): show()
 * then resolves an inert handle, the trouble is reported once through `onError`, and the next
 * show() after the server is back works again. Nothing here throws or rejects.
 */
import { KeytapError } from '../errors.js';
import { connectSessionBus, describeError, sessionBusAddress, Variant } from '../util/session-bus.js';
import type { SessionBus } from '../util/session-bus.js';
import { findIconFile, findStateIconFile } from './icon.js';
import type { Notification, NotificationHandle, NotificationIcon, Notifier } from './types.js';

const SERVICE = 'org.freedesktop.Notifications';
const PATH = '/org/freedesktop/Notifications';
const INTERFACE = 'org.freedesktop.Notifications';
const APP_NAME = 'keytap';
/** Used when no icon file ships with this build; present in every freedesktop icon theme. */
const THEMED_ICON = 'dialog-password';
const URGENCY = { low: 0, normal: 1, critical: 2 } as const;

export interface FreedesktopNotifierOptions {
  onError?: ((error: KeytapError) => void) | undefined;
  /** Defaults to $DBUS_SESSION_BUS_ADDRESS. */
  busAddress?: string | undefined;
  /** An icon file or themed icon name; defaults to `icons/…png` of the package, else a themed name. */
  icon?: string | undefined;
  /** The icon file of a state a toast tells of; defaults to `icons/<state>-64.png` of the package. */
  stateIcon?: ((state: NotificationIcon) => string | undefined) | undefined;
  /** Per-call deadline; a hung server must not hold the touch flow. */
  callTimeoutMs?: number | undefined;
}

/**
 * Ids are only meaningful to the server instance that issued them; a handle remembers which one
 * (`epoch`) so a restarted server is never asked to replace or close an id it did not issue.
 */
class FreedesktopHandle implements NotificationHandle {
  constructor(
    readonly id: number,
    readonly epoch: number,
  ) {}
}

const INERT: NotificationHandle = Object.freeze({ id: 0 });

export class FreedesktopNotifier implements Notifier {
  readonly name = SERVICE;
  private readonly onError: (error: KeytapError) => void;
  private readonly icon: string;
  private readonly stateIcons = new Map<NotificationIcon, string | undefined>();
  private readonly timeoutMs: number;
  private connecting: Promise<SessionBus | undefined> | undefined;
  private session: SessionBus | undefined;
  /** Bumped whenever the server (or our bus connection) goes away. */
  private epoch = 1;
  /** Ids the current server shows right now. */
  private readonly open = new Set<number>();
  /** Report a failure once per outage, not once per toast. */
  private reported = false;
  private stopped = false;

  constructor(private readonly options: FreedesktopNotifierOptions = {}) {
    this.onError = options.onError ?? (() => undefined);
    this.icon = options.icon ?? findIconFile() ?? THEMED_ICON;
    this.timeoutMs = options.callTimeoutMs ?? 3_000;
  }

  async show(notification: Notification, replaces?: NotificationHandle): Promise<NotificationHandle> {
    if (this.stopped) return INERT;
    const session = await this.connect();
    if (!session) return INERT;
    const epoch = this.epoch;
    const replacesId =
      replaces instanceof FreedesktopHandle && replaces.epoch === epoch && this.open.has(replaces.id) ? replaces.id : 0;
    const urgency = notification.urgency ?? 'normal';
    const icon = (notification.icon === undefined ? undefined : this.stateIcon(notification.icon)) ?? this.icon;
    const hints: Record<string, Variant> = {
      urgency: new Variant('y', URGENCY[urgency]),
      'desktop-entry': new Variant('s', APP_NAME),
      // keytap's toasts are status ("touch your key", "code copied"), not messages to keep:
      // transient ones stay out of the server's history, where a shown code would linger.
      // Errors (critical) are kept so the user can read them later.
      transient: new Variant('b', urgency !== 'critical'),
    };
    // A prompt that waits for the user must not expire before the wait does (spec: expire_timeout 0, "resident").
    if (notification.sticky) hints.resident = new Variant('b', true);
    if (icon.startsWith('/')) hints['image-path'] = new Variant('s', `file://${icon}`);
    try {
      const reply = await session.call(
        {
          destination: SERVICE,
          path: PATH,
          interface: INTERFACE,
          member: 'Notify',
          signature: 'susssasa{sv}i',
          body: [
            APP_NAME,
            replacesId,
            icon,
            notification.title,
            notification.body,
            [],
            hints,
            notification.sticky ? 0 : notification.timeoutMs === undefined ? -1 : Math.max(0, Math.round(notification.timeoutMs)),
          ],
        },
        this.timeoutMs,
      );
      const id = reply.body[0] as unknown;
      if (typeof id !== 'number' || id <= 0) throw new Error('the server answered Notify without an id');
      this.reported = false;
      if (epoch !== this.epoch) return INERT;
      this.open.add(id);
      return new FreedesktopHandle(id, epoch);
    } catch (error) {
      this.report(`The notification server did not show a notification (${describeError(error)}).`);
      return INERT;
    }
  }

  async close(handle: NotificationHandle): Promise<void> {
    if (!(handle instanceof FreedesktopHandle) || handle.epoch !== this.epoch || !this.open.has(handle.id)) return;
    const session = this.session;
    if (!session || session.closed) return;
    this.open.delete(handle.id);
    try {
      await session.call(
        { destination: SERVICE, path: PATH, interface: INTERFACE, member: 'CloseNotification', signature: 'u', body: [handle.id] },
        this.timeoutMs,
      );
    } catch {
      // Already gone (expired, dismissed, server restarted): nothing left to close.
    }
  }

  stop(): Promise<void> {
    this.stopped = true;
    this.session?.close();
    this.session = undefined;
    this.open.clear();
    return Promise.resolve();
  }

  private connect(): Promise<SessionBus | undefined> {
    if (this.session && !this.session.closed) return Promise.resolve(this.session);
    this.connecting ??= this.openSession().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async openSession(): Promise<SessionBus | undefined> {
    let session: SessionBus;
    try {
      session = await connectSessionBus(this.options.busAddress ?? sessionBusAddress(), { timeoutMs: this.timeoutMs });
    } catch (error) {
      this.report(`No D-Bus session bus for notifications (${describeError(error)}).`);
      return undefined;
    }
    if (this.stopped) {
      session.close();
      return undefined;
    }
    session.onMessage((message) => {
      if (message.interface === INTERFACE && message.member === 'NotificationClosed') {
        const id = message.body[0] as unknown;
        if (typeof id === 'number') this.open.delete(id);
      } else if (
        message.interface === 'org.freedesktop.DBus' &&
        message.member === 'NameOwnerChanged' &&
        message.body[0] === SERVICE &&
        message.body[2] === ''
      ) {
        // The server went away: every id it gave out is void. A later Notify reaches (or
        // D-Bus-activates) the next one.
        this.serverGone();
      }
    });
    session.onClose(() => {
      if (this.session === session) this.session = undefined;
      this.serverGone();
    });
    try {
      // Signals are only routed to us once asked for; a failure here costs replace-in-place
      // accuracy, not toasts, so it is not fatal.
      await session.addMatch(`type='signal',interface='${INTERFACE}',member='NotificationClosed'`);
      await session.addMatch(
        `type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='${SERVICE}'`,
      );
    } catch {
      // See above.
    }
    this.session = session;
    return session;
  }

  private stateIcon(state: NotificationIcon): string | undefined {
    if (!this.stateIcons.has(state)) this.stateIcons.set(state, (this.options.stateIcon ?? findStateIconFile)(state));
    return this.stateIcons.get(state);
  }

  private serverGone(): void {
    this.epoch++;
    this.open.clear();
  }

  private report(message: string): void {
    if (this.reported) return;
    this.reported = true;
    this.onError(
      new KeytapError('UNSUPPORTED', message, {
        hint: 'Start a notification daemon (your desktop has one; on a bare window manager e.g. dunst or mako). keytap keeps working without toasts.',
      }),
    );
  }
}
