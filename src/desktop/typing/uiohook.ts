/**
 * Typing on Windows (SendInput) and macOS (CGEventPost) through uiohook-napi's keyTap, the
 * keyboard library keytap already ships for the global shortcut. macOS only lets a program post
 * key events with the Accessibility permission; without it the events are dropped silently, so we
 * ask the system first (AXIsProcessTrusted, through the hook's start failing) and say so.
 *
 * keyTap presses physical key positions (scan codes): the digit row yields digits on US, UK,
 * German and most layouts, but "&é\"'(" on French and Belgian AZERTY (README "Type the code").
 *
 * The shortcut's modifiers: we wait releaseWaitMs for the fingers to leave the keys, then send a
 * key-up for Ctrl, Alt, Shift and Meta (both sides) before the first digit. uiohook reports no key
 * state to wait on, and an extra key-up of a key that is up changes nothing.
 */
import { KeytapError } from '../../errors.js';
import { delay } from '../../util/abortable.js';
import type { Typist } from '../platform.js';
import { loadUiohook } from '../uiohook-loader.js';

interface Hook {
  keyTap(key: number, modifiers?: number[]): void;
  keyToggle(key: number, toggle: 'down' | 'up'): void;
}

type KeyTable = Record<string, number>;

export interface UiohookTypistOptions {
  platform?: NodeJS.Platform | undefined;
  /** For tests: replaces loading uiohook-napi. */
  load?: (() => Promise<{ hook: Hook; keys: KeyTable }>) | undefined;
  /** For tests: replaces the child-process probe of the shared loader. */
  probe?: (() => Promise<void>) | undefined;
  env?: NodeJS.ProcessEnv | undefined;
  /** How long the fingers get to leave the shortcut's keys before the key-ups (Windows auto-repeats a held Ctrl). */
  releaseWaitMs?: number | undefined;
  /** macOS: whether this process may post key events (the Accessibility permission). */
  trusted?: (() => Promise<boolean>) | undefined;
}

const MODIFIERS = ['Ctrl', 'CtrlRight', 'Alt', 'AltRight', 'Shift', 'ShiftRight', 'Meta', 'MetaRight'];

export class UiohookTypist implements Typist {
  readonly name: string;
  private readonly platform: NodeJS.Platform;

  constructor(private readonly options: UiohookTypistOptions = {}) {
    this.platform = options.platform ?? process.platform;
    this.name = this.platform === 'darwin' ? 'CGEvent' : 'SendInput';
  }

  async type(text: string, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) throw new KeytapError('CANCELLED', 'Typing the code was cancelled.');
    if (this.platform === 'darwin' && this.options.trusted && !(await this.options.trusted())) {
      throw new KeytapError('PERMISSION_DENIED', 'macOS does not let keytap type: it lacks the Accessibility permission.', {
        hint: 'Allow keytap (or the terminal that runs it) under System Settings → Privacy & Security → Accessibility, then try again.',
      });
    }
    const { hook, keys } = await this.load();
    const strokes = [...text].map((char) => {
      const key = /^[0-9]$/.test(char) ? keys[char] : /^[A-Za-z]$/.test(char) ? keys[char.toUpperCase()] : undefined;
      if (key === undefined) throw new KeytapError('UNSUPPORTED', 'This code has a character keytap cannot type here.', { hint: 'Paste the code instead.' });
      return { key, shift: /^[A-Z]$/.test(char) };
    });
    // A key-up sent while the finger still holds Ctrl is undone by the next auto-repeat: wait first.
    await delay(this.options.releaseWaitMs ?? 400, signal);
    for (const name of MODIFIERS) if (keys[name] !== undefined) hook.keyToggle(keys[name], 'up');
    for (const stroke of strokes) {
      if (signal?.aborted) throw new KeytapError('CANCELLED', 'Typing the code was cancelled.');
      hook.keyTap(stroke.key, stroke.shift && keys.Shift !== undefined ? [keys.Shift] : []);
    }
  }

  private async load(): Promise<{ hook: Hook; keys: KeyTable }> {
    if (this.options.load) return this.options.load();
    try {
      // The same memoised load as the shortcut's, crash-guard probe included.
      const loaded = await loadUiohook(this.options.env ?? process.env, this.options.probe);
      return { hook: loaded.hook as Hook, keys: loaded.keys };
    } catch (error) {
      throw new KeytapError('UNSUPPORTED', `keytap cannot type here: ${error instanceof Error ? error.message : String(error)}`, { hint: 'Paste the code instead.' });
    }
  }
}
