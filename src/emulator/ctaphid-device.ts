/**
 * The device side of CTAPHID (docs/protocols.md §3) for one virtual key: host→device reports go in
 * through `receive()`, device→host reports go out to every attached listener, the way hidraw hands
 * every input report to every process that opened the node (clients filter by CID).
 *
 * What it implements, and the choices where the spec leaves room:
 * - INIT on the broadcast CID allocates a fresh CID and answers on broadcast; INIT on an allocated
 *   CID resynchronises that channel (its message or transaction is dropped) and answers on it. INIT
 *   is answered even while another channel is busy: it is a single packet and touches no pending
 *   state, and refusing it would make a second program's discovery fail during a touch wait.
 * - PING echoes, WINK answers empty, LOCK and CBOR are INVALID_CMD (the capabilities say WINK only:
 *   no CBOR because we do not speak CTAP2, no NMSG because MSG is answered).
 * - MSG (0x03) passes the APDU to the applet and answers in ISO order, data ‖ SW, except U2F VERSION,
 *   which answers "U2F_V2" as the U2F applet of every real key of these dialects does. Vendor 0x70 does
 *   the same but answers SW1 SW2 first, then data (Nitrokey 3, §2.2), and an APDU shorter than
 *   4 bytes gets ERROR INVALID_LEN.
 * - One transaction at a time: while a message is being received or an APDU is being processed,
 *   requests on other CIDs get CHANNEL_BUSY, and a new init packet on the same CID gets INVALID_SEQ,
 *   which is then the answer of that transaction (the pending applet call is aborted and its late
 *   result dropped, so a host never sees two answers).
 * - CANCEL on the busy CID aborts the applet call through its AppletContext signal; CANCEL itself
 *   is never answered. The cancelled request answers with SW 6500 (what the Nitrokey 3 Secrets App
 *   is inferred to do, §2.10) unless the applet chose an answer of its own.
 * - KEEPALIVE UPNEEDED while the applet waits for a touch: immediately and then every
 *   `keepaliveIntervalMs` in the 'yubikey' dialect; never in the 'nitrokey3' dialect, because
 *   usbd-ctaphid sends keepalives only for CBOR requests (§2.10) and the host must cope with that.
 * - MSG_TIMEOUT when the continuation packets of a message stop for `msgTimeoutMs` (550 ms, like
 *   usbd-ctaphid), and when the whole message is not in after `messageDeadlineMs` (3000 ms, the U2F
 *   HID default transaction timeout): the spec wants a transaction finished in bounded time, so
 *   that a stalling client cannot lock the others out, and a trickle of continuations must not
 *   hold the device for 129 × 550 ms. A continuation with no message in progress is ignored (spec).
 * - After a message timed out, the opens it turned away with CHANNEL_BUSY go first for
 *   `TURN_AFTER_TIMEOUT_MS`: otherwise a client that starts a new message the moment its last one
 *   timed out always wins the race against clients that retry after a back-off.
 * - Channels belong to the HID open whose INIT allocated them (`connect()`; a socket connection
 *   is one) and are freed when it closes. An open keeps at most `MAX_CHANNELS_PER_OPEN`, all opens
 *   together `MAX_CHANNELS`; past that, INIT reuses the least recently used idle channel (of that
 *   open first), whose next use gets INVALID_CHANNEL, as on keys with a fixed channel table.
 *
 * `receive()` never throws on malformed input, and `close()` leaves no timer running.
 */
import { KeytapError, isKeytapError } from '../errors.js';
import {
  BROADCAST_CID,
  CTAPHID_REPORT_SIZE,
  Capability,
  CtapHidCommand,
  CtapHidError,
  FramingError,
  KeepaliveStatus,
  MessageAssembler,
  framePackets,
  maxPayload,
  parsePacket,
} from '../device/transport/ctaphid-frames.js';
import type { CtapHidPacket } from '../device/transport/ctaphid-frames.js';
import { decodeApdu } from '../device/transport/types.js';
import type { AppletContext, CardApplet } from './types.js';
import type { KeyDialect } from '../device/key-dialect.js';

/** The largest message each dialect accepts (§3.2: full framing for YubiKey, usbd-ctaphid's 3072 for NK3). */
export const MAX_MESSAGE: Record<KeyDialect, number> = { yubikey: maxPayload(CTAPHID_REPORT_SIZE), nitrokey3: 3072, feitian: maxPayload(CTAPHID_REPORT_SIZE) };

/** What the INIT answer reports as device version (major, minor, build). */
export const DEVICE_VERSION: Record<KeyDialect, readonly [number, number, number]> = {
  yubikey: [5, 4, 3],
  nitrokey3: [1, 6, 0],
  // No HyperFIDO INIT answer is published; any version will do for a client that does not look [inferred].
  feitian: [1, 0, 0],
};

/** usbd-ctaphid's gap between continuation packets before it gives up (§3.6). */
export const DEFAULT_MSG_TIMEOUT_MS = 550;
/** The whole message, first packet to last: U2FHID_TRANS_TIMEOUT (§3.6). 129 packets take ~130 ms over USB. */
export const DEFAULT_MESSAGE_DEADLINE_MS = 3000;
/** How long the opens turned away during a timed-out message may go first; longer than a client's busy back-off (≤ 500 ms). */
export const TURN_AFTER_TIMEOUT_MS = 1000;
/** Channels one open keeps: a client uses one or two; RIOT's CTAPHID keeps 8 in all. */
export const MAX_CHANNELS_PER_OPEN = 16;
/** Channels all opens together keep. */
export const MAX_CHANNELS = 64;
/** Below the spec's 100 ms with room for timer jitter on a loaded machine. */
export const DEFAULT_KEEPALIVE_INTERVAL_MS = 50;

/** SW the device answers when a request was cancelled and the applet gave no answer of its own. */
const SW_CANCELLED = Uint8Array.of(0x65, 0x00);
/** SW for an applet failure that has no better description (ISO "no precise diagnosis"). */
const SW_INTERNAL = Uint8Array.of(0x6f, 0x00);
const SW_WRONG_LENGTH = Uint8Array.of(0x67, 0x00);
/** U2F VERSION's answer (FIDO U2F raw messages §6.5): "U2F_V2", SW 9000. */
const U2F_VERSION_ANSWER = Uint8Array.of(...Buffer.from('U2F_V2', 'ascii'), 0x90, 0x00);

/** `00 03 00 00` with no data, in short or extended form (the U2F VERSION command). */
function isU2fVersion(apdu: Uint8Array): boolean {
  const command = decodeApdu(apdu);
  return command !== undefined && command.cla === 0x00 && command.ins === 0x03 && command.p1 === 0x00 && command.p2 === 0x00 && command.data.length === 0;
}

export interface CtapHidDeviceOptions {
  dialect: KeyDialect;
  applet: CardApplet;
  /** Waits for the user's touch: true when touched, false on the key's touch timeout; rejects when `signal` fires. */
  requestTouch: (signal: AbortSignal) => Promise<boolean>;
  /** Overrides the dialect's maximum message length. */
  maxMessage?: number;
  msgTimeoutMs?: number;
  messageDeadlineMs?: number;
  keepaliveIntervalMs?: number;
  deviceVersion?: readonly [number, number, number];
  /** Called on CTAPHID WINK (a real key blinks). */
  onWink?: () => void;
}

export type ReportListener = (report: Uint8Array) => void;

/** One HID open of the device: the reports it writes, and the end of it, which frees its channels. */
export interface HidOpen {
  receive(report: Uint8Array): void;
  close(): void;
}

/** Who allocated a channel: a `connect()`ed open, or the reports written through `receive()`. */
type Owner = object;

interface Assembly {
  assembler: MessageAssembler;
  owner: Owner;
  /** Restarted by each continuation packet. */
  gap: NodeJS.Timeout;
  /** Not restarted: the whole message must be in by then. */
  deadline: NodeJS.Timeout;
}

interface Transaction {
  cid: number;
  cmd: number;
  controller: AbortController;
  /** Set by CANCEL, so the answer can say "cancelled" even when the applet rejects. */
  cancelled: boolean;
  keepalive: NodeJS.Timeout | undefined;
}

export class CtapHidDevice {
  readonly dialect: KeyDialect;
  readonly maxMessage: number;
  readonly capabilities = Capability.WINK;
  private readonly applet: CardApplet;
  private readonly touch: (signal: AbortSignal) => Promise<boolean>;
  private readonly msgTimeoutMs: number;
  private readonly keepaliveIntervalMs: number;
  private readonly deviceVersion: readonly [number, number, number];
  private readonly onWink: (() => void) | undefined;
  private readonly messageDeadlineMs: number;
  private readonly listeners = new Set<ReportListener>();
  /** Allocated channels and their owners, least recently used first (a Map keeps insertion order). */
  private readonly channels = new Map<number, Owner>();
  /** The owner of reports written through `receive()`. */
  private readonly unowned: Owner = {};
  private nextCid = 1;
  private assembly: Assembly | undefined;
  private transaction: Transaction | undefined;
  /** Opens told CHANNEL_BUSY since the current message began. */
  private readonly turnedAway = new Set<Owner>();
  /** After a timed-out message: only these opens may start the next one, until `until` (Date.now()). */
  private turn: { owners: Set<Owner>; until: number } | undefined;
  private closed = false;

  constructor(options: CtapHidDeviceOptions) {
    this.dialect = options.dialect;
    this.applet = options.applet;
    this.touch = options.requestTouch;
    this.maxMessage = Math.min(options.maxMessage ?? MAX_MESSAGE[options.dialect], maxPayload(CTAPHID_REPORT_SIZE));
    this.msgTimeoutMs = options.msgTimeoutMs ?? DEFAULT_MSG_TIMEOUT_MS;
    this.messageDeadlineMs = options.messageDeadlineMs ?? DEFAULT_MESSAGE_DEADLINE_MS;
    this.keepaliveIntervalMs = options.keepaliveIntervalMs ?? DEFAULT_KEEPALIVE_INTERVAL_MS;
    this.deviceVersion = options.deviceVersion ?? DEVICE_VERSION[options.dialect];
    this.onWink = options.onWink;
  }

  /** Attaches a listener for device→host reports. Returns the function that detaches it. */
  onReport(listener: ReportListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * A new HID open: `listener` gets every device→host report (as every hidraw reader does), and
   * the channels its INITs allocate are freed, with their pending message or request, at `close()`.
   */
  connect(listener: ReportListener): HidOpen {
    const owner: Owner = {};
    const detach = this.onReport(listener);
    let open = true;
    return {
      receive: (report) => {
        if (open) this.receiveFrom(owner, report);
      },
      close: () => {
        if (!open) return;
        open = false;
        detach();
        this.release(owner);
      },
    };
  }

  /** Allocated channels, of every open. */
  get channelCount(): number {
    return this.channels.size;
  }

  /** True while a message is being received or an APDU is being processed. */
  get busy(): boolean {
    return this.assembly !== undefined || this.transaction !== undefined;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** One host→device report (64 bytes, no report id) of no particular open. Malformed input is answered or ignored, never thrown. */
  receive(report: Uint8Array): void {
    this.receiveFrom(this.unowned, report);
  }

  private receiveFrom(owner: Owner, report: Uint8Array): void {
    if (this.closed || report.length !== CTAPHID_REPORT_SIZE) return;
    try {
      // Copy: the caller may reuse its buffer, and the assembler keeps subarrays only until it copies.
      this.handle(owner, parsePacket(Uint8Array.from(report)));
    } catch (error) {
      // A bug here must not take the resident process down; the host will time out and retry.
      console.error('keytap virtual key: CTAPHID device error:', error);
    }
  }

  /** Unplugs the device: aborts the pending request, stops every timer, detaches the listeners. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.dropAssembly();
    this.endTransaction(new KeytapError('CANCELLED', 'The virtual key was unplugged.'));
    this.listeners.clear();
    this.channels.clear();
    this.turnedAway.clear();
    this.turn = undefined;
  }

  /** An open went away: its channels are freed, and what was pending on them is dropped unanswered. */
  private release(owner: Owner): void {
    for (const [cid, channelOwner] of [...this.channels]) if (channelOwner === owner) this.freeChannel(cid);
    this.turnedAway.delete(owner);
    this.turn?.owners.delete(owner);
  }

  private freeChannel(cid: number): void {
    this.channels.delete(cid);
    if (this.assembly?.assembler.cid === cid) this.dropAssembly();
    if (this.transaction?.cid === cid) this.endTransaction(new KeytapError('CANCELLED', 'The channel was freed.'));
  }

  /** Marks a channel as just used: the least recently used are reused first. */
  private touchChannel(cid: number): void {
    const owner = this.channels.get(cid);
    if (owner === undefined) return;
    this.channels.delete(cid);
    this.channels.set(cid, owner);
  }

  private handle(owner: Owner, packet: CtapHidPacket): void {
    if (packet.kind === 'cont') {
      this.handleContinuation(packet);
      return;
    }
    const { cid, cmd } = packet;
    if (cid === 0) return this.sendError(cid, CtapHidError.INVALID_CHANNEL);
    if (cmd === CtapHidCommand.INIT) return this.handleInit(owner, packet);
    if (cid === BROADCAST_CID || !this.channels.has(cid)) return this.sendError(cid, CtapHidError.INVALID_CHANNEL);
    this.touchChannel(cid);

    if (cmd === CtapHidCommand.CANCEL) {
      // No answer to CANCEL itself. It ends a message being received on that CID as well.
      if (this.assembly?.assembler.cid === cid) this.dropAssembly();
      const tx = this.transaction;
      if (tx?.cid === cid && !tx.cancelled) {
        tx.cancelled = true;
        this.stopKeepalive(tx);
        tx.controller.abort(new KeytapError('CANCELLED', 'The host cancelled the request (CTAPHID CANCEL).'));
      }
      return;
    }

    const ownCid = this.assembly?.assembler.cid ?? this.transaction?.cid;
    if (ownCid === cid) {
      // A new request in the middle of this channel's message or transaction: INVALID_SEQ is the
      // answer of that transaction, which ends here.
      this.dropAssembly();
      this.endTransaction(new KeytapError('CANCELLED', 'The host started a new request on the same channel.'));
      return this.sendError(cid, CtapHidError.INVALID_SEQ);
    }
    if (ownCid !== undefined || !this.mayStart(owner)) {
      this.turnedAway.add(owner);
      return this.sendError(cid, CtapHidError.CHANNEL_BUSY);
    }
    if (packet.length > this.maxMessage) return this.sendError(cid, CtapHidError.INVALID_LEN);

    this.turnedAway.clear();
    const assembler = new MessageAssembler(packet);
    if (assembler.complete) {
      this.dispatch(cid, cmd, assembler.payload);
      return;
    }
    const assembly: Assembly = {
      assembler,
      owner,
      gap: this.startMessageTimer(() => assembly, this.msgTimeoutMs),
      deadline: this.startMessageTimer(() => assembly, this.messageDeadlineMs),
    };
    this.assembly = assembly;
  }

  /** Whether `owner` may start a message now: after a timeout, those turned away go first (see the file comment). */
  private mayStart(owner: Owner): boolean {
    const turn = this.turn;
    if (turn === undefined) return true;
    if (Date.now() >= turn.until || turn.owners.size === 0) {
      this.turn = undefined;
      return true;
    }
    if (!turn.owners.has(owner)) return false;
    this.turn = undefined;
    return true;
  }

  private handleContinuation(packet: Extract<CtapHidPacket, { kind: 'cont' }>): void {
    const assembly = this.assembly;
    // Spec: a continuation packet with no message in progress (or from another channel, whose
    // init packet we refused as busy) is ignored.
    if (assembly === undefined || assembly.assembler.cid !== packet.cid) return;
    let complete: boolean;
    try {
      complete = assembly.assembler.add(packet);
    } catch (error) {
      if (!(error instanceof FramingError)) throw error;
      this.dropAssembly();
      return this.sendError(packet.cid, CtapHidError.INVALID_SEQ);
    }
    if (!complete) {
      assembly.gap.refresh();
      return;
    }
    this.dropAssembly();
    this.dispatch(assembly.assembler.cid, assembly.assembler.cmd, assembly.assembler.payload);
  }

  private handleInit(owner: Owner, packet: Extract<CtapHidPacket, { kind: 'init' }>): void {
    const { cid } = packet;
    if (cid !== BROADCAST_CID && !this.channels.has(cid)) return this.sendError(cid, CtapHidError.INVALID_CHANNEL);
    if (packet.length !== 8) return this.sendError(cid, CtapHidError.INVALID_LEN);
    let answerCid = cid;
    if (cid === BROADCAST_CID) {
      answerCid = this.allocateCid(owner);
    } else {
      this.touchChannel(cid);
      // Resync: whatever this channel was doing is forgotten, and nobody gets an answer for it.
      if (this.assembly?.assembler.cid === cid) this.dropAssembly();
      if (this.transaction?.cid === cid) this.endTransaction(new KeytapError('CANCELLED', 'The host resynchronised the channel.'));
    }
    const answer = new Uint8Array(17);
    answer.set(packet.data.subarray(0, 8), 0);
    new DataView(answer.buffer).setUint32(8, answerCid);
    answer[12] = 2; // CTAPHID protocol version
    answer.set(this.deviceVersion, 13);
    answer[16] = this.capabilities;
    this.send(cid, CtapHidCommand.INIT, answer);
  }

  private allocateCid(owner: Owner): number {
    const own = [...this.channels].filter(([, o]) => o === owner).map(([cid]) => cid);
    if (own.length >= MAX_CHANNELS_PER_OPEN) this.evictLeastRecentlyUsed(own);
    if (this.channels.size >= MAX_CHANNELS) this.evictLeastRecentlyUsed(this.channels.keys());
    // Sequential is enough: CIDs only need to be unique among the channels of this device.
    let cid = this.nextCid;
    while (cid === 0 || cid === BROADCAST_CID || this.channels.has(cid)) cid = (cid + 1) >>> 0;
    this.nextCid = (cid + 1) >>> 0;
    this.channels.set(cid, owner);
    return cid;
  }

  /** Frees the first of `cids` (least recently used first) that has no message or request in progress. */
  private evictLeastRecentlyUsed(cids: Iterable<number>): void {
    const busyCid = this.assembly?.assembler.cid ?? this.transaction?.cid;
    for (const cid of cids) {
      if (cid === busyCid) continue;
      this.freeChannel(cid);
      return;
    }
  }

  private startMessageTimer(assembly: () => Assembly, ms: number): NodeJS.Timeout {
    const timer = setTimeout(() => this.timeOutMessage(assembly()), ms);
    // The device must not keep a process alive on its own.
    timer.unref();
    return timer;
  }

  private timeOutMessage(assembly: Assembly): void {
    if (this.assembly !== assembly) return;
    this.dropAssembly();
    this.turnedAway.delete(assembly.owner);
    if (this.turnedAway.size > 0) this.turn = { owners: new Set(this.turnedAway), until: Date.now() + TURN_AFTER_TIMEOUT_MS };
    this.turnedAway.clear();
    this.sendError(assembly.assembler.cid, CtapHidError.MSG_TIMEOUT);
  }

  private dropAssembly(): void {
    if (this.assembly === undefined) return;
    clearTimeout(this.assembly.gap);
    clearTimeout(this.assembly.deadline);
    this.assembly = undefined;
  }

  private dispatch(cid: number, cmd: number, payload: Uint8Array): void {
    switch (cmd) {
      case CtapHidCommand.PING:
        return this.send(cid, cmd, payload);
      case CtapHidCommand.WINK:
        try {
          this.onWink?.();
        } catch (error) {
          console.error('keytap virtual key: wink handler failed:', error);
        }
        return this.send(cid, cmd, new Uint8Array());
      case CtapHidCommand.MSG:
        if (payload.length < 4) return this.send(cid, cmd, SW_WRONG_LENGTH);
        // Every dialect's real key is a U2F key, whose U2F applet answers VERSION; the virtual key's
        // applets know no U2F, and YKOATH would read INS 03 as SET CODE.
        if (isU2fVersion(payload)) return this.send(cid, cmd, U2F_VERSION_ANSWER);
        return this.startTransaction(cid, cmd, payload);
      case CtapHidCommand.VENDOR_SECRETS:
        // A Feitian key is a plain U2F key with a vendor application behind MSG: no Nitrokey command.
        if (this.dialect === 'feitian') return this.sendError(cid, CtapHidError.INVALID_CMD);
        if (payload.length < 4) return this.sendError(cid, CtapHidError.INVALID_LEN);
        return this.startTransaction(cid, cmd, payload);
      default:
        // LOCK, CBOR and everything we do not speak.
        return this.sendError(cid, CtapHidError.INVALID_CMD);
    }
  }

  private startTransaction(cid: number, cmd: number, apdu: Uint8Array): void {
    const tx: Transaction = { cid, cmd, controller: new AbortController(), cancelled: false, keepalive: undefined };
    this.transaction = tx;
    const context: AppletContext = {
      signal: tx.controller.signal,
      requestTouch: () => this.requestTouch(tx),
    };
    let result: Promise<Uint8Array>;
    try {
      result = this.applet.process(apdu, context);
    } catch (error) {
      result = Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    result.then(
      (response) => this.finishTransaction(tx, response),
      (error: unknown) => this.failTransaction(tx, error),
    );
  }

  private async requestTouch(tx: Transaction): Promise<boolean> {
    const signal = tx.controller.signal;
    if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new KeytapError('CANCELLED', 'Cancelled.');
    if (this.transaction === tx && this.dialect === 'yubikey') {
      const beat = () => this.send(tx.cid, CtapHidCommand.KEEPALIVE, Uint8Array.of(KeepaliveStatus.UPNEEDED));
      beat(); // the status changed: say so now, not one interval later
      tx.keepalive = setInterval(beat, this.keepaliveIntervalMs);
      tx.keepalive.unref();
    }
    try {
      return await this.touch(signal);
    } finally {
      this.stopKeepalive(tx);
    }
  }

  private stopKeepalive(tx: Transaction): void {
    if (tx.keepalive !== undefined) clearInterval(tx.keepalive);
    tx.keepalive = undefined;
  }

  private finishTransaction(tx: Transaction, response: Uint8Array): void {
    if (this.transaction !== tx) return; // resynced, superseded or unplugged: nobody waits for this
    this.transaction = undefined;
    this.stopKeepalive(tx);
    if (!(response instanceof Uint8Array) || response.length < 2) {
      console.error('keytap virtual key: the applet answered without a status word');
      return this.answerApdu(tx, SW_INTERNAL);
    }
    if (response.length > this.maxMessage) {
      console.error(`keytap virtual key: the applet answered ${response.length} bytes, more than one message carries`);
      return this.answerApdu(tx, SW_INTERNAL);
    }
    this.answerApdu(tx, response);
  }

  private failTransaction(tx: Transaction, error: unknown): void {
    if (this.transaction !== tx) return;
    this.transaction = undefined;
    this.stopKeepalive(tx);
    if (tx.cancelled || isKeytapError(error, 'CANCELLED')) return this.answerApdu(tx, SW_CANCELLED);
    console.error('keytap virtual key: the applet failed:', error);
    this.answerApdu(tx, SW_INTERNAL);
  }

  /** `response` is in ISO order (data ‖ SW1 SW2); vendor 0x70 puts the SW first. */
  private answerApdu(tx: Transaction, response: Uint8Array): void {
    if (tx.cmd !== CtapHidCommand.VENDOR_SECRETS) return this.send(tx.cid, tx.cmd, response);
    const swFirst = new Uint8Array(response.length);
    swFirst.set(response.subarray(response.length - 2), 0);
    swFirst.set(response.subarray(0, response.length - 2), 2);
    this.send(tx.cid, tx.cmd, swFirst);
  }

  /** Ends the current transaction without an answer (the caller sends one if the protocol wants it). */
  private endTransaction(reason: KeytapError): void {
    const tx = this.transaction;
    if (tx === undefined) return;
    this.transaction = undefined;
    this.stopKeepalive(tx);
    tx.controller.abort(reason);
  }

  private sendError(cid: number, code: number): void {
    this.send(cid, CtapHidCommand.ERROR, Uint8Array.of(code));
  }

  private send(cid: number, cmd: number, payload: Uint8Array): void {
    if (this.closed) return;
    for (const packet of framePackets(cid, cmd, payload, CTAPHID_REPORT_SIZE)) {
      for (const listener of [...this.listeners]) {
        try {
          // Each listener gets its own copy, as each hidraw reader gets its own buffer.
          listener(Uint8Array.from(packet));
        } catch (error) {
          console.error('keytap virtual key: report listener failed:', error);
        }
      }
    }
  }
}
