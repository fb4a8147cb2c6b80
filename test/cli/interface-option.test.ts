/**
 * `--interface` and `--device` naming one interface, with a virtual key served over its socket only
 * (no PC/SC service: a missing pcscd socket): over hid it answers, over ccid there is nothing, and
 * keytap says so with what reaches a key over CCID.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { oathtool, runKeytap, stopServedKeys, tempDir } from '../support/cli.js';

const SECRET_B32 = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
const SECRET_HEX = Buffer.from('12345678901234567890').toString('hex');

let env: NodeJS.ProcessEnv = {};
afterEach(() => stopServedKeys(env));

async function ok(args: string[]): Promise<string> {
  const result = await runKeytap(args, { env });
  if (result.code !== 0) throw new Error(`keytap ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
  return result.stdout;
}

describe('--interface with a key served over its socket only', () => {
  it('hid reads the code; ccid exits 3 naming ccid, the key found and the PC/SC service; --device with the socket interface id works', async () => {
    const dir = tempDir();
    env = { KEYTAP_RUNTIME_DIR: join(dir, 'run'), PCSCLITE_CSOCK_NAME: join(dir, 'no-pcscd.comm') };
    await ok(['virtual', 'start', join(dir, 'key.json'), '--touch', 'auto']);
    await ok(['add', '--issuer', 'Iface', '--account', 'alice', '--secret', SECRET_B32]);
    const [key] = JSON.parse(await ok(['keys', '--json'])) as { id: string; interfaces: { interface: string; id: string }[] }[];
    expect(key!.interfaces.map((i) => i.interface)).toEqual(['hid']);

    const viaHid = JSON.parse(await ok(['code', 'alice', '--interface', 'hid', '--json'])) as { code: string; validFrom: string };
    expect(viaHid.code).toBe(await oathtool({ hexSecret: SECRET_HEX, type: 'TOTP', time: Date.parse(viaHid.validFrom) / 1000 }));

    const viaCcid = await runKeytap(['code', 'alice', '--interface', 'ccid'], { env });
    expect(viaCcid.code).toBe(3);
    expect(viaCcid.stdout).toBe('');
    expect(viaCcid.stderr).toContain('No key is reachable over ccid now');
    expect(viaCcid.stderr).toContain(`${key!.id}, over hid`);
    expect(viaCcid.stderr).toMatch(/pcscd/u);

    const bad = await runKeytap(['code', 'alice', '--interface', 'usb'], { env });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/hid, ccid/u);

    const byInterface = JSON.parse(await ok(['code', 'alice', '--device', key!.interfaces[0]!.id, '--json'])) as { code: string; validFrom: string };
    expect(byInterface.code).toBe(await oathtool({ hexSecret: SECRET_HEX, type: 'TOTP', time: Date.parse(byInterface.validFrom) / 1000 }));
  });
});
