// The dbusmenu view of a menu, without D-Bus: stable int ids, revision bumps only on change,
// property-only versus layout changes, click targets, labels with underscores.
import { describe, expect, it } from 'vitest';
import type { MenuNode } from '../../src/tray/model.js';
import { MenuLayout, escapeLabel, itemProps } from '../../src/tray/sni/menu-layout.js';

const menu = (): MenuNode[] => [
  { kind: 'item', id: 'a', label: 'A' },
  { kind: 'separator', id: 's' },
  { kind: 'item', id: 'sub', label: 'Sub', children: [{ kind: 'item', id: 'b', label: 'B', toggle: 'radio', checked: true }] },
  { kind: 'item', id: 'off', label: 'Off', enabled: false },
];

describe('MenuLayout', () => {
  it('gives each id an int id once, keeps it across renders, and 0 is the root', () => {
    const layout = new MenuLayout();
    layout.update(menu());
    const ids = ['a', 's', 'sub', 'b', 'off'].map((id) => layout.intIdOf(id));
    expect(new Set(ids).size).toBe(5);
    expect(ids).not.toContain(0);
    expect(layout.node(0)!.children.map((c) => c.id)).toEqual(['a', 's', 'sub', 'off']);

    // Remove 'a', add 'c' in front, bring 'a' back later: everything keeps or regains its id.
    layout.update([{ kind: 'item', id: 'c', label: 'C' }, ...menu().slice(1)]);
    expect(['s', 'sub', 'b', 'off'].map((id) => layout.intIdOf(id))).toEqual(ids.slice(1));
    layout.update(menu());
    expect(layout.intIdOf('a')).toBe(ids[0]);
    expect(layout.intIdOf('c')).not.toBe(ids[0]);
  });

  it('bumps the revision only on a change and says which kind', () => {
    const layout = new MenuLayout();
    expect(layout.update(menu()).kind).toBe('layout');
    const revision = layout.revision;
    expect(layout.update(menu())).toEqual({ kind: 'none' });
    expect(layout.revision).toBe(revision);

    const relabelled = menu();
    relabelled[0] = { kind: 'item', id: 'a', label: 'A2' };
    const change = layout.update(relabelled);
    expect(change).toEqual({ kind: 'properties', updated: [[layout.intIdOf('a'), itemProps(relabelled[0])]] });
    expect(layout.revision).toBe(revision + 1);

    const moved = menu().reverse();
    expect(layout.update(moved)).toEqual({ kind: 'layout', parent: 0 });
    expect(layout.revision).toBe(revision + 2);
  });

  it('reports clicks only for enabled leaf items, by our id', () => {
    const layout = new MenuLayout();
    layout.update(menu());
    expect(layout.clickTarget(layout.intIdOf('a')!)).toBe('a');
    expect(layout.clickTarget(layout.intIdOf('b')!)).toBe('b');
    expect(layout.clickTarget(layout.intIdOf('sub')!)).toBeUndefined();
    expect(layout.clickTarget(layout.intIdOf('off')!)).toBeUndefined();
    expect(layout.clickTarget(layout.intIdOf('s')!)).toBeUndefined();
    expect(layout.clickTarget(0)).toBeUndefined();
    expect(layout.clickTarget(999)).toBeUndefined();
  });

  it('keeps duplicate ids apart and still reports them by the given id', () => {
    const layout = new MenuLayout();
    layout.update([{ kind: 'item', id: 'x', label: 'one' }, { kind: 'item', id: 'x', label: 'two' }]);
    const [one, two] = layout.node(0)!.children;
    expect(one!.intId).not.toBe(two!.intId);
    expect(layout.clickTarget(two!.intId)).toBe('x');
  });

  it('writes dbusmenu properties', () => {
    expect(escapeLabel('alice_smith')).toBe('alice__smith');
    expect(itemProps({ kind: 'separator', id: 's' })).toEqual({ type: 'separator', visible: true, enabled: true });
    expect(itemProps({ kind: 'item', id: 'c', label: 'C', toggle: 'checkmark', checked: false })).toMatchObject({ 'toggle-type': 'checkmark', 'toggle-state': 0, 'children-display': '' });
    expect(itemProps({ kind: 'item', id: 'p', label: 'P' })).toMatchObject({ 'toggle-type': '', 'toggle-state': -1, enabled: true, visible: true });
  });
});
