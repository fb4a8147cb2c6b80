/**
 * Where the toast icon comes from. The package ships `icons/` next to `bin/` and `dist/`; we look
 * for it from the running script upwards (bin/keytap.cjs, dist/keytap.cjs, src/… under tsx), so
 * the same code finds it in a checkout, an npm install and a bundle. Missing icons are normal
 * (a single-executable build may not carry them): the caller then uses a themed icon name.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

import type { NotificationIcon } from './types.js';

const CANDIDATES = ['keytap.png', 'keytap-64.png', 'idle-64.png', 'idle.png', 'key-present.png'];

/** The icon of a state (icons/<state>-64.png, drawn by build/icons.mjs like the tray's), if it ships. */
export function findStateIconFile(state: NotificationIcon, startDirs: readonly string[] = defaultStartDirs()): string | undefined {
  return findIconFile(startDirs, [`${state}-64.png`, `${state}-48.png`]);
}

export function findIconFile(startDirs: readonly string[] = defaultStartDirs(), names: readonly string[] = CANDIDATES): string | undefined {
  for (const start of startDirs) {
    let dir = start;
    for (let depth = 0; depth < 5; depth++) {
      for (const name of names) {
        const file = join(dir, 'icons', name);
        if (existsSync(file)) return file;
      }
      const parent = dirname(dir);
      if (parent === dir) break;
      dir = parent;
    }
  }
  return undefined;
}

function defaultStartDirs(): string[] {
  const dirs: string[] = [];
  const script = process.argv[1];
  if (script) dirs.push(dirname(script));
  return dirs;
}
