/**
 * Byte-level tests of the virtual key's OATH applet in both dialects. Expected bytes come from
 * docs/protocols.md §1 (YKOATH) and §2 (Nitrokey 3 Secrets App).
 */
import { createHmac, pbkdf2Sync } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KeytapError } from '../../src/errors.js';
import { OathApplet, parseApdu } from '../../src/emulator/oath-applet.js';
import { VirtualKeyStore } from '../../src/emulator/store.js';
import type { AppletContext } from '../../src/emulator/types.js';
import type { Dialect } from '../../src/device/oath/dialect.js';

const RFC_SECRET = Buffer.from('12345678901234567890', 'ascii');

/** Hex with any spacing → bytes. */
function h(text: string): Uint8Array {
  return Uint8Array.from(Buffer.from(text.replace(/\s+/gu, ''), 'hex'));
}
/** Bytes → spaced upper-case hex, as docs/protocols.md writes them. */
function show(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex').toUpperCase().replace(/(..)(?!$)/gu, '$1 ');
}
function swOf(bytes: Uint8Array): string {
  return show(bytes.subarray(bytes.length - 2));
}
function dataOf(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.subarray(0, bytes.length - 2));
}
function tlv(tag: number, value: Uint8Array | Buffer | string): string {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value);
  return Buffer.concat([Buffer.from([tag, bytes.length]), bytes]).toString('hex');
}
/** A short APDU with Lc (and no Le), as yubikit 4.0.9 sends them. */
function apdu(header: string, dataHex = ''): Uint8Array {
  const data = Buffer.from(dataHex.replace(/\s+/gu, ''), 'hex');
  return Uint8Array.from(Buffer.concat([Buffer.from(header.replace(/\s+/gu, ''), 'hex'), Buffer.from([data.length]), data]));
}

interface TestContext extends AppletContext {
  touches: number;
}
function context(touch: boolean | 'cancel' = true): TestContext {
  const controller = new AbortController();
  const ctx: TestContext = {
    signal: controller.signal,
    touches: 0,
    requestTouch: () => {
      ctx.touches++;
      if (touch === 'cancel') return Promise.reject(new KeytapError('CANCELLED', 'The operation was cancelled.'));
      return Promise.resolve(touch);
    },
  };
  return ctx;
}

const SELECT = apdu('00 A4 04 00', 'A0 00 00 05 27 21 01');
const putHex = (id: string, typeAlgo: number, digits: number, key: Buffer, extra = ''): string =>
  tlv(0x71, id) + tlv(0x73, Buffer.concat([Buffer.from([typeAlgo, digits]), key])) + extra;
const pad14 = (key: Buffer): Buffer => (key.length < 14 ? Buffer.concat([key, Buffer.alloc(14 - key.length)]) : key);

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keytap-applet-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function setup(dialect: Dialect): Promise<{ store: VirtualKeyStore; applet: OathApplet; send: (bytes: Uint8Array, ctx?: AppletContext) => Promise<Uint8Array> }> {
  const store = await VirtualKeyStore.open(join(dir, `${dialect}.json`), { dialect });
  const applet = new OathApplet(store, { dialect });
  const send = (bytes: Uint8Array, ctx: AppletContext = context()): Promise<Uint8Array> => applet.process(bytes, ctx);
  return { store, applet, send };
}

describe('APDU parsing', () => {
  it('accepts case 1, case 2 with a trailing 00 (ykman 4.0.9), short and extended Lc, with and without Le', () => {
    expect(parseApdu(h('00 A1 00 00'))?.data.length).toBe(0);
    expect(parseApdu(h('00 A1 00 00 00'))?.data.length).toBe(0);
    expect(parseApdu(h('00 A5 00 00 00 00 00'))?.data.length).toBe(0);
    expect(show(parseApdu(h('00 02 00 00 03 71 01 41'))!.data)).toBe('71 01 41');
    expect(show(parseApdu(h('00 02 00 00 03 71 01 41 00'))!.data)).toBe('71 01 41');
    expect(show(parseApdu(h('00 02 00 00 00 00 03 71 01 41'))!.data)).toBe('71 01 41');
    expect(show(parseApdu(h('00 02 00 00 00 00 03 71 01 41 00 00'))!.data)).toBe('71 01 41');
  });
  it('refuses lengths that do not add up', () => {
    expect(parseApdu(h('00 A1 00'))).toBeUndefined();
    expect(parseApdu(h('00 02 00 00 05 71 01'))).toBeUndefined();
    expect(parseApdu(h('00 02 00 00 00 00 05 71'))).toBeUndefined();
  });
});

describe('YubiKey dialect', () => {
  it('SELECT answers 79 (5.4.3) and 71 (salt); other AIDs but Management get 6A82 (OTP, FIDO)', async () => {
    const { store, send } = await setup('yubikey');
    const answer = await send(SELECT);
    expect(show(answer)).toBe(`79 03 05 04 03 71 08 ${show(store.salt)} 90 00`);
    expect(show(await send(apdu('00 A4 04 00', 'A0 00 00 05 27 20 01')))).toBe('6A 82');
    expect(show(await send(apdu('00 A4 04 00', 'A0 00 00 06 47 2F 00 01')))).toBe('6A 82');
  });

  it('has the Management application beside OATH: selected, it takes the commands until OATH is selected again (issue 9 item 13)', async () => {
    const { store, send } = await setup('yubikey');
    // "5.4.3" in ASCII, as a YubiKey 5 answers (yubikit reads it with Version.from_string).
    expect(show(await send(apdu('00 A4 04 00', 'A0 00 00 05 27 47 11 17')))).toBe('35 2E 34 2E 33 90 00');
    const info = await send(h('00 1D 00 00'));
    expect(show(info.subarray(-2))).toBe('90 00');
    expect(show(info.subarray(0, 1))).toBe(show(Uint8Array.of(info.length - 3)));
    expect(show(info)).toContain(`02 04 ${show(store.serialBytes)}`);
    // OATH's LIST is no Management instruction; a SELECT of an absent AID leaves Management selected.
    expect(show(await send(h('00 A1 00 00 00')))).toBe('6D 00');
    expect(show(await send(apdu('00 A4 04 00', 'A0 00 00 05 27 20 01')))).toBe('6A 82');
    expect(show((await send(h('00 1D 00 00'))).subarray(-2))).toBe('90 00');
    expect(show((await send(SELECT)).subarray(0, 5))).toBe('79 03 05 04 03');
    expect(show(await send(h('00 A1 00 00 00')))).toBe('90 00');
  });

  it('the Nitrokey 3 has no Management application (6A82)', async () => {
    const { send } = await setup('nitrokey3');
    expect(show(await send(apdu('00 A4 04 00', 'A0 00 00 05 27 47 11 17')))).toBe('6A 82');
  });

  it('rejects bad lengths with 6700, unknown INS with 6D00, unknown CLA with 6E00, and never throws', async () => {
    const { send } = await setup('yubikey');
    expect(show(await send(h('00 A1')))).toBe('67 00');
    expect(show(await send(h('00 01 00 00 09 71 01')))).toBe('67 00');
    expect(show(await send(h('00 B2 00 00 00')))).toBe('6D 00');
    expect(show(await send(h('80 A1 00 00 00')))).toBe('6E 00');
    expect(show(await send(apdu('00 01 00 00', '71 05 41')))).toBe('6A 80');
    expect(show(await send(apdu('00 01 00 00', '71 81')))).toBe('6A 80');
    expect(show(await send(apdu('00 A4 02 00', '')))).toBe('6A 86');
  });

  it('PUT (the .NET SDK example: 78 without length), LIST v0 and CALCULATE P2=0/1', async () => {
    const { store, send } = await setup('yubikey');
    await send(SELECT);
    // 00 01 00 00 30 | 71 1A "Microsoft:test@outlook.com" | 73 10 21 06 9C 00×13 | 78 02
    const sdk = h(`00 01 00 00 30 ${tlv(0x71, 'Microsoft:test@outlook.com')} 73 10 21 06 9C ${'00'.repeat(13)} 78 02`);
    expect(show(await send(sdk))).toBe('90 00');
    const saved = store.findCredential(Buffer.from('Microsoft:test@outlook.com'))!;
    expect(saved).toMatchObject({ type: 'TOTP', algorithm: 'SHA1', digits: 6, touch: true, increasing: false });
    expect(show(saved.key)).toBe(`9C ${'00 '.repeat(12)}00`);

    expect(show(await send(apdu('00 01 00 00', putHex('Google:test@gmail.com', 0x12, 6, pad14(RFC_SECRET)))))).toBe('90 00');
    const list = await send(h('00 A1 00 00 00'));
    expect(show(list)).toBe(`72 1B 21 ${show(Buffer.from('Microsoft:test@outlook.com'))} 72 16 12 ${show(Buffer.from('Google:test@gmail.com'))} 90 00`);

    // RFC 4226 secret as TOTP with T = 1: truncated C1 39 7E EA, top bit NOT masked on a YubiKey.
    expect(show(await send(apdu('00 01 00 00', putHex('test', 0x21, 6, RFC_SECRET))))).toBe('90 00');
    const calc = tlv(0x71, 'test') + '74 08 00 00 00 00 00 00 00 01'.replace(/ /gu, '');
    expect(show(await send(apdu('00 A2 00 01', calc)))).toBe('76 05 06 C1 39 7E EA 90 00');
    const full = await send(apdu('00 A2 00 00', calc));
    const mac = createHmac('sha1', RFC_SECRET).update(h('00 00 00 00 00 00 00 01')).digest();
    expect(show(full)).toBe(`75 15 06 ${show(mac)} 90 00`);
    expect(show(await send(apdu('00 A2 00 02', calc)))).toBe('6A 86');
    expect(show(await send(apdu('00 A2 00 01', tlv(0x71, 'nope') + '740800')))).toBe('6A 80');
    expect(show(await send(apdu('00 A2 00 01', tlv(0x71, 'nope') + '74080000000000000001')))).toBe('69 84');
  });

  it('PUT overwrites the same id, refuses the 33rd credential with 6A84, and checks the key header', async () => {
    const { store, send } = await setup('yubikey');
    for (let i = 0; i < 32; i++) expect(swOf(await send(apdu('00 01 00 00', putHex(`acct${i}`, 0x21, 6, RFC_SECRET))))).toBe('90 00');
    expect(swOf(await send(apdu('00 01 00 00', putHex('acct0', 0x22, 8, RFC_SECRET))))).toBe('90 00');
    expect(store.findCredential(Buffer.from('acct0'))).toMatchObject({ algorithm: 'SHA256', digits: 8 });
    expect(store.credentials[0]!.id.toString()).toBe('acct0');
    expect(swOf(await send(apdu('00 01 00 00', putHex('acct32', 0x21, 6, RFC_SECRET))))).toBe('6A 84');
    expect(swOf(await send(apdu('00 01 00 00', putHex('x', 0x31, 6, RFC_SECRET))))).toBe('6A 80');
    expect(swOf(await send(apdu('00 01 00 00', putHex('x', 0x24, 6, RFC_SECRET))))).toBe('6A 80');
    expect(swOf(await send(apdu('00 01 00 00', putHex('x', 0x21, 6, Buffer.alloc(65)))))).toBe('6A 80');
    expect(swOf(await send(apdu('00 01 00 00', putHex('x'.repeat(65), 0x21, 6, RFC_SECRET))))).toBe('6A 80');
    expect(swOf(await send(apdu('00 01 00 00', tlv(0x71, 'x'))))).toBe('6A 80');
  });

  it('HOTP: empty challenge, stored counter used and advanced (and persisted before answering); IMF 7A', async () => {
    const { store, send } = await setup('yubikey');
    expect(swOf(await send(apdu('00 01 00 00', putHex('hotp', 0x11, 6, pad14(RFC_SECRET)))))).toBe('90 00');
    const calc = tlv(0x71, 'hotp') + '7400';
    // RFC 4226: counter 0 → CC 93 CF 18 (755224), counter 1 → C1 39 7E EA (287082)
    expect(show(await send(apdu('00 A2 00 01', calc)))).toBe('76 05 06 CC 93 CF 18 90 00');
    expect(show(await send(apdu('00 A2 00 01', calc)))).toBe('76 05 06 C1 39 7E EA 90 00');
    const reopened = await VirtualKeyStore.open(store.file);
    expect(reopened.findCredential(Buffer.from('hotp'))!.counter).toBe(2);
    // IMF: start at 1
    expect(swOf(await send(apdu('00 01 00 00', putHex('hotp1', 0x11, 6, RFC_SECRET, '7A0400000001'))))).toBe('90 00');
    expect(show(await send(apdu('00 A2 00 01', tlv(0x71, 'hotp1') + '7400')))).toBe('76 05 06 C1 39 7E EA 90 00');
    expect(swOf(await send(apdu('00 01 00 00', putHex('bad', 0x11, 6, RFC_SECRET, '7A0201'))))).toBe('6A 80');
  });

  it('touch credentials: requestTouch first; granted → code, not granted → 6982, cancelled → 6982', async () => {
    const { send } = await setup('yubikey');
    await send(apdu('00 01 00 00', putHex('t', 0x21, 6, RFC_SECRET, '7802')));
    const calc = apdu('00 A2 00 01', tlv(0x71, 't') + '74080000000000000001');
    const yes = context(true);
    expect(show(await send(calc, yes))).toBe('76 05 06 C1 39 7E EA 90 00');
    expect(yes.touches).toBe(1);
    expect(show(await send(calc, context(false)))).toBe('69 82');
    expect(show(await send(calc, context('cancel')))).toBe('69 82');
  });

  it('increasing-only (78 01): a lower challenge is refused', async () => {
    const { send } = await setup('yubikey');
    await send(apdu('00 01 00 00', putHex('inc', 0x21, 6, RFC_SECRET, '7801')));
    expect(swOf(await send(apdu('00 A2 00 01', tlv(0x71, 'inc') + '74080000000000000005')))).toBe('90 00');
    expect(swOf(await send(apdu('00 A2 00 01', tlv(0x71, 'inc') + '74080000000000000005')))).toBe('90 00');
    expect(swOf(await send(apdu('00 A2 00 01', tlv(0x71, 'inc') + '74080000000000000004')))).toBe('6A 80');
  });

  it('CALCULATE ALL: 76 for TOTP (any period, with the given challenge), 7C for touch, 77 for HOTP; 75 with P2=0', async () => {
    const { send } = await setup('yubikey');
    await send(apdu('00 01 00 00', putHex('a', 0x21, 6, RFC_SECRET)));
    await send(apdu('00 01 00 00', putHex('60/b', 0x21, 8, RFC_SECRET)));
    await send(apdu('00 01 00 00', putHex('c', 0x21, 6, RFC_SECRET, '7802')));
    await send(apdu('00 01 00 00', putHex('d', 0x11, 7, RFC_SECRET, '7802')));
    const ctx = context();
    const all = await send(apdu('00 A4 00 01', '74080000000000000001'), ctx);
    expect(show(all)).toBe(
      `71 01 61 76 05 06 C1 39 7E EA 71 04 ${show(Buffer.from('60/b'))} 76 05 08 C1 39 7E EA 71 01 63 7C 01 06 71 01 64 77 01 07 90 00`,
    );
    expect(ctx.touches).toBe(0);
    const mac = createHmac('sha1', RFC_SECRET).update(h('00 00 00 00 00 00 00 01')).digest();
    const full = await send(apdu('00 A4 00 00', '74080000000000000001'));
    expect(show(full).startsWith(`71 01 61 75 15 06 ${show(mac)} 71 04`)).toBe(true);
  });

  it('DELETE: 9000, then 6984 for an unknown id; RENAME (05) keeps working, 6984 for unknown', async () => {
    const { store, send } = await setup('yubikey');
    await send(apdu('00 01 00 00', putHex('Old:alice', 0x21, 6, RFC_SECRET)));
    expect(show(await send(apdu('00 05 00 00', tlv(0x71, 'Old:alice') + tlv(0x71, 'New:alice'))))).toBe('90 00');
    expect(store.findCredential(Buffer.from('New:alice'))).toBeDefined();
    expect(show(await send(apdu('00 05 00 00', tlv(0x71, 'Old:alice') + tlv(0x71, 'X'))))).toBe('69 84');
    expect(show(await send(apdu('00 02 00 00', tlv(0x71, 'New:alice'))))).toBe('90 00');
    expect(show(await send(apdu('00 02 00 00', tlv(0x71, 'New:alice'))))).toBe('69 84');
  });

  it('LIST longer than 256 bytes: 61xx, then SEND REMAINING (A5) until 9000', async () => {
    const { send } = await setup('yubikey');
    const expected: string[] = [];
    for (let i = 0; i < 10; i++) {
      const id = `Issuer${i}:${'a'.repeat(40)}`;
      await send(apdu('00 01 00 00', putHex(id, 0x21, 6, RFC_SECRET)));
      expected.push(tlv(0x72, Buffer.concat([Buffer.of(0x21), Buffer.from(id)])));
    }
    const total = Buffer.from(expected.join(''), 'hex');
    const first = await send(h('00 A1 00 00 00'));
    expect(first.length).toBe(258);
    expect(swOf(first)).toBe(`61 ${(total.length - 256).toString(16).toUpperCase().padStart(2, '0')}`);
    const second = await send(h('00 A5 00 00 00'));
    expect(swOf(second)).toBe('90 00');
    expect(Buffer.concat([dataOf(first), dataOf(second)]).equals(total)).toBe(true);
  });

  it('command chaining (CLA 10) accumulates data until the final CLA 00 chunk', async () => {
    const { store, send } = await setup('yubikey');
    const data = h(putHex('chained', 0x21, 6, RFC_SECRET));
    const head = Buffer.from(data.subarray(0, 10)).toString('hex');
    const tail = Buffer.from(data.subarray(10)).toString('hex');
    expect(show(await send(apdu('10 01 00 00', head)))).toBe('90 00');
    expect(show(await send(apdu('00 01 00 00', tail)))).toBe('90 00');
    expect(store.findCredential(Buffer.from('chained'))).toBeDefined();
    // Extended Lc works too (yubikit 5.x with version ≥ 4).
    const ext = Buffer.concat([h('00 02 00 00 00'), Buffer.from([0, 9]), Buffer.from(tlv(0x71, 'chained'), 'hex')]);
    expect(show(await send(ext))).toBe('90 00');
  });

  it('password: key from PBKDF2 (docs/protocols.md example), SET CODE, locked SELECT 74/7B, VALIDATE, re-SELECT locks again', async () => {
    // Example from §1.11: password "password", salt 4BB7A7FAD7AF401B.
    expect(pbkdf2Sync('password', h('4BB7A7FAD7AF401B'), 1000, 16, 'sha1').toString('hex')).toBe('fe65f703ff4806428901c3220becb19d');
    const { store, send } = await setup('yubikey');
    await send(SELECT);
    await send(apdu('00 01 00 00', putHex('a', 0x21, 6, RFC_SECRET)));
    const key = pbkdf2Sync('password', store.salt, 1000, 16, 'sha1');
    const hostChallenge = h('0102030405060708');
    const proof = createHmac('sha1', key).update(hostChallenge).digest();
    // A response that does not match the key → 6984.
    expect(show(await send(apdu('00 03 00 00', tlv(0x73, Buffer.concat([Buffer.of(0x21), key])) + tlv(0x74, hostChallenge) + tlv(0x75, Buffer.alloc(20)))))).toBe('69 84');
    expect(store.accessKey).toBeUndefined();
    expect(show(await send(apdu('00 03 00 00', tlv(0x73, Buffer.concat([Buffer.of(0x21), key])) + tlv(0x74, hostChallenge) + tlv(0x75, proof))))).toBe('90 00');
    expect(store.accessKey?.key.toString()).toBe(key.toString());
    // Still unlocked in this session.
    expect(swOf(await send(h('00 A1 00 00 00')))).toBe('90 00');

    const locked = await send(SELECT);
    const selectData = dataOf(locked);
    expect(show(selectData.subarray(0, 15))).toBe(`79 03 05 04 03 71 08 ${show(store.salt)}`);
    expect(show(selectData.subarray(15, 17))).toBe('74 08');
    expect(show(selectData.subarray(25))).toBe('7B 01 01');
    expect(swOf(locked)).toBe('90 00');
    const challenge = selectData.subarray(17, 25);
    expect(show(await send(h('00 A1 00 00 00')))).toBe('69 82');
    expect(show(await send(apdu('00 A4 00 01', '74080000000000000001')))).toBe('69 82');
    expect(show(await send(apdu('00 01 00 00', putHex('b', 0x21, 6, RFC_SECRET))))).toBe('69 82');

    // Wrong password → 6A80, still locked.
    const wrongKey = pbkdf2Sync('wrong', store.salt, 1000, 16, 'sha1');
    const wrong = createHmac('sha1', wrongKey).update(challenge).digest();
    expect(show(await send(apdu('00 A3 00 00', tlv(0x75, wrong) + tlv(0x74, hostChallenge))))).toBe('6A 80');
    expect(show(await send(h('00 A1 00 00 00')))).toBe('69 82');

    // Right password after a fresh SELECT: the key proves itself with HMAC(key, host challenge).
    const again = dataOf(await send(SELECT));
    const right = createHmac('sha1', key).update(again.subarray(17, 25)).digest();
    const validated = await send(apdu('00 A3 00 00', tlv(0x75, right) + tlv(0x74, hostChallenge)));
    expect(show(validated)).toBe(`75 14 ${show(proof)} 90 00`);
    expect(swOf(await send(h('00 A1 00 00 00')))).toBe('90 00');

    // Re-SELECT locks again; 73 00 (after VALIDATE) removes the password.
    await send(SELECT);
    expect(show(await send(h('00 A1 00 00 00')))).toBe('69 82');
    const third = dataOf(await send(SELECT));
    await send(apdu('00 A3 00 00', tlv(0x75, createHmac('sha1', key).update(third.subarray(17, 25)).digest()) + tlv(0x74, hostChallenge)));
    expect(show(await send(apdu('00 03 00 00', '7300')))).toBe('90 00');
    expect(store.accessKey).toBeUndefined();
    expect(show(await send(SELECT))).toBe(`79 03 05 04 03 71 08 ${show(store.salt)} 90 00`);
    // VALIDATE without a password → 6984.
    expect(show(await send(apdu('00 A3 00 00', tlv(0x75, right) + tlv(0x74, hostChallenge))))).toBe('69 84');
  });

  it('RESET 04 DE AD needs no auth and no touch: wipes credentials and password, new salt', async () => {
    const { store, send } = await setup('yubikey');
    await send(apdu('00 01 00 00', putHex('a', 0x21, 6, RFC_SECRET)));
    const key = Buffer.alloc(16, 7);
    const proof = createHmac('sha1', key).update(h('01')).digest();
    await send(apdu('00 03 00 00', tlv(0x73, Buffer.concat([Buffer.of(0x21), key])) + tlv(0x74, h('01')) + tlv(0x75, proof)));
    await send(SELECT); // locked now
    const saltBefore = store.salt;
    const ctx = context(false);
    expect(show(await send(h('00 04 DE AD'), ctx))).toBe('90 00');
    expect(ctx.touches).toBe(0);
    expect(store.credentials).toHaveLength(0);
    expect(store.accessKey).toBeUndefined();
    expect(store.salt.equals(saltBefore)).toBe(false);
    expect(show(await send(h('00 04 00 00')))).toBe('6A 86');
  });
});

describe('Nitrokey 3 dialect', () => {
  it('SELECT: 79 03 04 0D 00, 71 salt, 8F serial; other AIDs 6A82', async () => {
    const { store, send } = await setup('nitrokey3');
    expect(show(await send(SELECT))).toBe(`79 03 04 0D 00 71 08 ${show(store.salt)} 8F 04 ${show(store.serialBytes)} 90 00`);
    expect(show(await send(apdu('00 A4 04 00', 'A0 00 00 05 27 47 11 17')))).toBe('6A 82');
  });

  it('the worked example: 00 A2 00 01 10 71 04 "test" 74 08 …01 → 76 05 06 41 39 7E EA (top bit masked) = 287082', async () => {
    const { send } = await setup('nitrokey3');
    expect(show(await send(apdu('00 01 00 00', putHex('test', 0x21, 6, RFC_SECRET))))).toBe('90 00');
    const answer = await send(h('00 A2 00 01 10 71 04 74 65 73 74 74 08 00 00 00 00 00 00 00 01'));
    expect(show(answer)).toBe('76 05 06 41 39 7E EA 90 00');
    expect((0x41397eea % 10 ** 6).toString()).toBe('287082');
  });

  it('CALCULATE P2=00 → 6D00, CALCULATE ALL → 6D00, VALIDATE/RENAME → 6D00, chaining → 6884', async () => {
    const { send } = await setup('nitrokey3');
    await send(apdu('00 01 00 00', putHex('test', 0x21, 6, RFC_SECRET)));
    const calc = tlv(0x71, 'test') + '74080000000000000001';
    expect(show(await send(apdu('00 A2 00 00', calc)))).toBe('6D 00');
    expect(show(await send(apdu('00 A4 00 01', '74080000000000000001')))).toBe('6D 00');
    expect(show(await send(apdu('00 A3 00 00', tlv(0x75, Buffer.alloc(20)) + tlv(0x74, Buffer.alloc(8)))))).toBe('6D 00');
    expect(show(await send(apdu('00 05 00 00', tlv(0x71, 'test') + tlv(0x71, 'x'))))).toBe('6D 00');
    expect(show(await send(apdu('10 01 00 00', '7101')))).toBe('68 84');
    expect(show(await send(h('00 A1')))).toBe('67 00');
  });

  it('SET CODE is the trap: 00 03 00 00 → 9000 with 04 0D 00 42 42 42, and nothing is set', async () => {
    const { store, send } = await setup('nitrokey3');
    const key = Buffer.alloc(16, 1);
    const answer = await send(apdu('00 03 00 00', tlv(0x73, Buffer.concat([Buffer.of(0x21), key])) + tlv(0x74, h('01')) + tlv(0x75, Buffer.alloc(20))));
    expect(show(answer)).toBe('04 0D 00 42 42 42 90 00');
    expect(store.accessKey).toBeUndefined();
    expect(show(await send(h('00 01 10 00')))).toBe(`${show(store.serialBytes)} 90 00`);
  });

  it('PUT refuses to overwrite (6983); SHA512 stored but CALCULATE → 6A81; 51st → 6A84', async () => {
    const { send } = await setup('nitrokey3');
    expect(show(await send(apdu('00 01 00 00', putHex('dup', 0x21, 6, RFC_SECRET))))).toBe('90 00');
    expect(show(await send(apdu('00 01 00 00', putHex('dup', 0x21, 6, RFC_SECRET))))).toBe('69 83');
    expect(show(await send(apdu('00 01 00 00', putHex('s512', 0x23, 6, RFC_SECRET))))).toBe('90 00');
    expect(show(await send(apdu('00 A2 00 01', tlv(0x71, 's512') + '74080000000000000001')))).toBe('6A 81');
    expect(show(await send(apdu('00 A2 00 01', tlv(0x71, 'none') + '74080000000000000001')))).toBe('6A 82');
    for (let i = 2; i < 50; i++) expect(swOf(await send(apdu('00 01 00 00', putHex(`c${i}`, 0x21, 6, RFC_SECRET))))).toBe('90 00');
    expect(show(await send(apdu('00 01 00 00', putHex('c50', 0x21, 6, RFC_SECRET))))).toBe('6A 84');
  });

  it('PUT with touch (78 02) asks for touch; DELETE and RESET always do; not touched → 6982', async () => {
    const { store, send } = await setup('nitrokey3');
    expect(show(await send(apdu('00 01 00 00', putHex('t', 0x21, 6, RFC_SECRET, '7802')), context(false)))).toBe('69 82');
    const yes = context(true);
    expect(show(await send(apdu('00 01 00 00', putHex('t', 0x21, 6, RFC_SECRET, '7802')), yes))).toBe('90 00');
    expect(yes.touches).toBe(1);
    expect(show(await send(apdu('00 A2 00 01', tlv(0x71, 't') + '74080000000000000001'), context(false)))).toBe('69 82');
    expect(show(await send(apdu('00 A2 00 01', tlv(0x71, 't') + '74080000000000000001'), context('cancel')))).toBe('65 00');
    expect(show(await send(apdu('00 02 00 00', tlv(0x71, 't')), context(false)))).toBe('69 82');
    expect(show(await send(apdu('00 02 00 00', tlv(0x71, 't'))))).toBe('90 00');
    expect(show(await send(apdu('00 02 00 00', tlv(0x71, 't'))))).toBe('6A 82');
    await send(apdu('00 01 00 00', putHex('u', 0x21, 6, RFC_SECRET)));
    expect(show(await send(h('00 04 DE AD'), context(false)))).toBe('69 82');
    expect(store.credentials).toHaveLength(1);
    expect(show(await send(h('00 04 DE AD')))).toBe('90 00');
    expect(store.credentials).toHaveLength(0);
  });

  it('LIST v0 (ykman 00 A1 00 00 00) and v1 with property bits; SEND REMAINING without pending data → 6985', async () => {
    const { send } = await setup('nitrokey3');
    await send(apdu('00 01 00 00', putHex('a', 0x21, 6, RFC_SECRET)));
    await send(apdu('00 01 00 00', putHex('b', 0x12, 8, RFC_SECRET, '7802')));
    expect(show(await send(h('00 A1 00 00 00')))).toBe('72 02 21 61 72 02 12 62 90 00');
    expect(show(await send(apdu('00 A1 00 00', '01')))).toBe('72 03 21 61 00 72 03 12 62 01 90 00');
    expect(show(await send(apdu('00 A1 00 00', '02')))).toBe('6A 80');
    expect(show(await send(h('00 A5 00 00')))).toBe('69 85');
  });

  it('LIST beyond 3072 bytes stops at a whole entry with 61FF; SEND REMAINING continues', async () => {
    const { send } = await setup('nitrokey3');
    for (let i = 0; i < 30; i++) await send(apdu('00 01 00 00', putHex(`${i.toString().padStart(2, '0')}${'x'.repeat(118)}`, 0x21, 6, RFC_SECRET)));
    const first = await send(h('00 A1 00 00 00'));
    expect(swOf(first)).toBe('61 FF');
    expect(dataOf(first).length).toBe(24 * 123);
    const second = await send(h('00 A5 00 00'));
    expect(swOf(second)).toBe('90 00');
    expect(dataOf(second).length).toBe(6 * 123);
  });

  it('HOTP uses and advances the stored counter, and masks the top bit', async () => {
    const { send } = await setup('nitrokey3');
    await send(apdu('00 01 00 00', putHex('h', 0x11, 6, RFC_SECRET)));
    expect(show(await send(apdu('00 A2 00 01', tlv(0x71, 'h') + '7400')))).toBe('76 05 06 4C 93 CF 18 90 00');
    expect(show(await send(apdu('00 A2 00 01', tlv(0x71, 'h') + '7400')))).toBe('76 05 06 41 39 7E EA 90 00');
  });

  it('an exhausted HOTP counter: 6581 on a YubiKey, 6500 on a Nitrokey 3, and the counter stays', async () => {
    for (const [dialect, expected] of [['yubikey', '65 81'], ['nitrokey3', '65 00']] as const) {
      const { store, send } = await setup(dialect);
      await send(apdu('00 01 00 00', putHex('h', 0x11, 6, RFC_SECRET)));
      const credential = store.findCredential(Buffer.from('h'))!;
      await store.replaceCredential(credential.id, { ...credential, counter: 0x1_0000_0000 });
      expect(show(await send(apdu('00 A2 00 01', tlv(0x71, 'h') + '7400')))).toBe(expected);
      expect(store.findCredential(Buffer.from('h'))!.counter).toBe(0x1_0000_0000);
    }
  });

  it('UPDATE CREDENTIAL (B7) renames with touch; 6983 when the new name exists, 6A82 when the old does not', async () => {
    const { store, send } = await setup('nitrokey3');
    await send(apdu('00 01 00 00', putHex('one', 0x21, 6, RFC_SECRET)));
    await send(apdu('00 01 00 00', putHex('two', 0x21, 6, RFC_SECRET)));
    expect(show(await send(apdu('00 B7 00 00', tlv(0x71, 'one') + tlv(0x71, 'two'))))).toBe('69 83');
    expect(show(await send(apdu('00 B7 00 00', tlv(0x71, 'nope') + tlv(0x71, 'three'))))).toBe('6A 82');
    expect(show(await send(apdu('00 B7 00 00', tlv(0x71, 'one') + tlv(0x71, 'uno')), context(false)))).toBe('69 82');
    const ctx = context(true);
    expect(show(await send(apdu('00 B7 00 00', tlv(0x71, 'one') + tlv(0x71, 'uno') + '780102'), ctx))).toBe('90 00');
    expect(ctx.touches).toBe(1);
    expect(store.findCredential(Buffer.from('uno'))).toMatchObject({ touch: true });
    expect(store.findCredential(Buffer.from('one'))).toBeUndefined();
  });

  it('PIN: SET (touch), SELECT shows 82 and no 71, VERIFY authorizes one request, wrong PIN counts down, CHANGE', async () => {
    const { store, send } = await setup('nitrokey3');
    expect(show(await send(apdu('00 B2 00 00', tlv(0x80, '1234'))))).toBe('69 82'); // no PIN yet
    expect(show(await send(apdu('00 B4 00 00', tlv(0x80, '1234')), context(false)))).toBe('69 82');
    const ctx = context(true);
    expect(show(await send(apdu('00 B4 00 00', tlv(0x80, '1234')), ctx))).toBe('90 00');
    expect(ctx.touches).toBe(1);
    expect(show(await send(apdu('00 B4 00 00', tlv(0x80, '9999'))))).toBe('69 82'); // already set
    expect(show(await send(SELECT))).toBe(`79 03 04 0D 00 82 01 08 8F 04 ${show(store.serialBytes)} 90 00`);

    // A PIN-encrypted credential (78 04) needs VERIFY PIN right before.
    expect(show(await send(apdu('00 01 00 00', putHex('secret', 0x21, 6, RFC_SECRET, '7804'))))).toBe('69 82');
    expect(show(await send(apdu('00 B2 00 00', tlv(0x80, '1234'))))).toBe('90 00');
    expect(show(await send(apdu('00 01 00 00', putHex('secret', 0x21, 6, RFC_SECRET, '7804'))))).toBe('90 00');
    expect(show(await send(apdu('00 A1 00 00', '01')))).toBe('90 00'); // hidden again
    await send(apdu('00 B2 00 00', tlv(0x80, '1234')));
    expect(show(await send(apdu('00 A1 00 00', '01')))).toBe(`72 08 21 ${show(Buffer.from('secret'))} 02 90 00`);
    expect(show(await send(apdu('00 A2 00 01', tlv(0x71, 'secret') + '74080000000000000001')))).toBe('6A 82');
    await send(apdu('00 B2 00 00', tlv(0x80, '1234')));
    const noTouch = context(false);
    expect(show(await send(apdu('00 A2 00 01', tlv(0x71, 'secret') + '74080000000000000001'), noTouch))).toBe('76 05 06 41 39 7E EA 90 00');

    // Wrong PIN → 6300 and one attempt fewer (persisted).
    expect(show(await send(apdu('00 B2 00 00', tlv(0x80, '0000'))))).toBe('63 00');
    expect(store.pin?.attemptsLeft).toBe(7);
    expect((await VirtualKeyStore.open(store.file)).pin?.attemptsLeft).toBe(7);
    expect(show(await send(apdu('00 B2 00 00', tlv(0x80, '1234'))))).toBe('90 00');
    expect(store.pin?.attemptsLeft).toBe(8);

    // CHANGE PIN: 80 old 81 new.
    expect(show(await send(apdu('00 B3 00 00', tlv(0x80, '0000') + tlv(0x81, '5678'))))).toBe('63 00');
    expect(show(await send(apdu('00 B3 00 00', tlv(0x80, '1234') + tlv(0x81, '5678'))))).toBe('90 00');
    expect(show(await send(apdu('00 B2 00 00', tlv(0x80, '5678'))))).toBe('90 00');
    expect(show(await send(apdu('00 B2 00 00', '81023132')))).toBe('6A 80');

    // 8 wrong attempts block the PIN.
    for (let i = 0; i < 8; i++) expect(show(await send(apdu('00 B2 00 00', tlv(0x80, 'bad'))))).toBe('63 00');
    expect(show(await send(SELECT))).toContain('82 01 00');
    expect(show(await send(apdu('00 B2 00 00', tlv(0x80, '5678'))))).toBe('64 00');
    // RESET clears the PIN.
    expect(show(await send(h('00 04 DE AD')))).toBe('90 00');
    expect(show(await send(SELECT))).toBe(`79 03 04 0D 00 71 08 ${show(store.salt)} 8F 04 ${show(store.serialBytes)} 90 00`);
  });
});
