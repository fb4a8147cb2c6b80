/**
 * What a tray shows: an icon, a tooltip and a menu tree. The app builds it from its state with a
 * pure function (app/menu-model.ts); a backend only renders it and reports clicks by item id.
 */

export type TrayIconName = 'idle' | 'key' | 'touch' | 'error';
export const TRAY_ICONS: readonly TrayIconName[] = ['idle', 'key', 'touch', 'error'];

export type MenuNode = MenuItem | MenuSeparator;

export interface MenuItem {
  kind: 'item';
  /** Stable across renders (e.g. `code:<keyId>:<credentialId>`); clicks are reported by it. */
  id: string;
  label: string;
  /** Greyed out and not clickable when false. Default true. */
  enabled?: boolean | undefined;
  /** A check box ('checkmark') or a radio button ('radio') showing `checked`. */
  toggle?: 'checkmark' | 'radio' | undefined;
  checked?: boolean | undefined;
  /** A submenu. An item with children is not clickable itself. */
  children?: MenuNode[] | undefined;
}

export interface MenuSeparator {
  kind: 'separator';
  id: string;
}

export interface TrayModel {
  icon: TrayIconName;
  /** One line; shown on hover where the host shows tooltips. */
  tooltip: string;
  menu: MenuNode[];
}

/** Whether the icon is shown: no-host, no tray host on the bus; no-bus, no session bus at all. */
export type TrayHostStatus = 'shown' | 'no-host' | 'no-bus';

export interface TrayBackend {
  /** "StatusNotifierItem", "systray2". */
  readonly name: string;
  /**
   * Shows the tray. `onClick` gets the id of a clicked item. `onStatus` tells when the tray host
   * (panel, StatusNotifierWatcher) goes away or comes back, or that there is no session bus to
   * find one on (`reason` then says why, for the one log line about it); the backend re-registers
   * by itself. `onMenuWanted`: the host left showing a menu to keytap (it cannot show the tray
   * menu itself, as swaybar cannot), so keytap offers the accounts its own way.
   */
  start(onClick: (id: string) => void, onStatus?: (status: TrayHostStatus, reason?: string) => void, onMenuWanted?: () => void): Promise<void>;
  /** Shows this model; cheap when nothing changed. */
  render(model: TrayModel): Promise<void>;
  stop(): Promise<void>;
}
