// Programming a Feitian HOTP key through the provisioning run (src/provision/feitian.ts) on the
// virtual key's feitian dialect: the refusals before anything is written, the typed-code check with
// its look-ahead, what a mismatch, a cancelled read and a refused touch leave on the key and in the
// ledger. The typed code is what the key itself types on a touch (VirtualKey.touch(), to its file).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { OpenFeitianKey } from '../../src/device/open.js';
import { openCtapHidTransport } from '../../src/device/open.js';
import { FeitianSession } from '../../src/device/feitian/session.js';
import { typedCodesFile } from '../../src/emulator/feitian-applet.js';
import { VirtualKey } from '../../src/emulator/virtual-key.js';
import type { ApduResponse, ApduTransport } from '../../src/device/transport/types.js';
import { KeytapError, cancelledError } from '../../src/errors.js';
import { readLedger } from '../../src/provision/ledger.js';
import { ProvisionRun } from '../../src/provision/run.js';
import type { ProvisionToken, TokenParameters } from '../../src/provision/token.js';
import { DEFAULT_PARAMETERS, buildToken } from '../../src/provision/token.js';
import { seedFormat } from '../../src/seeds/index.js';
import { oathtool, tempDir } from '../support/cli.js';

const SEED = Buffer.from('12345678901234567890');
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

/** A virtual Feitian key in this process, its button in the test's hand, opened through the real client. */
async function feitianKey(
  touch: 'auto' | 'never' = 'auto',
  wrap: (transport: ApduTransport) => ApduTransport = (transport) => transport,
): Promise<{ key: OpenFeitianKey; device: VirtualKey; file: string }> {
  const file = join(tempDir(), 'hotp.json');
  const device = await VirtualKey.open({ file, dialect: 'feitian', touch: touch === 'auto' ? { mode: 'auto', delayMs: 0 } : { mode: 'never' }, touchTimeoutMs: 100 });
  const transport = await openCtapHidTransport(device.openLink(), 'virtual Feitian key', undefined, 'msg');
  const session = await FeitianSession.open(wrap(transport));
  const key: OpenFeitianKey = { session, name: 'virtual Feitian key', id: 'virtual:test', close: () => transport.close() };
  cleanups.push(async () => {
    await transport.close();
    await device.close();
  });
  return { key, device, file };
}

async function startRun(formats = ['hexcsv', 'dualshield', 'pskc']): Promise<ProvisionRun> {
  const run = await ProvisionRun.start({ outDir: join(tempDir(), 'out'), formats: formats.map((f) => seedFormat(f)) });
  cleanups.push(() => run.close());
  return run;
}

function hotpToken(serial: string, parameters: Partial<TokenParameters> = {}): ProvisionToken {
  return buildToken({ ...DEFAULT_PARAMETERS, type: 'HOTP', ...parameters }, SEED, serial);
}

/** What the key types when touched, read back from where it types. */
function touchAndRead(device: VirtualKey, file: string, touches = 1) {
  return async (): Promise<string> => {
    for (let i = 0; i < touches; i++) await device.touch();
    return readFileSync(typedCodesFile(file), 'utf8').trim().split('\n').at(-1)!;
  };
}

/** The key stores what PROGRAM (09) carries, but the client gets `instead` in place of its answer. */
function programAnswered(instead: (apdu: Uint8Array) => Promise<ApduResponse>) {
  return (transport: ApduTransport): ApduTransport => ({
    description: transport.description,
    transmit: async (apdu, options) => {
      const answer = await transport.transmit(apdu, options);
      return apdu[1] === 0x09 ? instead(apdu) : answer;
    },
    close: () => transport.close(),
  });
}

describe('programming a Feitian HOTP key', () => {
  it('programs, verifies by the typed code (oathtool\'s at counter 0), records counter 1 and writes the HOTP seed files', async () => {
    const { key, device, file } = await feitianKey();
    const run = await startRun();
    const phases: string[] = [];
    const { outcome, exports } = await run.programOne({ kind: 'feitian', key }, hotpToken('KT000001'), {
      onTouchNeeded: (phase) => phases.push(phase),
      readTypedCode: touchAndRead(device, file),
    });
    expect(outcome.status).toBe('programmed');
    expect(phases).toEqual(['put']);
    expect(readFileSync(typedCodesFile(file), 'utf8')).toBe(`${await oathtool({ hexSecret: SEED.toString('hex'), type: 'HOTP', counter: 0 })}\n`);
    const entry = (await readLedger(run.outDir)).entries[0]!;
    expect(entry).toMatchObject({ state: 'done', counterAfter: 1, credentialId: 'KT000001', key: { dialect: 'feitian', serial: 'KT000001' } });
    expect(exports.map((e) => e.path.split('/').at(-1))).toEqual(['hseeds.csv', 'hseeds.xml', 'hseeds.pskcxml']);
    expect(key.session.serial).toBe('KT000001');
  });

  it('a code a few touches ahead (the key touched before the prompt) is taken, and the ledger has the counter the key used', async () => {
    const { key, device, file } = await feitianKey();
    const run = await startRun();
    const { outcome } = await run.programOne({ kind: 'feitian', key }, hotpToken('KT000002'), { readTypedCode: touchAndRead(device, file, 3) });
    expect(outcome.status).toBe('programmed');
    expect((await readLedger(run.outDir)).entries[0]).toMatchObject({ state: 'done', counterAfter: 3 });
  });

  it.each([0, 2, 4])('the code for counter %i (oathtool\'s), within the look-ahead, gives counterAfter = counter + 1', async (counter) => {
    const { key } = await feitianKey();
    const run = await startRun(['pskc']);
    const code = await oathtool({ hexSecret: SEED.toString('hex'), type: 'HOTP', counter });
    const { outcome } = await run.programOne({ kind: 'feitian', key }, hotpToken(`KT10000${counter}`), { readTypedCode: () => Promise.resolve(code) });
    expect(outcome.status).toBe('programmed');
    expect((await readLedger(run.outDir)).entries[0]).toMatchObject({ state: 'done', counterAfter: counter + 1 });
  });

  it('the code for counter 5, past the look-ahead of 4, fails and the key is erased again', async () => {
    const { key } = await feitianKey();
    const run = await startRun(['pskc']);
    const code = await oathtool({ hexSecret: SEED.toString('hex'), type: 'HOTP', counter: 5 });
    const { outcome } = await run.programOne({ kind: 'feitian', key }, hotpToken('KT100005'), { readTypedCode: () => Promise.resolve(code) });
    expect(outcome).toMatchObject({ status: 'failed', leftOnKey: false });
    expect((await key.session.check()).programmed).toBe(false);
  });

  it('a code typed with spaces, or through a French AZERTY layout (the top row unshifted), is taken', async () => {
    const azerty = '&é"\'(-è_çà';
    for (const [serial, typed] of [
      ['KT100011', (code: string) => `${code.slice(0, 3)} ${code.slice(3)}`],
      ['KT100012', (code: string) => [...code].map((digit) => azerty[(Number(digit) + 9) % 10]).join('')],
    ] as const) {
      const { key } = await feitianKey();
      const run = await startRun(['pskc']);
      const code = await oathtool({ hexSecret: SEED.toString('hex'), type: 'HOTP', counter: 0 });
      const { outcome } = await run.programOne({ kind: 'feitian', key }, hotpToken(serial), { readTypedCode: () => Promise.resolve(typed(code)) });
      expect(outcome.status).toBe('programmed');
    }
  });

  it('a code that is not the token\'s fails, the key is erased again (a touch) and the ledger says failed, not on the key', async () => {
    const { key } = await feitianKey();
    const run = await startRun();
    const phases: string[] = [];
    const { outcome } = await run.programOne({ kind: 'feitian', key }, hotpToken('KT000003'), {
      onTouchNeeded: (phase) => phases.push(phase),
      readTypedCode: () => Promise.resolve('000000'),
    });
    expect(outcome).toMatchObject({ status: 'failed', leftOnKey: false });
    expect(outcome.status === 'failed' && outcome.error.message).toMatch(/^Verification failed: what was typed is not a code of token KT000003/u);
    expect(phases).toEqual(['put', 'delete']);
    expect((await key.session.check()).programmed).toBe(false);
    expect((await readLedger(run.outDir)).entries[0]).toMatchObject({ state: 'failed', leftOnKey: false });
  });

  it('a cancelled read (Ctrl+C at the prompt) erases the key again too', async () => {
    const { key } = await feitianKey();
    const run = await startRun();
    const { outcome } = await run.programOne({ kind: 'feitian', key }, hotpToken('KT000004'), {
      readTypedCode: () => Promise.reject(new KeytapError('CANCELLED', 'Interrupted.')),
    });
    expect(outcome).toMatchObject({ status: 'failed', leftOnKey: false, error: { code: 'CANCELLED' } });
    expect((await key.session.check()).programmed).toBe(false);
  });

  it('a garbled answer to PROGRAM (PROTOCOL): the key is checked, and erased again since it holds our serial', async () => {
    const { key } = await feitianKey('auto', programAnswered(() => Promise.resolve({ data: Uint8Array.of(0x12, 0x34), sw: 0x6a80 })));
    const run = await startRun();
    const phases: string[] = [];
    const { outcome } = await run.programOne({ kind: 'feitian', key }, hotpToken('KT000010'), {
      onTouchNeeded: (phase) => phases.push(phase),
      readTypedCode: () => Promise.resolve(''),
    });
    expect(outcome).toMatchObject({ status: 'failed', leftOnKey: false, error: { code: 'PROTOCOL' } });
    expect(phases).toEqual(['put', 'delete']);
    expect((await key.session.check()).programmed).toBe(false);
    expect((await readLedger(run.outDir)).entries[0]).toMatchObject({ state: 'failed', leftOnKey: false });
  });

  it('Ctrl+C while the key waits for the PROGRAM touch: the key is still checked and erased (a fresh signal, not the aborted one)', async () => {
    const controller = new AbortController();
    const { key } = await feitianKey(
      'auto',
      programAnswered(() => {
        controller.abort();
        return Promise.reject(cancelledError(controller.signal));
      }),
    );
    const run = await startRun();
    const { outcome } = await run.programOne({ kind: 'feitian', key }, hotpToken('KT000012'), { signal: controller.signal, readTypedCode: () => Promise.resolve('') });
    expect(outcome).toMatchObject({ status: 'failed', leftOnKey: false, error: { code: 'CANCELLED' } });
    expect((await key.session.check()).programmed).toBe(false);
    expect((await readLedger(run.outDir)).entries[0]).toMatchObject({ state: 'failed', leftOnKey: false });
  });

  it('a touch that never comes: failed, nothing on the key, the ledger says so', async () => {
    const { key } = await feitianKey('never');
    const run = await startRun();
    let asked = false;
    const { outcome } = await run.programOne({ kind: 'feitian', key }, hotpToken('KT000005'), {
      readTypedCode: () => {
        asked = true;
        return Promise.resolve('');
      },
    });
    expect(outcome).toMatchObject({ status: 'failed', leftOnKey: false, error: { code: 'TOUCH_TIMEOUT' } });
    expect(asked).toBe(false);
    expect((await readLedger(run.outDir)).entries[0]).toMatchObject({ state: 'failed', leftOnKey: false });
  });

  it.each([
    [{ type: 'TOTP' as const }, 'type'],
    [{ algorithm: 'SHA256' as const }, 'algorithm'],
    [{ counter: 7 }, 'counter'],
  ])('refuses %j before anything is written (%s)', async (parameters, parameter) => {
    const { key } = await feitianKey();
    const run = await startRun(['pskc']);
    const { outcome } = await run.programOne({ kind: 'feitian', key }, hotpToken('KT000006', parameters), { readTypedCode: () => Promise.resolve('') });
    expect(outcome).toMatchObject({ status: 'refused', error: { detail: { kind: 'hotp-key-cannot-take', parameter } } });
    expect((await readLedger(run.outDir)).entries).toHaveLength(0);
    expect((await key.session.check()).programmed).toBe(false);
  });

  it('refuses a serial of other than 8 characters and a programmed key, before anything is written', async () => {
    const { key, device, file } = await feitianKey();
    const run = await startRun(['pskc']);
    expect((await run.programOne({ kind: 'feitian', key }, hotpToken('KT0000007'), { readTypedCode: () => Promise.resolve('') })).outcome).toMatchObject({
      status: 'refused',
      error: { detail: { kind: 'hotp-key-cannot-take', parameter: 'serial' } },
    });
    expect((await run.programOne({ kind: 'feitian', key }, hotpToken('KT000007'), { readTypedCode: touchAndRead(device, file) })).outcome.status).toBe('programmed');
    expect((await run.programOne({ kind: 'feitian', key }, hotpToken('KT000008'), { readTypedCode: touchAndRead(device, file) })).outcome).toMatchObject({
      status: 'refused',
      error: { code: 'EXISTS', detail: { kind: 'hotp-key-programmed', serial: 'KT000007' } },
    });
    expect((await readLedger(run.outDir)).entries.map((e) => [e.token.serial, e.state])).toEqual([['KT000007', 'done']]);
  });

  it('programOne without a reader of typed codes refuses a Feitian key plainly', async () => {
    const { key } = await feitianKey();
    const run = await startRun(['pskc']);
    await expect(run.programOne({ kind: 'feitian', key }, hotpToken('KT000009'))).rejects.toMatchObject({ code: 'UNSUPPORTED' });
  });
});
