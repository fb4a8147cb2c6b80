/**
 * The com.canonical.dbusmenu view of a TrayModel menu, without any D-Bus: int32 ids that stay the
 * same for the same MenuItem id across renders (0 is the root), item properties as dbusmenu names
 * them, the layout revision, and what changed between two renders (nothing, only properties, or
 * the layout) so the interface emits the right signal and bumps the revision only on a change.
 */
import type { MenuNode } from '../model.js';

/** A dbusmenu property value; the interface sends booleans as 'b', numbers as 'i', strings as 's'. */
export type MenuPropValue = boolean | number | string;
export type MenuProps = Record<string, MenuPropValue>;

export interface LayoutNode {
  readonly intId: number;
  /** Our MenuItem/MenuSeparator id ('' for the root). */
  readonly id: string;
  readonly props: MenuProps;
  readonly children: LayoutNode[];
  /** An enabled item without children: a 'clicked' event on it is reported. */
  readonly clickable: boolean;
}

export type LayoutChange =
  | { kind: 'none' }
  | { kind: 'properties'; updated: Array<[number, MenuProps]> }
  | { kind: 'layout'; parent: number };

/** dbusmenu labels mark the access key with '_'; a literal underscore is written '__'. */
export function escapeLabel(label: string): string {
  return label.replace(/_/g, '__');
}

export function itemProps(node: MenuNode): MenuProps {
  if (node.kind === 'separator') return { type: 'separator', visible: true, enabled: true };
  // Every key is always present, so a change never needs the "removed properties" half of
  // ItemsPropertiesUpdated: values the spec gives defaults for are sent explicitly.
  return {
    type: 'standard',
    label: escapeLabel(node.label),
    enabled: node.enabled ?? true,
    visible: true,
    'toggle-type': node.toggle ?? '',
    'toggle-state': node.toggle ? (node.checked ? 1 : 0) : -1,
    'children-display': node.children && node.children.length > 0 ? 'submenu' : '',
  };
}

const ROOT_PROPS: MenuProps = { 'children-display': 'submenu' };

export class MenuLayout {
  private readonly intIds = new Map<string, number>();
  private nextIntId = 1;
  private root: LayoutNode = { intId: 0, id: '', props: ROOT_PROPS, children: [], clickable: false };
  private byIntId = new Map<number, LayoutNode>([[0, this.root]]);
  private revisionValue = 1;

  /** The layout revision (uint32); it changes exactly when update() reports a change. */
  get revision(): number {
    return this.revisionValue;
  }

  /** The int id our MenuItem id has (or had); stable for the life of this layout. */
  intIdOf(id: string): number | undefined {
    return this.intIds.get(id);
  }

  node(intId: number): LayoutNode | undefined {
    return this.byIntId.get(intId);
  }

  /** Our id of the item a 'clicked' event on intId means, or undefined when that click means nothing. */
  clickTarget(intId: number): string | undefined {
    const node = this.byIntId.get(intId);
    return node?.clickable ? node.id : undefined;
  }

  update(menu: readonly MenuNode[]): LayoutChange {
    const byIntId = new Map<number, LayoutNode>();
    const seen = new Map<string, number>();
    const build = (nodes: readonly MenuNode[]): LayoutNode[] =>
      nodes.map((node) => {
        // A model with a duplicate id is a bug elsewhere; give the copy its own int id rather than
        // merging two items, and still report clicks on it by the id the model gave.
        const count = seen.get(node.id) ?? 0;
        seen.set(node.id, count + 1);
        const key = count === 0 ? node.id : `${node.id}\u0000${count}`;
        let intId = this.intIds.get(key);
        if (intId === undefined) {
          intId = this.nextIntId++;
          this.intIds.set(key, intId);
        }
        const children = node.kind === 'item' && node.children ? build(node.children) : [];
        const built: LayoutNode = {
          intId,
          id: node.id,
          props: itemProps(node),
          children,
          clickable: node.kind === 'item' && (node.enabled ?? true) && children.length === 0,
        };
        byIntId.set(intId, built);
        return built;
      });
    const root: LayoutNode = { intId: 0, id: '', props: ROOT_PROPS, children: build(menu), clickable: false };
    byIntId.set(0, root);

    const change = diff(this.root, root);
    this.root = root;
    this.byIntId = byIntId;
    if (change.kind !== 'none') this.revisionValue = (this.revisionValue % 0xffffffff) + 1;
    return change;
  }
}

function shape(node: LayoutNode): string {
  return `${node.intId}${node.props.type === 'separator' ? 's' : ''}(${node.children.map(shape).join(',')})`;
}

function sameProps(a: MenuProps, b: MenuProps): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}

function diff(before: LayoutNode, after: LayoutNode): LayoutChange {
  if (shape(before) !== shape(after)) return { kind: 'layout', parent: 0 };
  const updated: Array<[number, MenuProps]> = [];
  const walk = (a: LayoutNode, b: LayoutNode): void => {
    if (!sameProps(a.props, b.props)) updated.push([b.intId, b.props]);
    a.children.forEach((child, i) => walk(child, b.children[i]!));
  };
  walk(before, after);
  return updated.length > 0 ? { kind: 'properties', updated } : { kind: 'none' };
}
