/**
 * CTAPHID wire format (docs/protocols.md §3), shared by the host client (ctaphid.ts) and the virtual
 * key's device side. Packets are `reportSize` bytes without report id:
 *
 *   init:         CID(4) | CMD|0x80 (1) | BCNTH BCNTL (2) | data (reportSize - 7)
 *   continuation: CID(4) | SEQ 0x00..0x7F (1)             | data (reportSize - 5)
 */

export const CTAPHID_REPORT_SIZE = 64;
export const BROADCAST_CID = 0xffffffff;
export const INIT_HEADER = 7;
export const CONT_HEADER = 5;
export const MAX_SEQ = 0x7f;

/** The largest payload the framing can carry with 64-byte reports: 57 + 128 × 59. */
export function maxPayload(reportSize = CTAPHID_REPORT_SIZE): number {
  return reportSize - INIT_HEADER + (MAX_SEQ + 1) * (reportSize - CONT_HEADER);
}

/** Command codes without the init bit. */
export const CtapHidCommand = {
  PING: 0x01,
  MSG: 0x03,
  LOCK: 0x04,
  INIT: 0x06,
  WINK: 0x08,
  CBOR: 0x10,
  CANCEL: 0x11,
  KEEPALIVE: 0x3b,
  ERROR: 0x3f,
  /** Nitrokey 3 Secrets App: one ISO APDU in; SW first, then data, out (docs/protocols.md §2.2). */
  VENDOR_SECRETS: 0x70,
} as const;

export const CtapHidError = {
  INVALID_CMD: 0x01,
  INVALID_PAR: 0x02,
  INVALID_LEN: 0x03,
  INVALID_SEQ: 0x04,
  MSG_TIMEOUT: 0x05,
  CHANNEL_BUSY: 0x06,
  LOCK_REQUIRED: 0x0a,
  INVALID_CHANNEL: 0x0b,
  OTHER: 0x7f,
} as const;

export const CtapHidErrorName: Record<number, string> = Object.fromEntries(
  Object.entries(CtapHidError).map(([name, code]) => [code, name]),
);

export const KeepaliveStatus = { PROCESSING: 0x01, UPNEEDED: 0x02 } as const;

export const Capability = { WINK: 0x01, LOCK: 0x02, CBOR: 0x04, NMSG: 0x08 } as const;

/** One parsed packet. `cmd` is set for init packets (without the 0x80 bit), `seq` for continuations. */
export type CtapHidPacket =
  | { kind: 'init'; cid: number; cmd: number; length: number; data: Uint8Array }
  | { kind: 'cont'; cid: number; seq: number; data: Uint8Array };

export function parsePacket(report: Uint8Array): CtapHidPacket {
  if (report.length < INIT_HEADER) throw new RangeError(`A CTAPHID packet needs at least ${INIT_HEADER} bytes, got ${report.length}.`);
  const view = new DataView(report.buffer, report.byteOffset, report.byteLength);
  const cid = view.getUint32(0);
  const type = report[4]!;
  if (type & 0x80) {
    return { kind: 'init', cid, cmd: type & 0x7f, length: view.getUint16(5), data: report.subarray(INIT_HEADER) };
  }
  return { kind: 'cont', cid, seq: type, data: report.subarray(CONT_HEADER) };
}

/** Splits one message into zero-padded packets. Throws RangeError when the payload is too long. */
export function framePackets(cid: number, cmd: number, payload: Uint8Array, reportSize = CTAPHID_REPORT_SIZE): Uint8Array[] {
  if (payload.length > Math.min(0xffff, maxPayload(reportSize))) {
    throw new RangeError(`A CTAPHID message carries at most ${maxPayload(reportSize)} bytes, not ${payload.length}.`);
  }
  const packets: Uint8Array[] = [];
  const first = new Uint8Array(reportSize);
  const view = new DataView(first.buffer);
  view.setUint32(0, cid >>> 0);
  first[4] = 0x80 | cmd;
  view.setUint16(5, payload.length);
  let offset = Math.min(payload.length, reportSize - INIT_HEADER);
  first.set(payload.subarray(0, offset), INIT_HEADER);
  packets.push(first);
  for (let seq = 0; offset < payload.length; seq++) {
    const packet = new Uint8Array(reportSize);
    new DataView(packet.buffer).setUint32(0, cid >>> 0);
    packet[4] = seq;
    const chunk = payload.subarray(offset, offset + reportSize - CONT_HEADER);
    packet.set(chunk, CONT_HEADER);
    offset += chunk.length;
    packets.push(packet);
  }
  return packets;
}

/**
 * Collects the packets of one message on one channel. Feed it the init packet's header, then each
 * continuation; `add` says whether the message is complete. It throws a FramingError on a sequence
 * gap, which both sides treat as the end of that transaction.
 */
export class MessageAssembler {
  readonly cid: number;
  readonly cmd: number;
  readonly length: number;
  private readonly buffer: Uint8Array;
  private filled: number;
  private nextSeq = 0;

  constructor(init: Extract<CtapHidPacket, { kind: 'init' }>) {
    this.cid = init.cid;
    this.cmd = init.cmd;
    this.length = init.length;
    this.buffer = new Uint8Array(init.length);
    this.filled = Math.min(init.length, init.data.length);
    this.buffer.set(init.data.subarray(0, this.filled));
  }

  get complete(): boolean {
    return this.filled >= this.length;
  }

  /** Adds a continuation packet of this channel. Returns true when the message is complete. */
  add(packet: Extract<CtapHidPacket, { kind: 'cont' }>): boolean {
    if (packet.seq !== this.nextSeq) {
      throw new FramingError(`continuation packet with sequence ${packet.seq}, expected ${this.nextSeq}`);
    }
    this.nextSeq++;
    const take = Math.min(this.length - this.filled, packet.data.length);
    this.buffer.set(packet.data.subarray(0, take), this.filled);
    this.filled += take;
    return this.complete;
  }

  get payload(): Uint8Array {
    return this.buffer;
  }
}

export class FramingError extends Error {
  override readonly name = 'FramingError';
}
