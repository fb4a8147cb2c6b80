/**
 * Test helpers for the virtual key's device side: a stub applet that needs no store, and a
 * recorder that parses the device's output reports into messages.
 */
import { BROADCAST_CID, CtapHidCommand, MessageAssembler, framePackets, parsePacket } from '../../src/device/transport/ctaphid-frames.js';
import type { HidLink } from '../../src/device/transport/types.js';
import type { AppletContext, CardApplet } from '../../src/emulator/types.js';

export const OATH_SELECT = Uint8Array.of(0x00, 0xa4, 0x04, 0x00, 0x07, 0xa0, 0x00, 0x00, 0x05, 0x27, 0x21, 0x01);
/** What the stub answers to SELECT: a version TLV, then 90 00 (ISO order). */
export const SELECT_RESPONSE = Uint8Array.of(0x79, 0x03, 0x05, 0x04, 0x03, 0x90, 0x00);
/** INS the stub treats as "needs touch" (like CALCULATE of a touch credential). */
export const INS_TOUCH = 0xa2;

/**
 * SELECT → version TLV ‖ 9000; INS A2 → waits for a touch, 9000 or 6982; anything else → the APDU
 * echoed ‖ 9000. Records the contexts it was given, so tests can look at their signals.
 */
export class StubApplet implements CardApplet {
  readonly contexts: AppletContext[] = [];
  async process(apdu: Uint8Array, context: AppletContext): Promise<Uint8Array> {
    this.contexts.push(context);
    if (apdu[1] === 0xa4) return SELECT_RESPONSE;
    if (apdu[1] === INS_TOUCH) return (await context.requestTouch()) ? Uint8Array.of(0x90, 0x00) : Uint8Array.of(0x69, 0x82);
    return Uint8Array.of(...apdu, 0x90, 0x00);
  }
}

export interface Message {
  cid: number;
  cmd: number;
  payload: Uint8Array;
  at: number;
}

/** Reassembles device→host reports into messages (all CIDs), noting when each arrived. */
export class Recorder {
  readonly messages: Message[] = [];
  readonly reports: Uint8Array[] = [];
  private partial = new Map<number, MessageAssembler>();
  private waiters: Array<() => void> = [];

  readonly listener = (report: Uint8Array): void => {
    this.reports.push(report);
    const packet = parsePacket(report);
    let assembler: MessageAssembler | undefined;
    if (packet.kind === 'init') {
      assembler = new MessageAssembler(packet);
      if (!assembler.complete) {
        this.partial.set(packet.cid, assembler);
        return;
      }
    } else {
      assembler = this.partial.get(packet.cid);
      if (!assembler || !assembler.add(packet)) return;
      this.partial.delete(packet.cid);
    }
    this.messages.push({ cid: assembler.cid, cmd: assembler.cmd, payload: Uint8Array.from(assembler.payload), at: performance.now() });
    for (const wake of this.waiters.splice(0)) wake();
  };

  /** Waits until a message matching `match` arrived (default 2 s), and returns it. */
  async next(match: (m: Message) => boolean, timeoutMs = 2000): Promise<Message> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const found = this.messages.find(match);
      if (found) return found;
      const left = deadline - performance.now();
      if (left <= 0) throw new Error('no matching message');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  clear(): void {
    this.messages.length = 0;
    this.reports.length = 0;
  }
}

export function sendMessage(receive: (report: Uint8Array) => void, cid: number, cmd: number, payload: Uint8Array = new Uint8Array()): void {
  for (const packet of framePackets(cid, cmd, payload)) receive(packet);
}

export function randomBytes(length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 131 + 7 + Math.floor(Math.random() * 256)) & 0xff;
  return bytes;
}

export function nonce(): Uint8Array {
  return randomBytes(8);
}

export { BROADCAST_CID, CtapHidCommand };

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Writes one message to a link, all packets back to back. */
export async function writeMessage(link: HidLink, cid: number, cmd: number, payload: Uint8Array = new Uint8Array()): Promise<void> {
  for (const packet of framePackets(cid, cmd, payload)) await link.write(packet);
}

/** Reads one single-packet message for `cid`, skipping other channels (as a real client must). */
export async function readMessage(link: HidLink, cid: number, timeoutMs = 2000): Promise<{ cmd: number; payload: Uint8Array }> {
  for (;;) {
    const report = await link.read(timeoutMs);
    if (!report) throw new Error('timeout');
    const packet = parsePacket(report);
    if (packet.cid !== cid || packet.kind !== 'init') continue;
    return { cmd: packet.cmd, payload: packet.data.subarray(0, packet.length) };
  }
}

/** INIT on the broadcast channel; the CID the key allocated. */
export async function initChannel(link: HidLink): Promise<number> {
  const n = nonce();
  await writeMessage(link, BROADCAST_CID, CtapHidCommand.INIT, n);
  for (;;) {
    const { payload } = await readMessage(link, BROADCAST_CID);
    if (Buffer.from(payload.subarray(0, 8)).equals(Buffer.from(n))) return new DataView(payload.buffer, payload.byteOffset).getUint32(8);
  }
}
