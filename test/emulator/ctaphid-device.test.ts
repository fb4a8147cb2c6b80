/**
 * The device side of CTAPHID, driven with raw 64-byte packets (docs/protocols.md §3, §2.2, §2.10).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Capability, CtapHidError, KeepaliveStatus, framePackets } from '../../src/device/transport/ctaphid-frames.js';
import { CtapHidDevice, DEFAULT_MESSAGE_DEADLINE_MS, DEFAULT_MSG_TIMEOUT_MS, MAX_CHANNELS, MAX_CHANNELS_PER_OPEN, TURN_AFTER_TIMEOUT_MS } from '../../src/emulator/ctaphid-device.js';
import type { CtapHidDeviceOptions, HidOpen } from '../../src/emulator/ctaphid-device.js';
import { TouchButton } from '../../src/emulator/touch.js';
import type { TouchPolicy } from '../../src/emulator/types.js';
import type { KeyDialect } from '../../src/device/key-dialect.js';
import { BROADCAST_CID, CtapHidCommand, INS_TOUCH, OATH_SELECT, Recorder, StubApplet, nonce, randomBytes, sendMessage, sleep } from './helpers.js';
import type { Message } from './helpers.js';

const { PING, MSG, INIT, WINK, LOCK, CBOR, CANCEL, KEEPALIVE, ERROR, VENDOR_SECRETS } = CtapHidCommand;
const TOUCH_APDU = Uint8Array.of(0x00, INS_TOUCH, 0x00, 0x01);

interface Rig {
  device: CtapHidDevice;
  recorder: Recorder;
  applet: StubApplet;
  button: TouchButton;
  send: (cid: number, cmd: number, payload?: Uint8Array) => void;
  init: () => Promise<number>;
}

const devices: CtapHidDevice[] = [];
afterEach(() => {
  for (const device of devices.splice(0)) device.close();
  vi.useRealTimers();
});

function rig(dialect: KeyDialect = 'yubikey', touch: TouchPolicy = { mode: 'manual' }, options: Partial<CtapHidDeviceOptions> = {}): Rig {
  const applet = new StubApplet();
  const button = new TouchButton(touch, 10_000);
  const device = new CtapHidDevice({ dialect, applet, requestTouch: (signal) => button.wait(signal), ...options });
  devices.push(device);
  const recorder = new Recorder();
  device.onReport(recorder.listener);
  const send = (cid: number, cmd: number, payload?: Uint8Array) => sendMessage((r) => device.receive(r), cid, cmd, payload);
  const init = async () => {
    const n = nonce();
    send(BROADCAST_CID, INIT, n);
    const answer = await recorder.next((m) => m.cmd === INIT && Buffer.from(m.payload.subarray(0, 8)).equals(Buffer.from(n)));
    recorder.clear();
    return new DataView(answer.payload.buffer).getUint32(8);
  };
  return { device, recorder, applet, button, send, init };
}

/** u2f_hid.h's default transaction timeout (docs/protocols.md §3.6): the whole message must be in by then. */
const U2FHID_TRANS_TIMEOUT_MS = 3000;

const isError = (cid: number, code: number) => (m: Message) => m.cid === cid && m.cmd === ERROR && m.payload[0] === code;

describe('INIT', () => {
  it('echoes the nonce on the broadcast CID and allocates distinct CIDs', () => {
    const { device, recorder, send } = rig();
    const n1 = nonce();
    const n2 = nonce();
    send(BROADCAST_CID, INIT, n1);
    send(BROADCAST_CID, INIT, n2);
    expect(recorder.messages).toHaveLength(2);
    const [a, b] = recorder.messages as [Message, Message];
    for (const [m, n] of [
      [a, n1],
      [b, n2],
    ] as const) {
      expect(m.cid).toBe(BROADCAST_CID);
      expect(m.cmd).toBe(INIT);
      expect(m.payload).toHaveLength(17);
      expect(m.payload.subarray(0, 8)).toEqual(n);
      expect(m.payload[12]).toBe(2);
      expect([...m.payload.subarray(13, 16)]).toEqual([5, 4, 3]);
      expect(m.payload[16]).toBe(Capability.WINK); // no CBOR, and MSG is supported (NMSG clear)
    }
    const cidA = new DataView(a.payload.buffer).getUint32(8);
    const cidB = new DataView(b.payload.buffer).getUint32(8);
    expect(cidA).not.toBe(cidB);
    for (const cid of [cidA, cidB]) expect(cid === 0 || cid === BROADCAST_CID).toBe(false);
    expect(device.busy).toBe(false);
  });

  it('reports the Nitrokey 3 device version in that dialect', async () => {
    const { recorder, send } = rig('nitrokey3');
    send(BROADCAST_CID, INIT, nonce());
    const m = await recorder.next((x) => x.cmd === INIT);
    expect([...m.payload.subarray(12, 17)]).toEqual([2, 1, 6, 0, Capability.WINK]);
  });

  it('answers INIT with a wrong length with INVALID_LEN', () => {
    const { recorder, send } = rig();
    send(BROADCAST_CID, INIT, randomBytes(7));
    expect(recorder.messages.map((m) => [m.cid, m.cmd, m.payload[0]])).toEqual([[BROADCAST_CID, ERROR, CtapHidError.INVALID_LEN]]);
  });

  it('resyncs on an allocated CID: answers on it with the same CID and drops the pending transaction', async () => {
    const { recorder, send, init, applet } = rig();
    const cid = await init();
    send(cid, VENDOR_SECRETS, TOUCH_APDU);
    await vi.waitFor(() => expect(applet.contexts).toHaveLength(1));
    const n = nonce();
    send(cid, INIT, n);
    const answer = await recorder.next((m) => m.cmd === INIT);
    expect(answer.cid).toBe(cid);
    expect(answer.payload.subarray(0, 8)).toEqual(n);
    expect(new DataView(answer.payload.buffer).getUint32(8)).toBe(cid);
    expect(applet.contexts[0]!.signal.aborted).toBe(true);
    await sleep(30);
    // Nothing but keepalives from before the resync and the INIT answer: no late APDU answer.
    expect(recorder.messages.filter((m) => m.cmd !== KEEPALIVE).map((m) => m.cmd)).toEqual([INIT]);
  });
});

describe('channels', () => {
  it('rejects CID 0, the broadcast CID for anything but INIT, and unallocated CIDs with INVALID_CHANNEL', () => {
    const { recorder, send } = rig();
    send(0, PING, Uint8Array.of(1));
    send(0, INIT, nonce());
    send(BROADCAST_CID, PING, Uint8Array.of(1));
    send(BROADCAST_CID, MSG, OATH_SELECT);
    send(0x1234, PING, Uint8Array.of(1));
    send(0x1234, INIT, nonce());
    expect(recorder.messages.map((m) => [m.cid, m.cmd, m.payload[0]])).toEqual([
      [0, ERROR, CtapHidError.INVALID_CHANNEL],
      [0, ERROR, CtapHidError.INVALID_CHANNEL],
      [BROADCAST_CID, ERROR, CtapHidError.INVALID_CHANNEL],
      [BROADCAST_CID, ERROR, CtapHidError.INVALID_CHANNEL],
      [0x1234, ERROR, CtapHidError.INVALID_CHANNEL],
      [0x1234, ERROR, CtapHidError.INVALID_CHANNEL],
    ]);
  });

  it('answers a request on another CID with CHANNEL_BUSY while a message is being received, and finishes the first', async () => {
    const { recorder, device, init } = rig();
    const a = await init();
    const b = await init();
    const payload = randomBytes(200);
    const packets = framePackets(a, PING, payload);
    device.receive(packets[0]!);
    device.receive(framePackets(b, PING, Uint8Array.of(9))[0]!);
    // B's continuation packets (had it sent any) are ignored, not mixed into A's message.
    device.receive(framePackets(b, PING, randomBytes(100))[1]!);
    for (const p of packets.slice(1)) device.receive(p);
    expect(recorder.messages.map((m) => [m.cid, m.cmd])).toEqual([
      [b, ERROR],
      [a, PING],
    ]);
    expect(recorder.messages[0]!.payload[0]).toBe(CtapHidError.CHANNEL_BUSY);
    expect(recorder.messages[1]!.payload).toEqual(payload);
  });

  it('answers CHANNEL_BUSY on other CIDs during a touch wait, still answers INIT, and leaves the pending request alone', async () => {
    const { recorder, send, init, button, applet } = rig('nitrokey3');
    const a = await init();
    const b = await init();
    send(a, VENDOR_SECRETS, TOUCH_APDU);
    await vi.waitFor(() => expect(button.waiting).toBe(true));
    send(b, PING, Uint8Array.of(1, 2, 3));
    send(b, VENDOR_SECRETS, OATH_SELECT);
    await recorder.next(isError(b, CtapHidError.CHANNEL_BUSY));
    expect(recorder.messages.filter(isError(b, CtapHidError.CHANNEL_BUSY))).toHaveLength(2);
    const n = nonce();
    send(BROADCAST_CID, INIT, n);
    await recorder.next((m) => m.cmd === INIT && m.cid === BROADCAST_CID);
    send(b, INIT, nonce()); // resync of B does not touch A
    await recorder.next((m) => m.cmd === INIT && m.cid === b);
    expect(applet.contexts[0]!.signal.aborted).toBe(false);
    button.press();
    const answer = await recorder.next((m) => m.cid === a && m.cmd === VENDOR_SECRETS);
    expect([...answer.payload]).toEqual([0x90, 0x00]);
    expect(recorder.messages.every((m) => m.cid !== a || m.cmd === VENDOR_SECRETS)).toBe(true);
  });
});

describe('PING', () => {
  it.each([0, 1, 57, 58, 59 + 57, 1000, 7609])('echoes %i bytes', async (size) => {
    const { recorder, send, init } = rig();
    const cid = await init();
    const payload = randomBytes(size);
    send(cid, PING, payload);
    const m = await recorder.next((x) => x.cid === cid);
    expect(m.cmd).toBe(PING);
    expect(m.payload).toEqual(payload);
    expect(recorder.reports).toHaveLength(size <= 57 ? 1 : 1 + Math.ceil((size - 57) / 59));
  });

  it('refuses a declared length above the dialect maximum with INVALID_LEN', async () => {
    for (const [dialect, max] of [
      ['yubikey', 7609],
      ['nitrokey3', 3072],
    ] as const) {
      const { recorder, device, send, init } = rig(dialect);
      const cid = await init();
      send(cid, PING, randomBytes(max));
      await recorder.next((m) => m.cmd === PING);
      recorder.clear();
      const header = new Uint8Array(64);
      new DataView(header.buffer).setUint32(0, cid);
      header[4] = 0x80 | PING;
      new DataView(header.buffer).setUint16(5, max + 1);
      device.receive(header);
      expect(recorder.messages.map((m) => [m.cid, m.cmd, m.payload[0]])).toEqual([[cid, ERROR, CtapHidError.INVALID_LEN]]);
      expect(device.busy).toBe(false);
    }
  });
});

describe('sequence errors', () => {
  it('answers a skipped SEQ with INVALID_SEQ and drops the message', async () => {
    const { recorder, device, init, send } = rig();
    const cid = await init();
    const packets = framePackets(cid, PING, randomBytes(300));
    device.receive(packets[0]!);
    device.receive(packets[2]!);
    expect(recorder.messages.map((m) => [m.cid, m.cmd, m.payload[0]])).toEqual([[cid, ERROR, CtapHidError.INVALID_SEQ]]);
    expect(device.busy).toBe(false);
    device.receive(packets[3]!); // no message in progress any more: ignored
    expect(recorder.messages).toHaveLength(1);
    send(cid, PING, Uint8Array.of(1));
    expect(recorder.messages[1]!.cmd).toBe(PING);
  });

  it('answers a new init packet on the same CID mid-message with INVALID_SEQ', async () => {
    const { recorder, device, init } = rig();
    const cid = await init();
    device.receive(framePackets(cid, PING, randomBytes(300))[0]!);
    device.receive(framePackets(cid, PING, Uint8Array.of(1))[0]!);
    expect(recorder.messages.map((m) => [m.cid, m.cmd, m.payload[0]])).toEqual([[cid, ERROR, CtapHidError.INVALID_SEQ]]);
    expect(device.busy).toBe(false);
  });

  it('answers a new request on the same CID during a transaction with INVALID_SEQ, as the answer of that transaction', async () => {
    const { recorder, send, init, applet } = rig('nitrokey3');
    const cid = await init();
    send(cid, VENDOR_SECRETS, TOUCH_APDU);
    await vi.waitFor(() => expect(applet.contexts).toHaveLength(1));
    send(cid, VENDOR_SECRETS, OATH_SELECT);
    await recorder.next(isError(cid, CtapHidError.INVALID_SEQ));
    expect(applet.contexts[0]!.signal.aborted).toBe(true);
    await sleep(30);
    expect(recorder.messages.map((m) => m.cmd)).toEqual([ERROR]);
  });

  it('ignores a continuation packet with no message in progress', async () => {
    const { recorder, device, init } = rig();
    const cid = await init();
    device.receive(framePackets(cid, PING, randomBytes(100))[1]!);
    expect(recorder.messages).toHaveLength(0);
  });
});

describe('MSG_TIMEOUT', () => {
  it('drops a message whose continuation packets stop, with MSG_TIMEOUT, and works afterwards', async () => {
    const { recorder, device, init, send } = rig('yubikey', { mode: 'manual' }, { msgTimeoutMs: 40 });
    const cid = await init();
    const packets = framePackets(cid, PING, randomBytes(200));
    device.receive(packets[0]!);
    await sleep(25);
    device.receive(packets[1]!); // each packet restarts the clock
    await sleep(25);
    expect(recorder.messages).toHaveLength(0);
    const m = await recorder.next((x) => x.cmd === ERROR, 500);
    expect([m.cid, m.payload[0]]).toEqual([cid, CtapHidError.MSG_TIMEOUT]);
    expect(device.busy).toBe(false);
    device.receive(packets[2]!); // too late: ignored
    send(cid, PING, Uint8Array.of(7));
    expect(recorder.messages.map((x) => x.cmd)).toEqual([ERROR, PING]);
  });

  it('defaults to 550 ms', () => {
    vi.useFakeTimers();
    const { recorder, device } = rig();
    device.receive(framePackets(BROADCAST_CID, INIT, nonce())[0]!);
    const cid = new DataView(recorder.messages[0]!.payload.buffer).getUint32(8);
    device.receive(framePackets(cid, PING, randomBytes(100))[0]!);
    vi.advanceTimersByTime(549);
    expect(recorder.messages).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(recorder.messages[1]!.payload[0]).toBe(CtapHidError.MSG_TIMEOUT);
  });
});

describe('APDU commands', () => {
  it('MSG answers in ISO order (data ‖ SW), vendor 0x70 with SW first', async () => {
    const { recorder, send, init } = rig();
    const cid = await init();
    send(cid, MSG, OATH_SELECT);
    await recorder.next((m) => m.cmd === MSG); // one transaction at a time per CID
    send(cid, VENDOR_SECRETS, OATH_SELECT);
    await recorder.next((m) => m.cmd === VENDOR_SECRETS);
    expect(recorder.messages.map((m) => [m.cmd, [...m.payload]])).toEqual([
      [MSG, [0x79, 0x03, 0x05, 0x04, 0x03, 0x90, 0x00]],
      [VENDOR_SECRETS, [0x90, 0x00, 0x79, 0x03, 0x05, 0x04, 0x03]],
    ]);
  });

  it.each(['yubikey', 'nitrokey3', 'feitian'] as const)('U2F VERSION over MSG, short or extended, answers "U2F_V2" 9000 and never reaches the applet (%s)', async (dialect) => {
    const { recorder, send, init, applet } = rig(dialect);
    const cid = await init();
    send(cid, MSG, Uint8Array.of(0x00, 0x03, 0x00, 0x00, 0x00));
    await recorder.next((m) => m.cmd === MSG);
    send(cid, MSG, Uint8Array.of(0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00));
    await recorder.next((m) => m.cmd === MSG && recorder.messages.length === 2);
    const answer = [...Buffer.from('U2F_V2'), 0x90, 0x00];
    expect(recorder.messages.map((m) => [m.cmd, [...m.payload]])).toEqual([
      [MSG, answer],
      [MSG, answer],
    ]);
    expect(applet.contexts).toEqual([]);
  });

  it('carries long APDUs and answers both ways across packets', async () => {
    const { recorder, send, init } = rig('nitrokey3');
    const cid = await init();
    const data = randomBytes(2000);
    const apdu = Uint8Array.of(0x00, 0x01, 0x00, 0x00, 0x00, data.length >> 8, data.length & 0xff, ...data);
    send(cid, VENDOR_SECRETS, apdu);
    const m = await recorder.next((x) => x.cmd === VENDOR_SECRETS);
    expect(m.payload).toEqual(Uint8Array.of(0x90, 0x00, ...apdu));
  });

  it('answers an unparseable 0x70 APDU with ERROR INVALID_LEN and a short MSG with SW 6700', async () => {
    const { recorder, send, init } = rig();
    const cid = await init();
    send(cid, VENDOR_SECRETS, Uint8Array.of(0x00, 0xa4, 0x04));
    send(cid, MSG, Uint8Array.of(0x00));
    await recorder.next((m) => m.cmd === MSG);
    expect(recorder.messages.map((m) => [m.cmd, [...m.payload]])).toEqual([
      [ERROR, [CtapHidError.INVALID_LEN]],
      [MSG, [0x67, 0x00]],
    ]);
  });

  it('answers SW 6F00 when the applet fails, and stays usable', async () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const { recorder, send, init, applet } = rig();
    vi.spyOn(applet, 'process').mockRejectedValueOnce(new Error('boom'));
    const cid = await init();
    send(cid, VENDOR_SECRETS, OATH_SELECT);
    const m = await recorder.next((x) => x.cmd === VENDOR_SECRETS);
    expect([...m.payload]).toEqual([0x6f, 0x00]);
    send(cid, VENDOR_SECRETS, OATH_SELECT);
    await vi.waitFor(() => expect(recorder.messages).toHaveLength(2));
    expect(recorder.messages[1]!.payload[0]).toBe(0x90);
    errors.mockRestore();
  });

  it('answers WINK empty and calls onWink; LOCK, CBOR and unknown commands get INVALID_CMD', async () => {
    const onWink = vi.fn();
    const { recorder, send, init } = rig('yubikey', { mode: 'manual' }, { onWink });
    const cid = await init();
    send(cid, WINK);
    send(cid, LOCK, Uint8Array.of(5));
    send(cid, CBOR, Uint8Array.of(0x04));
    send(cid, 0x55, Uint8Array.of(1));
    expect(onWink).toHaveBeenCalledTimes(1);
    expect(recorder.messages.map((m) => [m.cid, m.cmd, [...m.payload]])).toEqual([
      [cid, WINK, []],
      [cid, ERROR, [CtapHidError.INVALID_CMD]],
      [cid, ERROR, [CtapHidError.INVALID_CMD]],
      [cid, ERROR, [CtapHidError.INVALID_CMD]],
    ]);
  });
});

describe('touch, KEEPALIVE and CANCEL', () => {
  it('sends KEEPALIVE UPNEEDED at once and then at least every 100 ms in the yubikey dialect, only on that CID', async () => {
    const { recorder, send, init, button } = rig('yubikey');
    const a = await init();
    // Fake time from here: the keepalive schedule is the device's, not this machine's speed.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance'] });
    try {
      const started = performance.now();
      send(a, VENDOR_SECRETS, TOUCH_APDU);
      await vi.advanceTimersByTimeAsync(420);
      button.press();
      const answer = await recorder.next((m) => m.cmd === VENDOR_SECRETS);
      expect([...answer.payload]).toEqual([0x90, 0x00]);
      const keepalives = recorder.messages.filter((m) => m.cmd === KEEPALIVE);
      expect(keepalives.every((m) => m.cid === a && m.payload.length === 1 && m.payload[0] === KeepaliveStatus.UPNEEDED)).toBe(true);
      expect(keepalives[0]!.at - started).toBe(0);
      const times = [...keepalives.map((m) => m.at), answer.at];
      const gaps = times.slice(1).map((t, i) => t - times[i]!);
      expect(Math.max(...gaps)).toBeLessThanOrEqual(100);
      expect(keepalives.length).toBeGreaterThanOrEqual(5);
      // None after the answer.
      const count = recorder.messages.length;
      await vi.advanceTimersByTimeAsync(500);
      expect(recorder.messages).toHaveLength(count);
    } finally {
      vi.useRealTimers();
    }
  });

  it('sends KEEPALIVE for MSG too in the yubikey dialect', async () => {
    const { recorder, send, init, button } = rig('yubikey');
    const a = await init();
    send(a, MSG, TOUCH_APDU);
    await recorder.next((m) => m.cmd === KEEPALIVE);
    button.press();
    await recorder.next((m) => m.cmd === MSG);
  });

  it('sends no KEEPALIVE in the nitrokey3 dialect (real NK3 behaviour for 0x70)', async () => {
    const { recorder, send, init, button } = rig('nitrokey3');
    const a = await init();
    send(a, VENDOR_SECRETS, TOUCH_APDU);
    await sleep(300);
    expect(recorder.messages).toHaveLength(0);
    button.press();
    const answer = await recorder.next((m) => m.cmd === VENDOR_SECRETS);
    expect([...answer.payload]).toEqual([0x90, 0x00]);
    expect(recorder.messages).toHaveLength(1);
  });

  it('answers 6982 when the touch times out', async () => {
    const applet = new StubApplet();
    const button = new TouchButton({ mode: 'never' }, 50);
    const device = new CtapHidDevice({ dialect: 'nitrokey3', applet, requestTouch: (s) => button.wait(s) });
    devices.push(device);
    const recorder = new Recorder();
    device.onReport(recorder.listener);
    sendMessage((r) => device.receive(r), BROADCAST_CID, INIT, nonce());
    const cid = new DataView(recorder.messages[0]!.payload.buffer).getUint32(8);
    sendMessage((r) => device.receive(r), cid, VENDOR_SECRETS, TOUCH_APDU);
    const m = await recorder.next((x) => x.cmd === VENDOR_SECRETS);
    expect([...m.payload]).toEqual([0x69, 0x82]);
  });

  it.each(['yubikey', 'nitrokey3'] as const)('CANCEL aborts the touch wait (%s): no answer to CANCEL, the request answers 6500', async (dialect) => {
    const { recorder, send, init, applet, button, device } = rig(dialect);
    const a = await init();
    send(a, VENDOR_SECRETS, TOUCH_APDU);
    await vi.waitFor(() => expect(button.waiting).toBe(true));
    send(a, CANCEL);
    const answer = await recorder.next((m) => m.cmd === VENDOR_SECRETS);
    expect([...answer.payload]).toEqual([0x65, 0x00]);
    expect(applet.contexts[0]!.signal.aborted).toBe(true);
    expect(button.waiting).toBe(false);
    expect(device.busy).toBe(false);
    expect(recorder.messages.filter((m) => m.cmd !== KEEPALIVE).map((m) => m.cmd)).toEqual([VENDOR_SECRETS]);
    const count = recorder.messages.length;
    await sleep(120);
    expect(recorder.messages).toHaveLength(count); // keepalives stopped
  });

  it('ignores CANCEL from another channel and CANCEL with nothing pending', async () => {
    const { recorder, send, init, applet, button } = rig('nitrokey3');
    const a = await init();
    const b = await init();
    send(b, CANCEL);
    expect(recorder.messages).toHaveLength(0);
    send(a, VENDOR_SECRETS, TOUCH_APDU);
    await vi.waitFor(() => expect(button.waiting).toBe(true));
    send(b, CANCEL);
    await sleep(20);
    expect(applet.contexts[0]!.signal.aborted).toBe(false);
    expect(recorder.messages).toHaveLength(0);
    button.press();
    await recorder.next((m) => m.cmd === VENDOR_SECRETS);
  });
});

describe('robustness', () => {
  it('never throws on malformed reports', async () => {
    const { device, recorder, init } = rig();
    const cid = await init();
    for (const report of [new Uint8Array(0), new Uint8Array(3), new Uint8Array(63), new Uint8Array(65), new Uint8Array(64).fill(0xff)]) {
      expect(() => device.receive(report)).not.toThrow();
    }
    // 0xFF… is an init packet on the broadcast CID with cmd 0x7F and length 0xFFFF.
    expect(recorder.messages.map((m) => [m.cid, m.cmd, m.payload[0]])).toEqual([[BROADCAST_CID, ERROR, CtapHidError.INVALID_CHANNEL]]);
    expect(cid).toBeGreaterThan(0);
  });

  it('close() aborts the pending request, stops every timer and goes silent', async () => {
    vi.useFakeTimers();
    const { device, recorder, applet, button } = rig('yubikey');
    device.receive(framePackets(BROADCAST_CID, INIT, nonce())[0]!);
    const a = new DataView(recorder.messages[0]!.payload.buffer).getUint32(8);
    device.receive(framePackets(BROADCAST_CID, INIT, nonce())[0]!);
    const b = new DataView(recorder.messages[1]!.payload.buffer).getUint32(8);
    sendMessage((r) => device.receive(r), a, VENDOR_SECRETS, TOUCH_APDU);
    for (let i = 0; i < 5 && !button.waiting; i++) await Promise.resolve();
    expect(button.waiting).toBe(true);
    vi.advanceTimersByTime(200);
    expect(recorder.messages.some((m) => m.cmd === KEEPALIVE)).toBe(true);
    device.receive(framePackets(b, PING, randomBytes(100))[0]!); // busy: refused, no timer
    device.close();
    expect(applet.contexts[0]!.signal.aborted).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
    const count = recorder.reports.length;
    device.receive(framePackets(b, PING, Uint8Array.of(1))[0]!);
    device.receive(framePackets(BROADCAST_CID, INIT, nonce())[0]!);
    vi.advanceTimersByTime(1000);
    expect(recorder.reports).toHaveLength(count);
  });

  it('close() during a message being received leaves no MSG_TIMEOUT timer', () => {
    vi.useFakeTimers();
    const { device, recorder } = rig();
    device.receive(framePackets(BROADCAST_CID, INIT, nonce())[0]!);
    const cid = new DataView(recorder.messages[0]!.payload.buffer).getUint32(8);
    device.receive(framePackets(cid, PING, randomBytes(100))[0]!);
    expect(vi.getTimerCount()).toBe(2); // the gap between packets, and the whole message's deadline
    device.close();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('keeps going when a listener throws, and every listener gets its own copy', async () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const { device, recorder, init, send } = rig();
    device.onReport(() => {
      throw new Error('listener bug');
    });
    const seen: Uint8Array[] = [];
    device.onReport((r) => {
      seen.push(r);
      r.fill(0);
    });
    const later = new Recorder();
    device.onReport(later.listener);
    const cid = await init();
    send(cid, PING, Uint8Array.of(1, 2, 3));
    expect(recorder.messages.at(-1)!.payload).toEqual(Uint8Array.of(1, 2, 3));
    expect(later.messages.at(-1)!.payload).toEqual(Uint8Array.of(1, 2, 3));
    expect(seen.length).toBeGreaterThan(0);
    errors.mockRestore();
  });
});

/** One HID open of the device (as one hidraw reader, or one socket connection, is): its own recorder. */
function openOf(device: CtapHidDevice): { open: HidOpen; recorder: Recorder; send: (cid: number, cmd: number, payload?: Uint8Array) => void; init: () => number } {
  const recorder = new Recorder();
  const open = device.connect(recorder.listener);
  const send = (cid: number, cmd: number, payload?: Uint8Array) => sendMessage((r) => open.receive(r), cid, cmd, payload);
  const init = (): number => {
    const n = nonce();
    send(BROADCAST_CID, INIT, n);
    const answer = recorder.messages.find((m) => m.cmd === INIT && Buffer.from(m.payload.subarray(0, 8)).equals(Buffer.from(n)))!;
    return new DataView(answer.payload.buffer).getUint32(8);
  };
  return { open, recorder, send, init };
}

const pingAnswered = (recorder: Recorder, cid: number, payload: Uint8Array): boolean =>
  recorder.messages.some((m) => m.cid === cid && m.cmd === PING && Buffer.from(m.payload).equals(Buffer.from(payload)));

describe('channel limits (issue 9 item 9)', () => {
  it('frees the channels of an open when it closes', () => {
    const { device } = rig();
    const a = openOf(device);
    const b = openOf(device);
    const mine = [a.init(), a.init(), a.init()];
    const theirs = b.init();
    expect(device.channelCount).toBe(4);
    a.open.close();
    expect(device.channelCount).toBe(1);
    // Whoever uses a freed channel is told it is not allocated; the other open's channel still works.
    for (const cid of mine) b.send(cid, PING, Uint8Array.of(1));
    b.send(theirs, PING, Uint8Array.of(2));
    // Every open hears every report (hidraw does that too): leave out the INIT answers.
    expect(b.recorder.messages.filter((m) => m.cmd !== INIT).map((m) => [m.cid, m.cmd, m.payload[0]])).toEqual([
      ...mine.map((cid) => [cid, ERROR, CtapHidError.INVALID_CHANNEL]),
      [theirs, PING, 2],
    ]);
  });

  it('aborts the pending request of an open that closes, and is free for the others at once', async () => {
    const { device, applet } = rig('nitrokey3');
    const a = openOf(device);
    const b = openOf(device);
    const cid = a.init();
    a.send(cid, VENDOR_SECRETS, TOUCH_APDU);
    await vi.waitFor(() => expect(applet.contexts).toHaveLength(1));
    expect(device.busy).toBe(true);
    a.open.close();
    expect(applet.contexts[0]!.signal.aborted).toBe(true);
    expect(device.busy).toBe(false);
    const other = b.init();
    b.send(other, PING, Uint8Array.of(3));
    expect(pingAnswered(b.recorder, other, Uint8Array.of(3))).toBe(true);
  });

  it('bounds the channels of one open: 5,000 INITs reuse its least recently used channels and leave the others\' alone (bench ctaphid-channels: 300,000)', () => {
    const { device } = rig();
    const bystander = openOf(device);
    const kept = bystander.init();
    const flood = openOf(device);
    const first = flood.init();
    const favourite = flood.init();
    for (let i = 0; i < 5_000; i++) {
      flood.open.receive(framePackets(BROADCAST_CID, INIT, nonce())[0]!);
      if (i % 3 === 0) flood.send(favourite, PING, Uint8Array.of(4)); // in use: not the least recently used
      if (i % 1_000 === 0) flood.recorder.clear();
    }
    expect(device.channelCount).toBeLessThanOrEqual(MAX_CHANNELS_PER_OPEN + 1);
    flood.recorder.clear();
    flood.send(first, PING, Uint8Array.of(5));
    flood.send(favourite, PING, Uint8Array.of(6));
    expect(flood.recorder.messages.map((m) => [m.cid, m.cmd, m.payload[0]])).toEqual([
      [first, ERROR, CtapHidError.INVALID_CHANNEL],
      [favourite, PING, 6],
    ]);
    bystander.send(kept, PING, Uint8Array.of(7));
    expect(pingAnswered(bystander.recorder, kept, Uint8Array.of(7))).toBe(true);
  });

  it('bounds the channels of all opens together, evicting the least recently used idle one', () => {
    const { device } = rig();
    const opens = Array.from({ length: MAX_CHANNELS + 20 }, () => openOf(device));
    const cids = opens.map((o) => o.init());
    expect(device.channelCount).toBe(MAX_CHANNELS);
    const newest = opens.at(-1)!;
    newest.send(cids.at(-1)!, PING, Uint8Array.of(8));
    expect(pingAnswered(newest.recorder, cids.at(-1)!, Uint8Array.of(8))).toBe(true);
    opens[0]!.send(cids[0]!, PING, Uint8Array.of(9));
    expect(opens[0]!.recorder.messages.at(-1)).toMatchObject({ cid: cids[0], cmd: ERROR, payload: Uint8Array.of(CtapHidError.INVALID_CHANNEL) });
  });
});

describe('a message held open (issue 9 item 9)', () => {
  it('times out after the message deadline even while continuation packets keep trickling in, then serves the others', async () => {
    vi.useFakeTimers();
    const { device, recorder, send, init } = rig();
    const slowCid = await init();
    const otherCid = await init();
    const packets = framePackets(slowCid, PING, randomBytes(7609));
    device.receive(packets[0]!);
    let sent = 1;
    // One continuation every 500 ms: never a gap of 550 ms, so only the whole-message deadline ends it.
    for (let t = 0; t < U2FHID_TRANS_TIMEOUT_MS - 500; t += 500) {
      vi.advanceTimersByTime(500);
      device.receive(packets[sent++]!);
      send(otherCid, PING, Uint8Array.of(1));
    }
    expect(recorder.messages.filter(isError(otherCid, CtapHidError.CHANNEL_BUSY)).length).toBeGreaterThan(0);
    expect(pingAnswered(recorder, otherCid, Uint8Array.of(1))).toBe(false);
    expect(recorder.messages.some(isError(slowCid, CtapHidError.MSG_TIMEOUT))).toBe(false);
    vi.advanceTimersByTime(500);
    expect(recorder.messages.filter((m) => m.cid === slowCid).map((m) => [m.cmd, m.payload[0]])).toEqual([[ERROR, CtapHidError.MSG_TIMEOUT]]);
    expect(device.busy).toBe(false);
    device.receive(packets[sent]!); // too late: ignored
    send(otherCid, PING, Uint8Array.of(2));
    expect(pingAnswered(recorder, otherCid, Uint8Array.of(2))).toBe(true);
  });

  it('lets those it turned away go first after a timeout, so one client re-opening at once cannot starve them', () => {
    vi.useFakeTimers();
    const { device } = rig();
    const hog = openOf(device);
    const other = openOf(device);
    const hogCid = hog.init();
    const otherCid = other.init();
    let answered = 0;
    let asked = 0;
    // For 20 s the hog holds a message open all the time: a continuation every 100 ms, and a new
    // message the moment the last one timed out. Each tick the hog writes first.
    let packets: Uint8Array[] = [];
    let next = 0;
    for (let t = 0; t < 20_000; t += 100) {
      if (!device.busy) {
        packets = framePackets(hogCid, PING, randomBytes(7609));
        next = 0;
      }
      if (next < packets.length) hog.open.receive(packets[next++]!);
      other.send(otherCid, PING, Uint8Array.of(asked & 0xff));
      if (pingAnswered(other.recorder, otherCid, Uint8Array.of(asked & 0xff))) answered++;
      asked++;
      other.recorder.clear();
      vi.advanceTimersByTime(100);
    }
    expect(asked).toBe(200);
    expect(hog.recorder.messages.filter(isError(hogCid, CtapHidError.MSG_TIMEOUT)).length).toBeGreaterThanOrEqual(5);
    // One answer after each of the hog's timed-out messages (each lasts the message deadline).
    expect(answered).toBeGreaterThanOrEqual(Math.floor(20_000 / (DEFAULT_MESSAGE_DEADLINE_MS + 200)));
  });

  it('keeps the reservation short: the client that timed out may go again once the reservation has run out', () => {
    vi.useFakeTimers();
    const { device } = rig();
    const slow = openOf(device);
    const other = openOf(device);
    const slowCid = slow.init();
    const otherCid = other.init();
    slow.open.receive(framePackets(slowCid, PING, randomBytes(500))[0]!);
    other.send(otherCid, PING, Uint8Array.of(1)); // turned away
    vi.advanceTimersByTime(DEFAULT_MSG_TIMEOUT_MS);
    expect(slow.recorder.messages.some(isError(slowCid, CtapHidError.MSG_TIMEOUT))).toBe(true);
    slow.send(slowCid, PING, Uint8Array.of(2));
    expect(slow.recorder.messages.at(-1)).toMatchObject({ cmd: ERROR, payload: Uint8Array.of(CtapHidError.CHANNEL_BUSY) });
    vi.advanceTimersByTime(TURN_AFTER_TIMEOUT_MS);
    slow.send(slowCid, PING, Uint8Array.of(3));
    expect(pingAnswered(slow.recorder, slowCid, Uint8Array.of(3))).toBe(true);
  });

  it('ends the reservation at once when the clients it was for have gone', () => {
    vi.useFakeTimers();
    const { device } = rig();
    const slow = openOf(device);
    const other = openOf(device);
    const slowCid = slow.init();
    const otherCid = other.init();
    slow.open.receive(framePackets(slowCid, PING, randomBytes(500))[0]!);
    other.send(otherCid, PING, Uint8Array.of(1)); // turned away
    vi.advanceTimersByTime(DEFAULT_MSG_TIMEOUT_MS);
    expect(slow.recorder.messages.some(isError(slowCid, CtapHidError.MSG_TIMEOUT))).toBe(true);
    other.open.close();
    // No time passes: nobody is left to go first.
    slow.send(slowCid, PING, Uint8Array.of(2));
    expect(pingAnswered(slow.recorder, slowCid, Uint8Array.of(2))).toBe(true);
  });
});
