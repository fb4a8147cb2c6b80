/**
 * Secrets in Buffers are wiped once used: the access key the CLI unlocked a key with, and the
 * bytes typed into keytap's own hidden prompt.
 */
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { withKey } from '../../src/cli/key-options.js';
import { terminalPrompt } from '../../src/cli/hidden-prompt.js';
import { OathSession } from '../../src/device/oath/session.js';
import { runKeytap, tempDir } from '../support/cli.js';

const NO_BUS = { DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent/keytap-test-bus' };
const PASSWORD = 'zero me';

afterEach(() => {
  vi.restoreAllMocks();
});

describe('wiping secrets', () => {
  it('the CLI zeroes the access key it unlocked the key with, once the key is open', async () => {
    const file = join(tempDir(), 'key.json');
    const key = ['--virtual', file];
    expect((await runKeytap(['add', ...key, '--dialect', 'yubikey', '--account', 'alice', '--secret', 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ'], { env: NO_BUS })).code).toBe(0);
    expect((await runKeytap(['password', ...key, '--new-password', PASSWORD], { env: NO_BUS })).code).toBe(0);
    const used: Uint8Array[] = [];
    const spy = vi.spyOn(OathSession.prototype, 'unlockWithAccessKey');
    // Records the key, then hands over to the real method (restored: the one unlock there is).
    spy.mockImplementation(function (this: OathSession, accessKey: Uint8Array, signal?: AbortSignal) {
      used.push(accessKey);
      spy.mockRestore();
      return this.unlockWithAccessKey(accessKey, signal);
    });
    const io = { out: () => undefined, err: () => undefined };
    const ids = await withKey({ virtual: file, password: PASSWORD }, io, async (opened, signal) => (await opened.session.list(signal)).map((c) => c.id));
    expect(ids).toEqual(['alice']);
    expect(used).toHaveLength(1);
    expect(used[0]!.length).toBe(16);
    expect([...used[0]!].every((b) => b === 0)).toBe(true);
  });

  it("keytap's hidden prompt wipes each chunk of typed bytes", async () => {
    const input = Object.assign(new EventEmitter(), { isRaw: false, setRawMode: () => input, resume: () => input, pause: () => input }) as unknown as NodeJS.ReadStream;
    const output = { write: () => true } as unknown as NodeJS.WritableStream;
    const asked = terminalPrompt(input, output).ask({ title: 't', description: 'd', prompt: 'PIN:' });
    const chunk = Buffer.from('2468\r');
    input.emit('data', chunk);
    expect(await asked).toBe('2468');
    expect([...chunk].every((b) => b === 0)).toBe(true);
  });
});
