/**
 * keytap's runtime folder: where served virtual keys announce themselves and keep their sockets,
 * and where the resident process keeps its IPC socket.
 */
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { ensurePrivateFolder } from './private-folder.js';

/**
 * `$KEYTAP_RUNTIME_DIR`, else `$XDG_RUNTIME_DIR/keytap`, else a per-user folder in the temp dir.
 * Created owner-only on first use. The temp dir is shared by every user and the fallback's name is
 * predictable, so another user can make it first: a folder that is a link, belongs to someone
 * else or is open to others is refused (PERMISSION_DENIED), wherever it comes from.
 */
export function runtimeDir(): string {
  const fromEnv = process.env.KEYTAP_RUNTIME_DIR ?? (process.env.XDG_RUNTIME_DIR ? join(process.env.XDG_RUNTIME_DIR, 'keytap') : undefined);
  // process.getuid, not userInfo(): a uid without a passwd entry (containers) has no user info.
  const dir = fromEnv ?? join(tmpdir(), `keytap-${process.getuid?.() ?? userInfo().uid}`);
  ensurePrivateFolder(dir, {
    what: "keytap's runtime folder",
    hint: fromEnv ? `Remove it, or set KEYTAP_RUNTIME_DIR to a folder of your own.` : `Remove it (its owner or root can), or set XDG_RUNTIME_DIR or KEYTAP_RUNTIME_DIR to a folder of your own.`,
  });
  return dir;
}
