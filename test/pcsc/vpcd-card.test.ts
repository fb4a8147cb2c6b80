/**
 * The vpcd card side against a stand-in for vpcd (a TCP server speaking vpcd's framing), with the
 * real OATH applet and a real touch button: framing, control codes, foreign AIDs, the touch wait,
 * card removal and reconnecting. The same card against the real vpcd in pcscd is pcsc.test.ts.
 */
import { createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseTlvs } from '../../src/device/oath/tlv.js';
import { OathApplet } from '../../src/emulator/oath-applet.js';
import { VirtualKeyStore } from '../../src/emulator/store.js';
import { TouchButton } from '../../src/emulator/touch.js';
import type { TouchPolicy } from '../../src/emulator/types.js';
import { VIRTUAL_KEY_ATR, VpcdCard, parseVpcdAddress } from '../../src/emulator/vpcd.js';
import { tempDir } from '../support/cli.js';

/** One accepted connection, read as vpcd reads it: request, then exactly one answer. */
class FakeVpcd {
  readonly server: Server;
  private sockets: Socket[] = [];
  private waiters: Array<(socket: Socket) => void> = [];
  private buffers = new Map<Socket, Buffer>();
  private readers = new Map<Socket, Array<() => void>>();

  constructor() {
    this.server = createServer((socket) => {
      this.sockets.push(socket);
      this.buffers.set(socket, Buffer.alloc(0));
      socket.on('data', (chunk: Buffer) => {
        this.buffers.set(socket, Buffer.concat([this.buffers.get(socket)!, chunk]));
        for (const wake of this.readers.get(socket)?.splice(0) ?? []) wake();
      });
      socket.on('error', () => undefined);
      for (const wake of this.waiters.splice(0)) wake(socket);
    });
  }

  async listen(port = 0): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(port, '127.0.0.1', resolve));
    return (this.server.address() as AddressInfo).port;
  }

  /** The next accepted card connection. */
  accepted(): Promise<Socket> {
    const ready = this.sockets.shift();
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  send(socket: Socket, payload: Uint8Array): void {
    const frame = Buffer.alloc(2 + payload.length);
    frame.writeUInt16BE(payload.length, 0);
    frame.set(payload, 2);
    socket.write(frame);
  }

  /** Reads one framed answer; undefined when none arrives within `timeoutMs`. */
  async answer(socket: Socket, timeoutMs = 2_000): Promise<Uint8Array | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const buffer = this.buffers.get(socket)!;
      if (buffer.length >= 2 && buffer.length >= 2 + buffer.readUInt16BE(0)) {
        const length = buffer.readUInt16BE(0);
        this.buffers.set(socket, buffer.subarray(2 + length));
        return Uint8Array.from(buffer.subarray(2, 2 + length));
      }
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        const list = this.readers.get(socket) ?? [];
        list.push(() => {
          clearTimeout(timer);
          resolve();
        });
        this.readers.set(socket, list);
      });
    }
  }

  async transmit(socket: Socket, payload: Uint8Array, timeoutMs?: number): Promise<Uint8Array | undefined> {
    this.send(socket, payload);
    return this.answer(socket, timeoutMs);
  }

  close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const hex = (bytes: Uint8Array | undefined): string => Buffer.from(bytes ?? []).toString('hex');
const GET_ATR = Uint8Array.of(0x04);
const SELECT = (aid: number[]): Uint8Array => Uint8Array.of(0x00, 0xa4, 0x04, 0x00, aid.length, ...aid);
const OATH = [0xa0, 0x00, 0x00, 0x05, 0x27, 0x21, 0x01];
const MANAGEMENT = [0xa0, 0x00, 0x00, 0x05, 0x27, 0x47, 0x11, 0x17];

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(policy: TouchPolicy = { mode: 'manual' }): Promise<{ vpcd: FakeVpcd; card: VpcdCard; button: TouchButton; port: number; store: VirtualKeyStore }> {
  const store = await VirtualKeyStore.open(join(tempDir(), 'vpcd.json'), { dialect: 'yubikey' });
  const applet = new OathApplet(store);
  const button = new TouchButton(policy, 5_000);
  const vpcd = new FakeVpcd();
  const port = await vpcd.listen();
  const card = new VpcdCard({ host: '127.0.0.1', port, applet, requestTouch: (signal) => button.wait(signal), retryMs: 20, maxRetryMs: 100 });
  cleanups.push(() => vpcd.close(), () => card.close());
  card.start();
  return { vpcd, card, button, port, store };
}

describe('the virtual key as a vpcd card', () => {
  it('presents the ATR of a YubiKey on an external NFC reader, naming keytap instead of Yubico (issue 9 item 12)', () => {
    const atr = VIRTUAL_KEY_ATR;
    // ykman 5 (ykman/pcsc/__init__.py, ScardSmartCardConnection.__init__) takes an ATR whose T0
    // has the high nibble F for USB, and then insists on a USB product id that a reader such as
    // "Virtual PCD" cannot give ("PID must be provided for non-NFC connections", yubikit/support.py
    // read_info). Any other T0 is NFC, where no product id is needed.
    expect(atr[1]! & 0xf0).not.toBe(0xf0);
    // A YubiKey 5 NFC on a contactless reader: 3B 8D 80 01 | 80 73 C0 21 C0 57 "YubiKey" | F9
    // (TS, T0 with 13 historical bytes, TD1 → TD2 = T=1). Here the card issuer's data (compact
    // TLV 5x) says "keytap", so T0 counts 12.
    expect(hex(atr.subarray(0, 4))).toBe('3b8c8001');
    expect(hex(atr.subarray(4, 9))).toBe('8073c021c0');
    expect(hex(atr.subarray(9, 10))).toBe('56');
    expect(Buffer.from(atr.subarray(10, 16)).toString('latin1')).toBe('keytap');
    expect(atr.length).toBe(4 + (atr[1]! & 0x0f) + 1);
    expect(atr.subarray(1).reduce((x, b) => x ^ b, 0)).toBe(0); // TCK makes T0…TCK XOR to zero
    expect(Buffer.from(atr).toString('latin1')).not.toContain('YubiKey');
  });

  it('answers the Management application as ykman 4 and 5 read a YubiKey: version string, then DEVICE INFO with the serial (issue 9 items 12, 13)', async () => {
    const { vpcd, store } = await setup();
    const socket = await vpcd.accepted();
    // yubikit/management.py, _ManagementSmartCardBackend.__init__: the SELECT answer is the
    // firmware version as text, read with Version.from_string.
    const selected = await vpcd.transmit(socket, SELECT(MANAGEMENT));
    expect(hex(selected?.subarray(-2))).toBe('9000');
    expect(Buffer.from(selected!.subarray(0, -2)).toString('latin1')).toBe('5.4.3');
    // read_config(page) = send_apdu(0, INS_READ_CONFIG 0x1D, page, 0); ykman's short APDU adds a lone 00.
    const info = await vpcd.transmit(socket, Uint8Array.of(0x00, 0x1d, 0x00, 0x00, 0x00));
    expect(hex(info?.subarray(-2))).toBe('9000');
    const encoded = info!.subarray(0, -2);
    // ManagementSession._do_read_device_info: the first byte is the length of the rest.
    expect(encoded[0]).toBe(encoded.length - 1);
    const tlvs = new Map(parseTlvs(encoded.subarray(1)).map((t) => [t.tag, hex(t.value)]));
    // DeviceInfo.parse_tlvs: TAG_SERIAL 0x02 (an integer), TAG_VERSION 0x05, TAG_USB_SUPPORTED 0x01
    // (mandatory), TAG_NFC_SUPPORTED 0x0D / TAG_NFC_ENABLED 0x0E; CAPABILITY.OATH = 0x20.
    expect(tlvs.get(0x02)).toBe(hex(store.serialBytes));
    expect(tlvs.get(0x05)).toBe('050403');
    for (const tag of [0x01, 0x03, 0x0d, 0x0e]) expect(Number.parseInt(tlvs.get(tag)!, 16) & 0x20).toBe(0x20);
    // No TAG_MORE_DATA (0x10): one page.
    expect(tlvs.has(0x10)).toBe(false);
    // SELECT OATH afterwards works as before.
    expect(hex((await vpcd.transmit(socket, SELECT(OATH)))?.subarray(0, 5))).toBe('7903050403');
  });

  it('answers GET ATR at any time, ignores power on/off/reset, and answers APDUs as data ‖ SW', async () => {
    const { vpcd } = await setup();
    const socket = await vpcd.accepted();
    expect(hex(await vpcd.transmit(socket, GET_ATR))).toBe(hex(VIRTUAL_KEY_ATR));
    for (const control of [0x01, 0x02, 0x00]) {
      vpcd.send(socket, Uint8Array.of(control));
      expect(await vpcd.answer(socket, 200)).toBeUndefined();
    }
    vpcd.send(socket, Uint8Array.of(0x01));
    const select = await vpcd.transmit(socket, SELECT(OATH));
    expect(hex(select?.subarray(-2))).toBe('9000');
    expect(hex(select?.subarray(0, 5))).toBe('7903050403'); // version 5.4.3 first
    // ykman 4.0.9's no-data LIST ends in a lone 00 (docs/protocols.md §1.2)
    expect(hex(await vpcd.transmit(socket, Uint8Array.of(0x00, 0xa1, 0x00, 0x00, 0x00)))).toBe('9000');
    expect(hex(await vpcd.transmit(socket, GET_ATR))).toBe(hex(VIRTUAL_KEY_ATR));
  });

  it('answers SELECT of every other Yubico applet with 6A82, as ykman requires', async () => {
    const { vpcd } = await setup();
    const socket = await vpcd.accepted();
    const others = {
      otp: [0xa0, 0x00, 0x00, 0x05, 0x27, 0x20, 0x01],
      fido: [0xa0, 0x00, 0x00, 0x06, 0x47, 0x2f, 0x00, 0x01],
      u2f: [0xa0, 0x00, 0x00, 0x05, 0x27, 0x10, 0x02],
      piv: [0xa0, 0x00, 0x00, 0x03, 0x08],
      openpgp: [0xd2, 0x76, 0x00, 0x01, 0x24, 0x01],
      hsmauth: [0xa0, 0x00, 0x00, 0x05, 0x27, 0x21, 0x07, 0x01],
    };
    for (const [name, aid] of Object.entries(others)) {
      expect([name, hex(await vpcd.transmit(socket, SELECT(aid)))]).toEqual([name, '6a82']);
    }
  });

  it('holds the answer during a touch wait and gives it, in order, once touched', async () => {
    const { vpcd, button } = await setup({ mode: 'manual' });
    const socket = await vpcd.accepted();
    await vpcd.transmit(socket, SELECT(OATH));
    // PUT a touch TOTP credential: 71 name, 73 key (TOTP|SHA1, 6 digits, 20 bytes), 78 02 (touch)
    const name = Buffer.from('touch');
    const put = Buffer.concat([Buffer.of(0x71, name.length), name, Buffer.of(0x73, 22, 0x21, 6), Buffer.alloc(20, 1), Buffer.of(0x78, 0x02)]);
    expect(hex(await vpcd.transmit(socket, Uint8Array.of(0x00, 0x01, 0x00, 0x00, put.length, ...put)))).toBe('9000');
    const calc = Buffer.concat([Buffer.of(0x71, name.length), name, Buffer.of(0x74, 8), Buffer.alloc(8)]);
    vpcd.send(socket, Uint8Array.of(0x00, 0xa2, 0x00, 0x01, calc.length, ...calc));
    // A vpcd that pipelined a presence poll behind the pending APDU gets its ATR after the APDU's answer.
    vpcd.send(socket, GET_ATR);
    expect(await vpcd.answer(socket, 300)).toBeUndefined();
    expect(button.waiting).toBe(true);
    button.press();
    const answer = await vpcd.answer(socket);
    expect(hex(answer?.subarray(0, 3))).toBe('760506');
    expect(hex(answer?.subarray(-2))).toBe('9000');
    expect(hex(await vpcd.answer(socket))).toBe(hex(VIRTUAL_KEY_ATR));
  });

  it('cancels a pending touch when vpcd goes away, and reconnects when it is back', async () => {
    const { vpcd, card, button, port } = await setup({ mode: 'manual' });
    let socket = await vpcd.accepted();
    await card.whenConnected();
    await vpcd.transmit(socket, SELECT(OATH));
    const name = Buffer.from('t');
    const put = Buffer.concat([Buffer.of(0x71, 1), name, Buffer.of(0x73, 22, 0x21, 6), Buffer.alloc(20, 2), Buffer.of(0x78, 0x02)]);
    await vpcd.transmit(socket, Uint8Array.of(0x00, 0x01, 0x00, 0x00, put.length, ...put));
    const calc = Buffer.concat([Buffer.of(0x71, 1), name, Buffer.of(0x74, 8), Buffer.alloc(8)]);
    vpcd.send(socket, Uint8Array.of(0x00, 0xa2, 0x00, 0x01, calc.length, ...calc));
    await expect.poll(() => button.waiting).toBe(true);
    await vpcd.close(); // pcscd stopped
    await expect.poll(() => button.waiting).toBe(false);
    expect(card.connected).toBe(false);

    const again = new FakeVpcd();
    cleanups.push(() => again.close());
    await again.listen(port);
    socket = await again.accepted();
    await card.whenConnected();
    expect(hex(await again.transmit(socket, GET_ATR))).toBe(hex(VIRTUAL_KEY_ATR));
  });

  it('is pulled out by close(): the connection drops without an answer', async () => {
    const { vpcd, card } = await setup();
    const socket = await vpcd.accepted();
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    await card.close();
    await closed;
    expect(card.connected).toBe(false);
  });

  it('parses --vpcd addresses', () => {
    expect(parseVpcdAddress(undefined)).toEqual({ host: '127.0.0.1', port: 35963 });
    expect(parseVpcdAddress('10.0.0.2:35964')).toEqual({ host: '10.0.0.2', port: 35964 });
    expect(parseVpcdAddress('localhost')).toEqual({ host: 'localhost', port: 35963 });
    expect(parseVpcdAddress('40000')).toEqual({ host: '127.0.0.1', port: 40000 });
    expect(parseVpcdAddress(':40001')).toEqual({ host: '127.0.0.1', port: 40001 });
    expect(parseVpcdAddress('[::1]:40002')).toEqual({ host: '::1', port: 40002 });
    expect(() => parseVpcdAddress('host:99999')).toThrow(/port/);
    expect(() => parseVpcdAddress('a:b:c')).toThrow(/HOST:PORT/);
  });
});
