/**
 * A private session dbus-daemon for tests. Its configuration names no service directories, so a
 * call to a name nobody owns yet fails instead of D-Bus-activating the machine's own service
 * behind the test's back: `dbus-daemon --session` reads the standard ones, and a ReadAlias sent
 * before gnome-keyring-daemon owned org.freedesktop.secrets started a second, locked daemon (with
 * the real HOME) that took the name, so the test's keyring never got its default collection.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface PrivateBus {
  address: string;
  pid: number;
  /** Ends the daemon; a bus already gone is fine. */
  stop(): void;
}

/**
 * Writes such a bus's configuration into `dir` (listening on `listen`) and returns its path.
 * `guests`: users besides the daemon's own that may connect (dbus-daemon lets in only its own by default).
 */
export function privateBusConfig(dir: string, listen: string, guests: readonly string[] = []): string {
  const config = join(dir, `bus-${process.pid}-${Math.random().toString(16).slice(2)}.conf`);
  writeFileSync(
    config,
    `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>${listen}</listen><auth>EXTERNAL</auth>
<policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/>${guests.map((user) => `<allow user="${user}"/>`).join('')}</policy></busconfig>
`,
  );
  return config;
}

/** Starts one, listening on `listen` (a D-Bus address; by default a socket in a fresh folder). */
export function startPrivateBus(listen?: string): PrivateBus {
  const dir = mkdtempSync(join(tmpdir(), 'keytap-bus-'));
  const config = privateBusConfig(dir, listen ?? `unix:dir=${dir}`);
  const [address, pid] = execFileSync('dbus-daemon', ['--config-file', config, '--fork', '--print-address=1', '--print-pid=1'], { encoding: 'utf8' }).trim().split('\n');
  return {
    address: address!,
    pid: Number(pid),
    stop: () => {
      try {
        process.kill(Number(pid), 'SIGTERM');
      } catch {
        // Already gone.
      }
    },
  };
}
