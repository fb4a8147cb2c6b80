// Whether a click on the item is keytap's to answer, on a private session bus driven with gdbus as
// hosts drive it: swaybar calls ContextMenu (it cannot show dbusmenu menus); waybar-like hosts call
// Activate and show our menu (reading it with AboutToShow/GetLayout); others call Activate alone.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TrayModel } from '../../src/tray/model.js';
import { SniTrayBackend } from '../../src/tray/sni/backend.js';
import { MENU_READ_WINDOW_MS, hostLeavesMenuToUs } from '../../src/tray/sni/item-click.js';
import { ITEM_PATH, MENU_PATH } from '../../src/tray/sni/interfaces.js';
import { gdbusCall, hasCommand, startDbusDaemon, waitFor, type DbusDaemon } from '../tray/support.js';

describe('hostLeavesMenuToUs', () => {
  it('ContextMenu always; Activate only when the menu was not read within the window around it; nothing else', () => {
    expect(hostLeavesMenuToUs('ContextMenu', 10_000, 10_000)).toBe(true);
    expect(hostLeavesMenuToUs('Activate', 10_000, undefined)).toBe(true);
    expect(hostLeavesMenuToUs('Activate', 10_000, 10_000 + MENU_READ_WINDOW_MS)).toBe(false);
    expect(hostLeavesMenuToUs('Activate', 10_000, 10_000 - MENU_READ_WINDOW_MS)).toBe(false);
    expect(hostLeavesMenuToUs('Activate', 10_000, 10_000 - MENU_READ_WINDOW_MS - 1)).toBe(true);
    expect(hostLeavesMenuToUs('SecondaryActivate', 10_000, undefined)).toBe(false);
    expect(hostLeavesMenuToUs('Scroll', 10_000, undefined)).toBe(false);
  });
});

const missing = ['dbus-daemon', 'gdbus'].filter((c) => !hasCommand(c));
const suite = missing.length > 0 ? describe.skip : describe;

const model: TrayModel = { icon: 'key', tooltip: 'keytap', menu: [{ kind: 'item', id: 'code:1:GitHub:alice', label: 'GitHub: alice' }] };
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

suite('item clicks on a private session bus', () => {
  let daemon: DbusDaemon;
  let tray: SniTrayBackend;
  let wanted = 0;

  beforeAll(async () => {
    daemon = await startDbusDaemon();
    tray = new SniTrayBackend({ busAddress: daemon.address, retryMs: { first: 50, max: 400 }, log: () => undefined });
    await tray.render(model);
    await tray.start(() => undefined, undefined, () => wanted++);
  });
  afterAll(async () => {
    await tray.stop();
    daemon.cleanup();
  });

  const item = (method: string): Promise<unknown[]> => gdbusCall(daemon.address, tray.serviceName, ITEM_PATH, `org.kde.StatusNotifierItem.${method}`, '10', '20');

  it("ContextMenu (swaybar's left click) asks keytap for its own menu at once", async () => {
    const before = wanted;
    await item('ContextMenu');
    await waitFor(() => wanted === before + 1, 'onMenuWanted after ContextMenu', 2_000);
  });

  it('Activate alone asks for it once the window has passed', async () => {
    const before = wanted;
    await item('Activate');
    expect(wanted).toBe(before);
    await waitFor(() => wanted === before + 1, 'onMenuWanted after Activate', 3_000);
  });

  it('Activate followed by the host reading the menu (GetLayout, AboutToShow) is the host’s: nothing', async () => {
    const before = wanted;
    await item('Activate');
    await gdbusCall(daemon.address, tray.serviceName, MENU_PATH, 'com.canonical.dbusmenu.GetLayout', '0', '-1', '[]');
    await sleep(MENU_READ_WINDOW_MS + 500);
    expect(wanted).toBe(before);
    await gdbusCall(daemon.address, tray.serviceName, MENU_PATH, 'com.canonical.dbusmenu.AboutToShow', '0');
    await item('Activate');
    await sleep(MENU_READ_WINDOW_MS + 500);
    expect(wanted).toBe(before);
  });

  it('SecondaryActivate and Scroll ask for nothing', async () => {
    const before = wanted;
    await item('SecondaryActivate');
    await gdbusCall(daemon.address, tray.serviceName, ITEM_PATH, 'org.kde.StatusNotifierItem.Scroll', '1', 'vertical');
    await sleep(MENU_READ_WINDOW_MS + 500);
    expect(wanted).toBe(before);
  });
});
