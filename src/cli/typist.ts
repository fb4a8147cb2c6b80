/**
 * The typist codes are typed with, the tray's and `keytap code --type`'s alike: both keep the
 * RemoteDesktop portal's restore token in the same file of keytap's data folder, so the desktop
 * asks once for both, whichever types first. Loaded only where typing happens (the full bundle).
 */
import { dataDir } from '../app/config.js';
import type { Typist } from '../desktop/platform.js';
import { createTypist } from '../desktop/typing/index.js';
import { restoreTokenFile } from '../desktop/typing/restore-token.js';
import type { RestoreTokenStore } from '../desktop/typing/restore-token.js';
import { join } from 'node:path';

export function keytapTypist(onProblem?: (message: string) => void): { typist: Typist; restoreToken: RestoreTokenStore } {
  const restoreToken = restoreTokenFile(join(dataDir(), 'remote-desktop-token'), onProblem);
  return { typist: createTypist({ restoreToken }), restoreToken };
}
