// Program → verify on the virtual key in both dialects, the refusals (each before anything is
// written: the key is listed afterwards), the verify-mismatch path, the HOTP counter, and the
// exported files read back by the src/seeds readers with codes equal to oathtool's.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { OpenKey } from '../../src/device/open.js';
import { openOathSession } from '../../src/device/open.js';
import { virtualFileKey } from '../../src/emulator/virtual-file.js';
import type { Dialect } from '../../src/device/oath/dialect.js';
import { hexEncode } from '../../src/otp/encoding.js';
import { hotp } from '../../src/otp/hotp.js';
import { readLedger } from '../../src/provision/ledger.js';
import { ProvisionRun } from '../../src/provision/run.js';
import type { ProvisionToken, TokenParameters } from '../../src/provision/token.js';
import { DEFAULT_PARAMETERS, buildToken, generateSecret } from '../../src/provision/token.js';
import { seedFormat } from '../../src/seeds/index.js';
import { oathtool, tempDir } from '../support/cli.js';

const open: OpenKey[] = [];
afterEach(async () => {
  for (const key of open.splice(0)) await key.close();
});

async function virtualKey(dialect: Dialect, dir = tempDir()): Promise<OpenKey> {
  const key = await openOathSession(virtualFileKey({ file: join(dir, `${dialect}.json`), dialect, touch: { mode: 'auto', delayMs: 0 } }));
  open.push(key);
  return key;
}

async function startRun(formats = ['pskc'], extra: Partial<Parameters<typeof ProvisionRun.start>[0]> = {}): Promise<ProvisionRun> {
  return ProvisionRun.start({ outDir: join(tempDir(), 'out'), formats: formats.map((f) => seedFormat(f)), ...extra });
}

function token(run: ProvisionRun, parameters: Partial<TokenParameters> = {}): ProvisionToken {
  const p = { ...DEFAULT_PARAMETERS, ...parameters };
  return buildToken(p, generateSecret(p.algorithm), run.serials.next());
}

describe.each(['yubikey', 'nitrokey3'] as const)('program and verify on the %s virtual key', (dialect) => {
  it('TOTP SHA-256 8 digits 60 s with touch: on the key, ledger done, export read back, codes equal oathtool', async () => {
    const key = await virtualKey(dialect);
    const run = await startRun(['pskc', 'otpauth']);
    const t = token(run, { algorithm: 'SHA256', digits: 8, period: 60, touch: true, issuer: 'Acme', account: 'alice' });
    const touches: string[] = [];
    const { outcome, exports } = await run.programOne(key, t, { onTouchNeeded: (phase) => touches.push(phase) });
    expect(outcome.status).toBe('programmed');
    expect(touches).toContain('verify');
    expect((await key.session.list()).map((c) => c.id)).toEqual(['60/Acme:alice']);
    await run.close();
    const ledger = await readLedger(run.outDir);
    expect(ledger.entries.map((e) => e.state)).toEqual(['done']);
    expect(exports.map((e) => e.path.split('/').pop()).sort()).toEqual(['tseeds-otpauth.txt', 'tseeds.pskcxml']);
    for (const file of exports) {
      const [read] = file.format.read(readFileSync(file.path));
      expect(read).toMatchObject({ serial: t.serial, algorithm: 'SHA256', digits: 8, period: 60, type: 'TOTP' });
      const now = Math.floor(Date.now() / 1000);
      const fromKey = await key.session.calculate({ ...(await key.session.list())[0]!, touch: true, digits: 8 }, { time: now });
      expect(await oathtool({ hexSecret: hexEncode(read!.secret), type: 'TOTP', algorithm: 'SHA256', digits: 8, period: 60, time: now })).toBe(fromKey.code);
    }
  });

  it('HOTP: the exported counter is the one after verification, so the file predicts the key\'s next codes', async () => {
    const key = await virtualKey(dialect);
    const run = await startRun(['hexcsv', 'pskc']);
    const t = token(run, { type: 'HOTP', counter: 41 });
    expect((await run.programOne(key, t)).outcome.status).toBe('programmed');
    await run.close();
    const [fromCsv] = seedFormat('hexcsv').read(readFileSync(join(run.outDir, 'hseeds.csv')));
    const [fromPskc] = seedFormat('pskc').read(readFileSync(join(run.outDir, 'hseeds.pskcxml')));
    expect(fromCsv!.counter).toBe(42);
    expect(fromPskc!.counter).toBe(42);
    const credential = (await key.session.list())[0]!;
    for (let i = 0; i < 3; i++) {
      const next = await key.session.calculate({ ...credential, touch: false });
      expect(next.code).toBe(hotp(fromCsv!.secret, 42 + i));
      expect(await oathtool({ hexSecret: hexEncode(fromCsv!.secret), type: 'HOTP', counter: 42 + i })).toBe(next.code);
    }
  });
});

describe('refusals before anything is written to the key', () => {
  async function refusal(key: OpenKey, run: ProvisionRun, t: ProvisionToken, replace = false): Promise<string> {
    const before = (await key.session.list()).map((c) => c.id);
    const linesBefore = readFileSync(join(run.outDir, 'ledger.jsonl'), 'utf8');
    let message = '';
    try {
      const { outcome } = await run.programOne(key, t, { replace });
      message = outcome.status === 'refused' ? `${outcome.error.code}: ${outcome.error.message}` : `not refused: ${outcome.status}`;
    } catch (error) {
      message = `${(error as { code?: string }).code}: ${(error as Error).message}`;
    }
    // Nothing on the key changed, and no secret went into the ledger.
    expect((await key.session.list()).map((c) => c.id)).toEqual(before);
    expect(readFileSync(join(run.outDir, 'ledger.jsonl'), 'utf8')).toBe(linesBefore);
    return message;
  }

  it('the name exists on the key (unless --replace)', async () => {
    const key = await virtualKey('yubikey');
    const run = await startRun();
    expect((await run.programOne(key, token(run, { account: 'alice' }))).outcome.status).toBe('programmed');
    expect(await refusal(key, run, token(run, { account: 'alice' }))).toMatch(/EXISTS: .* already has an account "alice"/u);
    expect((await run.programOne(key, token(run, { account: 'alice' }), { replace: true })).outcome.status).toBe('programmed');
    await run.close();
  });

  it('the key is full (YubiKey 32, Nitrokey 3 50)', async () => {
    for (const [dialect, max] of [
      ['yubikey', 32],
      ['nitrokey3', 50],
    ] as const) {
      const key = await virtualKey(dialect);
      for (let i = 0; i < max; i++) {
        await key.session.put({ account: `a${i}`, type: 'TOTP', algorithm: 'SHA1', digits: 6, period: 30, touch: false, secret: new Uint8Array(20).fill(i) });
      }
      const run = await startRun();
      expect(await refusal(key, run, token(run))).toMatch(new RegExp(`KEY_FULL: .* holds ${max} accounts`, 'u'));
      await run.close();
    }
  });

  it('a key that says "full" (6A84) only when asked to store: refused, ledger failed and not on the key', async () => {
    const key = await virtualKey('yubikey');
    const transport = key.session.transport;
    const transmit = transport.transmit.bind(transport);
    transport.transmit = (apdu, options) => (apdu[1] === 0x01 ? Promise.resolve({ data: new Uint8Array(), sw: 0x6a84 }) : transmit(apdu, options));
    const run = await startRun();
    const { outcome } = await run.programOne(key, token(run));
    expect(outcome.status).toBe('refused');
    if (outcome.status === 'refused') expect(outcome.error.code).toBe('KEY_FULL');
    expect(await key.session.list()).toEqual([]);
    await run.close();
    expect((await readLedger(run.outDir)).entries.map((e) => [e.state, e.leftOnKey])).toEqual([['failed', false]]);
    expect(run.summary).toEqual({ programmed: 0, failed: 0, skipped: 1 });
  });

  it('the Nitrokey 3 cannot do SHA-512', async () => {
    const key = await virtualKey('nitrokey3');
    const run = await startRun();
    expect(await refusal(key, run, token(run, { algorithm: 'SHA512' }))).toMatch(/UNSUPPORTED: .*cannot compute SHA512 codes/u);
    await run.close();
  });

  it('an Entra export for a token Entra cannot take; a short secret', async () => {
    const key = await virtualKey('yubikey');
    const run = await startRun(['entra']);
    expect(await refusal(key, run, token(run, { type: 'HOTP', upn: 'a@contoso.com' }))).toMatch(/BAD_INPUT: The Entra ID CSV export cannot take token KT\d+: Entra ID does not support HOTP/u);
    expect(await refusal(key, run, token(run, { digits: 8, upn: 'a@contoso.com' }))).toMatch(/6-digit codes only/u);
    const short = { ...token(run, { upn: 'a@contoso.com' }), secret: new Uint8Array(10).fill(7) };
    expect(await refusal(key, run, short)).toMatch(/BAD_INPUT: The secret is 10 bytes/u);
    await run.close();
  });
});

describe('verification', () => {
  it('a key that stores another secret than it was sent: mismatch → error, removed again, ledger failed', async () => {
    const key = await virtualKey('yubikey');
    // Tamper with PUT on its way to the key: the key stores a different secret than the seed.
    const transport = key.session.transport;
    const transmit = transport.transmit.bind(transport);
    transport.transmit = (apdu, options) => {
      if (apdu[1] === 0x01) {
        const copy = Uint8Array.from(apdu);
        copy[copy.length - 1] = copy[copy.length - 1]! ^ 0xff;
        return transmit(copy, options);
      }
      return transmit(apdu, options);
    };
    const run = await startRun();
    const t = token(run, { account: 'bob' });
    const { outcome, exports } = await run.programOne(key, t);
    expect(outcome.status).toBe('failed');
    if (outcome.status !== 'failed') return;
    expect(outcome.error.message).toMatch(/Verification failed: .* computes other codes than the seed for "bob"/u);
    expect(outcome.leftOnKey).toBe(false);
    expect(outcome.error.message).not.toContain(hexEncode(t.secret));
    expect(exports).toEqual([]);
    expect(await key.session.list()).toEqual([]);
    await run.close();
    const ledger = await readLedger(run.outDir);
    expect(ledger.entries.map((e) => [e.state, e.leftOnKey])).toEqual([['failed', false]]);
    expect(run.summary).toEqual({ programmed: 0, failed: 1, skipped: 0 });
  });

  it('a touch that never comes fails verification and removes the credential', async () => {
    const dir = tempDir();
    const key = await openOathSession(virtualFileKey({ file: join(dir, 'k.json'), touch: { mode: 'never' }, touchTimeoutMs: 100 }));
    open.push(key);
    const run = await startRun();
    const { outcome } = await run.programOne(key, token(run, { touch: true }));
    expect(outcome.status).toBe('failed');
    if (outcome.status === 'failed') expect(outcome.error.code).toBe('TOUCH_TIMEOUT');
    expect(await key.session.list()).toEqual([]);
    await run.close();
  });
});

describe('starting a run on a folder with seed files', () => {
  it('reads each existing seed file once, for both the overwrite check and the repair check', async () => {
    const outDir = join(tempDir(), 'out');
    const key = await virtualKey('yubikey');
    const first = await ProvisionRun.start({ outDir, formats: [seedFormat('pskc')] });
    expect((await first.programOne(key, token(first))).outcome.status).toBe('programmed');
    await first.close();
    // A wrapper that counts reads: encrypted PSKC costs a PBKDF2 derivation per read.
    const pskc = seedFormat('pskc');
    let reads = 0;
    const counted = { ...pskc, read: (...args: Parameters<typeof pskc.read>) => ((reads += 1), pskc.read(...args)) };
    const second = await ProvisionRun.start({ outDir, formats: [counted] });
    await second.close();
    expect(second.repairedFiles).toEqual([]);
    expect(reads).toBe(1);
  });
});
