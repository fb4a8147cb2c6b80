// Without a session bus the StatusNotifierItem backend reports it once, with why, and keeps trying quietly:
// no log line per retry, one 'no-bus' status (not 'no-host', which would send people looking for
// a tray extension).
import { describe, expect, it } from 'vitest';
import { SniTrayBackend } from '../../src/tray/sni/backend.js';

describe('the SNI backend without a session bus', () => {
  it('reports no-bus once, with the reason, and logs nothing of its own while it keeps retrying', async () => {
    const lines: string[] = [];
    const statuses: string[] = [];
    const backend = new SniTrayBackend({ busAddress: '', log: (line) => lines.push(line), retryMs: { first: 5, max: 10 }, icons: { description: 'none', read: () => undefined } });
    await backend.start(
      () => undefined,
      (status, reason) => statuses.push(`${status}: ${reason}`),
    );
    // Room for a dozen retries.
    await new Promise((resolve) => setTimeout(resolve, 150));
    await backend.stop();
    expect(statuses).toEqual(['no-bus: no session bus (DBUS_SESSION_BUS_ADDRESS is not set)']);
    // The one line is the resident process's (the state test words it); the backend adds none.
    expect(lines.filter((l) => /bus/u.test(l))).toEqual([]);
  });
});
