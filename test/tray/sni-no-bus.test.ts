// Without a session bus the StatusNotifierItem backend says so once and keeps trying quietly:
// no log line per retry, one 'no-bus' status (not 'no-host', which would send people looking for
// a tray extension).
import { describe, expect, it } from 'vitest';
import { SniTrayBackend } from '../../src/tray/sni/backend.js';

describe('the SNI backend without a session bus', () => {
  it('logs once and reports no-bus once while it keeps retrying', async () => {
    const lines: string[] = [];
    const statuses: string[] = [];
    const backend = new SniTrayBackend({ busAddress: '', log: (line) => lines.push(line), retryMs: { first: 5, max: 10 }, icons: { description: 'none', read: () => undefined } });
    await backend.start(
      () => undefined,
      (status) => statuses.push(status),
    );
    // Room for a dozen retries.
    await new Promise((resolve) => setTimeout(resolve, 150));
    await backend.stop();
    expect(statuses).toEqual(['no-bus']);
    expect(lines.filter((l) => l.includes('session bus'))).toHaveLength(1);
    expect(lines.join('\n')).not.toMatch(/GNOME|AppIndicator/u);
  });
});
