/**
 * The two seams of the device layer.
 *
 * - `ApduTransport`: what an application session (YKOATH) talks to. One ISO 7816 command APDU
 *   in, response data and status word out. Implementations: CTAPHID vendor command 0x70 over a
 *   HidLink, PC/SC.
 * - `HidLink`: a raw 64-byte HID report pipe to one device. Implementations: node-hid, the
 *   in-process virtual key, and a virtual key running in another process behind a local socket.
 *   Tests replace hardware only here, at the report boundary.
 */

import type { KeyDialect } from '../key-dialect.js';

export interface ApduResponse {
  /** Response data without the status word. */
  data: Uint8Array;
  /** SW1 << 8 | SW2, e.g. 0x9000. */
  sw: number;
}

export interface TransmitOptions {
  /** Aborting cancels the exchange (CTAPHID CANCEL where the transport has it). */
  signal?: AbortSignal | undefined;
  /**
   * How long to wait for the answer. Operations that may need a touch must allow at least 30 s
   * (docs/protocols.md §3.6); the default of each transport is that long.
   */
  timeoutMs?: number | undefined;
  /** Called once when the transport learns that the key waits for a touch (CTAPHID KEEPALIVE UPNEEDED). */
  onTouchNeeded?: (() => void) | undefined;
}

export interface ApduTransport {
  /** A short human description ("Nitrokey 3 (hidraw3)", "virtual key demo.json"). Never secret. */
  readonly description: string;
  /** What the key speaks, where the transport knows it (a virtual key in this process: its store says). */
  readonly dialect?: KeyDialect | undefined;
  /** Sends one command APDU (CLA INS P1 P2 [Lc data] [Le]) and returns the answer. */
  transmit(apdu: Uint8Array, options?: TransmitOptions): Promise<ApduResponse>;
  close(): Promise<void>;
}

export interface HidLink {
  /** Input and output report size without report id; 64 for every FIDO key. */
  readonly reportSize: number;
  /** Writes one output report of exactly `reportSize` bytes (the link adds the 0x00 report id where the OS wants it). */
  write(report: Uint8Array): Promise<void>;
  /**
   * Reads the next input report. Resolves `undefined` when `timeoutMs` passes without one.
   * Rejects with KeytapError KEY_REMOVED when the device is gone, CANCELLED when `signal` fires.
   */
  read(timeoutMs: number, signal?: AbortSignal): Promise<Uint8Array | undefined>;
  close(): Promise<void>;
}

/** Builds a command APDU. Short encoding (Lc ≤ 255) unless the data is longer, then extended. */
export function encodeApdu(cla: number, ins: number, p1: number, p2: number, data: Uint8Array = new Uint8Array()): Uint8Array {
  if (data.length === 0) return Uint8Array.of(cla, ins, p1, p2);
  if (data.length <= 0xff) return Uint8Array.of(cla, ins, p1, p2, data.length, ...data);
  if (data.length > 0xffff) throw new RangeError('APDU data longer than 65535 bytes.');
  return Uint8Array.of(cla, ins, p1, p2, 0, data.length >> 8, data.length & 0xff, ...data);
}

/** A command APDU taken apart. */
export interface CommandApdu {
  cla: number;
  ins: number;
  p1: number;
  p2: number;
  /** Undefined when the APDU has no data field. */
  lc: number | undefined;
  data: Uint8Array;
  /** Undefined when the APDU has no Le field (0 is a present Le of 256 or 65536). */
  le: number | undefined;
}

/**
 * The inverse of encodeApdu, for every ISO 7816-4 case: short (`Lc` 1 byte, optional `Le`) or
 * extended (`00 Lc_hi Lc_lo`, optional 2-byte `Le`; `00 Le_hi Le_lo` alone for no data). ykman
 * 4.0.9's no-data commands end in a lone `00`, which is a case-2 Le. Undefined when the lengths do
 * not add up (a card answers 6700).
 */
export function decodeApdu(apdu: Uint8Array): CommandApdu | undefined {
  if (apdu.length < 4) return undefined;
  const header = { cla: apdu[0]!, ins: apdu[1]!, p1: apdu[2]!, p2: apdu[3]! };
  const body = apdu.subarray(4);
  const none = new Uint8Array();
  if (body.length === 0) return { ...header, lc: undefined, data: none, le: undefined };
  if (body.length === 1) return { ...header, lc: undefined, data: none, le: body[0] };
  if (body[0] !== 0) {
    const lc = body[0]!;
    if (body.length === 1 + lc) return { ...header, lc, data: body.subarray(1), le: undefined };
    if (body.length === 2 + lc) return { ...header, lc, data: body.subarray(1, 1 + lc), le: body[1 + lc] };
    return undefined;
  }
  if (body.length < 3) return undefined;
  const word = (at: number): number => (body[at]! << 8) | body[at + 1]!;
  if (body.length === 3) return { ...header, lc: undefined, data: none, le: word(1) };
  const lc = word(1);
  if (lc === 0) return undefined;
  if (body.length === 3 + lc) return { ...header, lc, data: body.subarray(3), le: undefined };
  if (body.length === 5 + lc) return { ...header, lc, data: body.subarray(3, 3 + lc), le: word(3 + lc) };
  return undefined;
}

export function formatSw(sw: number): string {
  return sw.toString(16).toUpperCase().padStart(4, '0');
}
