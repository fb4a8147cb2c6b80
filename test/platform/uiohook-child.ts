// Runs the uiohook backend in its own process for hotkey.test.ts: Xlib ends the whole process
// when its X server goes away, which must not take the test worker with it. Prints "ready",
// then "press" per shortcut press; exits on stdin EOF.
import { UiohookShortcut } from '../../src/desktop/hotkey/uiohook.js';

const shortcut = new UiohookShortcut({ platform: 'linux' });
shortcut.register(process.argv[2] ?? 'Ctrl+Alt+K', () => process.stdout.write('press\n')).then(
  () => process.stdout.write('ready\n'),
  (error: unknown) => {
    process.stdout.write(`error ${(error as { code?: string }).code}\n`);
    process.exit(1);
  },
);
process.stdin.resume();
process.stdin.on('end', () => {
  void shortcut.unregister().then(() => process.exit(0));
});
