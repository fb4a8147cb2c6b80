/**
 * KEYTAP_TRACE and KEYTAP_RECORD through the built CLI, over the virtual key: the traffic log shows
 * the exchanges and hides secrets and codes unless KEYTAP_TRACE_UNSAFE=1, and an unsafe recording
 * of a real run replays through ReplayTransport with an OathSession to the same code.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { OathSession } from '../../src/device/oath/session.js';
import type { Dialect } from '../../src/device/oath/dialect.js';
import { oathtool, runKeytap, tempDir } from '../support/cli.js';
import { eightByteRuns, truncatedHex } from '../support/hotp-reference.js';
import { ReplayTransport } from '../support/replay-transport.js';

// The virtual key's demo secrets (src/emulator/store.ts): Demo:alice, and Cloud:alice's SHA-512 one.
const DEMO_SECRET = Buffer.from('12345678901234567890');
const CLOUD_SECRET = Buffer.from('1234567890123456789012345678901234567890123456789012345678901234');

interface CodeJson {
  id: string;
  code: string;
  validFrom: string;
}

/** `keytap code Demo:alice` on a virtual Nitrokey 3, which has no CALCULATE ALL: the code comes from CALCULATE. */
async function tracedCode(env: NodeJS.ProcessEnv, dialect: Dialect = 'nitrokey3'): Promise<{ json: CodeJson; stderr: string; counter: number }> {
  const file = join(tempDir(), 'key.json');
  const result = await runKeytap(['code', '--virtual', file, '--dialect', dialect, '--demo', 'Demo:alice', '--json'], { env });
  expect(result.code, result.stderr).toBe(0);
  const json = JSON.parse(result.stdout) as CodeJson;
  return { json, stderr: result.stderr, counter: Date.parse(json.validFrom) / 1000 / 30 };
}

describe('KEYTAP_TRACE', () => {
  it('=apdu shows SELECT and CALCULATE with their status words, and hides the code', async () => {
    const { json, stderr, counter } = await tracedCode({ KEYTAP_TRACE: 'apdu' });
    expect(stderr).toContain('keytap apdu => SELECT 00 A4 04 00 Lc=7 a0000005272101\n');
    expect(stderr).toMatch(/^keytap apdu <= 9000 len=\d+ 79[0-9a-f]+$/mu);
    expect(stderr).toMatch(/^keytap apdu => CALCULATE 00 A2 00 01 Lc=\d+ 7116[0-9a-f]+$/mu);
    expect(stderr).toContain('keytap apdu <= 9000 len=7 [redacted]\n');
    // Not as text; inside the hex of the answers the truncated value below is the real check.
    expect(stderr.replace(/[0-9a-f]{8,}/gu, '')).not.toContain(json.code);
    // CALCULATE ALL (while listing) may have run in the window before.
    for (const c of [counter - 1, counter]) expect(stderr).not.toContain(truncatedHex(DEMO_SECRET, 'sha1', c).slice(1));
    expect(json.code).toBe(await oathtool({ hexSecret: DEMO_SECRET.toString('hex'), type: 'TOTP', time: counter * 30 }));
  });

  it('=apdu on a YubiKey: a 30-second account\'s code comes from CALCULATE ALL (no CALCULATE), whose answer is hidden', async () => {
    const { json, stderr, counter } = await tracedCode({ KEYTAP_TRACE: 'apdu' }, 'yubikey');
    const requests = [...stderr.matchAll(/^keytap apdu => ([A-Z ]+?) [0-9A-F]{2} /gmu)].map((match) => match[1]);
    expect(requests).toEqual(['SELECT', 'LIST', 'CALCULATE ALL']);
    expect(stderr).toMatch(/^keytap apdu <= 9000 len=\d+ \[redacted\]$/mu);
    for (const c of [counter - 1, counter]) expect(stderr).not.toContain(truncatedHex(DEMO_SECRET, 'sha1', c).slice(1));
    expect(json.code).toBe(await oathtool({ hexSecret: DEMO_SECRET.toString('hex'), type: 'TOTP', time: counter * 30 }));
  });

  it('with KEYTAP_TRACE_UNSAFE=1 shows the code as the key sent it', async () => {
    const { json, stderr, counter } = await tracedCode({ KEYTAP_TRACE: 'apdu', KEYTAP_TRACE_UNSAFE: '1' });
    const truncated = truncatedHex(DEMO_SECRET, 'sha1', counter);
    expect(Number.parseInt(truncated, 16) % 1_000_000).toBe(Number(json.code));
    const sent = /^keytap apdu <= 9000 len=7 760506([0-9a-f]{8})$/mu.exec(stderr);
    expect(sent).not.toBeNull();
    expect(Number.parseInt(sent![1]!, 16) & 0x7fffffff).toBe(Number.parseInt(truncated, 16));
    expect(stderr).not.toContain('[redacted]');
  });

  it('=apdu,hid hides a secret being stored at both levels, and shows it with unsafe', async () => {
    const add = (env: NodeJS.ProcessEnv): ReturnType<typeof runKeytap> =>
      runKeytap(['add', '--virtual', join(tempDir(), 'key.json'), '--account', 'cloud', '--algorithm', 'SHA512', '--secret', `hex:${CLOUD_SECRET.toString('hex')}`], { env });

    const safe = await add({ KEYTAP_TRACE: 'apdu,hid' });
    expect(safe.code, safe.stderr).toBe(0);
    expect(safe.stderr).toMatch(/^keytap apdu => PUT 00 01 00 00 Lc=\d+ \[redacted\]$/mu);
    expect(safe.stderr).toMatch(/^keytap hid => cid=[0-9a-f]{8} init VENDOR_SECRETS len=\d+ 00010000 \[redacted\]$/mu);
    expect(safe.stderr).toMatch(/^keytap hid => cid=[0-9a-f]{8} cont seq=0 \[redacted\]$/mu);
    for (const run of eightByteRuns(CLOUD_SECRET)) expect(safe.stderr).not.toContain(run);

    const unsafe = await add({ KEYTAP_TRACE: 'apdu,hid', KEYTAP_TRACE_UNSAFE: '1' });
    expect(unsafe.code, unsafe.stderr).toBe(0);
    expect(unsafe.stderr).toMatch(new RegExp(`^keytap apdu => PUT .*${CLOUD_SECRET.toString('hex')}`, 'mu'));
  });
});

describe.each<Dialect>(['yubikey', 'nitrokey3'])('KEYTAP_RECORD over a virtual %s', (dialect) => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('records a transcript that replays to the same code', async () => {
    const dir = tempDir();
    const record = join(dir, 'session.txt');
    const result = await runKeytap(['code', '--virtual', join(dir, 'key.json'), '--dialect', dialect, '--demo', 'Demo:alice', '--json'], {
      env: { KEYTAP_RECORD: record, KEYTAP_TRACE_UNSAFE: '1' },
    });
    expect(result.code, result.stderr).toBe(0);
    // Recording is not tracing: nothing on stderr.
    expect(result.stderr).toBe('');
    const json = JSON.parse(result.stdout) as CodeJson;
    expect(statSync(record).mode & 0o777).toBe(0o600);
    const transcript = readFileSync(record, 'utf8');

    const replay = new ReplayTransport(transcript);
    const session = await OathSession.open(replay);
    // A YubiKey lists with CALCULATE ALL for the moment of listing: replay that moment.
    const listedAt = /^=> 00a400010a7408([0-9a-f]{16})$/mu.exec(transcript);
    if (dialect === 'yubikey') {
      expect(listedAt).not.toBeNull();
      vi.useFakeTimers({ toFake: ['Date'] });
      vi.setSystemTime(Number.parseInt(listedAt![1]!, 16) * 30_000);
    } else {
      expect(listedAt).toBeNull();
    }
    const { credentials, codes } = await session.listWithReadyCodes();
    vi.useRealTimers();
    const credential = credentials.find((c) => c.id === json.id);
    expect(credential).toBeDefined();
    const from = Date.parse(json.validFrom) / 1000;
    // A YubiKey's listing already computed it; a Nitrokey 3 is asked with CALCULATE.
    expect(codes.has(json.id)).toBe(dialect === 'yubikey');
    const replayed = codes.get(json.id) ?? (await session.calculate(credential!, { time: from }));
    replay.assertDone();
    expect(replayed.code).toBe(json.code);
    expect(replayed.code).toBe(await oathtool({ hexSecret: DEMO_SECRET.toString('hex'), type: 'TOTP', time: from }));
  });
});
