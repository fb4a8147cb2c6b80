/**
 * The Windows and macOS tray on systray2 (a Go helper, getlantern/systray, spoken to in JSON lines
 * over stdin/stdout). Loaded with import() so Linux never loads it.
 *
 * What the helper can do decides the design. Its items are created once, from the menu given at
 * start; 'update-item' changes an item's title, check mark and enabled state in place (found by
 * the `__id` systray2 numbers items with, depth-first from 1); 'update-menu' changes only the
 * icon, title and tooltip — the helper ignores the items in it (systray-portable tray.go
 * updateMenu). So: same menu structure → update-item for the items that changed; a different
 * structure (a key plugged in or pulled out) → a new helper process with the new menu.
 */
import type { Action, ClickEvent, Conf, Menu as SysTrayMenu, MenuItem as SysTrayMenuItem } from 'systray2';
import { defaultIconSource, iconFileName, type IconSource } from './icons.js';
import type { MenuNode, TrayBackend, TrayIconName, TrayModel } from './model.js';

export const SEPARATOR_TITLE = '<SEPARATOR>';

/** An item as systray2 sends it to the helper, with the `__id` it would number it with. */
export interface SysTrayItemJson extends SysTrayMenuItem {
  __id: number;
  items?: SysTrayItemJson[];
}

export interface SysTrayMenuPlan {
  items: SysTrayItemJson[];
  /** `__id` → our item id, for enabled leaf items only (what a click may report). */
  clickIds: Map<number, string>;
  /** Kinds and nesting only; equal shapes can be updated in place. */
  shape: string;
}

/** The model's menu as systray2 items, numbered exactly as systray2's addInternalId does. */
export function planMenu(menu: readonly MenuNode[]): SysTrayMenuPlan {
  let next = 1;
  const clickIds = new Map<number, string>();
  const convert = (node: MenuNode): SysTrayItemJson => {
    const __id = next++;
    if (node.kind === 'separator') return { title: SEPARATOR_TITLE, tooltip: '', enabled: true, checked: false, __id };
    const children = node.children && node.children.length > 0 ? node.children.map(convert) : undefined;
    const enabled = node.enabled ?? true;
    if (enabled && !children) clickIds.set(__id, node.id);
    const item: SysTrayItemJson = {
      title: node.label,
      tooltip: '',
      // systray2 has one kind of mark; a radio item shows a check mark when it is the chosen one.
      checked: node.toggle !== undefined && node.checked === true,
      enabled,
      __id,
    };
    if (children) item.items = children;
    return item;
  };
  const items = menu.map(convert);
  return { items, clickIds, shape: menuShape(menu) };
}

export function menuShape(menu: readonly MenuNode[]): string {
  return menu.map((n) => (n.kind === 'separator' ? 's' : n.children && n.children.length > 0 ? `i(${menuShape(n.children)})` : 'i')).join(',');
}

/** Items of `after` whose title, check mark or enabled state differ from `before` (same shape). */
export function changedItems(before: SysTrayMenuPlan, after: SysTrayMenuPlan): SysTrayItemJson[] {
  if (before.shape !== after.shape) throw new Error('menus of different shapes cannot be updated in place');
  const changed: SysTrayItemJson[] = [];
  const walk = (a: SysTrayItemJson[], b: SysTrayItemJson[]): void => {
    b.forEach((item, i) => {
      const old = a[i]!;
      if (old.title !== item.title || old.checked !== item.checked || old.enabled !== item.enabled) changed.push(item);
      if (item.items) walk(old.items ?? [], item.items);
    });
  };
  walk(before.items, after.items);
  return changed;
}

type SysTrayConstructor = new (conf: Conf) => SysTrayInstance;
/** The part of a SysTray instance this backend uses (a fake can stand in for it in tests). */
export interface SysTrayInstance {
  ready(): Promise<void>;
  onClick(listener: (action: ClickEvent) => void): Promise<unknown>;
  sendAction(action: Action): Promise<unknown>;
  kill(exitNode?: boolean): Promise<void>;
  onExit(listener: (code: number | null, signal: string | null) => void): void;
  onError(listener: (error: Error) => void): void;
}

export async function loadSysTray(): Promise<SysTrayConstructor> {
  const mod = (await import('systray2')) as unknown as { default?: unknown };
  // systray2 is CommonJS with exports.default: Node's ESM loader gives module.exports as default,
  // esbuild's interop gives exports.default; take whichever is the class.
  let ctor = mod.default;
  if (typeof ctor !== 'function') ctor = (ctor as { default?: unknown } | undefined)?.default;
  if (typeof ctor !== 'function') throw new Error('systray2 did not export its SysTray class');
  return ctor as SysTrayConstructor;
}

export interface Systray2Options {
  icons?: IconSource;
  platform?: NodeJS.Platform;
  log?: (line: string) => void;
  /** How long the helper may take to say "ready". */
  readyTimeoutMs?: number;
  /** systray2's copyDir: copy the helper out of a packed bundle before running it. */
  copyDir?: boolean | string;
  /** Replaces loading systray2 (tests). */
  load?: () => Promise<SysTrayConstructor>;
}

const IDLE_MODEL: TrayModel = { icon: 'idle', tooltip: 'keytap', menu: [] };

export class Systray2TrayBackend implements TrayBackend {
  readonly name = 'systray2';
  private readonly platform: NodeJS.Platform;
  private readonly log: (line: string) => void;
  private readonly icons: IconSource;
  private readonly iconCache = new Map<TrayIconName, string>();
  private onClick: (id: string) => void = () => undefined;
  private onStatus: (status: 'shown' | 'no-host') => void = () => undefined;
  private model: TrayModel = IDLE_MODEL;
  private shown: { tray: SysTrayInstance; plan: SysTrayMenuPlan; icon: TrayIconName; tooltip: string } | undefined;
  private lastStatus: 'shown' | 'no-host' | undefined;
  private started = false;
  private stopped = false;
  /** Renders run one after another: a respawn must finish before the next update. */
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly options: Systray2Options = {}) {
    this.platform = options.platform ?? process.platform;
    this.log = options.log ?? ((line) => console.error(`keytap tray: ${line}`));
    this.icons = options.icons ?? defaultIconSource();
  }

  start(onClick: (id: string) => void, onStatus?: (status: 'shown' | 'no-host') => void): Promise<void> {
    if (this.started) return Promise.reject(new Error('the tray is already started'));
    this.started = true;
    this.onClick = onClick;
    if (onStatus) this.onStatus = onStatus;
    return this.enqueue(() => this.spawn(this.model));
  }

  render(model: TrayModel): Promise<void> {
    this.model = model;
    if (!this.started) return Promise.resolve();
    return this.enqueue(() => this.apply(model));
  }

  stop(): Promise<void> {
    this.stopped = true;
    return this.enqueue(async () => {
      const shown = this.shown;
      this.shown = undefined;
      if (shown) await this.kill(shown.tray);
    });
  }

  private enqueue(task: () => Promise<void>): Promise<void> {
    const run = this.queue.then(task).catch((error: unknown) => this.log(`tray update failed: ${describe(error)}`));
    this.queue = run;
    return run;
  }

  private async apply(model: TrayModel): Promise<void> {
    if (this.stopped) return;
    // Always render the latest model: renders queued behind a slow respawn collapse into one.
    if (model !== this.model) return;
    const shown = this.shown;
    if (!shown) return this.spawn(model);
    const plan = planMenu(model.menu);
    if (plan.shape !== shown.plan.shape) {
      this.shown = undefined; // before kill(): its exit must not look like a crash
      await this.kill(shown.tray);
      return this.spawn(model);
    }
    for (const item of changedItems(shown.plan, plan)) {
      await shown.tray.sendAction({ type: 'update-item', item, seq_id: -1 });
    }
    if (model.icon !== shown.icon || model.tooltip !== shown.tooltip) {
      await shown.tray.sendAction({ type: 'update-menu', menu: this.systrayMenu(model, plan) });
    }
    this.shown = { tray: shown.tray, plan, icon: model.icon, tooltip: model.tooltip };
  }

  private systrayMenu(model: TrayModel, plan: SysTrayMenuPlan): SysTrayMenu {
    return {
      icon: this.iconBase64(model.icon),
      isTemplateIcon: this.platform === 'darwin',
      // On macOS a title would be drawn next to the icon in the menu bar.
      title: '',
      tooltip: model.tooltip,
      items: plan.items,
    };
  }

  private async spawn(model: TrayModel): Promise<void> {
    if (this.stopped) return;
    const SysTray = await (this.options.load ?? loadSysTray)();
    const plan = planMenu(model.menu);
    const tray = new SysTray({ menu: this.systrayMenu(model, plan), debug: false, copyDir: this.options.copyDir ?? false });
    const timeoutMs = this.options.readyTimeoutMs ?? 10_000;
    let timer: NodeJS.Timeout | undefined;
    try {
      // The Linux helper, missing its libraries, never says ready (systray2 issue #13): bound the wait.
      await Promise.race([
        tray.ready(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`the systray2 helper did not start within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } catch (error) {
      this.log(describe(error));
      this.onStatusSafe('no-host');
      await this.kill(tray);
      return;
    } finally {
      clearTimeout(timer);
    }
    this.shown = { tray, plan, icon: model.icon, tooltip: model.tooltip };
    // onExit/onError need the child process, which exists only once ready() resolved.
    tray.onError((error) => this.log(`systray2 helper: ${error.message}`));
    tray.onExit((code, signal) => {
      if (this.shown?.tray !== tray) return; // replaced or stopped on purpose
      this.shown = undefined;
      this.log(`the systray2 helper exited (${signal ?? `code ${code}`}); starting it again`);
      this.onStatusSafe('no-host');
      const retry = setTimeout(() => void this.enqueue(() => this.spawn(this.model)), 1_000);
      retry.unref();
    });
    tray
      .onClick((action) => {
        if (this.shown?.tray !== tray) return;
        const id = this.shown.plan.clickIds.get(action.__id);
        if (id === undefined) return;
        try {
          this.onClick(id);
        } catch (error) {
          this.log(`menu click on ${id} failed: ${describe(error)}`);
        }
      })
      .catch((error: unknown) => this.log(`systray2 clicks: ${describe(error)}`));
    this.onStatusSafe('shown');
  }

  private async kill(tray: SysTrayInstance): Promise<void> {
    try {
      // kill() waits for the helper's exit, which a hung helper may never report.
      await Promise.race([tray.kill(false), new Promise<void>((resolve) => setTimeout(resolve, 2_000).unref())]);
    } catch (error) {
      this.log(`cannot stop the systray2 helper: ${describe(error)}`);
    }
  }

  private iconBase64(icon: TrayIconName): string {
    let data = this.iconCache.get(icon);
    if (data === undefined) {
      const file = iconFileName(icon, this.platform);
      const bytes = this.icons.read(file);
      if (!bytes) this.log(`no ${file} in ${this.icons.description}`);
      data = bytes ? bytes.toString('base64') : '';
      this.iconCache.set(icon, data);
    }
    return data;
  }

  private onStatusSafe(status: 'shown' | 'no-host'): void {
    // A respawn for a new menu structure is not news to the listener.
    if (status === this.lastStatus) return;
    this.lastStatus = status;
    try {
      this.onStatus(status);
    } catch (error) {
      this.log(`tray status listener failed: ${describe(error)}`);
    }
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
