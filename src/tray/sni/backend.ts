/**
 * The Linux tray: a StatusNotifierItem with a com.canonical.dbusmenu menu on the session bus,
 * spoken with dbus-next (no GTK, no libappindicator). Works with every SNI host: KDE Plasma,
 * GNOME with the AppIndicator extension, XFCE's status tray, Cinnamon, wlroots bars.
 *
 * Lifecycle: connect → export both objects → own org.kde.StatusNotifierItem-<pid>-<n> → register
 * with org.kde.StatusNotifierWatcher. The watcher is followed with NameOwnerChanged: when it goes
 * (panel restart) we report 'no-host', when it comes back we register again. A lost bus connection
 * is retried with backoff. Nothing here throws out of an event handler.
 */
import type { Message as DbusMessage } from 'dbus-next';
import { connectSessionBus, describeError, sessionBusAddress, type SessionBus } from '../../util/session-bus.js';
import { defaultIconSource, loadPixmaps, type IconSource, type Pixmap } from '../icons.js';
import type { TrayBackend, TrayHostStatus, TrayIconName, TrayModel } from '../model.js';
import { DbusMenuInterface, ITEM_PATH, MENU_PATH, StatusNotifierItemInterface, type ItemState } from './interfaces.js';
import { MENU_READ_WINDOW_MS, hostLeavesMenuToUs } from './item-click.js';
import { MenuLayout } from './menu-layout.js';

export const WATCHER_NAME = 'org.kde.StatusNotifierWatcher';
export const WATCHER_PATH = '/StatusNotifierWatcher';
const DBUS_NAME_FLAG_DO_NOT_QUEUE = 4;
const REQUEST_NAME_PRIMARY_OWNER = 1;

export interface SniOptions {
  /** Defaults to $DBUS_SESSION_BUS_ADDRESS or the user bus in $XDG_RUNTIME_DIR, read at start(). */
  busAddress?: string;
  icons?: IconSource;
  /** The SNI Id: hosts remember per-item settings (hidden, position) under it. */
  id?: string;
  title?: string;
  log?: (line: string) => void;
  /** A host is about to show the menu (AboutToShow): the moment to refresh what it shows. */
  onAboutToShow?: () => void;
  /** Reconnect/re-register backoff: first delay and cap, in ms. */
  retryMs?: { first: number; max: number };
  /** The clock item clicks and menu reads are timed by (ms); tests pass their own. */
  now?: () => number;
}


let instances = 0;

export class SniTrayBackend implements TrayBackend {
  readonly name = 'StatusNotifierItem';
  /** The well-known name we own and register with the watcher. */
  readonly serviceName: string;

  private readonly options: SniOptions;
  private readonly log: (line: string) => void;
  private readonly layout = new MenuLayout();
  private readonly state: ItemState;
  private readonly pixmapCache = new Map<TrayIconName, Pixmap[]>();
  private icons: IconSource | undefined;
  private model: TrayModel | undefined;
  private onClick: (id: string) => void = () => undefined;
  private onStatus: (status: TrayHostStatus, reason?: string) => void = () => undefined;
  private onMenuWanted: () => void = () => undefined;
  /** When a host last read the menu (AboutToShow, GetLayout). */
  private menuReadAt: number | undefined;
  private activateTimer: NodeJS.Timeout | undefined;
  private lastStatus: TrayHostStatus | undefined;

  private link: SessionBus | undefined;
  private item: StatusNotifierItemInterface | undefined;
  private menu: DbusMenuInterface | undefined;
  private started = false;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelay: number;
  private registerTimer: NodeJS.Timeout | undefined;
  /** Increases with every registration attempt; an older attempt that finishes late is ignored. */
  private registration = 0;
  /** Whether we own serviceName (else we registered our unique name). */
  private ownsServiceName = false;
  private appliedIcon: TrayIconName | undefined;

  constructor(options: SniOptions = {}) {
    this.options = options;
    this.log = options.log ?? ((line) => console.error(`keytap tray: ${line}`));
    this.retryDelay = options.retryMs?.first ?? 1_000;
    this.serviceName = `org.kde.StatusNotifierItem-${process.pid}-${++instances}`;
    this.state = {
      id: options.id ?? 'keytap',
      title: options.title ?? 'keytap',
      status: 'Active',
      iconName: '',
      pixmaps: [],
      attentionPixmaps: [],
      tooltip: options.title ?? 'keytap',
    };
  }

  /** Exports the item and registers it. Resolves after the first attempt; a missing bus or watcher is reported through onStatus, not thrown. */
  async start(onClick: (id: string) => void, onStatus?: (status: TrayHostStatus, reason?: string) => void, onMenuWanted?: () => void): Promise<void> {
    if (this.started) throw new Error('the tray is already started');
    this.started = true;
    this.onClick = onClick;
    if (onStatus) this.onStatus = onStatus;
    if (onMenuWanted) this.onMenuWanted = onMenuWanted;
    this.icons = this.options.icons ?? defaultIconSource();
    this.applyIcon(this.model?.icon ?? 'idle');
    await this.connect();
  }

  render(model: TrayModel): Promise<void> {
    this.model = model;
    const change = this.layout.update(model.menu);
    const statusBefore = this.state.status;
    // Before start() there is no icon source yet; start() applies the model's icon.
    const iconChanged = this.icons !== undefined && model.icon !== this.appliedIcon;
    if (iconChanged) this.applyIcon(model.icon);
    const tooltipChanged = this.state.tooltip !== model.tooltip;
    this.state.tooltip = model.tooltip;

    // Not connected (yet): hosts read the current state when we (re)register.
    const { item, menu } = this;
    if (!item || !menu) return Promise.resolve();
    this.emit(() => {
      if (change.kind === 'layout') menu.LayoutUpdated(this.layout.revision, change.parent);
      else if (change.kind === 'properties') menu.emitPropertiesUpdated(change.updated);
    });
    if (iconChanged) {
      this.emit(() => item.NewIcon());
      this.emit(() => item.NewAttentionIcon());
    }
    if (this.state.status !== statusBefore) this.emit(() => item.NewStatus(this.state.status));
    if (tooltipChanged) this.emit(() => item.NewToolTip());
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.registerTimer);
    clearTimeout(this.activateTimer);
    const link = this.link;
    this.detach();
    if (link && !link.closed) {
      try {
        // Releasing the name is what tells the watcher the item is gone.
        await link.callDaemon('ReleaseName', 's', [this.serviceName]);
      } catch {
        // The connection is closing anyway.
      }
      link.close();
    }
  }

  // ---- connection ----

  private async connect(): Promise<void> {
    if (this.stopped) return;
    // The same address notifications use, so the icon and the toasts reach the same session.
    const address = this.options.busAddress ?? sessionBusAddress();
    let link: SessionBus;
    try {
      link = await connectSessionBus(address);
    } catch (error) {
      // The listener says it once per outage (the status changes once); the retries go on quietly.
      this.setStatus('no-bus', describeError(error));
      this.scheduleReconnect();
      return;
    }
    if (this.stopped) {
      link.close();
      return;
    }
    this.link = link;
    link.onClose((error) => this.onConnectionLost(link, error.message));
    link.onMessage((message) => this.onBusMessage(message));

    try {
      // Objects first, name second: a host may call us the moment the name appears.
      const item = new StatusNotifierItemInterface(this.state, { onItemEvent: (method) => this.onItemEvent(method) });
      const menu = new DbusMenuInterface(this.layout, {
        onClicked: (id) => this.deliverClick(id),
        onAboutToShow: () => this.notifyAboutToShow(),
        onLayoutRead: () => (this.menuReadAt = this.now()),
      });
      link.bus.export(ITEM_PATH, item);
      link.bus.export(MENU_PATH, menu);
      this.item = item;
      this.menu = menu;
      const [reply] = (await link.callDaemon('RequestName', 'su', [this.serviceName, DBUS_NAME_FLAG_DO_NOT_QUEUE])).body as [number];
      if (reply !== REQUEST_NAME_PRIMARY_OWNER) this.log(`could not own ${this.serviceName} (reply ${reply}); registering ${link.uniqueName} instead`);
      this.ownsServiceName = reply === REQUEST_NAME_PRIMARY_OWNER;
      await link.addMatch(`type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='${WATCHER_NAME}'`);
      await link.addMatch(`type='signal',interface='${WATCHER_NAME}'`);
    } catch (error) {
      this.log(`cannot set up the tray item: ${describeError(error)}`);
      link.close(); // → onConnectionLost → reconnect with backoff
      return;
    }
    this.retryDelay = this.options.retryMs?.first ?? 1_000;
    await this.register();
  }

  private onConnectionLost(link: SessionBus, reason: string): void {
    if (this.link !== link) return;
    this.detach();
    if (this.stopped) return;
    this.log(`${reason}; reconnecting`);
    this.setStatus('no-host');
    this.scheduleReconnect();
  }

  private detach(): void {
    const { link, item, menu } = this;
    this.link = undefined;
    this.item = undefined;
    this.menu = undefined;
    this.registration++;
    clearTimeout(this.registerTimer);
    if (!link) return;
    // Unexporting detaches the interfaces' signal emitters from the dead connection.
    for (const [path, iface] of [[ITEM_PATH, item], [MENU_PATH, menu]] as const) {
      try {
        if (iface) link.bus.unexport(path, iface);
      } catch {
        // Not exported (setup failed half-way).
      }
    }
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    const delay = this.retryDelay;
    this.retryDelay = Math.min(this.retryDelay * 2, this.options.retryMs?.max ?? 30_000);
    this.retryTimer = setTimeout(() => {
      this.connect().catch((error: unknown) => this.log(`reconnect failed: ${describeError(error)}`));
    }, delay);
    this.retryTimer.unref();
  }

  // ---- watcher ----

  /** Registers with the watcher if there is one; reports the outcome through onStatus. */
  private async register(): Promise<void> {
    const link = this.link;
    if (!link || this.stopped) return;
    const attempt = ++this.registration;
    const current = (): boolean => attempt === this.registration && this.link === link && !this.stopped;
    try {
      const owner = await this.watcherOwner(link);
      if (!current()) return;
      if (!owner) {
        this.setStatus('no-host');
        return;
      }
      await link.call({
        destination: WATCHER_NAME,
        path: WATCHER_PATH,
        interface: WATCHER_NAME,
        member: 'RegisterStatusNotifierItem',
        signature: 's',
        body: [this.ownsServiceName ? this.serviceName : link.uniqueName],
      });
      if (!current()) return;
      this.setStatus((await this.hostRegistered(link)) ? 'shown' : 'no-host');
    } catch (error) {
      if (!current()) return;
      // A watcher that has just taken its name may not have exported its object yet: try again.
      this.log(`cannot register with the StatusNotifierWatcher: ${describeError(error)}`);
      this.setStatus('no-host');
      this.scheduleRegister(link);
    }
  }

  private scheduleRegister(link: SessionBus): void {
    clearTimeout(this.registerTimer);
    const delay = this.retryDelay;
    this.retryDelay = Math.min(this.retryDelay * 2, this.options.retryMs?.max ?? 30_000);
    this.registerTimer = setTimeout(() => {
      if (this.link === link) this.register().catch((error: unknown) => this.log(`registration failed: ${describeError(error)}`));
    }, delay);
    this.registerTimer.unref();
  }

  private async watcherOwner(link: SessionBus): Promise<string | undefined> {
    try {
      const reply = await link.callDaemon('GetNameOwner', 's', [WATCHER_NAME]);
      return reply.body[0] as string;
    } catch {
      return undefined; // org.freedesktop.DBus.Error.NameHasNoOwner
    }
  }

  /** IsStatusNotifierHostRegistered; a watcher that does not say counts as having a host. */
  private async hostRegistered(link: SessionBus): Promise<boolean> {
    try {
      const reply = await link.call({
        destination: WATCHER_NAME,
        path: WATCHER_PATH,
        interface: 'org.freedesktop.DBus.Properties',
        member: 'Get',
        signature: 'ss',
        body: [WATCHER_NAME, 'IsStatusNotifierHostRegistered'],
      });
      const value = (reply.body[0] as { value?: unknown } | undefined)?.value;
      return value !== false;
    } catch {
      return true;
    }
  }

  private onBusMessage(message: DbusMessage): void {
    if (message.interface === 'org.freedesktop.DBus' && message.member === 'NameOwnerChanged') {
      const [name, , newOwner] = message.body as [string, string, string];
      if (name !== WATCHER_NAME) return;
      if (newOwner) {
        this.retryDelay = this.options.retryMs?.first ?? 1_000;
        this.register().catch((error: unknown) => this.log(`registration failed: ${describeError(error)}`));
      } else {
        this.registration++; // a registration in flight is for the watcher that just left
        clearTimeout(this.registerTimer);
        this.log('the StatusNotifierWatcher went away; waiting for it to come back');
        this.setStatus('no-host');
      }
    } else if (message.interface === WATCHER_NAME && message.member === 'StatusNotifierHostRegistered') {
      if (this.lastStatus === 'no-host') this.register().catch((error: unknown) => this.log(`registration failed: ${describeError(error)}`));
    } else if (message.interface === WATCHER_NAME && message.member === 'StatusNotifierHostUnregistered') {
      const link = this.link;
      if (link) {
        this.hostRegistered(link)
          .then((registered) => {
            if (!registered && this.link === link) this.setStatus('no-host');
          })
          .catch(() => undefined);
      }
    }
  }

  // ---- state → properties and callbacks ----

  private applyIcon(icon: TrayIconName): void {
    this.appliedIcon = icon;
    const pixmaps = this.pixmaps(icon);
    this.state.pixmaps = pixmaps;
    this.state.attentionPixmaps = icon === 'touch' ? pixmaps : this.pixmaps('touch');
    // Without our PNGs (a broken install) fall back to a theme icon every desktop has.
    this.state.iconName = pixmaps.length > 0 ? '' : icon === 'error' ? 'dialog-error' : 'dialog-password';
    // NeedsAttention makes hosts highlight (KDE) or show the attention icon: that is a touch prompt.
    this.state.status = icon === 'touch' ? 'NeedsAttention' : 'Active';
  }

  private pixmaps(icon: TrayIconName): Pixmap[] {
    let pixmaps = this.pixmapCache.get(icon);
    if (!pixmaps) {
      try {
        pixmaps = this.icons ? loadPixmaps(icon, this.icons) : [];
        if (pixmaps.length === 0) this.log(`no ${icon} icon in ${this.icons?.description ?? 'any icon source'}`);
      } catch (error) {
        this.log(`cannot read the ${icon} icon: ${describeError(error)}`);
        pixmaps = [];
      }
      this.pixmapCache.set(icon, pixmaps);
    }
    return pixmaps;
  }

  private emit(send: () => void): void {
    try {
      send();
    } catch (error) {
      this.log(`cannot send a tray signal: ${describeError(error)}`);
    }
  }

  private deliverClick(id: string): void {
    // After the D-Bus reply is on its way: the host is not kept waiting by what the click does,
    // and whatever onClick throws (or rejects) stays here.
    setImmediate(() => {
      try {
        const result = this.onClick(id) as unknown;
        if (result instanceof Promise) result.catch((error: unknown) => this.log(`menu click on ${id} failed: ${describeError(error)}`));
      } catch (error) {
        this.log(`menu click on ${id} failed: ${describeError(error)}`);
      }
    });
  }

  private notifyAboutToShow(): void {
    this.menuReadAt = this.now();
    try {
      this.options.onAboutToShow?.();
    } catch (error) {
      this.log(`menu listener failed: ${describeError(error)}`);
    }
  }

  private onItemEvent(method: string): void {
    const clickAt = this.now();
    if (method === 'ContextMenu') {
      this.deliverMenuWanted(method);
    } else if (method === 'Activate' && !this.activateTimer) {
      // A host that shows our menu may read it just after the click: wait for that before deciding.
      this.activateTimer = setTimeout(() => {
        this.activateTimer = undefined;
        if (!this.stopped && hostLeavesMenuToUs(method, clickAt, this.menuReadAt)) this.deliverMenuWanted(method);
      }, MENU_READ_WINDOW_MS);
      this.activateTimer.unref();
    }
  }

  private deliverMenuWanted(method: string): void {
    setImmediate(() => {
      try {
        this.onMenuWanted();
      } catch (error) {
        this.log(`${method} on the item failed: ${describeError(error)}`);
      }
    });
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  private setStatus(status: TrayHostStatus, reason?: string): void {
    if (status === this.lastStatus) return;
    this.lastStatus = status;
    try {
      this.onStatus(status, reason);
    } catch (error) {
      this.log(`tray status listener failed: ${describeError(error)}`);
    }
  }
}
