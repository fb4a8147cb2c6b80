/**
 * A Secret Service that owns its name on the session bus and never answers (a tiny dbus-next
 * service that swallows every call, on a private dbus-daemon): every keyring call ends with an
 * error naming the keyring and the fix, in its time limit, instead of hanging.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { osKeyring } from '../../src/desktop/keyring/index.js';
import { tempDir } from '../support/cli.js';
import { startPrivateBus } from '../support/private-bus.js';
import type { PrivateBus } from '../support/private-bus.js';
import { HAVE_KEYRING_DAEMON } from '../support/secret-peers.js';

function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    child.stdout!.on('data', (d: Buffer) => {
      text += d.toString();
      if (text.includes('\n')) resolve(text.slice(0, text.indexOf('\n')).trim());
    });
    child.once('exit', (code) => reject(new Error(`exited ${code} before saying anything`)));
  });
}

describe.skipIf(!HAVE_KEYRING_DAEMON)('a Secret Service that never answers', () => {
  let bus: PrivateBus | undefined;
  let service: ChildProcess;
  const saved = process.env.DBUS_SESSION_BUS_ADDRESS;

  beforeAll(async () => {
    bus = startPrivateBus();
    const address = bus.address;
    const script = join(tempDir('keytap-hung-secrets-'), 'hung-secret-service.cjs');
    writeFileSync(
      script,
      `const dbus = require(${JSON.stringify(join(import.meta.dirname, '..', '..', 'node_modules', 'dbus-next'))});
const bus = dbus.sessionBus();
// Every method call is taken and never answered, as by a daemon that hangs.
bus.addMethodHandler(() => true);
bus.requestName('org.freedesktop.secrets', 0).then(() => console.log('owned'));
`,
    );
    service = spawn(process.execPath, [script], { env: { ...process.env, DBUS_SESSION_BUS_ADDRESS: address }, stdio: ['ignore', 'pipe', 'inherit'] });
    expect(await firstLine(service)).toBe('owned');
    process.env.DBUS_SESSION_BUS_ADDRESS = address;
  }, 30_000);

  afterAll(() => {
    if (saved === undefined) delete process.env.DBUS_SESSION_BUS_ADDRESS;
    else process.env.DBUS_SESSION_BUS_ADDRESS = saved;
    // The native call still waiting on the bus fails once the bus is gone.
    service?.kill();
    bus?.stop();
  });

  it('get, set and delete fail with a TIMEOUT that names the Secret Service and says what helps (not D-Bus\'s "Did not receive a reply")', async () => {
    const keyring = osKeyring('linux', { timeoutMs: 1_000 });
    for (const call of [() => keyring.get('12345678', 'access-key'), () => keyring.set('12345678', 'nk3-pin', '2468'), () => keyring.delete('12345678', 'access-key')]) {
      const error = await call().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toMatchObject({
        code: 'TIMEOUT',
        message: expect.stringMatching(/^The keyring of this computer cannot be used: the Secret Service did not answer (in time|within 1 s) \(.*restarting it helps\)\.$/u) as unknown,
        detail: { kind: 'no-keyring' },
      });
      expect(String((error as Error).message)).not.toContain('2468');
    }
  }, 30_000);
});
