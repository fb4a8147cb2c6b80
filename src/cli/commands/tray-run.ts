/**
 * The resident process behind `keytap` (no arguments) and `keytap tray`. Wiring only: it hands
 * the real adapters (tray backend, notifier, clipboard, shortcut, autostart, key watcher, the
 * emulator's demo key) to the app's composition root, src/app/resident.ts, which runs it.
 * Loaded only when the tray starts (see tray.ts): it pulls in D-Bus, conf and the tray backends,
 * which other commands should not pay for at start-up.
 */

import { runResident } from '../../app/resident.js';
import { createAutostart } from '../../desktop/autostart/index.js';
import { createClipboard } from '../../desktop/clipboard/index.js';
import { createGlobalShortcut } from '../../desktop/hotkey/index.js';
import { osKeyring } from '../../desktop/keyring/index.js';
import { chooseSecretPrompt } from '../../desktop/secret-prompt/index.js';
import { keytapTypist } from '../typist.js';
import { openPath } from '../../desktop/open-path.js';
import { createScreenCapture } from '../../desktop/screen-capture/index.js';
import { desktopAccountFinder } from '../../desktop/picker.js';
import { createFocusedWindowSource } from '../../desktop/focused-window/index.js';
import { openOathSession } from '../../device/open.js';
import { KeyWatcher } from '../../device/discovery/watcher.js';
import { runVirtualKeyServer } from '../../emulator/daemon.js';
import { createNotifier } from '../../notify/index.js';
import { createTrayBackend } from '../../tray/index.js';
import type { CliIo } from '../output.js';
import { tuneV8ForResident } from '../resident-v8.js';
import { autostartCommand, shortcutCommand } from '../self.js';

export interface TrayOptions {
  demo?: boolean;
}

/** How long the demo key waits before it "is touched": long enough to see the touch prompt. */
const DEMO_TOUCH_DELAY_MS = 1_500;

export async function runTray(options: TrayOptions, io: CliIo, version: string): Promise<void> {
  tuneV8ForResident();
  await runResident(
    { version, demo: options.demo, autostartCommand: autostartCommand(), err: (line) => io.err(line) },
    {
      tray: (log) => createTrayBackend({ log }),
      notifier: (onError) => createNotifier({ onError }),
      clipboard: (onError) => createClipboard({ resident: true, onError }),
      shortcut: (onError) => createGlobalShortcut({ onError, command: shortcutCommand() }),
      typist: () => keytapTypist().typist,
      autostart: () => createAutostart(),
      keys: () => new KeyWatcher(),
      open: (descriptor, signal) => openOathSession(descriptor, signal),
      openPath,
      keyring: () => osKeyring(),
      // The tray has no terminal: a GUI pinentry or a dialog, chosen when "Unlock…" is clicked.
      secretPrompt: () => chooseSecretPrompt(),
      screenCapture: () => createScreenCapture(),
      finder: () => desktopAccountFinder(),
      focusedWindow: () => createFocusedWindowSource(),
      demoKey: (file, signal) =>
        runVirtualKeyServer({ file, demo: true, touch: { mode: 'auto', delayMs: DEMO_TOUCH_DELAY_MS }, handleSignals: false, signal }),
    },
  );
}
