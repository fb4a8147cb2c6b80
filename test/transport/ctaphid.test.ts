import { describe, expect, it } from 'vitest';
import { CtapHidApduTransport, CtapHidChannel, parseVendorResponse } from '../../src/device/transport/ctaphid.js';
import { BROADCAST_CID, CtapHidCommand, CtapHidError, KeepaliveStatus, framePackets } from '../../src/device/transport/ctaphid-frames.js';
import { FakeLink, TEST_CID, errorPacket, hex, initAnswer, keepalive, message, scriptedKey } from './fake-link.js';
import { rejection } from '../support/rejection.js';

const VENDOR = CtapHidCommand.VENDOR_SECRETS;

function echo() {
  return scriptedKey((request) => message(request.cid, request.cmd, request.payload));
}

describe('INIT', () => {
  it('allocates a channel and reads the device info', async () => {
    const { link } = echo();
    const channel = await CtapHidChannel.open(link);
    expect(channel.cid).toBe(TEST_CID);
    expect(channel.info).toEqual({ protocolVersion: 2, deviceVersion: [1, 7, 3], capabilities: 0x05 });
    const request = link.written[0]!;
    expect([...request.subarray(0, 7)]).toEqual([0xff, 0xff, 0xff, 0xff, 0x86, 0, 8]);
    expect(request.subarray(15).every((b) => b === 0)).toBe(true);
  });

  it('skips answers carrying another program’s nonce and broadcast errors', async () => {
    const link = new FakeLink();
    link.onWrite = (report) => {
      const nonce = report.slice(7, 15);
      const foreign = nonce.map((b) => b ^ 0xff);
      link.push(...initAnswer(foreign, 0x0badcafe), errorPacket(BROADCAST_CID, CtapHidError.INVALID_CHANNEL));
      link.push(framePackets(0x01020304, CtapHidCommand.PING, new Uint8Array(3))[0]!);
      link.push(...initAnswer(nonce, 0x55667788));
    };
    const channel = await CtapHidChannel.open(link);
    expect(channel.cid).toBe(0x55667788);
  });

  it('times out quickly when nothing answers', async () => {
    const link = new FakeLink();
    const started = Date.now();
    const error = await rejection(CtapHidChannel.open(link, { initTimeoutMs: 200 }));
    expect(error.code).toBe('TIMEOUT');
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('rejects a reserved CID', async () => {
    const link = new FakeLink();
    link.onWrite = (report) => link.push(...initAnswer(report.slice(7, 15), 0));
    expect((await rejection(CtapHidChannel.open(link))).code).toBe('PROTOCOL');
  });

  it('retries INIT on CHANNEL_BUSY and says BUSY at the deadline', async () => {
    const link = new FakeLink();
    link.onWrite = () => link.push(errorPacket(BROADCAST_CID, CtapHidError.CHANNEL_BUSY));
    const error = await rejection(CtapHidChannel.open(link, { initTimeoutMs: 500 }));
    expect(error.code).toBe('BUSY');
    expect(link.written.length).toBeGreaterThan(1);
  });

  it('cancels while waiting', async () => {
    const link = new FakeLink();
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 20);
    expect((await rejection(CtapHidChannel.open(link, { signal: controller.signal }))).code).toBe('CANCELLED');
  });
});

describe('docs/protocols.md §2.2 worked example', () => {
  it('frames the request and reads SW first, then data', async () => {
    const request = hex('00 A2 00 01 10 71 04 74 65 73 74 74 08 00 00 00 00 00 00 00 01');
    const { link } = scriptedKey((req) => message(req.cid, VENDOR, hex('90 00 76 05 06 41 39 7E EA')));
    const transport = await CtapHidApduTransport.open(link, { description: 'test key' });
    const response = await transport.transmit(request);

    const expected = new Uint8Array(64);
    expected.set([0x11, 0x22, 0x33, 0x44, 0xf0, 0x00, 0x15]);
    expected.set(request, 7);
    expect(link.written[1]).toEqual(expected);
    expect(link.written).toHaveLength(2);

    expect(response.sw).toBe(0x9000);
    expect([...response.data]).toEqual([0x76, 0x05, 0x06, 0x41, 0x39, 0x7e, 0xea]);
    const truncated = new DataView(response.data.buffer, response.data.byteOffset + 3, 4).getUint32(0) & 0x7fffffff;
    expect(String(truncated % 10 ** 6).padStart(6, '0')).toBe('287082');
    expect(transport.description).toBe('test key');
  });

  it('returns the status word alone on error', () => {
    expect(parseVendorResponse(hex('6A 82'))).toEqual({ sw: 0x6a82, data: new Uint8Array() });
  });

  it('rejects a payload without a status word', async () => {
    const { link } = scriptedKey((req) => message(req.cid, VENDOR, [0x90]));
    const transport = await CtapHidApduTransport.open(link);
    const error = await rejection(transport.transmit(hex('00 A4 04 00')));
    expect(error.code).toBe('PROTOCOL');
  });
});

describe('call', () => {
  it('echoes every size up to 7609 bytes, in 1 + n continuation packets', async () => {
    const { link } = echo();
    const channel = await CtapHidChannel.open(link);
    for (const size of [0, 1, 57, 58, 116, 117, 1000, 7609]) {
      const data = Uint8Array.from({ length: size }, (_, i) => (i * 7 + size) & 0xff);
      const before = link.written.length;
      expect(await channel.ping(data)).toEqual(data);
      const packets = link.written.length - before;
      expect(packets).toBe(size <= 57 ? 1 : 1 + Math.ceil((size - 57) / 59));
    }
  });

  it('refuses a payload longer than the framing carries', async () => {
    const { link } = echo();
    const channel = await CtapHidChannel.open(link);
    expect((await rejection(channel.call(CtapHidCommand.PING, new Uint8Array(7610)))).code).toBe('UNSUPPORTED');
  });

  it('drops packets of other channels, also between continuation packets', async () => {
    const { link } = scriptedKey((req) => {
      const [first, ...rest] = message(req.cid, req.cmd, req.payload);
      const foreign = message(0x99999999, req.cmd, new Uint8Array(100));
      return [foreign[0]!, first!, foreign[1]!, errorPacket(0x12345678, CtapHidError.CHANNEL_BUSY), ...rest];
    });
    const channel = await CtapHidChannel.open(link);
    const data = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);
    expect(await channel.ping(data)).toEqual(data);
  });

  it('reports keepalive changes once each and the touch once', async () => {
    const { link } = scriptedKey((req) => [
      keepalive(req.cid, KeepaliveStatus.PROCESSING),
      keepalive(req.cid, KeepaliveStatus.PROCESSING),
      keepalive(req.cid, KeepaliveStatus.UPNEEDED),
      keepalive(req.cid, KeepaliveStatus.UPNEEDED),
      keepalive(req.cid, KeepaliveStatus.UPNEEDED),
      ...message(req.cid, req.cmd, [0x90, 0x00]),
    ]);
    const channel = await CtapHidChannel.open(link);
    const statuses: number[] = [];
    await channel.call(VENDOR, hex('00 A2 00 00'), { onKeepalive: (s) => statuses.push(s) });
    expect(statuses).toEqual([1, 2]);

    const transport = new CtapHidApduTransport(channel);
    let touches = 0;
    const response = await transport.transmit(hex('00 A2 00 00'), { onTouchNeeded: () => touches++ });
    expect(touches).toBe(1);
    expect(response.sw).toBe(0x9000);
  });

  it('survives a throwing keepalive callback', async () => {
    const { link } = scriptedKey((req) => [keepalive(req.cid, 2), ...message(req.cid, req.cmd, [0x90, 0x00])]);
    const transport = await CtapHidApduTransport.open(link);
    const response = await transport.transmit(hex('00 A2 00 00'), {
      onTouchNeeded: () => {
        throw new Error('toast failed');
      },
    });
    expect(response.sw).toBe(0x9000);
  });

  it('resends the whole request after CHANNEL_BUSY', async () => {
    let attempts = 0;
    const { link, requests } = scriptedKey((req) =>
      ++attempts < 3 ? [errorPacket(req.cid, CtapHidError.CHANNEL_BUSY)] : message(req.cid, req.cmd, req.payload),
    );
    const channel = await CtapHidChannel.open(link);
    const data = new Uint8Array(200).fill(7);
    const started = Date.now();
    expect(await channel.ping(data)).toEqual(data);
    expect(requests).toHaveLength(3);
    expect(requests.every((r) => r.payload.length === 200)).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(200); // 100 ms + 150 ms backoff, give or take timer slack
  });

  it('gives up on a busy key at the deadline with BUSY', async () => {
    const { link } = scriptedKey((req) => [errorPacket(req.cid, CtapHidError.CHANNEL_BUSY)]);
    const channel = await CtapHidChannel.open(link);
    const started = Date.now();
    const error = await rejection(channel.call(VENDOR, hex('00 A4 04 00'), { timeoutMs: 600 }));
    expect(error.code).toBe('BUSY');
    expect(error.message).toMatch(/busy with another program/);
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it.each([
    [CtapHidError.INVALID_CMD, 'INVALID_CMD', 'UNSUPPORTED'],
    [CtapHidError.INVALID_PAR, 'INVALID_PAR', 'PROTOCOL'],
    [CtapHidError.INVALID_LEN, 'INVALID_LEN', 'PROTOCOL'],
    [CtapHidError.INVALID_SEQ, 'INVALID_SEQ', 'PROTOCOL'],
    [CtapHidError.MSG_TIMEOUT, 'MSG_TIMEOUT', 'PROTOCOL'],
    [CtapHidError.LOCK_REQUIRED, 'LOCK_REQUIRED', 'BUSY'],
    [CtapHidError.INVALID_CHANNEL, 'INVALID_CHANNEL', 'PROTOCOL'],
    [CtapHidError.OTHER, 'OTHER', 'DEVICE_ERROR'],
    [0x42, 'UNKNOWN', 'PROTOCOL'],
  ])('ERROR %i → %s', async (code, name, errorCode) => {
    const { link } = scriptedKey((req) => [errorPacket(req.cid, code)]);
    const channel = await CtapHidChannel.open(link);
    const error = await rejection(channel.call(VENDOR, hex('00 A4 04 00 07 A0 00 00 05 27 21 01')));
    expect(error.code).toBe(errorCode);
    expect(error.message).toContain(name);
    expect(error.message).not.toMatch(/A0|a0 00/); // no payload bytes in messages
    // An ERROR ends the transaction cleanly: the next call uses the same channel.
    expect(channel.cid).toBe(TEST_CID);
  });

  it('treats a continuation with the wrong sequence number as a protocol error', async () => {
    const { link } = scriptedKey((req) => {
      const packets = message(req.cid, req.cmd, req.payload);
      packets[2]![4] = 5;
      return packets;
    });
    const channel = await CtapHidChannel.open(link);
    const error = await rejection(channel.ping(new Uint8Array(200)));
    expect(error.code).toBe('PROTOCOL');
    expect(error.message).toMatch(/sequence/);
  });

  it('treats an answer with another command as a protocol error', async () => {
    const { link } = scriptedKey((req) => message(req.cid, CtapHidCommand.MSG, [0x90, 0x00]));
    const channel = await CtapHidChannel.open(link);
    const error = await rejection(channel.call(VENDOR, hex('00 A4 04 00')));
    expect(error.code).toBe('PROTOCOL');
    expect(error.message).toMatch(/answered an OATH request|answered VENDOR_SECRETS/);
  });

  it('treats a stray continuation or a new message mid-answer as a protocol error', async () => {
    const stray = scriptedKey((req) => [message(req.cid, req.cmd, new Uint8Array(100))[1]!]);
    expect((await rejection((await CtapHidChannel.open(stray.link)).ping(new Uint8Array(3)))).code).toBe('PROTOCOL');
    const restart = scriptedKey((req) => [message(req.cid, req.cmd, new Uint8Array(100))[0]!, ...message(req.cid, req.cmd, [1])]);
    expect((await rejection((await CtapHidChannel.open(restart.link)).ping(new Uint8Array(100)))).code).toBe('PROTOCOL');
  });

  it('sends CANCEL on abort, rejects CANCELLED, and resynchronises before the next call', async () => {
    let first = true;
    const { link, requests } = scriptedKey((req) => {
      if (req.cmd === CtapHidCommand.CANCEL) return;
      if (first) {
        first = false;
        return [keepalive(req.cid, KeepaliveStatus.UPNEEDED)]; // then waits for a touch forever
      }
      return message(req.cid, req.cmd, [0x90, 0x00]);
    });
    const transport = await CtapHidApduTransport.open(link);
    const controller = new AbortController();
    const pending = transport.transmit(hex('00 A2 00 01'), { signal: controller.signal, onTouchNeeded: () => controller.abort() });
    const error = await rejection(pending);
    expect(error.code).toBe('CANCELLED');
    expect(requests.at(-1)).toEqual({ cid: TEST_CID, cmd: CtapHidCommand.CANCEL, payload: new Uint8Array() });
    const cancel = link.written.at(-1)!;
    expect([...cancel.subarray(0, 7)]).toEqual([0x11, 0x22, 0x33, 0x44, 0x91, 0, 0]);

    // The key's late answer to the cancelled request arrives on the old channel: it must not be taken for the next answer.
    link.push(...message(TEST_CID, VENDOR, [0x65, 0x00]));
    const response = await transport.transmit(hex('00 A4 04 00'));
    expect(response.sw).toBe(0x9000);
    expect(transport.channel.cid).toBe(TEST_CID + 1);
  });

  it('resynchronises after an abort during a slow write, so a late answer is not taken for the next one', async () => {
    const { link } = scriptedKey((req) => message(req.cid, req.cmd, req.cmd === VENDOR ? [0x90, 0x00] : req.payload));
    const channel = await CtapHidChannel.open(link);
    const write = link.write.bind(link);
    link.write = (report) => new Promise((resolve, reject) => setTimeout(() => void write(report).then(resolve, reject), 50));
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 10);
    expect((await rejection(channel.call(VENDOR, hex('00 A4 04 00'), { signal: controller.signal }))).code).toBe('CANCELLED');
    link.write = write;
    await new Promise((resolve) => setTimeout(resolve, 80)); // the slow write lands; the key answers on the old CID
    expect(await channel.ping(Uint8Array.of(1, 2, 3))).toEqual(Uint8Array.of(1, 2, 3));
    expect(channel.cid).toBe(TEST_CID + 1);
  });

  it('rejects at once when the signal is already aborted', async () => {
    const { link, requests } = echo();
    const channel = await CtapHidChannel.open(link);
    const error = await rejection(channel.ping(new Uint8Array(1), { signal: AbortSignal.abort() }));
    expect(error.code).toBe('CANCELLED');
    expect(requests).toHaveLength(0);
  });

  it('says TIMEOUT when the key is silent past the deadline, TOUCH_TIMEOUT when it waited for a touch', async () => {
    const silent = scriptedKey(() => undefined);
    const channel = await CtapHidChannel.open(silent.link);
    const started = Date.now();
    const error = await rejection(channel.call(VENDOR, hex('00 A4 04 00'), { timeoutMs: 300 }));
    expect(error.code).toBe('TIMEOUT');
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(Date.now() - started).toBeLessThan(1000);

    const touch = scriptedKey((req) => [keepalive(req.cid, KeepaliveStatus.UPNEEDED)]);
    const touchChannel = await CtapHidChannel.open(touch.link);
    expect((await rejection(touchChannel.call(VENDOR, hex('00 A2 00 01'), { timeoutMs: 300 }))).code).toBe('TOUCH_TIMEOUT');
  });

  it('uses a 30 s deadline by default for vendor calls and a short one for PING', async () => {
    const { link } = scriptedKey(() => undefined);
    const channel = await CtapHidChannel.open(link);
    const reads: number[] = [];
    const read = link.read.bind(link);
    link.read = (timeoutMs, signal) => {
      reads.push(timeoutMs);
      return read(Math.min(timeoutMs, 10), signal);
    };
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    await rejection(channel.call(VENDOR, hex('00 A4 04 00'), { signal: controller.signal }));
    expect(Math.max(...reads)).toBeGreaterThan(29_000);
    reads.length = 0;
    await rejection(channel.ping(new Uint8Array(1)));
    expect(Math.max(...reads)).toBeLessThanOrEqual(1_500);
  });

  it('says KEY_REMOVED when the key is unplugged in the middle of a message', async () => {
    const { link } = scriptedKey((req, l) => {
      const packets = message(req.cid, req.cmd, req.payload);
      setTimeout(() => l.unplug(), 10);
      return packets.slice(0, 2);
    });
    const transport = await CtapHidApduTransport.open(link);
    const error = await rejection(transport.transmit(new Uint8Array(300)));
    expect(error.code).toBe('KEY_REMOVED');
    expect(error.message).toBe('The key was removed during an OATH request.');
    // and every later call says so too, without waiting
    expect((await rejection(transport.transmit(hex('00 A4 04 00')))).code).toBe('KEY_REMOVED');
  });

  it('runs concurrent calls one after the other', async () => {
    const { link, requests } = scriptedKey((req, l) => {
      setTimeout(() => l.push(...message(req.cid, req.cmd, req.payload)), 20);
    });
    const channel = await CtapHidChannel.open(link);
    const results = await Promise.all([1, 2, 3].map((n) => channel.ping(new Uint8Array(100).fill(n))));
    expect(results.map((r) => r[0])).toEqual([1, 2, 3]);
    expect(requests.map((r) => r.payload[0])).toEqual([1, 2, 3]);
  });

  it('lets a queued call be cancelled while another runs', async () => {
    const { link } = scriptedKey((req, l) => {
      setTimeout(() => l.push(...message(req.cid, req.cmd, req.payload)), 100);
    });
    const channel = await CtapHidChannel.open(link);
    const first = channel.ping(new Uint8Array(1));
    const controller = new AbortController();
    const second = channel.ping(new Uint8Array(2), { signal: controller.signal });
    controller.abort();
    expect((await rejection(second)).code).toBe('CANCELLED');
    expect(await first).toEqual(new Uint8Array(1));
    expect(await channel.ping(new Uint8Array(3))).toEqual(new Uint8Array(3));
  });

  it('winks', async () => {
    const { link, requests } = echo();
    const channel = await CtapHidChannel.open(link);
    await channel.wink();
    expect(requests[0]!.cmd).toBe(CtapHidCommand.WINK);
  });

  it('closes the link', async () => {
    const { link } = echo();
    const transport = await CtapHidApduTransport.open(link);
    await transport.close();
    expect(link.closed).toBe(true);
  });
});
