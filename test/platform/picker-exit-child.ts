// Runs a desktop finder (the script named by PATH's rofi), then exits once it has started
// (test/platform/picker.test.ts): the finder must not outlive this process.
import { existsSync } from 'node:fs';
import { runDesktopFinder } from '../../src/desktop/picker.js';

const pidsFile = process.argv[2]!;
runDesktopFinder('rofi', ['a', 'b'], 'keytap').catch(() => undefined);
const started = setInterval(() => {
  if (!existsSync(pidsFile)) return;
  clearInterval(started);
  process.exit(0);
}, 20);
