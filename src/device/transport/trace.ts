/**
 * The traffic log and the recorder, at the one transport seam: the code that opens keys
 * (open.ts) wraps every HID link and APDU transport it opens with the two functions here.
 * Modelled on python-fido2's traffic log level ("SEND:" / "RECV:" per packet) and LedgerHQ
 * hw-transport-mocker's recorder (a decorated transport that writes each exchange).
 *
 * - `KEYTAP_TRACE=apdu`: one line per command APDU (name, CLA INS P1 P2, Lc, data) and per response
 *   (status word, length, data), to stderr.
 * - `KEYTAP_TRACE=hid`: one line per 64-byte report (direction, channel, init command or
 *   continuation sequence, length). `apdu,hid` gives both.
 * - `KEYTAP_RECORD=FILE`: the session's exchanges as a transcript that test/support/replay-transport.ts
 *   replays (`=> command`, `<= data ‖ SW`, `#` comments).
 *
 * Bytes that are key material, a password or PIN, or a code — command data of PUT, SET CODE,
 * VALIDATE, the Nitrokey 3 PIN and credential commands, and every response that can carry a code
 * or an HMAC (CALCULATE, CALCULATE ALL, VALIDATE, SET CODE, SEND REMAINING continuing one of them)
 * — are written as `[redacted]` unless `KEYTAP_TRACE_UNSAFE=1`. An instruction not in the table
 * below is redacted both ways: the safe default for something we do not know.
 *
 * With every variable unset the wrappers return the object they were given: tracing costs nothing
 * when it is off.
 */
import { writeFileAtomic } from '../../util/atomic-file.js';
import { Ins, Sw } from '../oath/constants.js';
import { FeitianIns } from '../feitian/protocol.js';
import { CONT_HEADER, CtapHidCommand, INIT_HEADER } from './ctaphid-frames.js';
import type { ApduResponse, ApduTransport, CommandApdu, HidLink, TransmitOptions } from './types.js';
import { decodeApdu } from './types.js';

export interface TraceOptions {
  /** Log each APDU and response. */
  apdu: boolean;
  /** Log each HID report. */
  hid: boolean;
  /** Show redacted bytes too (KEYTAP_TRACE_UNSAFE=1). */
  unsafe: boolean;
  /** Write a transcript of each session to this file when its transport closes. */
  record?: string | undefined;
  /** Where log lines go; stderr when not given. */
  log?: ((line: string) => void) | undefined;
}

/** Reads KEYTAP_TRACE, KEYTAP_TRACE_UNSAFE and KEYTAP_RECORD. Unknown words in KEYTAP_TRACE are ignored. */
export function traceOptionsFromEnv(env: Readonly<Record<string, string | undefined>>): TraceOptions {
  const words = new Set(
    (env.KEYTAP_TRACE ?? '')
      .split(',')
      .map((word) => word.trim().toLowerCase())
      .filter(Boolean),
  );
  const record = env.KEYTAP_RECORD?.trim();
  return {
    apdu: words.has('apdu'),
    hid: words.has('hid'),
    unsafe: env.KEYTAP_TRACE_UNSAFE === '1',
    record: record ? record : undefined,
  };
}

export const REDACTED = '[redacted]';

/** decodeApdu, tolerant of malformed input since a trace must never throw: whatever follows the header counts as data. */
export function parseCommandApdu(apdu: Uint8Array): CommandApdu {
  const decoded = decodeApdu(apdu);
  if (decoded) return decoded;
  const [cla = 0, ins = 0, p1 = 0, p2 = 0] = apdu;
  return { cla, ins, p1, p2, lc: undefined, data: apdu.subarray(4), le: undefined };
}

interface InstructionPolicy {
  name: string;
  /** The command's data is secret: a key, password, PIN or code. */
  hideCommand: boolean;
  /** The response can carry a code, an HMAC or a stored password. */
  hideResponse: boolean;
}

const show = (name: string): InstructionPolicy => ({ name, hideCommand: false, hideResponse: false });

/** Every instruction keytap sends (oath/constants.ts), and what of it is secret. */
const POLICIES = new Map<number, InstructionPolicy>([
  [Ins.PUT, { name: 'PUT', hideCommand: true, hideResponse: false }],
  [Ins.DELETE, show('DELETE')],
  // The response is the key's HMAC over our challenge with the new access key.
  [Ins.SET_CODE, { name: 'SET CODE', hideCommand: true, hideResponse: true }],
  [Ins.RESET, show('RESET')],
  [Ins.RENAME, show('RENAME')],
  [Ins.LIST, show('LIST')],
  [Ins.CALCULATE, { name: 'CALCULATE', hideCommand: false, hideResponse: true }],
  [Ins.VALIDATE, { name: 'VALIDATE', hideCommand: true, hideResponse: true }],
  [Ins.VERIFY_CODE, { name: 'VERIFY CODE', hideCommand: true, hideResponse: false }],
  [Ins.VERIFY_PIN, { name: 'VERIFY PIN', hideCommand: true, hideResponse: false }],
  [Ins.CHANGE_PIN, { name: 'CHANGE PIN', hideCommand: true, hideResponse: false }],
  [Ins.SET_PIN, { name: 'SET PIN', hideCommand: true, hideResponse: false }],
  [Ins.GET_CREDENTIAL, { name: 'GET CREDENTIAL', hideCommand: false, hideResponse: true }],
  [Ins.UPDATE_CREDENTIAL, { name: 'UPDATE CREDENTIAL', hideCommand: true, hideResponse: false }],
  // Feitian HOTP keys (feitian/protocol.ts; no OATH instruction uses these bytes): CHECK's answer is
  // the token serial and ERASE carries nothing, so a transcript of them is what an owner can send
  // us; PROGRAM carries the seed.
  [FeitianIns.CHECK, show('FEITIAN CHECK')],
  [FeitianIns.ERASE, show('FEITIAN ERASE')],
  [FeitianIns.PROGRAM, { name: 'FEITIAN PROGRAM', hideCommand: true, hideResponse: false }],
]);

function policyFor(apdu: CommandApdu): InstructionPolicy {
  // SELECT and CALCULATE ALL share INS A4; P1 tells them apart.
  if (apdu.ins === Ins.SELECT && apdu.p1 === 0x04) return show('SELECT');
  if (apdu.ins === Ins.CALCULATE_ALL && apdu.p1 === 0x00) return { name: 'CALCULATE ALL', hideCommand: false, hideResponse: true };
  return POLICIES.get(apdu.ins) ?? { name: `INS ${hexByte(apdu.ins).toUpperCase()}`, hideCommand: true, hideResponse: true };
}

/** What to hide of one exchange; `unsafe` hides nothing. */
export interface ExchangeDecision {
  name: string;
  hideCommand: boolean;
  hideResponse: boolean;
}

/**
 * Decides, exchange by exchange, what is secret. It keeps one piece of state: whether the answer
 * being continued by SEND REMAINING was secret, since that continuation is more of the same answer.
 */
export class TrafficRedactor {
  private readonly unsafe: boolean;
  /** Undefined while no answer is waiting to be continued. */
  private continuationHidden: boolean | undefined;

  constructor(unsafe: boolean) {
    this.unsafe = unsafe;
  }

  command(apdu: CommandApdu): ExchangeDecision {
    let policy = policyFor(apdu);
    if (apdu.ins === Ins.SEND_REMAINING) {
      // A SEND REMAINING we cannot tie to an answer continues something unknown: hide it.
      policy = { name: 'SEND REMAINING', hideCommand: false, hideResponse: this.continuationHidden ?? true };
    }
    if (this.unsafe) return { name: policy.name, hideCommand: false, hideResponse: false };
    return policy;
  }

  /** Call with each response's status word, after `command` for the same exchange. */
  answered(decision: ExchangeDecision, sw: number): void {
    this.continuationHidden = sw >> 8 === Sw.MORE_DATA_SW1 ? decision.hideResponse : undefined;
  }
}

function hexByte(byte: number): string {
  return byte.toString(16).padStart(2, '0');
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

function swHex(sw: number): string {
  return sw.toString(16).toUpperCase().padStart(4, '0');
}

/** `SELECT 00 A4 04 00 Lc=7 a0000005272101` */
export function formatCommand(apdu: CommandApdu, decision: ExchangeDecision): string {
  const header = [apdu.cla, apdu.ins, apdu.p1, apdu.p2].map((b) => hexByte(b).toUpperCase()).join(' ');
  const parts = [decision.name, header];
  if (apdu.lc !== undefined) parts.push(`Lc=${apdu.lc}`);
  if (apdu.le !== undefined) parts.push(`Le=${apdu.le}`);
  if (apdu.data.length > 0) parts.push(decision.hideCommand ? REDACTED : hex(apdu.data));
  return parts.join(' ');
}

/** `9000 len=15 790305…` */
export function formatResponse(response: ApduResponse, decision: ExchangeDecision): string {
  const parts = [swHex(response.sw), `len=${response.data.length}`];
  if (response.data.length > 0) parts.push(decision.hideResponse ? REDACTED : hex(response.data));
  return parts.join(' ');
}

function defaultLog(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** What went wrong, without the message: a trace line must not depend on every message being clean. */
function errorLabel(error: unknown): string {
  if (error && typeof error === 'object' && 'code' in error && typeof error.code === 'string') return error.code;
  return error instanceof Error ? error.name : 'error';
}

/**
 * The transcripts of this process, by file. Every close rewrites the whole file, so a process that
 * opens several sessions (the tray) keeps all of them, one after the other.
 */
const recordings = new Map<string, string[]>();

/**
 * The recording is written atomically (0600, whole or not at all) when the transport closes, rather
 * than appended as it goes: a transcript is meant to become a test fixture, and a half-written one
 * would fail in confusing ways. A session that dies before closing is what KEYTAP_TRACE, written as
 * it happens, is for.
 */
class Recorder {
  private readonly file: string;
  private readonly lines: string[];

  constructor(file: string, description: string, unsafe: boolean) {
    this.file = file;
    let lines = recordings.get(file);
    if (!lines) {
      lines = [
        '# keytap transcript (KEYTAP_RECORD), read by test/support/replay-transport.ts:',
        '# "=> command APDU", then "<= response data followed by SW1 SW2", in hex.',
        unsafe
          ? '# Recorded with KEYTAP_TRACE_UNSAFE=1: it holds the secrets and codes that went over the wire.'
          : '# Exchanges that carried secrets or codes are comments with [redacted] and do not replay; record with KEYTAP_TRACE_UNSAFE=1 for a fixture that replays.',
      ];
      recordings.set(file, lines);
    }
    this.lines = lines;
    this.lines.push(`# session: ${description}, ${new Date().toISOString()}`);
  }

  exchange(command: Uint8Array, response: ApduResponse, decision: ExchangeDecision): void {
    const sw = swHex(response.sw).toLowerCase();
    const commandHidden = decision.hideCommand && parseCommandApdu(command).data.length > 0;
    const responseHidden = decision.hideResponse && response.data.length > 0;
    if (!commandHidden && !responseHidden) {
      this.lines.push(`=> ${hex(command)}`, `<= ${hex(response.data)}${sw}`);
      return;
    }
    // Both lines become comments: a transcript with only half an exchange would not parse.
    const commandText = commandHidden ? `${hex(command.subarray(0, 4))} ${REDACTED}` : hex(command);
    const responseText = responseHidden ? `${REDACTED} ${sw}` : `${hex(response.data)}${sw}`;
    this.lines.push(`# ${decision.name}, redacted:`, `# => ${commandText}`, `# <= ${responseText}`);
  }

  failed(command: Uint8Array, error: unknown): void {
    this.lines.push(`# => ${hex(command.subarray(0, 4))} …`, `# <= no answer: ${errorLabel(error)}`);
  }

  async save(): Promise<void> {
    await writeFileAtomic(this.file, `${this.lines.join('\n')}\n`, { mode: 0o600, overwrite: true });
  }
}

class TracedApduTransport implements ApduTransport {
  readonly description: string;
  private readonly inner: ApduTransport;
  private readonly redactor: TrafficRedactor;
  /** Where lines go: the APDU log when it is on, and a recording that could not be written. */
  private readonly sink: (line: string) => void;
  /** Set when the APDU log is on. */
  private readonly log: ((line: string) => void) | undefined;
  private readonly recorder: Recorder | undefined;

  constructor(inner: ApduTransport, options: TraceOptions) {
    this.inner = inner;
    this.description = inner.description;
    this.redactor = new TrafficRedactor(options.unsafe);
    this.sink = options.log ?? defaultLog;
    this.log = options.apdu ? this.sink : undefined;
    this.recorder = options.record ? new Recorder(options.record, inner.description, options.unsafe) : undefined;
  }

  async transmit(apdu: Uint8Array, options?: TransmitOptions): Promise<ApduResponse> {
    const command = parseCommandApdu(apdu);
    const decision = this.redactor.command(command);
    this.log?.(`keytap apdu => ${formatCommand(command, decision)}`);
    let response: ApduResponse;
    try {
      response = await this.inner.transmit(apdu, options);
    } catch (error) {
      this.log?.(`keytap apdu <= no answer: ${errorLabel(error)}`);
      this.recorder?.failed(apdu, error);
      throw error;
    }
    this.redactor.answered(decision, response.sw);
    this.log?.(`keytap apdu <= ${formatResponse(response, decision)}`);
    this.recorder?.exchange(apdu, response, decision);
    return response;
  }

  async close(): Promise<void> {
    try {
      await this.inner.close();
    } finally {
      // A recording that cannot be written must not turn closing the key into a failure.
      await this.recorder?.save().catch((error: unknown) => this.sink(`keytap: the recording was not written: ${errorLabel(error)}`));
    }
  }
}

/** Wraps `transport` so that its APDUs are logged and/or recorded; returns it unchanged when neither is asked for. */
export function traceApduTransport(transport: ApduTransport, options: TraceOptions): ApduTransport {
  if (!options.apdu && !options.record) return transport;
  return new TracedApduTransport(transport, options);
}

/** CTAPHID commands whose payload never holds a secret: channel set-up, keepalives, errors. */
const PLAIN_HID_COMMANDS: ReadonlySet<number> = new Set([
  CtapHidCommand.INIT,
  CtapHidCommand.PING,
  CtapHidCommand.WINK,
  CtapHidCommand.LOCK,
  CtapHidCommand.CANCEL,
  CtapHidCommand.KEEPALIVE,
  CtapHidCommand.ERROR,
]);

const HID_COMMAND_NAMES = new Map<number, string>(Object.entries(CtapHidCommand).map(([name, code]) => [code, name]));

/** A message being framed in one direction on one channel. */
interface HidMessage {
  /** Message bytes still to come in continuation packets. */
  remaining: number;
  hidden: boolean;
}

/**
 * Formats reports at the HID boundary. Redaction is decided per message, not per report: the init
 * packet of a vendor 0x70 message carries the APDU header (outgoing) or the status word (incoming),
 * which is enough to know whether the message is secret, and its continuations inherit that.
 * CTAP1/CTAP2 messages (MSG, CBOR) of other programs on the same device are hidden: keytap cannot
 * know what they carry.
 */
export class HidTraceFormatter {
  private readonly unsafe: boolean;
  private readonly outgoing = new Map<number, HidMessage>();
  private readonly incoming = new Map<number, HidMessage>();
  /** Per channel: the redactor of its APDU exchanges and the decision for the answer awaited. */
  private readonly channels = new Map<number, { redactor: TrafficRedactor; awaiting: ExchangeDecision | undefined }>();

  constructor(unsafe: boolean) {
    this.unsafe = unsafe;
  }

  format(direction: 'out' | 'in', report: Uint8Array): string {
    const arrow = direction === 'out' ? '=>' : '<=';
    if (report.length < CONT_HEADER) return `keytap hid ${arrow} short report len=${report.length}`;
    const cid = ((report[0]! << 24) | (report[1]! << 16) | (report[2]! << 8) | report[3]!) >>> 0;
    const prefix = `keytap hid ${arrow} cid=${cid.toString(16).padStart(8, '0')}`;
    const messages = direction === 'out' ? this.outgoing : this.incoming;
    const type = report[4]!;

    if ((type & 0x80) === 0) {
      const message = messages.get(cid);
      const part = report.subarray(CONT_HEADER, CONT_HEADER + Math.min(message?.remaining ?? 0, report.length - CONT_HEADER));
      if (message) {
        message.remaining -= part.length;
        if (message.remaining <= 0) messages.delete(cid);
      }
      // A continuation of a message whose start we did not see: nothing tells what it carries.
      const hidden = message ? message.hidden : !this.unsafe;
      const body = hidden ? REDACTED : part.length > 0 ? hex(part) : '';
      return `${prefix} cont seq=${type} ${body}`.trimEnd();
    }

    if (report.length < INIT_HEADER) return `${prefix} short report len=${report.length}`;
    const cmd = type & 0x7f;
    const length = (report[5]! << 8) | report[6]!;
    const first = report.subarray(INIT_HEADER, INIT_HEADER + Math.min(length, report.length - INIT_HEADER));
    const name = HID_COMMAND_NAMES.get(cmd) ?? `0x${hexByte(cmd)}`;
    let hidden = !this.unsafe && !PLAIN_HID_COMMANDS.has(cmd);
    /** Leading bytes shown even when the message is hidden. */
    let shown = 0;
    if (cmd === CtapHidCommand.VENDOR_SECRETS) ({ hidden, shown } = this.vendorMessage(direction, cid, first));
    if (length > first.length) messages.set(cid, { remaining: length - first.length, hidden });
    else messages.delete(cid);
    const body = hidden ? [hex(first.subarray(0, shown)), first.length > shown ? REDACTED : ''].filter(Boolean).join(' ') : hex(first);
    return `${prefix} init ${name} len=${length} ${body}`.trimEnd();
  }

  /** Vendor 0x70: APDU header or SW shown, the rest as the APDU-level decision says. */
  private vendorMessage(direction: 'out' | 'in', cid: number, first: Uint8Array): { hidden: boolean; shown: number } {
    let channel = this.channels.get(cid);
    if (!channel) {
      channel = { redactor: new TrafficRedactor(this.unsafe), awaiting: undefined };
      this.channels.set(cid, channel);
    }
    if (direction === 'out') {
      const decision = channel.redactor.command(parseCommandApdu(first));
      channel.awaiting = decision;
      return { hidden: decision.hideCommand, shown: Math.min(4, first.length) };
    }
    // An answer to no request of ours (another program on this channel): hide it.
    const decision = channel.awaiting ?? { name: 'unknown', hideCommand: !this.unsafe, hideResponse: !this.unsafe };
    channel.awaiting = undefined;
    if (first.length >= 2) channel.redactor.answered(decision, (first[0]! << 8) | first[1]!);
    return { hidden: decision.hideResponse, shown: Math.min(2, first.length) };
  }
}

class TracedHidLink implements HidLink {
  readonly reportSize: number;
  private readonly inner: HidLink;
  private readonly formatter: HidTraceFormatter;
  private readonly log: (line: string) => void;

  constructor(inner: HidLink, options: TraceOptions) {
    this.inner = inner;
    this.reportSize = inner.reportSize;
    this.formatter = new HidTraceFormatter(options.unsafe);
    this.log = options.log ?? defaultLog;
  }

  async write(report: Uint8Array): Promise<void> {
    this.log(this.formatter.format('out', report));
    await this.inner.write(report);
  }

  async read(timeoutMs: number, signal?: AbortSignal): Promise<Uint8Array | undefined> {
    const report = await this.inner.read(timeoutMs, signal);
    if (report !== undefined) this.log(this.formatter.format('in', report));
    return report;
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** Wraps `link` so that its reports are logged; returns it unchanged unless `hid` tracing is on. */
export function traceHidLink(link: HidLink, options: TraceOptions): HidLink {
  if (!options.hid) return link;
  return new TracedHidLink(link, options);
}
