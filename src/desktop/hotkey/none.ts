/** Where no backend can work: register() explains how to get the same effect from the desktop. */
import { KeytapError } from '../../errors.js';
import type { DesktopBinding, GlobalShortcut, ShortcutToBind } from '../platform.js';

export const BIND_KEYTAP_CODE_HINT = "Bind `keytap code` to a key in your desktop's keyboard settings.";

export class NoneShortcut implements GlobalShortcut {
  readonly name = 'none';

  constructor(
    private readonly reason = 'keytap cannot register a global shortcut here.',
    private readonly adviser?: ((shortcuts: readonly ShortcutToBind[]) => DesktopBinding | undefined) | undefined,
  ) {}

  desktopBinding(shortcuts: readonly ShortcutToBind[]): DesktopBinding | undefined {
    return this.adviser?.(shortcuts);
  }

  register(): Promise<void> {
    return Promise.reject(new KeytapError('UNSUPPORTED', this.reason, { hint: BIND_KEYTAP_CODE_HINT }));
  }

  unregister(): Promise<void> {
    return Promise.resolve();
  }
}
