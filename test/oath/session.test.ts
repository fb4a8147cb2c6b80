import { createHmac } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { OathSession } from '../../src/device/oath/session.js';
import type { ApduResponse, ApduTransport } from '../../src/device/transport/types.js';
import { isKeytapError } from '../../src/errors.js';
import { asciiHex, ReplayTransport } from '../support/replay-transport.js';

const SELECT = '=> 00a4040007a0000005272101';
// docs/protocols.md §1.5: a YubiKey 5.2.4 without a password.
const SELECT_YUBIKEY_524 = '<= 79 03 05 02 04 71 08 4B B7 A7 FA D7 AF 40 1B 90 00';
const MICROSOFT = asciiHex('Microsoft:test@outlook.com');
const GOOGLE = asciiHex('Google:test@gmail.com');
const APPLE = asciiHex('Apple:test@icloud.com');

afterEach(() => {
  vi.useRealTimers();
});

describe('OathSession over the worked examples of docs/protocols.md', () => {
  it('reads version, salt and device id from the SELECT answer and picks the YubiKey dialect', async () => {
    const transport = new ReplayTransport(`${SELECT}\n${SELECT_YUBIKEY_524}`);
    const session = await OathSession.open(transport);
    expect(session.dialect).toBe('yubikey');
    expect(session.version).toBe('5.2.4');
    expect(Buffer.from(session.salt!).toString('hex')).toBe('4bb7a7fad7af401b');
    expect(session.locked).toBe(false);
    expect(session.serial).toBeUndefined();
    transport.assertDone();
  });

  it('reads a YubiKey\'s serial from Management DEVICE INFO, in decimal, and selects OATH again (issue 9 item 13)', async () => {
    // A locked applet: readSerial must leave it selected (and locked) as it found it.
    const lockedSelect = '<= 79 03 05 04 03 71 08 4B B7 A7 FA D7 AF 40 1B 74 08 0102030405060708 7B 01 01 90 00';
    const transport = new ReplayTransport(`
      ${SELECT}
      ${lockedSelect}
      => 00a4040008a000000527471117
      <= ${asciiHex('5.4.3')} 9000
      => 001d0000
      <= 12 01 02 00 20 02 04 00 BC 61 4E 05 03 05 04 03 04 01 01 9000
      ${SELECT}
      ${lockedSelect}
    `);
    const session = await OathSession.open(transport);
    expect(session.serial).toBeUndefined();
    expect(await session.readSerial()).toBe('12345678'); // 0x00BC614E, as ykman prints it
    expect(session.serial).toBe('12345678');
    expect(session.locked).toBe(true);
    // Known now: no more traffic.
    expect(await session.readSerial()).toBe('12345678');
    transport.assertDone();
  });

  it('leaves the serial unknown on a YubiKey without Management, or with a DEVICE INFO that does not add up', async () => {
    for (const [answer, info] of [
      ['6a82', ''],
      [`${asciiHex('5.4.3')} 9000`, '=> 001d0000\n<= 05 02 04 00 BC 61 4E 9000'],
    ] as const) {
      const transport = new ReplayTransport(`
        ${SELECT}
        ${SELECT_YUBIKEY_524}
        => 00a4040008a000000527471117
        <= ${answer}
        ${info}
        ${SELECT}
        ${SELECT_YUBIKEY_524}
      `);
      const session = await OathSession.open(transport);
      expect(await session.readSerial()).toBeUndefined();
      transport.assertDone();
    }
  });

  it('lists with LIST and learns digits and touch from CALCULATE ALL (example answers of §1.7)', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(59_000); // T = 1 for 30-second steps
    const transport = new ReplayTransport(`
      ${SELECT}
      ${SELECT_YUBIKEY_524}
      => 00a10000
      <= 72 1B 21 ${MICROSOFT} 72 16 12 ${GOOGLE} 72 16 11 ${APPLE} 9000
      => 00a400010a 7408 0000000000000001
      <= 71 1A ${MICROSOFT} 75 15 06 cc93cf18508d94934c64b65d8ba7667fb7cde4b0
         71 15 ${GOOGLE} 7C 01 08
         71 15 ${APPLE} 77 01 06 9000
    `);
    const session = await OathSession.open(transport);
    const list = await session.list();
    transport.assertDone();
    expect(list).toEqual([
      { id: 'Microsoft:test@outlook.com', issuer: 'Microsoft', account: 'test@outlook.com', type: 'TOTP', algorithm: 'SHA1', period: 30, digits: 6, touch: false },
      { id: 'Google:test@gmail.com', issuer: 'Google', account: 'test@gmail.com', type: 'HOTP', algorithm: 'SHA256', period: 30, digits: 8 },
      { id: 'Apple:test@icloud.com', issuer: 'Apple', account: 'test@icloud.com', type: 'HOTP', algorithm: 'SHA1', period: 30, digits: 6 },
    ]);
  });

  it('masks the top bit of a truncated CALCULATE answer on the host (RFC 4226 counter 0 → 755224)', async () => {
    const transport = new ReplayTransport(`
      ${SELECT}
      ${SELECT_YUBIKEY_524}
      => 00a2000110 7104 ${asciiHex('test')} 7408 0000000000000001
      <= 76 05 06 CC 93 CF 18 9000
    `);
    const session = await OathSession.open(transport);
    const code = await session.calculate({ id: 'test', account: 'test', type: 'TOTP', algorithm: 'SHA1', period: 30, touch: false }, { time: 59 });
    expect(code).toEqual({ code: '755224', digits: 6, validFrom: 30, validTo: 60 });
    transport.assertDone();
  });

  it('sends HOTP CALCULATE with an empty challenge', async () => {
    const transport = new ReplayTransport(`
      ${SELECT}
      ${SELECT_YUBIKEY_524}
      => 00a2000108 7104 ${asciiHex('hotp')} 7400
      <= 76 05 06 C1 39 7E EA 9000
    `);
    const session = await OathSession.open(transport);
    const code = await session.calculate({ id: 'hotp', account: 'hotp', type: 'HOTP', algorithm: 'SHA1', period: 30, touch: false });
    expect(code).toEqual({ code: '287082', digits: 6 });
    transport.assertDone();
  });

  it('writes the PUT of the .NET SDK example byte for byte (1-byte key padded to 14, touch property without a length)', async () => {
    const transport = new ReplayTransport(`
      ${SELECT}
      ${SELECT_YUBIKEY_524}
      => 00a10000
      <= 9000
      => 00010000 30 71 1A ${MICROSOFT} 73 10 21 06 9C 00000000000000000000000000 78 02
      <= 9000
    `);
    const session = await OathSession.open(transport);
    await session.put({
      issuer: 'Microsoft', account: 'test@outlook.com', type: 'TOTP', algorithm: 'SHA1', digits: 6, period: 30, touch: true,
      secret: Uint8Array.of(0x9c),
    });
    transport.assertDone();
  });

  it('follows SEND REMAINING (INS A5) when LIST answers 61xx', async () => {
    const transport = new ReplayTransport(`
      ${SELECT}
      ${SELECT_YUBIKEY_524}
      => 00a10000
      <= 72 1B 21 ${MICROSOFT} 61 16
      => 00a50000
      <= 72 16 12 ${GOOGLE} 9000
      => 00a400010a 7408 0000000000000001
      <= 71 1A ${MICROSOFT} 7C 01 06 71 15 ${GOOGLE} 77 01 06 9000
    `);
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(45_000);
    const session = await OathSession.open(transport);
    const ids = (await session.list()).map((c) => [c.id, c.touch]);
    expect(ids).toEqual([['Microsoft:test@outlook.com', true], ['Google:test@gmail.com', undefined]]);
    transport.assertDone();
  });

  it('recognises the Nitrokey 3 by its serial tag and uses LIST v1 with touch and PIN bits', async () => {
    const transport = new ReplayTransport(`
      ${SELECT}
      <= 79 03 04 0D 00 71 08 0102030405060708 8F 04 1A2B3C4D 9000
      => 00a1000001 01
      <= 72 06 21 ${asciiHex('test')} 01 72 07 12 ${asciiHex('hotp1')} 02 72 05 31 ${asciiHex('rev')} 00 9000
    `);
    const session = await OathSession.open(transport);
    expect(session.dialect).toBe('nitrokey3');
    expect(session.serial).toBe('1A2B3C4D');
    expect(session.version).toBe('4.13.0');
    expect(await session.list()).toEqual([
      { id: 'test', account: 'test', issuer: undefined, type: 'TOTP', algorithm: 'SHA1', period: 30, touch: true, pinProtected: false },
      { id: 'hotp1', account: 'hotp1', issuer: undefined, type: 'HOTP', algorithm: 'SHA256', period: 30, touch: false, pinProtected: true },
    ]); // the reverse-HOTP entry (kind 0x30) has no code to read and is left out
    transport.assertDone();
  });

  it('refuses SHA-512 and SET CODE on a Nitrokey 3 before sending anything', async () => {
    const transport = new ReplayTransport(`${SELECT}\n<= 79 03 04 0D 00 71 08 0102030405060708 8F 04 1A2B3C4D 9000`);
    const session = await OathSession.open(transport);
    const put = session.put({ account: 'a', type: 'TOTP', algorithm: 'SHA512', digits: 6, period: 30, touch: false, secret: new Uint8Array(64) });
    await expect(put).rejects.toMatchObject({ code: 'UNSUPPORTED' });
    await expect(session.setPassword('pw')).rejects.toMatchObject({ code: 'UNSUPPORTED' });
    transport.assertDone();
  });

  it.each([
    ['6982 on a touch credential when unlocked', '6982', 'TOUCH_TIMEOUT'],
    ['6984', '6984', 'NOT_FOUND'],
    ['6a81', '6a81', 'UNSUPPORTED'],
    ['6581', '6581', 'DEVICE_ERROR'],
  ])('maps %s on CALCULATE to %s', async (_name, sw, code) => {
    const transport = new ReplayTransport(`
      ${SELECT}
      ${SELECT_YUBIKEY_524}
      => 00a2000110 7104 ${asciiHex('test')} 7408 0000000000000001
      <= ${sw}
    `);
    const session = await OathSession.open(transport);
    const error: unknown = await session
      .calculate({ id: 'test', account: 'test', type: 'TOTP', algorithm: 'SHA1', period: 30, touch: true }, { time: 30 })
      .catch((e: unknown) => e);
    expect(isKeytapError(error)).toBe(true);
    expect(error).toMatchObject({ code });
  });

  it.each([
    ['a TLV that runs past the end', '76 09 06 CC 93 9000'],
    ['no truncated value', '75 01 06 9000'],
    ['a length cut short', '76 81 9000'],
  ])('rejects a CALCULATE answer with %s as a PROTOCOL error', async (_name, answer) => {
    const transport = new ReplayTransport(`
      ${SELECT}
      ${SELECT_YUBIKEY_524}
      => 00a2000110 7104 ${asciiHex('test')} 7408 0000000000000001
      <= ${answer}
    `);
    const session = await OathSession.open(transport);
    await expect(session.calculate({ id: 'test', account: 'test', type: 'TOTP', algorithm: 'SHA1', period: 30, touch: false }, { time: 30 })).rejects.toMatchObject({ code: 'PROTOCOL' });
  });

  it('prompts for touch before CALCULATE of a touch credential, and after 500 ms for HOTP', async () => {
    const events: string[] = [];
    const slow: ApduTransport = {
      description: 'slow',
      transmit: (apdu) => {
        events.push(`apdu ${apdu[1]!.toString(16)}`);
        if (apdu[1] === 0xa4) return Promise.resolve({ data: Buffer.from('790305020471084bb7a7fad7af401b', 'hex'), sw: 0x9000 });
        return new Promise<ApduResponse>((resolve) => setTimeout(() => resolve({ data: Buffer.from('760506cc93cf18', 'hex'), sw: 0x9000 }), 700));
      },
      close: () => Promise.resolve(),
    };
    const session = await OathSession.open(slow);
    const started = Date.now();
    await session.calculate({ id: 't', account: 't', type: 'TOTP', algorithm: 'SHA1', period: 30, touch: true }, { onTouchNeeded: () => events.push('touch') });
    await session.calculate({ id: 'h', account: 'h', type: 'HOTP', algorithm: 'SHA1', period: 30 }, { onTouchNeeded: () => events.push(`touch after ${Date.now() - started >= 1100 ? '≥500ms' : 'too early'}`) });
    expect(events).toEqual(['apdu a4', 'touch', 'apdu a2', 'apdu a2', 'touch after ≥500ms']);
  });
});

describe('the YKOATH password (docs/protocols.md §1.11)', () => {
  it('derives the access key with PBKDF2 and checks the key’s answer', async () => {
    // Key from the worked example: "password" with salt 4BB7A7FAD7AF401B.
    const accessKey = Buffer.from('fe65f703ff4806428901c3220becb19d', 'hex');
    const cardChallenge = Buffer.from('0011223344556677', 'hex');
    let validated = false;
    const card: ApduTransport = {
      description: 'card',
      transmit: (apdu) => {
        if (apdu[1] === 0xa4) {
          return Promise.resolve({ data: Buffer.from(`790305020471084bb7a7fad7af401b7408${cardChallenge.toString('hex')}7b0101`, 'hex'), sw: 0x9000 });
        }
        // VALIDATE: 75 14 <hmac of our challenge> 74 08 <host challenge>
        const data = Buffer.from(apdu.subarray(5));
        const response = data.subarray(2, 22);
        const hostChallenge = data.subarray(24, 32);
        if (!response.equals(createHmac('sha1', accessKey).update(cardChallenge).digest())) return Promise.resolve({ data: new Uint8Array(), sw: 0x6a80 });
        validated = true;
        return Promise.resolve({ data: Buffer.concat([Buffer.of(0x75, 0x14), createHmac('sha1', accessKey).update(hostChallenge).digest()]), sw: 0x9000 });
      },
      close: () => Promise.resolve(),
    };
    const session = await OathSession.open(card);
    expect(session.locked).toBe(true);
    await expect(session.list()).rejects.toMatchObject({ code: 'AUTH_REQUIRED' });
    await expect(session.unlock('wrong')).rejects.toMatchObject({ code: 'WRONG_PASSWORD' });
    await session.unlock('password');
    expect(validated).toBe(true);
    expect(session.locked).toBe(false);
  });

  it('rejects a key that cannot prove it knows the password', async () => {
    const card: ApduTransport = {
      description: 'impostor',
      transmit: (apdu) =>
        Promise.resolve(
          apdu[1] === 0xa4
            ? { data: Buffer.from('790305020471084bb7a7fad7af401b74080011223344556677', 'hex'), sw: 0x9000 }
            : { data: Buffer.concat([Buffer.of(0x75, 0x14), Buffer.alloc(20)]), sw: 0x9000 },
        ),
      close: () => Promise.resolve(),
    };
    const session = await OathSession.open(card);
    await expect(session.unlock('password')).rejects.toMatchObject({ code: 'PROTOCOL' });
    expect(session.locked).toBe(true);
  });
});
