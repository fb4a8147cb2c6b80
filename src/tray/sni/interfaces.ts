/**
 * The two exported D-Bus interfaces: org.kde.StatusNotifierItem (the icon) and
 * com.canonical.dbusmenu (its menu). They only read state the backend owns (ItemState, MenuLayout)
 * and hand events back through callbacks; nothing here throws anything but a DBusError reply.
 */
import { DBusError, Variant, interface as dbusInterface } from 'dbus-next';
import type { Pixmap } from '../icons.js';
import type { LayoutNode, MenuLayout, MenuProps } from './menu-layout.js';

export const ITEM_INTERFACE = 'org.kde.StatusNotifierItem';
export const MENU_INTERFACE = 'com.canonical.dbusmenu';
export const ITEM_PATH = '/StatusNotifierItem';
export const MENU_PATH = '/MenuBar';
const INVALID_ARGS = 'org.freedesktop.DBus.Error.InvalidArgs';

/** What the StatusNotifierItem properties show; owned and updated by the backend. */
export interface ItemState {
  id: string;
  title: string;
  status: 'Active' | 'Passive' | 'NeedsAttention';
  iconName: string;
  pixmaps: Pixmap[];
  attentionPixmaps: Pixmap[];
  tooltip: string;
}

export interface ItemEvents {
  /** Activate, SecondaryActivate, ContextMenu, Scroll: the backend decides (item-click.ts). */
  onItemEvent(method: string): void;
}

type PixmapWire = Array<[number, number, Buffer]>;
const wirePixmaps = (pixmaps: Pixmap[]): PixmapWire => pixmaps.map((p) => [p.width, p.height, p.argb]);

export class StatusNotifierItemInterface extends dbusInterface.Interface {
  constructor(
    private readonly state: ItemState,
    private readonly events: ItemEvents,
  ) {
    super(ITEM_INTERFACE);
  }

  get Category(): string {
    return 'ApplicationStatus';
  }
  get Id(): string {
    return this.state.id;
  }
  get Title(): string {
    return this.state.title;
  }
  get Status(): string {
    return this.state.status;
  }
  get WindowId(): number {
    return 0;
  }
  get IconThemePath(): string {
    return '';
  }
  get IconName(): string {
    return this.state.iconName;
  }
  get IconPixmap(): PixmapWire {
    return wirePixmaps(this.state.pixmaps);
  }
  get OverlayIconName(): string {
    return '';
  }
  get OverlayIconPixmap(): PixmapWire {
    return [];
  }
  get AttentionIconName(): string {
    return this.state.pixmaps.length > 0 ? '' : this.state.iconName;
  }
  get AttentionIconPixmap(): PixmapWire {
    return wirePixmaps(this.state.attentionPixmaps);
  }
  get AttentionMovieName(): string {
    return '';
  }
  get ToolTip(): [string, PixmapWire, string, string] {
    return ['', [], this.state.tooltip, ''];
  }
  /** The item only has a menu: hosts open it on a left click too. */
  get ItemIsMenu(): boolean {
    return true;
  }
  get Menu(): string {
    return MENU_PATH;
  }

  ContextMenu(_x: number, _y: number): void {
    this.events.onItemEvent('ContextMenu');
  }
  Activate(_x: number, _y: number): void {
    this.events.onItemEvent('Activate');
  }
  SecondaryActivate(_x: number, _y: number): void {
    this.events.onItemEvent('SecondaryActivate');
  }
  Scroll(_delta: number, _orientation: string): void {
    this.events.onItemEvent('Scroll');
  }
  ProvideXdgActivationToken(_token: string): void {
    // We open no windows, so an activation token has no use.
  }

  // Signals: calling one emits it (dbus-next wraps these in configureMembers).
  NewTitle(): void {}
  NewIcon(): void {}
  NewAttentionIcon(): void {}
  NewOverlayIcon(): void {}
  NewToolTip(): void {}
  NewStatus(status: string): string {
    return status;
  }
}

StatusNotifierItemInterface.configureMembers({
  properties: {
    Category: { signature: 's', access: 'read' },
    Id: { signature: 's', access: 'read' },
    Title: { signature: 's', access: 'read' },
    Status: { signature: 's', access: 'read' },
    WindowId: { signature: 'i', access: 'read' },
    IconThemePath: { signature: 's', access: 'read' },
    IconName: { signature: 's', access: 'read' },
    IconPixmap: { signature: 'a(iiay)', access: 'read' },
    OverlayIconName: { signature: 's', access: 'read' },
    OverlayIconPixmap: { signature: 'a(iiay)', access: 'read' },
    AttentionIconName: { signature: 's', access: 'read' },
    AttentionIconPixmap: { signature: 'a(iiay)', access: 'read' },
    AttentionMovieName: { signature: 's', access: 'read' },
    ToolTip: { signature: '(sa(iiay)ss)', access: 'read' },
    ItemIsMenu: { signature: 'b', access: 'read' },
    Menu: { signature: 'o', access: 'read' },
  },
  methods: {
    ContextMenu: { inSignature: 'ii' },
    Activate: { inSignature: 'ii' },
    SecondaryActivate: { inSignature: 'ii' },
    Scroll: { inSignature: 'is' },
    ProvideXdgActivationToken: { inSignature: 's' },
  },
  signals: {
    NewTitle: { signature: '' },
    NewIcon: { signature: '' },
    NewAttentionIcon: { signature: '' },
    NewOverlayIcon: { signature: '' },
    NewToolTip: { signature: '' },
    NewStatus: { signature: 's' },
  },
});

export interface MenuEvents {
  /** A 'clicked' event on a clickable item: our MenuItem id. */
  onClicked(id: string): void;
  /** A host is about to show the menu (or a submenu). */
  onAboutToShow(intId: number): void;
  /** A host read the menu (GetLayout): it shows the menu itself. */
  onLayoutRead?(): void;
}

type PropsWire = Record<string, Variant>;
type LayoutWire = [number, PropsWire, Variant[]];

function wireProps(props: MenuProps, names: readonly string[]): PropsWire {
  const wire: PropsWire = {};
  for (const [name, value] of Object.entries(props)) {
    if (names.length > 0 && !names.includes(name)) continue;
    wire[name] = new Variant(typeof value === 'boolean' ? 'b' : typeof value === 'number' ? 'i' : 's', value);
  }
  return wire;
}

function wireLayout(node: LayoutNode, depth: number, names: readonly string[]): LayoutWire {
  // recursionDepth -1 means the whole subtree, 0 the node alone.
  const children = depth === 0 ? [] : node.children.map((child) => new Variant('(ia{sv}av)', wireLayout(child, depth - 1, names)));
  return [node.intId, wireProps(node.props, names), children];
}

export class DbusMenuInterface extends dbusInterface.Interface {
  constructor(
    private readonly layout: MenuLayout,
    private readonly events: MenuEvents,
  ) {
    super(MENU_INTERFACE);
  }

  get Version(): number {
    return 3;
  }
  get TextDirection(): string {
    return 'ltr';
  }
  get Status(): string {
    return 'normal';
  }
  get IconThemePath(): string[] {
    return [];
  }

  GetLayout(parentId: number, recursionDepth: number, propertyNames: string[]): [number, LayoutWire] {
    const node = this.layout.node(parentId);
    if (!node) throw new DBusError(INVALID_ARGS, `no menu item with id ${parentId}`);
    this.events.onLayoutRead?.();
    return [this.layout.revision, wireLayout(node, recursionDepth < 0 ? -1 : recursionDepth, propertyNames)];
  }

  GetGroupProperties(ids: number[], propertyNames: string[]): Array<[number, PropsWire]> {
    // An empty id list means every item; unknown ids are left out, as libdbusmenu does.
    const nodes = ids.length > 0 ? ids.map((id) => this.layout.node(id)) : this.allNodes();
    return nodes.filter((n): n is LayoutNode => n !== undefined).map((n) => [n.intId, wireProps(n.props, propertyNames)]);
  }

  GetProperty(id: number, name: string): Variant {
    const node = this.layout.node(id);
    if (!node) throw new DBusError(INVALID_ARGS, `no menu item with id ${id}`);
    const props = wireProps(node.props, [name]);
    const value = props[name];
    if (!value) throw new DBusError(INVALID_ARGS, `menu item ${id} has no property ${name}`);
    return value;
  }

  Event(id: number, eventId: string, _data: Variant, _timestamp: number): void {
    if (!this.layout.node(id)) throw new DBusError(INVALID_ARGS, `no menu item with id ${id}`);
    this.handleEvent(id, eventId);
  }

  EventGroup(events: Array<[number, string, Variant, number]>): number[] {
    const idErrors: number[] = [];
    for (const [id, eventId] of events) {
      if (this.layout.node(id)) this.handleEvent(id, eventId);
      else idErrors.push(id);
    }
    return idErrors;
  }

  AboutToShow(id: number): boolean {
    if (!this.layout.node(id)) throw new DBusError(INVALID_ARGS, `no menu item with id ${id}`);
    this.events.onAboutToShow(id);
    // The layout is always current (render() updates it before anyone asks), so no update is needed.
    return false;
  }

  AboutToShowGroup(ids: number[]): [number[], number[]] {
    const idErrors = ids.filter((id) => !this.layout.node(id));
    for (const id of ids) if (this.layout.node(id)) this.events.onAboutToShow(id);
    return [[], idErrors];
  }

  LayoutUpdated(revision: number, parent: number): [number, number] {
    return [revision, parent];
  }
  ItemsPropertiesUpdated(updated: Array<[number, PropsWire]>, removed: Array<[number, string[]]>): [Array<[number, PropsWire]>, Array<[number, string[]]>] {
    return [updated, removed];
  }

  /** Emits ItemsPropertiesUpdated for these items' full property sets. */
  emitPropertiesUpdated(updated: Array<[number, MenuProps]>): void {
    this.ItemsPropertiesUpdated(updated.map(([id, props]) => [id, wireProps(props, [])]), []);
  }

  private handleEvent(id: number, eventId: string): void {
    // 'hovered', 'opened' and 'closed' need nothing from us.
    if (eventId !== 'clicked') return;
    const target = this.layout.clickTarget(id);
    if (target !== undefined) this.events.onClicked(target);
  }

  private allNodes(): LayoutNode[] {
    const out: LayoutNode[] = [];
    const walk = (n: LayoutNode): void => {
      out.push(n);
      n.children.forEach(walk);
    };
    const root = this.layout.node(0);
    if (root) walk(root);
    return out;
  }
}

DbusMenuInterface.configureMembers({
  properties: {
    Version: { signature: 'u', access: 'read' },
    TextDirection: { signature: 's', access: 'read' },
    Status: { signature: 's', access: 'read' },
    IconThemePath: { signature: 'as', access: 'read' },
  },
  methods: {
    GetLayout: { inSignature: 'iias', outSignature: 'u(ia{sv}av)' },
    GetGroupProperties: { inSignature: 'aias', outSignature: 'a(ia{sv})' },
    GetProperty: { inSignature: 'is', outSignature: 'v' },
    Event: { inSignature: 'isvu', outSignature: '' },
    EventGroup: { inSignature: 'a(isvu)', outSignature: 'ai' },
    AboutToShow: { inSignature: 'i', outSignature: 'b' },
    AboutToShowGroup: { inSignature: 'ai', outSignature: 'aiai' },
  },
  signals: {
    LayoutUpdated: { signature: 'ui' },
    ItemsPropertiesUpdated: { signature: 'a(ia{sv})a(ias)' },
  },
});
