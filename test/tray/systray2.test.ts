// The systray2 backend's pure parts (model → systray2 items with the __ids systray2 gives them,
// shape comparison, in-place changes) and its flow against a fake SysTray: update-item when only
// labels or marks change, a new helper when the structure changes, clicks mapped back to our ids.
import type { Action, ClickEvent, Conf } from 'systray2';
import { describe, expect, it } from 'vitest';
import { directoryIconSource, findIconsDir } from '../../src/tray/icons.js';
import type { MenuNode, TrayModel } from '../../src/tray/model.js';
import { SEPARATOR_TITLE, Systray2TrayBackend, changedItems, loadSysTray, menuShape, planMenu, type SysTrayInstance } from '../../src/tray/systray2.js';

const menu = (): MenuNode[] => [
  { kind: 'item', id: 'key:1', label: 'Nitrokey 3', enabled: false },
  { kind: 'item', id: 'code:a', label: 'A' },
  { kind: 'separator', id: 'sep' },
  {
    kind: 'item',
    id: 'default',
    label: 'Default',
    children: [
      { kind: 'item', id: 'default:a', label: 'A', toggle: 'radio', checked: true },
      { kind: 'item', id: 'default:b', label: 'B', toggle: 'radio', checked: false },
    ],
  },
  { kind: 'item', id: 'autostart', label: 'Start at login', toggle: 'checkmark', checked: false },
  { kind: 'item', id: 'quit', label: 'Quit' },
];

describe('planMenu', () => {
  it('numbers items depth-first from 1, as systray2 does, and maps clickable ones back to our ids', () => {
    const plan = planMenu(menu());
    const flat = (items: typeof plan.items): Array<[number, string]> => items.flatMap((i) => [[i.__id, i.title] as [number, string], ...flat(i.items ?? [])]);
    expect(flat(plan.items)).toEqual([
      [1, 'Nitrokey 3'], [2, 'A'], [3, SEPARATOR_TITLE], [4, 'Default'], [5, 'A'], [6, 'B'], [7, 'Start at login'], [8, 'Quit'],
    ]);
    expect([...plan.clickIds]).toEqual([[2, 'code:a'], [5, 'default:a'], [6, 'default:b'], [7, 'autostart'], [8, 'quit']]);
    expect(plan.items[0]!.enabled).toBe(false);
    expect(plan.items[3]!.items!.map((i) => i.checked)).toEqual([true, false]);
  });

  it('compares shapes and lists only the items that changed', () => {
    const before = planMenu(menu());
    const relabelled = menu();
    relabelled[1] = { kind: 'item', id: 'code:a', label: 'A — code copied' };
    relabelled[4] = { kind: 'item', id: 'autostart', label: 'Start at login', toggle: 'checkmark', checked: true };
    const after = planMenu(relabelled);
    expect(after.shape).toBe(before.shape);
    expect(changedItems(before, after).map((i) => i.__id)).toEqual([2, 7]);
    expect(changedItems(before, planMenu(menu()))).toEqual([]);

    const twoKeys: MenuNode[] = [...menu().slice(0, 2), { kind: 'separator', id: 's2' }, { kind: 'item', id: 'key:2', label: 'YubiKey' }, ...menu().slice(2)];
    expect(menuShape(twoKeys)).not.toBe(before.shape);
    expect(menuShape([{ kind: 'item', id: 'x', label: 'X', children: [] }])).toBe(menuShape([{ kind: 'item', id: 'y', label: 'Y' }]));
    expect(() => changedItems(before, planMenu(twoKeys))).toThrow(/shapes/);
  });
});

class FakeSysTray implements SysTrayInstance {
  static instances: FakeSysTray[] = [];
  readonly actions: Action[] = [];
  killed = false;
  private clickListener: ((action: ClickEvent) => void) | undefined;
  private exitListener: ((code: number | null, signal: string | null) => void) | undefined;
  constructor(readonly conf: Conf) {
    FakeSysTray.instances.push(this);
  }
  ready() {
    return Promise.resolve();
  }
  onClick(listener: (action: ClickEvent) => void) {
    this.clickListener = listener;
    return Promise.resolve(this);
  }
  sendAction(action: Action) {
    this.actions.push(structuredClone(action));
    return Promise.resolve(this);
  }
  kill(exitNode?: boolean) {
    expect(exitNode).toBe(false); // true would exit keytap itself
    this.killed = true;
    this.exitListener?.(0, null);
    return Promise.resolve();
  }
  onExit(listener: (code: number | null, signal: string | null) => void) {
    this.exitListener = listener;
  }
  onError() {}
  click(__id: number) {
    this.clickListener!({ type: 'clicked', item: { title: '', tooltip: '' }, seq_id: __id - 1, __id });
  }
  crash() {
    this.exitListener!(1, null);
  }
}

const icons = directoryIconSource(findIconsDir()!);
const model = (menuNodes = menu(), overrides: Partial<TrayModel> = {}): TrayModel => ({ icon: 'key', tooltip: 'keytap — 1 key', menu: menuNodes, ...overrides });

describe('Systray2TrayBackend (fake helper)', () => {
  it('starts with the .ico on Windows and the template PNG on macOS, without a title', async () => {
    for (const [platform, file] of [['win32', 'key.ico'], ['darwin', 'keyTemplate@2x.png']] as const) {
      FakeSysTray.instances = [];
      const tray = new Systray2TrayBackend({ platform, icons, load: () => Promise.resolve(FakeSysTray), log: () => undefined });
      await tray.render(model());
      const statuses: string[] = [];
      await tray.start(() => undefined, (s) => statuses.push(s));
      const { conf } = FakeSysTray.instances[0]!;
      expect(Buffer.from(conf.menu.icon, 'base64').equals(icons.read(file)!)).toBe(true);
      expect(conf.menu.isTemplateIcon).toBe(platform === 'darwin');
      expect(conf.menu.title).toBe('');
      expect(conf.menu.tooltip).toBe('keytap — 1 key');
      expect(statuses).toEqual(['shown']);
      await tray.stop();
      expect(FakeSysTray.instances[0]!.killed).toBe(true);
    }
  });

  it('updates items in place, rebuilds on a structure change, and maps clicks to our ids', async () => {
    FakeSysTray.instances = [];
    const clicks: string[] = [];
    const tray = new Systray2TrayBackend({ platform: 'win32', icons, load: () => Promise.resolve(FakeSysTray), log: () => undefined });
    await tray.render(model());
    await tray.start((id) => clicks.push(id));
    const first = FakeSysTray.instances[0]!;
    first.click(2);
    first.click(1); // disabled title: nothing
    first.click(4); // submenu parent: nothing
    first.click(6);
    expect(clicks).toEqual(['code:a', 'default:b']);

    // Same structure: update-item for the changed item only; a new icon: update-menu.
    const relabelled = menu();
    relabelled[1] = { kind: 'item', id: 'code:a', label: 'A — touch your key' };
    await tray.render(model(relabelled, { icon: 'touch' }));
    expect(FakeSysTray.instances).toHaveLength(1);
    expect(first.actions.map((a) => a.type)).toEqual(['update-item', 'update-menu']);
    const update = first.actions[0] as Extract<Action, { type: 'update-item' }>;
    expect(update.item).toMatchObject({ title: 'A — touch your key', __id: 2 });
    expect(update.seq_id).toBe(-1);
    const menuUpdate = first.actions[1] as Extract<Action, { type: 'update-menu' }>;
    expect(Buffer.from(menuUpdate.menu.icon, 'base64').equals(icons.read('touch.ico')!)).toBe(true);

    // Same model again: nothing sent.
    await tray.render(model(relabelled, { icon: 'touch' }));
    expect(first.actions).toHaveLength(2);

    // A second key: a new helper with the new menu; the old one is killed; ids follow the new numbering.
    const twoKeys: MenuNode[] = [{ kind: 'item', id: 'code:yk', label: 'YubiKey: B' }, { kind: 'separator', id: 's2' }, ...menu()];
    await tray.render(model(twoKeys));
    expect(first.killed).toBe(true);
    expect(FakeSysTray.instances).toHaveLength(2);
    const second = FakeSysTray.instances[1]!;
    expect(second.conf.menu.items.map((i) => i.title).slice(0, 3)).toEqual(['YubiKey: B', SEPARATOR_TITLE, 'Nitrokey 3']);
    clicks.length = 0;
    second.click(1);
    second.click(4);
    first.click(2); // the old helper is gone: ignored
    expect(clicks).toEqual(['code:yk', 'code:a']);
    await tray.stop();
  });

  it('starts the helper again when it dies, and reports no-host meanwhile', async () => {
    FakeSysTray.instances = [];
    const statuses: string[] = [];
    const tray = new Systray2TrayBackend({ platform: 'darwin', icons, load: () => Promise.resolve(FakeSysTray), log: () => undefined });
    await tray.start(() => undefined, (s) => statuses.push(s));
    await tray.render(model()); // a new structure: a second helper, silently
    expect(FakeSysTray.instances).toHaveLength(2);
    FakeSysTray.instances[1]!.crash();
    expect(statuses).toEqual(['shown', 'no-host']);
    await new Promise((r) => setTimeout(r, 1_300));
    expect(FakeSysTray.instances).toHaveLength(3);
    expect(FakeSysTray.instances[2]!.conf.menu.items).toHaveLength(menu().length);
    expect(statuses).toEqual(['shown', 'no-host', 'shown']);
    await tray.stop();
  });

  it('a helper that never gets ready is reported, not awaited forever', async () => {
    class NeverReady extends FakeSysTray {
      override ready() {
        return new Promise<void>(() => undefined);
      }
    }
    const statuses: string[] = [];
    const logs: string[] = [];
    const tray = new Systray2TrayBackend({ platform: 'win32', icons, readyTimeoutMs: 50, load: () => Promise.resolve(NeverReady), log: (l) => logs.push(l) });
    await tray.start(() => undefined, (s) => statuses.push(s));
    expect(statuses).toEqual(['no-host']);
    expect(logs.join('\n')).toMatch(/did not start within 50 ms/);
    await tray.stop();
  });

  it('loads the real systray2 class with import() (without starting its helper)', async () => {
    const SysTray = await loadSysTray();
    expect(typeof SysTray).toBe('function');
    expect((SysTray as unknown as { separator: { title: string } }).separator.title).toBe(SEPARATOR_TITLE);
  });
});
