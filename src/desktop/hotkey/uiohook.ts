/**
 * Global shortcut through uiohook-napi (libuiohook) on X11, Windows and macOS. uiohook is a key
 * *listener*, not a registrar: it reports every key press system-wide and cannot swallow one. So
 * we match the accelerator ourselves — on keydown of the key with exactly the accelerator's
 * modifiers held (from the event's modifier flags), once until that key is released, so auto-repeat
 * does not fire the flow again — and the keystroke still reaches the focused window as well.
 *
 * Starting the hook is the dangerous part: with no reachable X display `uIOhook.start()` blocks
 * forever, and on macOS without the Accessibility permission it has crashed host processes
 * (uiohook-napi #24). So it is loaded through ../uiohook-loader.ts, which starts it once in a
 * throwaway child process with a deadline first; if that child hangs, crashes or fails, register()
 * rejects UNSUPPORTED with a hint and this process never touches the addon.
 */
import { KeytapError } from '../../errors.js';
import type { GlobalShortcut, ShortcutBinding } from '../platform.js';
import { parseAccelerator } from './accelerator.js';
import type { Accelerator } from './accelerator.js';
import { loadUiohook } from '../uiohook-loader.js';

export interface KeyEvent {
  keycode: number;
  ctrlKey: boolean;
  altKey: boolean;
  shiftKey: boolean;
  metaKey: boolean;
}

export interface Hook {
  on(event: 'keydown' | 'keyup', listener: (event: KeyEvent) => void): unknown;
  removeAllListeners(event?: string): unknown;
  start(): void;
  stop(): void;
}

type KeyTable = Record<string, number>;

export interface UiohookShortcutOptions {
  platform?: NodeJS.Platform | undefined;
  env?: NodeJS.ProcessEnv | undefined;
  /** For tests: replaces loading uiohook-napi (and the probe). */
  load?: (() => Promise<{ hook: Hook; keys: KeyTable }>) | undefined;
  /** For tests and SEA builds: replaces the child-process probe. */
  probe?: (() => Promise<void>) | undefined;
}

/** The uiohook key codes that stand for one canonical key name (see accelerator.ts). */
export function keycodesFor(key: string, keys: KeyTable): number[] {
  const aliases: Record<string, string[]> = {
    Enter: ['Enter', 'NumpadEnter'],
    Up: ['ArrowUp'],
    Down: ['ArrowDown'],
    Left: ['ArrowLeft'],
    Right: ['ArrowRight'],
    Plus: ['Equal', 'NumpadAdd'],
  };
  const num = /^Num(\d)$/.exec(key);
  const names = num ? [`Numpad${num[1]}`] : (aliases[key] ?? [key]);
  return names.map((name) => keys[name]).filter((code): code is number => typeof code === 'number');
}

/** A keydown/keyup state machine for one accelerator; pure, so it is tested without a hook. */
export class AcceleratorMatcher {
  private readonly keycodes: Set<number>;
  private held = false;

  constructor(
    private readonly accelerator: Accelerator,
    keys: KeyTable,
  ) {
    this.keycodes = new Set(keycodesFor(accelerator.key, keys));
    if (this.keycodes.size === 0) {
      throw new KeytapError('USAGE', `The key "${accelerator.key}" cannot be watched with uiohook.`, { hint: 'Choose a letter, a digit or a function key.' });
    }
  }

  /** True when this keydown is a press of the accelerator. */
  keydown(event: KeyEvent): boolean {
    if (!this.keycodes.has(event.keycode)) return false;
    const { ctrl, alt, shift, meta } = this.accelerator.modifiers;
    const exact = event.ctrlKey === ctrl && event.altKey === alt && event.shiftKey === shift && event.metaKey === meta;
    if (!exact || this.held) return false;
    this.held = true;
    return true;
  }

  keyup(event: KeyEvent): void {
    if (this.keycodes.has(event.keycode)) this.held = false;
  }
}

export class UiohookShortcut implements GlobalShortcut {
  readonly name = 'uiohook';
  private hook: Hook | undefined;
  private readonly platform: NodeJS.Platform;
  private readonly env: NodeJS.ProcessEnv;

  constructor(private readonly options: UiohookShortcutOptions = {}) {
    this.platform = options.platform ?? process.platform;
    this.env = options.env ?? process.env;
  }

  async register(accelerator: string, onPress: () => void, also: readonly ShortcutBinding[] = []): Promise<void> {
    const wanted = [{ accelerator, onPress }, ...also].map((b) => ({ parsed: parseAccelerator(b.accelerator, this.platform), onPress: b.onPress }));
    await this.unregister();
    this.checkSession();
    const { hook, keys } = await this.load();
    // One hook (libuiohook's is process-wide), one matcher per shortcut.
    const matchers = wanted.map((w) => ({ matcher: new AcceleratorMatcher(w.parsed, keys), onPress: w.onPress }));
    hook.on('keydown', (event) => {
      for (const { matcher, onPress: pressed } of matchers) {
        if (!matcher.keydown(event)) continue;
        try {
          pressed();
        } catch {
          // The app's handler reports its own failures; the hook thread must never see one.
        }
      }
    });
    hook.on('keyup', (event) => {
      for (const { matcher } of matchers) matcher.keyup(event);
    });
    try {
      hook.start();
    } catch (error) {
      hook.removeAllListeners('keydown');
      hook.removeAllListeners('keyup');
      throw this.unsupported(`The keyboard hook did not start (${error instanceof Error ? error.message : String(error)}).`);
    }
    this.hook = hook;
  }

  unregister(): Promise<void> {
    const hook = this.hook;
    this.hook = undefined;
    if (hook) {
      hook.removeAllListeners('keydown');
      hook.removeAllListeners('keyup');
      try {
        hook.stop();
      } catch {
        // Already stopped.
      }
    }
    return Promise.resolve();
  }

  private checkSession(): void {
    if (this.platform !== 'linux' && this.platform !== 'freebsd' && this.platform !== 'openbsd') return;
    if (this.env.WAYLAND_DISPLAY || this.env.XDG_SESSION_TYPE === 'wayland') {
      // Under XWayland the hook only sees keys typed into X11 windows: worse than nothing.
      throw this.unsupported('Global keyboard hooks do not work in a Wayland session.');
    }
    if (!this.env.DISPLAY) throw this.unsupported('There is no X display ($DISPLAY is not set).');
  }

  private async load(): Promise<{ hook: Hook; keys: KeyTable }> {
    if (this.options.load) return this.options.load();
    try {
      const loaded = await loadUiohook(this.env, this.options.probe);
      return { hook: loaded.hook as Hook, keys: loaded.keys };
    } catch (error) {
      throw this.unsupported(error instanceof Error ? error.message : String(error));
    }
  }

  private unsupported(message: string): KeytapError {
    const hint =
      this.platform === 'darwin'
        ? 'Allow keytap (or the terminal that runs it) under System Settings → Privacy & Security → Accessibility, then restart keytap; or bind `keytap code` to a key with Shortcuts.app.'
        : 'Bind `keytap code` to a key in your desktop\'s keyboard settings.';
    return new KeytapError('UNSUPPORTED', message, { hint });
  }
}
