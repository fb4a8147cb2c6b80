/**
 * Whether a click on the item is keytap's to answer. ItemIsMenu is true, so a host that can show
 * com.canonical.dbusmenu menus shows ours and keytap does nothing more. swaybar cannot: a left
 * click calls ContextMenu, asking the item to show a menu of its own. Other hosts call Activate
 * on a left click; one that shows our menu for it reads the menu (AboutToShow, GetLayout) around
 * the same moment, and then the click is the host's, not ours (else the accounts would be offered twice).
 */

/** How far apart an Activate and the host's reading of the menu may be and still belong together. */
export const MENU_READ_WINDOW_MS = 500;

/**
 * `menuReadAt`: when a host last read the menu (ms, undefined: never); `clickAt`: when the method
 * was called. An Activate is decided once MENU_READ_WINDOW_MS has passed after it.
 */
export function hostLeavesMenuToUs(method: string, clickAt: number, menuReadAt: number | undefined): boolean {
  if (method === 'ContextMenu') return true;
  if (method !== 'Activate') return false;
  return menuReadAt === undefined || Math.abs(menuReadAt - clickAt) > MENU_READ_WINDOW_MS;
}
