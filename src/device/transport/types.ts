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

export function formatSw(sw: number): string {
  return sw.toString(16).toUpperCase().padStart(4, '0');
}
