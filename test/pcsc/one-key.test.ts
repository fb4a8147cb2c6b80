/**
 * Issue 13 "One key, one entry", end to end with a real pcscd and vpcd: a virtual key served over
 * its socket and, at once, as a card in a vpcd slot is one key for `keytap keys`, for `keytap code`
 * without --device, for the tray and for the KeyWatcher; two different keys stay two.
 * Its own private pcscd and folders (test/pcsc/pcscd.ts), apart from pcsc.test.ts.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestIpc } from '../../src/app/ipc.js';
import type { KeyListing } from '../../src/app/controller.js';
import type { KeyDescriptor } from '../../src/device/discovery/enumerate.js';
import { KeyWatcher } from '../../src/device/discovery/watcher.js';
import { ExitCode } from '../../src/cli/exit-codes.js';
import { oathtool, runKeytap, stopServedKeys, tempDir } from '../support/cli.js';
import { quitTray, startTray, trayEnv } from '../support/tray-process.js';
import { VPCD_READER, pcscMissing, startPcscd } from './pcscd.js';
import type { PrivatePcscd } from './pcscd.js';

const missing = pcscMissing();
if (missing) console.warn(missing);

const DEVICE = `pcsc:${VPCD_READER}`;
const SECOND_READER = 'Virtual PCD 00 01';
const SECRET_B32 = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
const SECRET_HEX = Buffer.from('12345678901234567890').toString('hex');

/** One line of `keytap keys --json`. */
interface ListedKey {
  id: string;
  kind: string;
  serial: string | null;
  interfaces: { interface: string; kind: string; id: string; path: string }[];
}

let dir = '';
let pcscd: PrivatePcscd | undefined;
let env: NodeJS.ProcessEnv = {};

async function ok(args: string[]): Promise<string> {
  const result = await runKeytap(args, { env });
  if (result.code !== 0) throw new Error(`keytap ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
  return result.stdout;
}

async function listKeys(): Promise<ListedKey[]> {
  return JSON.parse(await ok(['keys', '--json'])) as ListedKey[];
}

/** Serves `file` over its socket and in vpcd slot `slot`; resolves once its card is listed (pcscd polls). */
async function serve(file: string, slot: 0 | 1): Promise<void> {
  await ok(['virtual', 'start', file, '--touch', 'auto', '--vpcd', `127.0.0.1:${pcscd!.vpcdPort + slot}`]);
  const reader = `pcsc:Virtual PCD 00 0${slot}`;
  // A wait, not an assertion (it runs in beforeAll too, where expect.poll cannot).
  const deadline = Date.now() + 15_000;
  while (!(await listKeys()).some((k) => k.interfaces.some((i) => i.id === reader))) {
    if (Date.now() > deadline) throw new Error(`the card in ${reader} was not listed; pcscd said:\n${pcscd!.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function servedSerial(file: string): Promise<string> {
  const served = JSON.parse(await ok(['virtual', 'status', '--json'])) as Array<{ file: string; serial: string | null }>;
  return served.find((k) => k.file === file)!.serial!;
}

/** The TOTP code in `stdout` (plain or --json) is oathtool's for the period it was read in. */
async function expectCode(stdout: string, before: number, after: number): Promise<void> {
  const code = stdout.trim().match(/\b\d{6}\b/u)?.[0];
  const candidates = new Set([await oathtool({ hexSecret: SECRET_HEX, type: 'TOTP', time: before }), await oathtool({ hexSecret: SECRET_HEX, type: 'TOTP', time: after })]);
  expect(candidates).toContain(code);
}

describe.skipIf(missing !== undefined)('one key over its socket and as a vpcd card: one entry', () => {
  const file = (): string => join(dir, 'one.json');

  beforeAll(async () => {
    dir = tempDir('keytap-one-key-');
    pcscd = await startPcscd(dir);
    env = trayEnv(dir, { PCSCLITE_CSOCK_NAME: pcscd.socket });
    // The in-process KeyWatcher's PC/SC calls go to the same private pcscd (libpcsclite reads it at its first call).
    process.env.PCSCLITE_CSOCK_NAME = pcscd.socket;
    // …and it finds the served key's socket in the same runtime folder as the CLI.
    process.env.KEYTAP_RUNTIME_DIR = env.KEYTAP_RUNTIME_DIR;
    await serve(file(), 0);
  });

  afterAll(async () => {
    await stopServedKeys(env);
    await pcscd?.stop();
    delete process.env.KEYTAP_RUNTIME_DIR;
  });

  it('keytap keys lists it once with hid and ccid; code works without --device, with --interface ccid|hid and with --device pcsc:READER', async () => {
    const keys = await listKeys();
    expect(keys).toHaveLength(1);
    expect(keys[0]!.serial).toBe(await servedSerial(file()));
    expect(keys[0]!.interfaces.map((i) => [i.interface, i.id])).toEqual([
      ['hid', keys[0]!.id],
      ['ccid', DEVICE],
    ]);

    await ok(['add', '--issuer', 'One', '--account', 'alice', '--secret', SECRET_B32]);
    for (const extra of [[], ['--interface', 'ccid'], ['--interface', 'hid'], ['--device', DEVICE]]) {
      const before = Date.now() / 1000;
      const out = await ok(['code', 'One:alice', ...extra]);
      await expectCode(out, before, Date.now() / 1000);
    }
  });

  it('the tray has one section for it, and keytap code through the tray finds one match', async () => {
    const tray = await startTray(env);
    try {
      const answer = await requestIpc({ op: 'list' }, { path: join(env.KEYTAP_RUNTIME_DIR!, 'keytap.sock') });
      expect(answer).toMatchObject({ ok: true });
      const keys = (answer as unknown as { keys: KeyListing[] }).keys;
      expect(keys.map((k) => k.serial)).toEqual([await servedSerial(file())]);
      expect(keys[0]!.credentials.map((c) => c.id)).toEqual(['One:alice']);

      const before = Date.now() / 1000;
      const viaTray = await runKeytap(['code', 'alice'], { env });
      // No display here: printed, said not to be copied (exit 7), but not "on two keys".
      expect(viaTray.code, viaTray.stderr).toBe(ExitCode.NOT_DELIVERED);
      expect(viaTray.stderr).not.toMatch(/two keys|2 keys|several/iu);
      await expectCode(viaTray.stdout, before, Date.now() / 1000);
    } finally {
      await quitTray(tray, env);
    }
  });

  // Stops pcscd and the key: after the tests above.
  it('KeyWatcher: one added; pcscd stopping leaves the key over its socket (changed); the key stopping removes it once', async () => {
    const watcher = new KeyWatcher({ hid: false, virtual: true, pcsc: true, debounceMs: 20 });
    const events: string[] = [];
    const changed: KeyDescriptor[] = [];
    watcher.on('added', (key) => events.push(`added ${key.id}`));
    watcher.on('removed', (key) => events.push(`removed ${key.id}`));
    watcher.on('changed', (key) => {
      events.push(`changed ${key.id}`);
      changed.push(key);
    });
    watcher.on('error', () => undefined); // pcscd going away is reported; not what is tested here
    await watcher.start();
    try {
      expect(watcher.keys).toHaveLength(1);
      const id = watcher.keys[0]!.id;
      expect(events).toEqual([`added ${id}`]);
      expect(watcher.keys[0]!.interfaces.map((i) => i.id)).toEqual([id, DEVICE]);

      await pcscd!.stop();
      await expect.poll(() => changed.length, { timeout: 15_000 }).toBeGreaterThan(0);
      expect(changed.at(-1)!.interfaces.map((i) => i.id)).toEqual([id]);
      expect(watcher.keys.map((k) => k.id)).toEqual([id]);
      const keys = await listKeys();
      expect(keys.map((k) => [k.id, k.interfaces.map((i) => i.interface)])).toEqual([[id, ['hid']]]);

      await ok(['virtual', 'stop', file()]);
      await expect.poll(() => events.filter((e) => e.startsWith('removed')), { timeout: 15_000 }).toEqual([`removed ${id}`]);
      expect(events.filter((e) => !e.startsWith('changed'))).toEqual([`added ${id}`, `removed ${id}`]);
      expect(watcher.keys).toEqual([]);
    } finally {
      await watcher.stop();
    }
  });
});

describe.skipIf(missing !== undefined)('two different keys, each over its socket and in its own vpcd slot: two entries', () => {
  let twoDir = '';
  let twoPcscd: PrivatePcscd | undefined;

  beforeAll(async () => {
    twoDir = tempDir('keytap-two-keys-');
    twoPcscd = await startPcscd(twoDir);
    pcscd = twoPcscd;
    env = trayEnv(twoDir, { PCSCLITE_CSOCK_NAME: twoPcscd.socket });
  });

  afterAll(async () => {
    await stopServedKeys(env);
    await twoPcscd?.stop();
  });

  it('lists two keys, each with hid and the ccid of its own reader (matched by serial)', async () => {
    const first = join(twoDir, 'first.json');
    const second = join(twoDir, 'second.json');
    await serve(first, 0);
    await serve(second, 1);
    const [firstSerial, secondSerial] = [await servedSerial(first), await servedSerial(second)];
    expect(firstSerial).not.toBe(secondSerial);
    const keys = await listKeys();
    expect(keys).toHaveLength(2);
    const bySerial = new Map(keys.map((k) => [k.serial, k.interfaces.map((i) => [i.interface, i.kind === 'pcsc' ? i.path : i.id])]));
    const idOf = (serial: string): string => keys.find((k) => k.serial === serial)!.id;
    expect(bySerial.get(firstSerial)).toEqual([
      ['hid', idOf(firstSerial)],
      ['ccid', VPCD_READER],
    ]);
    expect(bySerial.get(secondSerial)).toEqual([
      ['hid', idOf(secondSerial)],
      ['ccid', SECOND_READER],
    ]);
  });
});
