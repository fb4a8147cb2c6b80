/**
 * The traffic log and the recorder (src/device/transport/trace.ts): what each line says, what is
 * redacted, and that a recorded transcript replays. The end-to-end run through the CLI is in
 * test/cli/cli-trace.test.ts.
 */
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeytapError } from '../../src/errors.js';
import { Ins } from '../../src/device/oath/constants.js';
import { OathSession } from '../../src/device/oath/session.js';
import { CtapHidApduTransport } from '../../src/device/transport/ctaphid.js';
import type { TraceOptions } from '../../src/device/transport/trace.js';
import { parseCommandApdu, traceApduTransport, traceHidLink, traceOptionsFromEnv } from '../../src/device/transport/trace.js';
import type { ApduResponse, ApduTransport, HidLink } from '../../src/device/transport/types.js';
import { encodeApdu } from '../../src/device/transport/types.js';
import { VirtualKey } from '../../src/emulator/virtual-key.js';
import { eightByteRuns, truncatedHex } from '../support/hotp-reference.js';
import { ReplayTransport } from '../support/replay-transport.js';
import { rejection } from '../support/rejection.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keytap-trace-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** What the log shows in place of hidden bytes. */
const REDACTED = '[redacted]';
const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const bytes = (text: string): Uint8Array => Uint8Array.from(Buffer.from(text.replace(/\s+/gu, ''), 'hex'));

/** A transport that answers from a list, like a key that says the same thing whatever it is asked. */
class ScriptedTransport implements ApduTransport {
  readonly description = 'scripted key';
  readonly sent: string[] = [];
  closed = false;
  constructor(private readonly answers: Array<ApduResponse | Error>) {}
  transmit(apdu: Uint8Array): Promise<ApduResponse> {
    this.sent.push(hex(apdu));
    const next = this.answers.shift();
    if (!next) return Promise.reject(new Error('no answer scripted'));
    return next instanceof Error ? Promise.reject(next) : Promise.resolve(next);
  }
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}

function logged(options: Partial<TraceOptions> = {}): { options: TraceOptions; lines: string[] } {
  const lines: string[] = [];
  return { options: { apdu: true, hid: false, unsafe: false, ...options, log: (line) => lines.push(line) }, lines };
}

const SECRET = bytes('3f1c9a5be27d48a0c6f1e2d3b4a59687');
const CODE_RESPONSE = bytes('76 05 06 1a2b3c4d');
const HMAC_RESPONSE = bytes('75 14 00112233445566778899aabbccddeeff00112233');
const ok = (data: Uint8Array = new Uint8Array()): ApduResponse => ({ data, sw: 0x9000 });

describe('traceOptionsFromEnv', () => {
  it('reads the levels, the unsafe switch and the recording file', () => {
    expect(traceOptionsFromEnv({})).toEqual({ apdu: false, hid: false, unsafe: false, record: undefined });
    expect(traceOptionsFromEnv({ KEYTAP_TRACE: 'apdu' })).toMatchObject({ apdu: true, hid: false });
    expect(traceOptionsFromEnv({ KEYTAP_TRACE: 'hid' })).toMatchObject({ apdu: false, hid: true });
    expect(traceOptionsFromEnv({ KEYTAP_TRACE: ' APDU , hid ' })).toMatchObject({ apdu: true, hid: true });
    expect(traceOptionsFromEnv({ KEYTAP_TRACE: 'verbose' })).toMatchObject({ apdu: false, hid: false });
    expect(traceOptionsFromEnv({ KEYTAP_TRACE_UNSAFE: '1' }).unsafe).toBe(true);
    expect(traceOptionsFromEnv({ KEYTAP_TRACE_UNSAFE: '0' }).unsafe).toBe(false);
    expect(traceOptionsFromEnv({ KEYTAP_TRACE_UNSAFE: 'yes' }).unsafe).toBe(false);
    expect(traceOptionsFromEnv({ KEYTAP_RECORD: '/tmp/t.txt' }).record).toBe('/tmp/t.txt');
    expect(traceOptionsFromEnv({ KEYTAP_RECORD: '  ' }).record).toBeUndefined();
  });
});

describe('parseCommandApdu', () => {
  it('takes short and extended encodings apart', () => {
    expect(parseCommandApdu(Uint8Array.of(0x00, 0xa1, 0x00, 0x00))).toMatchObject({ ins: 0xa1, lc: undefined, le: undefined, data: new Uint8Array() });
    expect(parseCommandApdu(Uint8Array.of(0x00, 0xa5, 0x00, 0x00, 0x00))).toMatchObject({ ins: 0xa5, lc: undefined, le: 0 });
    expect(parseCommandApdu(Uint8Array.of(0x00, 0x01, 0x00, 0x00, 0x02, 0xaa, 0xbb, 0x00))).toMatchObject({ lc: 2, data: Uint8Array.of(0xaa, 0xbb), le: 0 });
    const long = new Uint8Array(300).fill(7);
    expect(parseCommandApdu(encodeApdu(0x00, 0x01, 0x00, 0x00, long))).toMatchObject({ lc: 300, data: long });
  });
});

describe('traceApduTransport', () => {
  it('returns the transport itself when nothing is traced or recorded', () => {
    const transport = new ScriptedTransport([]);
    expect(traceApduTransport(transport, { apdu: false, hid: true, unsafe: true, record: undefined })).toBe(transport);
  });

  it('shows SELECT and LIST in full: header, Lc, data, status word and length', async () => {
    const { options, lines } = logged();
    const selectAnswer = bytes('79 03 050403 71 08 0102030405060708');
    const transport = traceApduTransport(new ScriptedTransport([ok(selectAnswer), { data: bytes('7203 21 6162'), sw: 0x6105 }]), options);
    await transport.transmit(encodeApdu(0x00, Ins.SELECT, 0x04, 0x00, bytes('a0000005272101')));
    await transport.transmit(encodeApdu(0x00, Ins.LIST, 0x00, 0x00));
    expect(lines).toEqual([
      'keytap apdu => SELECT 00 A4 04 00 Lc=7 a0000005272101',
      `keytap apdu <= 9000 len=${selectAnswer.length} ${hex(selectAnswer)}`,
      'keytap apdu => LIST 00 A1 00 00',
      'keytap apdu <= 6105 len=5 7203216162',
    ]);
  });

  it('redacts the data of PUT, SET CODE, VALIDATE and the PIN commands, and every answer that can carry a code', async () => {
    const { options, lines } = logged();
    const transport = traceApduTransport(
      new ScriptedTransport([ok(), ok(HMAC_RESPONSE), ok(HMAC_RESPONSE), ok(CODE_RESPONSE), ok(CODE_RESPONSE), ok(), ok(), ok()]),
      options,
    );
    const put = bytes(`71 01 61 73 12 21 06 ${hex(SECRET)}`);
    await transport.transmit(encodeApdu(0x00, Ins.PUT, 0x00, 0x00, put));
    await transport.transmit(encodeApdu(0x00, Ins.SET_CODE, 0x00, 0x00, bytes(`73 11 01 ${hex(SECRET)}`)));
    await transport.transmit(encodeApdu(0x00, Ins.VALIDATE, 0x00, 0x00, HMAC_RESPONSE));
    await transport.transmit(encodeApdu(0x00, Ins.CALCULATE, 0x00, 0x01, bytes('71 01 61 74 08 0000000003919293')));
    await transport.transmit(encodeApdu(0x00, Ins.CALCULATE_ALL, 0x00, 0x01, bytes('74 08 0000000003919293')));
    await transport.transmit(encodeApdu(0x00, Ins.VERIFY_PIN, 0x00, 0x00, bytes('80 04 31323334')));
    await transport.transmit(encodeApdu(0x00, Ins.SET_PIN, 0x00, 0x00, bytes('80 04 31323334')));
    await transport.transmit(encodeApdu(0x00, Ins.CHANGE_PIN, 0x00, 0x00, bytes('80 04 31323334 81 04 35363738')));
    expect(lines).toEqual([
      `keytap apdu => PUT 00 01 00 00 Lc=${put.length} ${REDACTED}`,
      'keytap apdu <= 9000 len=0',
      `keytap apdu => SET CODE 00 03 00 00 Lc=19 ${REDACTED}`,
      `keytap apdu <= 9000 len=22 ${REDACTED}`,
      `keytap apdu => VALIDATE 00 A3 00 00 Lc=22 ${REDACTED}`,
      `keytap apdu <= 9000 len=22 ${REDACTED}`,
      // The name and the challenge are not secret; the answer is the code.
      'keytap apdu => CALCULATE 00 A2 00 01 Lc=13 71016174080000000003919293',
      `keytap apdu <= 9000 len=7 ${REDACTED}`,
      'keytap apdu => CALCULATE ALL 00 A4 00 01 Lc=10 74080000000003919293',
      `keytap apdu <= 9000 len=7 ${REDACTED}`,
      `keytap apdu => VERIFY PIN 00 B2 00 00 Lc=6 ${REDACTED}`,
      'keytap apdu <= 9000 len=0',
      `keytap apdu => SET PIN 00 B4 00 00 Lc=6 ${REDACTED}`,
      'keytap apdu <= 9000 len=0',
      `keytap apdu => CHANGE PIN 00 B3 00 00 Lc=12 ${REDACTED}`,
      'keytap apdu <= 9000 len=0',
    ]);
    const all = lines.join('\n');
    for (const secret of [SECRET, CODE_RESPONSE, HMAC_RESPONSE, bytes('31323334')]) expect(all).not.toContain(hex(secret));
  });

  it('redacts SEND REMAINING when it continues a secret answer, and shows it when it continues LIST', async () => {
    const { options, lines } = logged();
    const more = (data: Uint8Array): ApduResponse => ({ data, sw: 0x61ff });
    const transport = traceApduTransport(
      new ScriptedTransport([more(CODE_RESPONSE), ok(CODE_RESPONSE), more(bytes('7203216162')), ok(bytes('7203216163')), ok(CODE_RESPONSE)]),
      options,
    );
    await transport.transmit(encodeApdu(0x00, Ins.CALCULATE_ALL, 0x00, 0x01, bytes('74 08 0000000003919293')));
    await transport.transmit(encodeApdu(0x00, Ins.SEND_REMAINING, 0x00, 0x00));
    await transport.transmit(encodeApdu(0x00, Ins.LIST, 0x00, 0x00));
    await transport.transmit(encodeApdu(0x00, Ins.SEND_REMAINING, 0x00, 0x00));
    // No answer left to continue: a SEND REMAINING out of the blue is hidden.
    await transport.transmit(encodeApdu(0x00, Ins.SEND_REMAINING, 0x00, 0x00));
    expect(lines.filter((line) => line.includes('<='))).toEqual([
      `keytap apdu <= 61FF len=7 ${REDACTED}`,
      `keytap apdu <= 9000 len=7 ${REDACTED}`,
      'keytap apdu <= 61FF len=5 7203216162',
      'keytap apdu <= 9000 len=5 7203216163',
      `keytap apdu <= 9000 len=7 ${REDACTED}`,
    ]);
  });

  it('shows the header of an unknown instruction and hides its data both ways', async () => {
    const { options, lines } = logged();
    const transport = traceApduTransport(new ScriptedTransport([ok(bytes('cafe'))]), options);
    await transport.transmit(encodeApdu(0x80, 0x42, 0x01, 0x02, bytes('beef')));
    expect(lines).toEqual([`keytap apdu => INS 42 80 42 01 02 Lc=2 ${REDACTED}`, `keytap apdu <= 9000 len=2 ${REDACTED}`]);
  });

  it('shows everything with unsafe', async () => {
    const { options, lines } = logged({ unsafe: true });
    const transport = traceApduTransport(new ScriptedTransport([ok(), ok(CODE_RESPONSE), ok(HMAC_RESPONSE)]), options);
    await transport.transmit(encodeApdu(0x00, Ins.PUT, 0x00, 0x00, SECRET));
    await transport.transmit(encodeApdu(0x00, Ins.CALCULATE, 0x00, 0x01, bytes('7101617400')));
    await transport.transmit(encodeApdu(0x00, Ins.VALIDATE, 0x00, 0x00, HMAC_RESPONSE));
    expect(lines).toEqual([
      `keytap apdu => PUT 00 01 00 00 Lc=16 ${hex(SECRET)}`,
      'keytap apdu <= 9000 len=0',
      'keytap apdu => CALCULATE 00 A2 00 01 Lc=5 7101617400',
      `keytap apdu <= 9000 len=7 ${hex(CODE_RESPONSE)}`,
      `keytap apdu => VALIDATE 00 A3 00 00 Lc=22 ${hex(HMAC_RESPONSE)}`,
      `keytap apdu <= 9000 len=22 ${hex(HMAC_RESPONSE)}`,
    ]);
  });

  it('logs a failed exchange by its error code alone and passes the error on', async () => {
    const { options, lines } = logged();
    const failure = new KeytapError('TIMEOUT', `A message that should never name ${hex(SECRET)}.`);
    const transport = traceApduTransport(new ScriptedTransport([failure]), options);
    expect(await rejection(transport.transmit(encodeApdu(0x00, Ins.LIST, 0x00, 0x00)))).toBe(failure);
    expect(lines).toEqual(['keytap apdu => LIST 00 A1 00 00', 'keytap apdu <= no answer: TIMEOUT']);
  });
});

describe('the recorder', () => {
  const select = encodeApdu(0x00, Ins.SELECT, 0x04, 0x00, bytes('a0000005272101'));
  const selectAnswer = bytes('79 03 050403 71 08 0102030405060708');
  const calculate = encodeApdu(0x00, Ins.CALCULATE, 0x00, 0x01, bytes('71 01 61 74 08 0000000003919293'));
  const put = encodeApdu(0x00, Ins.PUT, 0x00, 0x00, bytes(`71 01 61 73 12 21 06 ${hex(SECRET)}`));

  async function record(file: string, unsafe: boolean): Promise<ScriptedTransport> {
    const inner = new ScriptedTransport([ok(selectAnswer), ok(), ok(CODE_RESPONSE)]);
    const transport = traceApduTransport(inner, { apdu: false, hid: false, unsafe, record: file, log: () => undefined });
    await transport.transmit(select);
    await transport.transmit(put);
    await transport.transmit(calculate);
    await transport.close();
    return inner;
  }

  it('with unsafe, writes a transcript (mode 0600) that ReplayTransport replays byte for byte', async () => {
    const file = join(dir, 'unsafe.txt');
    const inner = await record(file, true);
    expect(inner.closed).toBe(true);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const replay = new ReplayTransport(await readFile(file, 'utf8'));
    expect(await replay.transmit(select)).toEqual(ok(selectAnswer));
    expect(await replay.transmit(put)).toEqual(ok());
    expect(await replay.transmit(calculate)).toEqual(ok(CODE_RESPONSE));
    replay.assertDone();
  });

  it('without unsafe, keeps secret exchanges as redacted comments, so only the others replay', async () => {
    const file = join(dir, 'safe.txt');
    await record(file, false);
    const text = await readFile(file, 'utf8');
    expect(text).not.toContain(hex(SECRET));
    expect(text).not.toContain(hex(CODE_RESPONSE));
    expect(text).toContain(`# => 00010000 ${REDACTED}`);
    expect(text).toContain(`# => ${hex(calculate)}\n# <= ${REDACTED} 9000`);
    const replay = new ReplayTransport(text);
    expect(await replay.transmit(select)).toEqual(ok(selectAnswer));
    replay.assertDone();
  });

  it('keeps every session of the process in the file, one after the other', async () => {
    const file = join(dir, 'two.txt');
    for (let i = 0; i < 2; i++) {
      const transport = traceApduTransport(new ScriptedTransport([ok(selectAnswer)]), { apdu: false, hid: false, unsafe: true, record: file });
      await transport.transmit(select);
      await transport.close();
    }
    const text = await readFile(file, 'utf8');
    expect(text.match(/^# session: scripted key/gmu)).toHaveLength(2);
    const replay = new ReplayTransport(text);
    await replay.transmit(select);
    await replay.transmit(select);
    replay.assertDone();
  });
});

/** The whole client stack over the in-process virtual key, with both wrappers in place as open.ts puts them. */
async function tracedSession(file: string, options: TraceOptions): Promise<{ session: OathSession; close: () => Promise<void> }> {
  const key = await VirtualKey.open({ file, dialect: 'yubikey' });
  const link: HidLink = traceHidLink(key.openLink(), options);
  const transport = traceApduTransport(await CtapHidApduTransport.open(link, { description: 'virtual key' }), options);
  const session = await OathSession.open(transport);
  return {
    session,
    close: async () => {
      await transport.close();
      await key.close();
    },
  };
}

describe('tracing the real client stack over the virtual key', () => {
  // 64 bytes: PUT then spans two HID reports.
  const secret = Uint8Array.from({ length: 64 }, (_, i) => (i * 73 + 11) & 0xff);
  const time = 1_700_000_000;

  async function run(unsafe: boolean): Promise<{ apdu: string[]; hid: string[]; code: string }> {
    const { options, lines } = logged({ hid: true, unsafe });
    const { session, close } = await tracedSession(join(dir, `stack-${unsafe}.json`), options);
    try {
      const credential = await session.put({ issuer: 'Ex', account: 'alice', type: 'TOTP', algorithm: 'SHA512', digits: 6, period: 30, touch: false, secret });
      const { code } = await session.calculate(credential, { time });
      await session.setPassword('hunter2');
      await session.select();
      await session.unlock('hunter2');
      return { apdu: lines.filter((l) => l.startsWith('keytap apdu')), hid: lines.filter((l) => l.startsWith('keytap hid')), code };
    } finally {
      await close();
    }
  }

  it('hides the secret, the code and the password exchanges in every APDU and every report', async () => {
    const { apdu, hid } = await run(false);
    const all = [...apdu, ...hid].join('\n');
    for (const run of eightByteRuns(secret)) expect(all).not.toContain(run);
    expect(all).not.toContain(truncatedHex(secret, 'sha512', Math.floor(time / 30)).slice(1));
    expect(apdu.find((l) => l.includes('=> PUT'))).toMatch(/\[redacted\]$/u);
    expect(apdu.find((l) => l.includes('=> SET CODE'))).toMatch(/\[redacted\]$/u);
    expect(apdu.find((l) => l.includes('=> VALIDATE'))).toMatch(/\[redacted\]$/u);
    // At the report level the PUT message shows its APDU header, then only [redacted], continuation included.
    const putStart = hid.findIndex((l) => / init VENDOR_SECRETS len=\d+ 00010000 \[redacted\]$/u.test(l));
    expect(putStart).toBeGreaterThanOrEqual(0);
    expect(hid[putStart + 1]).toMatch(/ cont seq=0 \[redacted\]$/u);
    // SELECT is shown in full at both levels.
    expect(apdu).toContain('keytap apdu => SELECT 00 A4 04 00 Lc=7 a0000005272101');
    expect(hid.some((l) => / init VENDOR_SECRETS len=12 00a4040007a0000005272101$/u.test(l))).toBe(true);
    expect(hid[0]).toMatch(/^keytap hid => cid=ffffffff init INIT len=8 [0-9a-f]{16}$/u);
  });

  it('shows them all with unsafe', async () => {
    const { apdu, hid, code } = await run(true);
    const truncated = truncatedHex(secret, 'sha512', Math.floor(time / 30));
    expect(Number.parseInt(truncated, 16) % 1_000_000).toBe(Number(code));
    expect(apdu.join('\n')).toContain(hex(secret));
    expect(apdu.join('\n')).toMatch(new RegExp(`760506[0-9a-f]${truncated.slice(1)}`, 'u'));
    expect(hid.join('\n')).toMatch(new RegExp(`760506[0-9a-f]${truncated.slice(1)}`, 'u'));
    expect(`${apdu.join('\n')}${hid.join('\n')}`).not.toContain(REDACTED);
  });
});
