/** How this program runs itself again (for `keytap virtual start` in the background). */
import { createRequire } from 'node:module';

export function selfCommand(): { command: string; args: string[] } {
  if (isSingleExecutable()) return { command: process.execPath, args: [] };
  return { command: process.execPath, args: [...process.execArgv, process.argv[1] ?? ''] };
}

function isSingleExecutable(): boolean {
  try {
    const require = createRequire(__filename);
    return (require('node:sea') as { isSea(): boolean }).isSea();
  } catch {
    return false;
  }
}
