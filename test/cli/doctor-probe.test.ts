// `keytap doctor --probe` as a user runs it: served virtual keys of each dialect (found as every
// other program finds them), the summary, the report file (0600, its JSON, no serial unless
// --include-serials), the usage errors, and a machine with nothing to probe.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FeitianSession } from '../../src/device/feitian/session.js';
import { openCtapHidTransport } from '../../src/device/open.js';
import type { ProbeReport } from '../../src/cli/probe-report.js';
import type { HidDeviceProbe } from '../../src/device/probe/types.js';
import { VirtualKey } from '../../src/emulator/virtual-key.js';
import { runKeytap, tempDir, stopServedKeys } from '../support/cli.js';

let env: NodeJS.ProcessEnv = {};

afterEach(() => stopServedKeys(env));

function newEnvironment(): string {
  const dir = tempDir('keytap-probe-cli-');
  // No PC/SC service at all (not the machine's pcscd), so the run is the same everywhere.
  env = { KEYTAP_RUNTIME_DIR: join(dir, 'run'), PCSCLITE_CSOCK_NAME: join(dir, 'no-pcscd.comm') };
  return dir;
}

async function ok(args: string[], cwd?: string): Promise<string> {
  const result = await runKeytap(args, { env, cwd });
  if (result.code !== 0) throw new Error(`keytap ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
  return result.stdout;
}

const FEITIAN_SERIAL = 'KT246810';

/** A Feitian virtual key with a token on it (the CLI cannot program one yet), then served. */
async function programmedFeitianKey(file: string): Promise<void> {
  const key = await VirtualKey.open({ file, dialect: 'feitian', touch: { mode: 'auto', delayMs: 0 } });
  try {
    const transport = await openCtapHidTransport(key.openLink(), 'virtual Feitian key', undefined, 'msg');
    await (await FeitianSession.open(transport)).program({ digits: 6, seed: new Uint8Array(20).fill(3), serial: FEITIAN_SERIAL });
    await transport.close();
  } finally {
    await key.close();
  }
}

describe('keytap doctor --probe', () => {
  it('probes a served key of each dialect, prints what each answered and writes a 0600 JSON report without serials', async () => {
    const dir = newEnvironment();
    await programmedFeitianKey(join(dir, 'feitian.json'));
    await ok(['virtual', 'start', join(dir, 'nk3.json'), '--dialect', 'nitrokey3', '--touch', 'auto']);
    await ok(['virtual', 'start', join(dir, 'yk.json'), '--dialect', 'yubikey', '--touch', 'auto']);
    await ok(['virtual', 'start', join(dir, 'feitian.json'), '--touch', 'auto']);
    const status = JSON.parse(await ok(['virtual', 'status', '--json'])) as Array<{ file: string; serial: string | null }>;
    const serials = status.map((k) => k.serial).filter((s): s is string => s !== null);
    expect(serials.length).toBe(2); // the two OATH keys; a Feitian key announces none

    const stdout = await ok(['doctor', '--probe'], dir);
    const reports = readdirSync(dir).filter((name) => /^keytap-probe-\d{8}-\d{6}\.json$/u.test(name));
    expect(reports.length).toBe(1);
    const path = join(dir, reports[0]!);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(stdout).toContain(`Report written to ${path}.`);
    expect(stdout).toContain('Nothing was written to any key. To help keytap support a key, attach it to an issue at the keytap project.');
    expect(stdout).toMatch(/virtual key nk3\.json[^\n]*\n(?: {2}[^\n]*\n)*? {2}OATH over 0x70: answered 9000, version 4\.13\.0, Nitrokey 3 Secrets App/u);
    expect(stdout).toMatch(/virtual key feitian\.json[^\n]*\n(?: {2}[^\n]*\n)*? {2}Feitian SELECT over MSG: answered 9000; CHECK answered 9000, programmed: yes\n/u);
    expect(stdout).toContain('CTAP2 getInfo: refused: CTAPHID error INVALID_CMD (0x01)');

    const text = readFileSync(path, 'utf8');
    for (const serial of [...serials, FEITIAN_SERIAL]) {
      expect(text.toLowerCase()).not.toContain(serial.toLowerCase());
      expect(stdout.toLowerCase()).not.toContain(serial.toLowerCase());
    }
    const report = JSON.parse(text) as ProbeReport;
    expect(report).toMatchObject({ format: 'keytap-probe/1', includesSerials: false });
    expect(report.about).toMatch(/nothing was written to any key.*Serial numbers are left out.*attach it to an issue at the keytap project/su);
    const virtual = report.devices.filter((d): d is HidDeviceProbe => d.kind === 'virtual');
    const byName = Object.fromEntries(virtual.map((d) => [d.name, d]));
    expect(Object.keys(byName).sort()).toEqual(['virtual key feitian.json', 'virtual key nk3.json', 'virtual key yk.json']);
    expect(byName['virtual key nk3.json']).toMatchObject({
      announcedDialect: 'nitrokey3',
      init: { outcome: { status: 'answered' }, deviceVersion: '1.6.0', capabilities: { cbor: false } },
      u2fVersion: { version: 'U2F_V2' },
      ctap2GetInfo: { outcome: { status: 'ctaphid-error', error: 'INVALID_CMD' } },
      oathOverCtapHid: { outcome: { status: 'answered', sw: '9000' }, dialect: 'nitrokey3', version: '4.13.0', pinSet: false },
      feitian: { outcome: { status: 'answered', sw: '6A82' } },
      speaks: ['oath-over-ctaphid'],
    });
    expect(byName['virtual key yk.json']).toMatchObject({ oathOverCtapHid: { dialect: 'yubikey', version: '5.4.3', passwordSet: false } });
    expect(byName['virtual key feitian.json']).toMatchObject({
      oathOverCtapHid: { outcome: { status: 'ctaphid-error', error: 'INVALID_CMD' } },
      feitian: { outcome: { sw: '9000' }, check: { programmed: true } },
      speaks: ['feitian-hotp'],
    });
    expect(report.problems).toEqual(expect.arrayContaining([expect.objectContaining({ source: 'pcsc', error: 'PCSC_UNAVAILABLE' })]));

    // --include-serials: the same probe, with the serials in. A YubiKey tells its serial only over
    // CCID (Management READ CONFIG), which the FIDO interface does not reach.
    const out = join(dir, 'with-serials.json');
    await ok(['doctor', '--probe', '--include-serials', '--out', out]);
    const withSerials = readFileSync(out, 'utf8');
    const nk3Serial = status.find((k) => k.file.endsWith('nk3.json'))!.serial!;
    const nk3 = (JSON.parse(withSerials) as ProbeReport).devices.find((d) => d.kind === 'virtual' && d.name === 'virtual key nk3.json') as HidDeviceProbe;
    expect(nk3.oathOverCtapHid.serial).toBe(nk3Serial);
    expect(withSerials).toContain(`"serial": "${FEITIAN_SERIAL}"`);
    expect((JSON.parse(withSerials) as ProbeReport).includesSerials).toBe(true);
    expect(statSync(out).mode & 0o777).toBe(0o600);
  });

  it('with nothing to probe: says so, still writes the report, exits 0', async () => {
    const dir = newEnvironment();
    const out = join(dir, 'empty.json');
    const result = await runKeytap(['doctor', '--probe', '--out', out], { env });
    expect(result.code).toBe(0);
    const report = JSON.parse(readFileSync(out, 'utf8')) as ProbeReport;
    expect(report.devices.filter((d) => d.kind === 'virtual')).toEqual([]);
    if (report.devices.length === 0) expect(result.stdout).toContain('No FIDO HID device, virtual key or smart card reader found.');

    // --json prints the report that was written.
    const jsonOut = join(dir, 'json.json');
    const json = await runKeytap(['doctor', '--probe', '--json', '--out', jsonOut], { env });
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual(JSON.parse(readFileSync(jsonOut, 'utf8')));
  });

  it('usage errors exit 2; an existing --out file is refused and left as it was', async () => {
    const dir = newEnvironment();
    for (const args of [['doctor', '--include-serials'], ['doctor', '--out', join(dir, 'x.json')], ['doctor', '--probe', '--udev-rules']]) {
      const result = await runKeytap(args, { env });
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr).toMatch(/only applies together with --probe|not both/u);
    }
    expect(readdirSync(dir).filter((n) => n.endsWith('.json'))).toEqual([]);

    const existing = join(dir, 'mine.json');
    writeFileSync(existing, 'keep me');
    const result = await runKeytap(['doctor', '--probe', '--out', existing], { env });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`${existing} already exists; it was left as it is.`);
    expect(result.stderr).toContain('Give another file with --out, or move that one away.');
    expect(readFileSync(existing, 'utf8')).toBe('keep me');
    expect(readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });
});
