/**
 * The PC/SC path end to end, with a real pcscd and vsmartcard's vpcd: the virtual key served by
 * `keytap virtual start --vpcd` is a card in "Virtual PCD 00 00", and both keytap's own stack
 * (libpcsclite through koffi → PcscApduTransport → OathSession) and ykman 4.0.9 use it. Codes are compared with
 * oathtool; what one client writes, the other reads.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { watchPcscReaders } from '../../src/device/discovery/pcsc-readers.js';
import type { PcscWatch } from '../../src/device/discovery/pcsc-readers.js';
import { KeyWatcher } from '../../src/device/discovery/watcher.js';
import type { KeytapError } from '../../src/errors.js';
import { PcscApduTransport } from '../../src/device/transport/pcsc.js';
import type { KeyDescriptor } from '../../src/device/discovery/enumerate.js';
import type { ProbeReport } from '../../src/cli/probe-report.js';
import type { PcscReaderProbe } from '../../src/device/probe/types.js';
import { VIRTUAL_KEY_ATR } from '../../src/emulator/vpcd.js';
import { oathtool, runKeytap, spawnKeytap, tempDir, stopServedKeys } from '../support/cli.js';
import type { RunResult } from '../support/cli.js';
import { VPCD_READER, findExecutable, pcscMissing, startPcscd } from './pcscd.js';
import type { PrivatePcscd } from './pcscd.js';

const missing = pcscMissing();
if (missing) console.warn(missing);
const ykman = findExecutable('ykman');
if (!missing && !ykman) console.warn('ykman peer tests skipped: ykman not installed (apt-get install yubikey-manager)');

const DEVICE = `pcsc:${VPCD_READER}`;
const SECRET_B32 = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
const SECRET_HEX = Buffer.from('12345678901234567890').toString('hex');
const SHA256_B32 = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA';
const SHA256_HEX = Buffer.from('12345678901234567890123456789012').toString('hex');

/** One line of `keytap keys --json`. */
interface ListedKey {
  id: string;
  kind: string;
  name: string;
  path: string;
  serial: string | null;
  interfaces: { interface: string; kind: string; id: string; path: string }[];
}

let dir = '';
let file = '';
let pcscd: PrivatePcscd | undefined;
let env: NodeJS.ProcessEnv = {};

async function keytap(args: string[]): Promise<RunResult> {
  return runKeytap(args, { env });
}

async function ok(args: string[]): Promise<string> {
  const result = await keytap(args);
  if (result.code !== 0) throw new Error(`keytap ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
  return result.stdout;
}

/** Watches the readers, counting changes and collecting errors. */
async function watchReaders(): Promise<{ watch: PcscWatch; errors: KeytapError[]; changes: () => number }> {
  let changes = 0;
  const errors: KeytapError[] = [];
  const watch = await watchPcscReaders(
    () => changes++,
    (error) => errors.push(error),
  );
  expect(watch).toBeDefined();
  return { watch: watch!, errors, changes: () => changes };
}

function runYkman(args: string[]): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(ykman!, ['--reader', VPCD_READER, ...args], { env: { ...process.env, ...env }, timeout: 30_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

async function ykmanOk(args: string[]): Promise<string> {
  const result = await runYkman(args);
  if (result.code !== 0) throw new Error(`ykman ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
  return result.stdout;
}

/** Starts `keytap …` and resolves once `text` appeared on its stderr. */
function startUntil(args: string[], text: string): Promise<{ done: Promise<RunResult> }> {
  return new Promise((resolve, reject) => {
    const child = spawnKeytap(args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const done = new Promise<RunResult>((r) => child.on('close', (code) => r({ code, stdout, stderr })));
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (stderr.includes(text)) resolve({ done });
    });
    child.on('error', reject);
    void done.then((r) => reject(new Error(`exited ${r.code} before "${text}": ${r.stderr}`)));
  });
}

async function startKey(): Promise<void> {
  await ok(['virtual', 'start', file, '--touch', 'manual', '--vpcd', `127.0.0.1:${pcscd!.vpcdPort}`]);
  await waitForPcscKey(true);
}

/** Polls `keytap keys` until the card in vpcd is (or is no longer) listed: pcscd notices a card within its polling interval. */
async function waitForPcscKey(present: boolean): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const keys = JSON.parse(await ok(['keys', '--json'])) as ListedKey[];
    if (keys.some((k) => k.interfaces.some((i) => i.id === DEVICE)) === present) return;
    if (Date.now() > deadline) throw new Error(`the PC/SC key did not ${present ? 'appear' : 'go'}; pcscd said:\n${pcscd!.output()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A TOTP code read at some moment between `before` and `after` must be oathtool's for one of those windows. */
async function expectTotp(code: string, before: number, after: number, hexSecret: string, extra: { algorithm?: 'SHA1' | 'SHA256'; digits?: number; period?: number } = {}): Promise<void> {
  const candidates = new Set([await oathtool({ hexSecret, type: 'TOTP', time: before, ...extra }), await oathtool({ hexSecret, type: 'TOTP', time: after, ...extra })]);
  expect(candidates).toContain(code);
}

describe.skipIf(missing !== undefined)('PC/SC with a real pcscd and vpcd', () => {
  beforeAll(async () => {
    dir = tempDir('keytap-pcsc-');
    file = join(dir, 'pcsc-key.json');
    pcscd = await startPcscd(dir);
    env = { KEYTAP_RUNTIME_DIR: join(dir, 'run'), PCSCLITE_CSOCK_NAME: pcscd.socket };
    // This process's own PC/SC calls (the KeyWatcher test) go to the same private pcscd;
    // libpcsclite reads the variable at its first call.
    process.env.PCSCLITE_CSOCK_NAME = pcscd.socket;
    await startKey();
  });

  afterAll(async () => {
    await stopServedKeys(env);
    await pcscd?.stop();
    if (pcscd) expect(() => process.kill(pcscd!.pid, 0)).toThrow();
  });

  it('lists the key served over its socket and as a card in vpcd once, with both interfaces (its socket first, off Windows)', async () => {
    const keys = JSON.parse(await ok(['keys', '--json'])) as ListedKey[];
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatchObject({ kind: 'virtual', serial: expect.stringMatching(/^\d+$/u) });
    expect(keys[0]!.interfaces).toEqual([
      { interface: 'hid', kind: 'virtual', id: keys[0]!.id, path: expect.any(String) },
      { interface: 'ccid', kind: 'pcsc', id: DEVICE, path: VPCD_READER },
    ]);
    expect(await ok(['keys'])).toContain(`ccid in reader "${VPCD_READER}"`);
  });

  it('keytap doctor --probe asks the card in vpcd for OATH and Management (read-only), the serial only with --include-serials', async () => {
    const keys = JSON.parse(await ok(['keys', '--json'])) as ListedKey[];
    const serial = keys[0]!.serial!;
    const out = join(dir, 'probe.json');
    await ok(['doctor', '--probe', '--out', out]);
    const text = readFileSync(out, 'utf8');
    expect(text).not.toContain(serial);
    const readers = (JSON.parse(text) as ProbeReport).devices.filter((d): d is PcscReaderProbe => d.kind === 'pcsc');
    expect(readers.find((r) => r.reader === VPCD_READER)).toEqual({
      kind: 'pcsc',
      reader: VPCD_READER,
      cardPresent: true,
      atr: Buffer.from(VIRTUAL_KEY_ATR).toString('hex'),
      oath: { outcome: { status: 'answered', sw: '9000' }, version: '5.4.3', dialect: 'yubikey', passwordSet: false },
      management: { outcome: { status: 'answered', sw: '9000' }, version: '5.4.3' },
      speaks: ['oath-over-ccid'],
    });
    // vpcd's second slot has no card: nothing is asked there.
    expect(readers.find((r) => r.reader === 'Virtual PCD 00 01')).toMatchObject({ cardPresent: false, oath: { outcome: { status: 'not-asked', reason: 'no-card' } } });

    const withSerials = join(dir, 'probe-serials.json');
    await ok(['doctor', '--probe', '--include-serials', '--out', withSerials]);
    const reader = (JSON.parse(readFileSync(withSerials, 'utf8')) as ProbeReport).devices.find((d): d is PcscReaderProbe => d.kind === 'pcsc' && d.reader === VPCD_READER);
    expect(reader!.management.serial).toBe(serial);
    // The key still works for the next program: the probe changed nothing.
    expect(JSON.parse(await ok(['keys', '--json']))).toEqual(keys);
  });

  it('still lists the card while another program holds it: it answered SELECT OATH in this insertion already', async () => {
    const held = await PcscApduTransport.open(VPCD_READER);
    try {
      const keys = JSON.parse(await ok(['keys', '--json'])) as ListedKey[];
      expect(keys.flatMap((k) => k.interfaces.map((i) => i.id))).toContain(DEVICE);
    } finally {
      await held.close();
    }
  });

  it('adds, lists and reads TOTP and HOTP accounts over PC/SC, codes equal to oathtool', async () => {
    await ok(['add', '--device', DEVICE, '--issuer', 'Keytap', '--account', 'alice', '--secret', SECRET_B32]);
    await ok(['add', '--device', DEVICE, '--issuer', 'Keytap', '--account', 'sha256', '--secret', SHA256_B32, '--algorithm', 'SHA256', '--digits', '8', '--period', '60']);
    await ok(['add', '--device', DEVICE, '--issuer', 'Keytap', '--account', 'counter', '--secret', SECRET_B32, '--type', 'hotp']);
    const list = JSON.parse(await ok(['list', '--device', DEVICE, '--json'])) as Array<{ id: string; type: string; algorithm: string; digits: number; period: number }>;
    expect(list).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ id: 'Keytap:alice', type: 'TOTP', algorithm: 'SHA1', digits: 6, period: 30 }),
        expect.objectContaining({ id: '60/Keytap:sha256', type: 'TOTP', algorithm: 'SHA256', digits: 8, period: 60 }),
        expect.objectContaining({ id: 'Keytap:counter', type: 'HOTP' }),
      ]),
    );

    const alice = JSON.parse(await ok(['code', 'Keytap:alice', '--device', DEVICE, '--json'])) as { code: string; validFrom: string };
    expect(alice.code).toBe(await oathtool({ hexSecret: SECRET_HEX, type: 'TOTP', time: Date.parse(alice.validFrom) / 1000 }));
    const sha256 = JSON.parse(await ok(['code', 'sha256', '--device', DEVICE, '--json'])) as { code: string; validFrom: string };
    expect(sha256.code).toBe(await oathtool({ hexSecret: SHA256_HEX, type: 'TOTP', algorithm: 'SHA256', digits: 8, period: 60, time: Date.parse(sha256.validFrom) / 1000 }));
    for (const counter of [0, 1]) {
      expect((await ok(['code', 'counter', '--device', DEVICE])).trim()).toBe(await oathtool({ hexSecret: SECRET_HEX, type: 'HOTP', counter }));
    }
  });

  it('waits for the touch of a touch account (keytap virtual touch), then gives the right code', async () => {
    await ok(['add', '--device', DEVICE, '--issuer', 'Keytap', '--account', 'touchy', '--secret', SECRET_B32, '--touch']);
    const reading = await startUntil(['code', 'touchy', '--device', DEVICE, '--json'], 'Touch your key');
    // The card is ours, exclusively, for the whole wait: another client cannot get in between.
    await expect(PcscApduTransport.open(VPCD_READER, { busyWaitMs: 300 })).rejects.toMatchObject({ code: 'BUSY', message: expect.stringMatching(/in use by another program/u) as unknown });
    if (ykman) expect((await runYkman(['oath', 'accounts', 'list'])).stderr).toMatch(/sharing violation/iu);
    await ok(['virtual', 'touch', file]);
    const result = await reading.done;
    expect(result.code, result.stderr).toBe(0);
    const json = JSON.parse(result.stdout) as { code: string; validFrom: string };
    expect(json.code).toBe(await oathtool({ hexSecret: SECRET_HEX, type: 'TOTP', time: Date.parse(json.validFrom) / 1000 }));
  });

  describe.skipIf(!ykman)('ykman 4.0.9 as the peer', () => {
    it('reads what keytap wrote', async () => {
      const accounts = (await ykmanOk(['oath', 'accounts', 'list'])).split('\n').map((l) => l.trim());
      // ykman 4.0.9 lists the raw credential id, period prefix included.
      expect(accounts, accounts.join(' | ')).toEqual(expect.arrayContaining(['Keytap:alice', '60/Keytap:sha256', 'Keytap:counter', 'Keytap:touchy']));
      const before = Date.now() / 1000;
      const code = (await ykmanOk(['oath', 'accounts', 'code', '--single', 'Keytap:alice'])).trim();
      await expectTotp(code, before, Date.now() / 1000, SECRET_HEX);
      const before256 = Date.now() / 1000;
      const code256 = (await ykmanOk(['oath', 'accounts', 'code', '--single', 'Keytap:sha256'])).trim();
      await expectTotp(code256, before256, Date.now() / 1000, SHA256_HEX, { algorithm: 'SHA256', digits: 8, period: 60 });
    });

    it('adds, lists, reads and deletes accounts that keytap then sees', async () => {
      await ykmanOk(['oath', 'accounts', 'add', '--oath-type', 'TOTP', '--algorithm', 'SHA256', '--digits', '8', '--issuer', 'Ykman', 'bob', SHA256_B32]);
      await ykmanOk(['oath', 'accounts', 'add', '--oath-type', 'HOTP', '--issuer', 'Ykman', 'carol', SECRET_B32]);
      const listed = (await ykmanOk(['oath', 'accounts', 'list'])).split('\n').map((l) => l.trim());
      expect(listed).toEqual(expect.arrayContaining(['Ykman:bob', 'Ykman:carol']));

      const before = Date.now() / 1000;
      const bob = (await ykmanOk(['oath', 'accounts', 'code', '--single', 'Ykman:bob'])).trim();
      await expectTotp(bob, before, Date.now() / 1000, SHA256_HEX, { algorithm: 'SHA256', digits: 8 });
      // HOTP: ykman takes counter 0, keytap the next one.
      expect((await ykmanOk(['oath', 'accounts', 'code', '--single', 'Ykman:carol'])).trim()).toBe(await oathtool({ hexSecret: SECRET_HEX, type: 'HOTP', counter: 0 }));
      expect((await ok(['code', 'Ykman:carol', '--device', DEVICE])).trim()).toBe(await oathtool({ hexSecret: SECRET_HEX, type: 'HOTP', counter: 1 }));

      const viaKeytap = JSON.parse(await ok(['code', 'Ykman:bob', '--device', DEVICE, '--json'])) as { code: string; validFrom: string };
      expect(viaKeytap.code).toBe(await oathtool({ hexSecret: SHA256_HEX, type: 'TOTP', algorithm: 'SHA256', digits: 8, time: Date.parse(viaKeytap.validFrom) / 1000 }));

      await ykmanOk(['oath', 'accounts', 'delete', '--force', 'Ykman:bob']);
      const after = JSON.parse(await ok(['list', '--device', DEVICE, '--json'])) as Array<{ id: string }>;
      expect(after.map((c) => c.id)).not.toContain('Ykman:bob');
      expect(after.map((c) => c.id)).toContain('Ykman:carol');

      // …and what keytap deletes is gone for ykman.
      await ok(['delete', 'Ykman:carol', '--device', DEVICE]);
      expect((await ykmanOk(['oath', 'accounts', 'list'])).split('\n').map((l) => l.trim())).not.toContain('Ykman:carol');
    });
  });

  describe.skipIf(!ykman)('reset of a password-protected key, with ykman 4.0.9 as the peer (issue 9 item 11)', () => {
    it('keytap reset --force needs no password, and ykman then sees an empty key without a password', async () => {
      await ok(['password', '--device', DEVICE, '--new-password', 'forgotten']);
      expect(await ykmanOk(['oath', 'info'])).toContain('Password protection: enabled');
      const reset = await keytap(['reset', '--device', DEVICE, '--force']);
      expect(reset.code, reset.stderr).toBe(0);
      expect(await ykmanOk(['oath', 'info'])).toContain('Password protection: disabled');
      expect((await ykmanOk(['oath', 'accounts', 'list'])).trim()).toBe('');
    });

    it('ykman oath reset -f of a key whose password keytap set leaves what keytap reset leaves', async () => {
      await ok(['add', '--device', DEVICE, '--issuer', 'Keytap', '--account', 'before-reset', '--secret', SECRET_B32]);
      await ok(['password', '--device', DEVICE, '--new-password', 'forgotten']);
      await ykmanOk(['oath', 'reset', '-f']);
      expect(JSON.parse(await ok(['list', '--device', DEVICE, '--json']))).toEqual([]);
      // Put back the touch account the tests below use.
      await ok(['add', '--device', DEVICE, '--issuer', 'Keytap', '--account', 'touchy', '--secret', SECRET_B32, '--touch']);
    });
  });

  describe.skipIf(!ykman)('the serial, with ykman 4.0.9 as the peer (issue 9 items 12, 13)', () => {
    it('keytap keys shows the serial ykman reads from the card, and --device SERIAL reaches the card over PC/SC', async () => {
      // ykman reads DEVICE INFO from the Management application, as on a YubiKey on an NFC reader.
      const info = await ykmanOk(['info']);
      const serial = /^Serial number: (\d+)$/mu.exec(info)?.[1];
      expect(serial, info).toBeDefined();
      expect(info).toMatch(/^Firmware version: 5\.4\.3$/mu);

      const keys = JSON.parse(await ok(['keys', '--json'])) as ListedKey[];
      // One key, reached two ways: the socket the virtual key announces and the card in vpcd.
      expect(keys.map((k) => [k.kind, k.serial, k.interfaces.map((i) => i.interface)])).toEqual([['virtual', serial, ['hid', 'ccid']]]);
      expect(await ok(['keys'])).toContain(serial);

      // Without the announcement (another runtime folder), only the card itself can tell its serial.
      const alone = { ...env, KEYTAP_RUNTIME_DIR: join(dir, 'elsewhere') };
      const listed = await runKeytap(['list', '--device', serial!, '--json'], { env: alone });
      expect(listed.code, listed.stderr).toBe(0);
      expect((JSON.parse(listed.stdout) as Array<{ id: string }>).map((c) => c.id)).toContain('Keytap:touchy');
      const onlyCard = JSON.parse((await runKeytap(['keys', '--json'], { env: alone })).stdout) as Array<{ kind: string; serial: string | null }>;
      expect(onlyCard).toEqual([expect.objectContaining({ kind: 'pcsc', serial })]);
    });
  });

  it('is no error for discovery when pcscd is not there', async () => {
    const result = await runKeytap(['keys', '--json'], { env: { ...env, PCSCLITE_CSOCK_NAME: join(dir, 'no-such-pcscd.comm') } });
    expect(result.code).toBe(0);
    expect((JSON.parse(result.stdout) as Array<{ kind: string }>).map((k) => k.kind)).toEqual(['virtual']);
    const chosen = await runKeytap(['list', '--device', DEVICE], { env: { ...env, PCSCLITE_CSOCK_NAME: join(dir, 'no-such-pcscd.comm') } });
    expect(chosen.code).toBe(3);
  });

  it('KeyWatcher: card removal and insertion in vpcd are hotplug events', async () => {
    const watcher = new KeyWatcher({ hid: false, virtual: false, pcsc: true, debounceMs: 20 });
    const events: string[] = [];
    const seen = (kind: string) => (key: KeyDescriptor) => events.push(`${kind} ${key.id}`);
    watcher.on('added', seen('added'));
    watcher.on('removed', seen('removed'));
    await watcher.start();
    try {
      expect(watcher.keys.map((k) => k.id)).toEqual([DEVICE]);
      await ok(['virtual', 'stop', file]);
      await expect.poll(() => events, { timeout: 15_000 }).toContain(`removed ${DEVICE}`);
      await startKey();
      await expect.poll(() => events, { timeout: 15_000 }).toEqual([`added ${DEVICE}`, `removed ${DEVICE}`, `added ${DEVICE}`]);
    } finally {
      await watcher.stop();
    }
  });

  it('watches the readers event-driven: no native call returns while nothing changes; removal and insertion are seen', async () => {
    const { watch, errors, changes } = await watchReaders();
    try {
      const before = watch.returns;
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      // The worker thread stayed blocked in SCardGetStatusChange: at most one return (none expected).
      expect(watch.returns - before).toBeLessThanOrEqual(1);
      expect(changes()).toBe(0);
      await ok(['virtual', 'stop', file]);
      await expect.poll(changes, { timeout: 15_000 }).toBeGreaterThan(0);
      const afterRemoval = changes();
      await startKey();
      await expect.poll(changes, { timeout: 15_000 }).toBeGreaterThan(afterRemoval);
      expect(errors).toEqual([]);
    } finally {
      await watch.stop();
    }
    // Stopped means stopped: no more native calls.
    const returns = watch.returns;
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(watch.returns).toBe(returns);
  });

  it('a process watching the readers ends: at process.exit() and, after stop(), by itself', async () => {
    for (const mode of ['exit', 'stop']) {
      const started = Date.now();
      const result = await new Promise<RunResult>((resolve) => {
        execFile(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'watch-child.ts'), mode], { env: { ...process.env, ...env }, timeout: 20_000 }, (error, stdout, stderr) =>
          resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        );
      });
      expect(result.code, `${mode}: ${result.stderr}`).toBe(0);
      expect(result.stdout).toContain('watching');
      if (mode === 'stop') expect(result.stdout).toContain('stopped');
      // tsx's start-up is most of this; a worker thread left blocked would take until the timeout.
      expect(Date.now() - started, mode).toBeLessThan(10_000);
    }
  });

  it('exits 3 with a clear message when the card is removed during a touch wait', async () => {
    const reading = await startUntil(['code', 'touchy', '--device', DEVICE], 'Touch your key');
    await ok(['virtual', 'stop', file]);
    const result = await reading.done;
    expect(result.code, result.stderr).toBe(3);
    expect(result.stderr).toMatch(/removed/u);
    expect(result.stderr).not.toMatch(/\n\s+at .+:\d+:\d+/u);
  });

  // Last: it stops pcscd.
  it('reports pcscd going away once through onError, and the watch has stopped itself', async () => {
    const { watch, errors } = await watchReaders();
    await pcscd!.stop();
    await expect.poll(() => errors.length, { timeout: 10_000 }).toBe(1);
    expect(errors[0]).toMatchObject({ code: 'DEVICE_ERROR', message: expect.stringMatching(/^Watching the smart card readers stopped \(SCARD_[EFW]_[A-Z_]+\)\.$/u) as unknown, hint: expect.stringContaining('pcscd') as unknown });
    const returns = watch.returns;
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(errors).toHaveLength(1);
    expect(watch.returns).toBe(returns);
    await watch.stop();
  });
});
