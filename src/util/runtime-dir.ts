/**
 * keytap's runtime folder: where served virtual keys announce themselves and keep their sockets,
 * and where the resident process keeps its IPC socket.
 */
import { mkdirSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

/**
 * `$KEYTAP_RUNTIME_DIR`, else `$XDG_RUNTIME_DIR/keytap`, else a per-user folder in the temp dir.
 * Created owner-only on first use.
 */
export function runtimeDir(): string {
  const dir =
    process.env.KEYTAP_RUNTIME_DIR ??
    (process.env.XDG_RUNTIME_DIR ? join(process.env.XDG_RUNTIME_DIR, 'keytap') : join(tmpdir(), `keytap-${userInfo().uid}`));
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}
