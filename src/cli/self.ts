/**
 * How this program runs itself again: for `keytap virtual start` in the background, and for the
 * "Start at login" entry the tray writes.
 *
 * A single executable (Node SEA: dist/keytap-VERSION-*, /usr/bin/keytap from the Debian package)
 * is its own command: process.execPath, which Node resolves to the real file (symlinks followed).
 * Its argv[1] is only the name it was started by, and execArgv holds nothing to pass on (options
 * baked into the executable apply at every start). From a source checkout, Node runs the script:
 * the node binary, its options, then bin/keytap.cjs.
 */
import { accessSync, constants } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, join } from 'node:path';

/** The facts the decision depends on; tests pass their own. */
export interface ProcessFacts {
  execPath: string;
  execArgv: readonly string[];
  /** process.argv[1]: the script, when Node runs one. */
  script: string | undefined;
  singleExecutable: boolean;
}

export function currentProcessFacts(): ProcessFacts {
  return { execPath: process.execPath, execArgv: process.execArgv, script: process.argv[1], singleExecutable: isSingleExecutable() };
}

export function selfCommand(facts: ProcessFacts = currentProcessFacts()): { command: string; args: string[] } {
  if (facts.singleExecutable) return { command: facts.execPath, args: [] };
  return { command: facts.execPath, args: [...facts.execArgv, facts.script ?? ''] };
}

/** What the "Start at login" entry runs: this program's tray. */
export function autostartCommand(facts: ProcessFacts = currentProcessFacts()): string[] {
  const self = selfCommand(facts);
  return [self.command, ...self.args, 'tray'];
}

/**
 * What a desktop's own shortcut runs to reach this keytap: the single executable by its path
 * (a compositor's PATH need not be the shell's); from source, `keytap` when that is on the PATH,
 * else Node with the script.
 */
export function shortcutCommand(facts: ProcessFacts = currentProcessFacts(), onPath: (name: string) => boolean = isOnPath): string[] {
  if (facts.singleExecutable) return [facts.execPath];
  if (onPath('keytap')) return ['keytap'];
  const self = selfCommand(facts);
  return [self.command, ...self.args];
}

// Not desktop/picker.ts's onPath: that module is resident-only in the split bundle (build/), and
// self.ts runs in every command.
function isOnPath(name: string, path = process.env.PATH ?? ''): boolean {
  return path.split(delimiter).some((folder) => {
    if (folder === '') return false;
    try {
      accessSync(join(folder, name), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

function isSingleExecutable(): boolean {
  try {
    // node:sea (isSea from Node 20.12/21.7 on) is there only to require(): the bundle is CommonJS,
    // and in a SEA __filename is the executable. Run from source as ES modules (tsx, vitest) there
    // is no __filename, which is not a SEA either.
    const require = createRequire(__filename);
    return (require('node:sea') as { isSea(): boolean }).isSea();
  } catch {
    return false;
  }
}
