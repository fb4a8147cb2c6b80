// The StatusNotifierItem backend on a private session bus, driven as a desktop shell drives it:
// a watcher that comes and goes, the menu read and clicked with gdbus, signals on re-render, the
// item's properties, and the bus itself dying and coming back.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { TrayModel } from '../../src/tray/model.js';
import { SniTrayBackend } from '../../src/tray/sni/backend.js';
import { MENU_PATH, ITEM_PATH } from '../../src/tray/sni/interfaces.js';
import { gdbusCall, hasCommand, listenSignals, startDbusDaemon, startWatcher, toMenuTree, waitFor, type DbusDaemon, type MenuTree, type TestWatcher } from '../tray/support.js';

const missing = ['dbus-daemon', 'gdbus'].filter((c) => !hasCommand(c));
const suite = missing.length > 0 ? describe.skip : describe;
if (missing.length > 0) console.warn(`skipping SNI tests: ${missing.join(', ')} not installed (apt-get install dbus libglib2.0-bin)`);

const model = (overrides: Partial<TrayModel> = {}): TrayModel => ({
  icon: 'key',
  tooltip: 'keytap — 1 key',
  menu: [
    { kind: 'item', id: 'key:1', label: 'Nitrokey 3 (serial 1234)', enabled: false },
    { kind: 'item', id: 'code:1:GitHub:alice', label: 'GitHub: alice_smith' },
    { kind: 'item', id: 'code:1:AWS:bob', label: 'AWS: bob (touch)' },
    { kind: 'separator', id: 'sep:1' },
    {
      kind: 'item',
      id: 'default',
      label: 'Default account for the shortcut',
      children: [
        { kind: 'item', id: 'default:GitHub:alice', label: 'GitHub: alice', toggle: 'radio', checked: true },
        { kind: 'item', id: 'default:AWS:bob', label: 'AWS: bob', toggle: 'radio', checked: false },
      ],
    },
    { kind: 'item', id: 'autostart', label: 'Start at login', toggle: 'checkmark', checked: false },
    { kind: 'separator', id: 'sep:2' },
    { kind: 'item', id: 'quit', label: 'Quit' },
  ],
  ...overrides,
});

function find(tree: MenuTree, label: string): MenuTree | undefined {
  if (tree.props.label === label) return tree;
  for (const child of tree.children) {
    const hit = find(child, label);
    if (hit) return hit;
  }
  return undefined;
}

suite('StatusNotifierItem backend on a private session bus', () => {
  let daemon: DbusDaemon;
  let watcher: TestWatcher | undefined;
  let tray: SniTrayBackend;
  const statuses: string[] = [];
  const clicks: string[] = [];
  const logs: string[] = [];

  beforeAll(async () => {
    daemon = await startDbusDaemon();
    tray = new SniTrayBackend({ busAddress: daemon.address, retryMs: { first: 50, max: 400 }, log: (line) => logs.push(line) });
    await tray.render(model());
  });
  afterEach(() => undefined);
  afterAll(async () => {
    await tray.stop();
    watcher?.stop();
    daemon.cleanup();
  });

  it('reports no-host without a watcher, then registers when one appears, and again after it restarts', async () => {
    await tray.start((id) => clicks.push(id), (status) => statuses.push(status));
    expect(statuses).toEqual(['no-host']);

    const registration = (async () => {
      watcher = await startWatcher(daemon.address);
      return watcher;
    })();
    const w = await registration;
    await waitFor(() => statuses.at(-1) === 'shown', "'shown' after the watcher appeared");
    expect(w.registered).toEqual([tray.serviceName]);

    w.stop();
    await waitFor(() => statuses.at(-1) === 'no-host', "'no-host' after the watcher left");
    watcher = await startWatcher(daemon.address);
    await waitFor(() => statuses.at(-1) === 'shown', "'shown' after the watcher came back");
    expect(watcher.registered).toEqual([tray.serviceName]);
    expect(statuses).toEqual(['no-host', 'shown', 'no-host', 'shown']);
  });

  it('serves the menu over com.canonical.dbusmenu as gdbus reads it', async () => {
    const [revision, layout] = await gdbusCall(daemon.address, tray.serviceName, MENU_PATH, 'com.canonical.dbusmenu.GetLayout', '0', '-1', '[]');
    expect(typeof revision).toBe('number');
    const root = toMenuTree(layout);
    expect(root.id).toBe(0);
    expect(root.props['children-display']).toBe('submenu');
    expect(root.children.map((c) => c.props.type === 'separator' ? '---' : c.props.label)).toEqual([
      'Nitrokey 3 (serial 1234)',
      'GitHub: alice__smith', // '_' is the mnemonic marker; a literal one is doubled
      'AWS: bob (touch)',
      '---',
      'Default account for the shortcut',
      'Start at login',
      '---',
      'Quit',
    ]);
    expect(root.children[0]!.props.enabled).toBe(false);
    expect(root.children[1]!.props.enabled).toBe(true);
    const submenu = find(root, 'Default account for the shortcut')!;
    expect(submenu.props['children-display']).toBe('submenu');
    expect(submenu.children.map((c) => [c.props.label, c.props['toggle-type'], c.props['toggle-state']])).toEqual([
      ['GitHub: alice', 'radio', 1],
      ['AWS: bob', 'radio', 0],
    ]);
    const autostart = find(root, 'Start at login')!;
    expect([autostart.props['toggle-type'], autostart.props['toggle-state']]).toEqual(['checkmark', 0]);
    const ids = [root.id, ...root.children.flatMap((c) => [c.id, ...c.children.map((g) => g.id)])];
    expect(new Set(ids).size).toBe(ids.length);

    // Depth 0: the node alone; property filter: only what was asked for.
    const [, shallow] = await gdbusCall(daemon.address, tray.serviceName, MENU_PATH, 'com.canonical.dbusmenu.GetLayout', String(submenu.id), '0', "['label']");
    const node = toMenuTree(shallow);
    expect(node.children).toEqual([]);
    expect(Object.keys(node.props)).toEqual(['label']);

    const [groups] = await gdbusCall(daemon.address, tray.serviceName, MENU_PATH, 'com.canonical.dbusmenu.GetGroupProperties', `[${autostart.id}]`, "['toggle-type']");
    expect(groups).toEqual([[autostart.id, { 'toggle-type': { variant: 'checkmark' } }]]);
    const [prop] = await gdbusCall(daemon.address, tray.serviceName, MENU_PATH, 'com.canonical.dbusmenu.GetProperty', String(autostart.id), 'label');
    expect(prop).toEqual({ variant: 'Start at login' });
    const [needUpdate] = await gdbusCall(daemon.address, tray.serviceName, MENU_PATH, 'com.canonical.dbusmenu.AboutToShow', '0');
    expect(needUpdate).toBe(false);
    const [updates, errors] = await gdbusCall(daemon.address, tray.serviceName, MENU_PATH, 'com.canonical.dbusmenu.AboutToShowGroup', `[0, ${submenu.id}, 9999]`);
    expect([updates, errors]).toEqual([[], [9999]]);
    const [version] = await gdbusCall(daemon.address, tray.serviceName, MENU_PATH, 'org.freedesktop.DBus.Properties.Get', 'com.canonical.dbusmenu', 'Version');
    expect(version).toEqual({ variant: 3 });
    await expect(gdbusCall(daemon.address, tray.serviceName, MENU_PATH, 'com.canonical.dbusmenu.GetLayout', '9999', '-1', '[]')).rejects.toThrow(/InvalidArgs/);
  });

  it('reports clicks by our string ids; disabled items, submenus and other events report nothing', async () => {
    const [, layout] = await gdbusCall(daemon.address, tray.serviceName, MENU_PATH, 'com.canonical.dbusmenu.GetLayout', '0', '-1', '[]');
    const root = toMenuTree(layout);
    const github = find(root, 'GitHub: alice__smith')!;
    const bob = find(root, 'AWS: bob')!;
    clicks.length = 0;
    await gdbusCall(daemon.address, tray.serviceName, MENU_PATH, 'com.canonical.dbusmenu.Event', String(github.id), 'clicked', '<0>', '0');
    await waitFor(() => clicks.length === 1, 'the click');
    expect(clicks).toEqual(['code:1:GitHub:alice']);

    await gdbusCall(daemon.address, tray.serviceName, MENU_PATH, 'com.canonical.dbusmenu.Event', String(root.children[0]!.id), 'clicked', '<0>', '0'); // disabled
    await gdbusCall(daemon.address, tray.serviceName, MENU_PATH, 'com.canonical.dbusmenu.Event', String(find(root, 'Default account for the shortcut')!.id), 'clicked', '<0>', '0'); // submenu
    await gdbusCall(daemon.address, tray.serviceName, MENU_PATH, 'com.canonical.dbusmenu.Event', String(github.id), 'hovered', '<0>', '0');
    const [idErrors] = await gdbusCall(daemon.address, tray.serviceName, MENU_PATH, 'com.canonical.dbusmenu.EventGroup', `[(${bob.id}, 'clicked', <0>, uint32 0), (4242, 'clicked', <0>, uint32 0)]`);
    expect(idErrors).toEqual([4242]);
    await waitFor(() => clicks.length === 2, 'the grouped click');
    expect(clicks).toEqual(['code:1:GitHub:alice', 'default:AWS:bob']);
    await expect(gdbusCall(daemon.address, tray.serviceName, MENU_PATH, 'com.canonical.dbusmenu.Event', '4242', 'clicked', '<0>', '0')).rejects.toThrow(/InvalidArgs/);
  });

  it('a re-render signals only what changed: properties in place, layout with a new revision, same ids', async () => {
    const menuSignals = await listenSignals(daemon.address, 'com.canonical.dbusmenu');
    const itemSignals = await listenSignals(daemon.address, 'org.kde.StatusNotifierItem');
    try {
      const read = async () => {
        const [revision, layout] = await gdbusCall(daemon.address, tray.serviceName, MENU_PATH, 'com.canonical.dbusmenu.GetLayout', '0', '-1', '[]');
        return { revision: revision as number, root: toMenuTree(layout) };
      };
      const before = await read();

      // The same model: no signal, same revision.
      await tray.render(model());
      expect((await read()).revision).toBe(before.revision);

      // A label and a check mark: ItemsPropertiesUpdated, no LayoutUpdated.
      const relabelled = model();
      relabelled.menu[2] = { kind: 'item', id: 'code:1:AWS:bob', label: 'AWS: bob — touch your key' };
      relabelled.menu[5] = { kind: 'item', id: 'autostart', label: 'Start at login', toggle: 'checkmark', checked: true };
      const propsSignal = menuSignals.next('ItemsPropertiesUpdated');
      await tray.render(relabelled);
      const [updated] = (await propsSignal).body as [Array<[number, Record<string, { value: unknown }>]>];
      const bobId = find(before.root, 'AWS: bob (touch)')!.id;
      const autostartId = find(before.root, 'Start at login')!.id;
      expect(updated.map(([id]) => id).sort()).toEqual([bobId, autostartId].sort());
      expect(updated.find(([id]) => id === autostartId)![1]['toggle-state']!.value).toBe(1);
      expect(menuSignals.signals.filter((s) => s.member === 'LayoutUpdated')).toEqual([]);

      // A second key's section: LayoutUpdated with a new revision; the old items keep their ids.
      const twoKeys = model();
      twoKeys.menu.splice(3, 0,
        { kind: 'separator', id: 'sep:key2' },
        { kind: 'item', id: 'key:2', label: 'YubiKey 5 (serial 5678)', enabled: false },
        { kind: 'item', id: 'code:2:GitLab:carol', label: 'GitLab: carol' },
      );
      const layoutSignal = menuSignals.next('LayoutUpdated');
      await tray.render(twoKeys);
      const [revision, parent] = (await layoutSignal).body as [number, number];
      expect(parent).toBe(0);
      const after = await read();
      expect(after.revision).toBe(revision);
      expect(revision).toBeGreaterThan(before.revision);
      for (const label of ['Nitrokey 3 (serial 1234)', 'GitHub: alice__smith', 'Quit', 'AWS: bob']) {
        expect(find(after.root, label)!.id, label).toBe(find(before.root, label)!.id);
      }
      expect(find(after.root, 'GitLab: carol')).toBeDefined();

      // Icon and tooltip: NewIcon, NewAttentionIcon, NewStatus, NewToolTip.
      const newStatus = itemSignals.next('NewStatus');
      const newToolTip = itemSignals.next('NewToolTip');
      await tray.render({ ...twoKeys, icon: 'touch', tooltip: 'keytap — touch your key' });
      expect((await newStatus).body).toEqual(['NeedsAttention']);
      await newToolTip;
      expect(itemSignals.signals.map((s) => s.member)).toEqual(expect.arrayContaining(['NewIcon', 'NewAttentionIcon']));
    } finally {
      menuSignals.stop();
      itemSignals.stop();
    }
  });

  it('exposes the StatusNotifierItem properties', async () => {
    await tray.render(model({ icon: 'key', tooltip: 'keytap — 1 key' }));
    const get = async (name: string) => {
      const [value] = await gdbusCall(daemon.address, tray.serviceName, ITEM_PATH, 'org.freedesktop.DBus.Properties.Get', 'org.kde.StatusNotifierItem', name);
      return (value as { variant: unknown }).variant;
    };
    expect(await get('Category')).toBe('ApplicationStatus');
    expect(await get('Id')).toBe('keytap');
    expect(await get('Status')).toBe('Active');
    expect(await get('ItemIsMenu')).toBe(true);
    expect(await get('Menu')).toBe(MENU_PATH);
    expect(await get('ToolTip')).toEqual(['', [], 'keytap — 1 key', '']);
    const pixmaps = (await get('IconPixmap')) as Array<[number, number, number[]]>;
    expect(pixmaps.map(([w, h]) => `${w}x${h}`)).toEqual(['16x16', '22x22', '24x24', '32x32', '48x48', '64x64']);
    for (const [w, h, bytes] of pixmaps) expect(bytes.length).toBe(w * h * 4);
    // ARGB32, network byte order: the centre of the bow's rim is opaque blue (A=255, B > R).
    const [, , px16] = pixmaps[0]!;
    const opaque = [];
    for (let i = 0; i < px16.length; i += 4) if (px16[i] === 255) opaque.push(px16.slice(i, i + 4));
    expect(opaque.length).toBeGreaterThan(20);
    expect(opaque.every(([, r, , b]) => b! > r!)).toBe(true);

    await tray.render(model({ icon: 'touch' }));
    expect(await get('Status')).toBe('NeedsAttention');
    expect(((await get('AttentionIconPixmap')) as unknown[]).length).toBe(6);

    // Activate etc. are answered (the host opens the menu itself: ItemIsMenu).
    for (const method of ['Activate', 'SecondaryActivate', 'ContextMenu']) {
      await gdbusCall(daemon.address, tray.serviceName, ITEM_PATH, `org.kde.StatusNotifierItem.${method}`, '10', '10');
    }
    await gdbusCall(daemon.address, tray.serviceName, ITEM_PATH, 'org.kde.StatusNotifierItem.Scroll', '1', 'vertical');
  });

  it('survives the session bus dying and registers again on a new one', async () => {
    const registered = statuses.length;
    const newDaemon = await daemon.restart();
    daemon = newDaemon;
    await waitFor(() => statuses.length > registered && statuses.at(-1) === 'no-host', "'no-host' after the bus died");
    watcher = await startWatcher(daemon.address);
    await waitFor(() => statuses.at(-1) === 'shown', "'shown' on the new bus", 10_000);
    expect(watcher.registered).toEqual([tray.serviceName]);
    const [, layout] = await gdbusCall(daemon.address, tray.serviceName, MENU_PATH, 'com.canonical.dbusmenu.GetLayout', '0', '-1', '[]');
    expect(find(toMenuTree(layout), 'Quit')).toBeDefined();
    expect(logs.some((l) => /reconnect|session bus/.test(l))).toBe(true);
  });
});
