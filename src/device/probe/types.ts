/**
 * What `keytap doctor --probe` learns about one device, as plain data (the report file is this,
 * as JSON). Every question the probe asks has an outcome: answered (with the status word where
 * there is one), refused with a CTAPHID error, not answered in time, garbled or failed, or not
 * asked and why. Nothing here holds a secret: the OATH SELECT answer's salt and challenge are
 * reduced to "a password is set", and serials are only filled in when the caller asked for them.
 */
import type { KeyDialect } from '../key-dialect.js';

export type ProbeOutcome =
  /** The device answered; `sw` is the status word (4 hex digits) where the answer has one. */
  | { status: 'answered'; sw?: string | undefined }
  /** A CTAPHID ERROR packet (docs/protocols.md §3.5), e.g. INVALID_CMD: the device does not offer this. */
  | { status: 'ctaphid-error'; error: string; code: number }
  /** Nothing came back within `waitedMs`. */
  | { status: 'no-answer'; waitedMs: number }
  /** The answer could not be read (garbled framing, a short answer) or the link failed; `error` is the KeytapError code. */
  | { status: 'failed'; error: string; message: string }
  /** Not sent: no CTAPHID channel (INIT failed, or the device could not be opened), the device went away, or no card is in the reader. */
  | { status: 'not-asked'; reason: NotAskedReason };

export type NotAskedReason = 'no-channel' | 'device-gone' | 'no-card';

export interface CapabilityFlags {
  /** The byte as sent. */
  raw: number;
  wink: boolean;
  lock: boolean;
  cbor: boolean;
  /** NMSG: the device says it does NOT take MSG (CTAP1/U2F). */
  nmsg: boolean;
}

export interface InitProbe {
  outcome: ProbeOutcome;
  protocolVersion?: number | undefined;
  /** "major.minor.build" as INIT reports it. */
  deviceVersion?: string | undefined;
  capabilities?: CapabilityFlags | undefined;
}

export interface U2fVersionProbe {
  outcome: ProbeOutcome;
  /** "U2F_V2" on every U2F key. */
  version?: string | undefined;
}

export interface GetInfoProbe {
  outcome: ProbeOutcome;
  /** The CTAP2 status byte (0 = OK). */
  ctapStatus?: number | undefined;
  versions?: string[] | undefined;
  extensions?: string[] | undefined;
  /** The model's AAGUID (32 hex digits): the same for every key of a model, no serial. */
  aaguid?: string | undefined;
  options?: Record<string, boolean> | undefined;
  /** Why the CBOR could not be read, when it could not. */
  unreadable?: string | undefined;
}

/** The OATH SELECT answer, reduced to what is not secret. */
export interface OathProbe {
  outcome: ProbeOutcome;
  /** Applet version "major.minor.patch". */
  version?: string | undefined;
  /** Which OATH dialect the answer is (oath/dialect.ts `detectDialect`). */
  dialect?: 'yubikey' | 'nitrokey3' | undefined;
  /** YKOATH: a challenge (tag 74) means an access password is set. */
  passwordSet?: boolean | undefined;
  /** Nitrokey 3: a PIN counter (tag 82) means a PIN is set. */
  pinSet?: boolean | undefined;
  pinAttemptsLeft?: number | undefined;
  /** Nitrokey 3 serial (tag 8F), only when serials were asked for. */
  serial?: string | undefined;
  /** Why the answer's TLVs could not be read, when they could not. */
  unreadable?: string | undefined;
}

export interface FeitianProbe {
  /** SELECT of the Feitian HOTP application over MSG. */
  outcome: ProbeOutcome;
  /** CHECK (E6, no touch), only after SELECT answered 9000. */
  check?: { outcome: ProbeOutcome; programmed?: boolean | undefined; serial?: string | undefined } | undefined;
}

export interface ManagementProbe {
  /** SELECT of Yubico's Management application (docs/protocols.md §5.6). */
  outcome: ProbeOutcome;
  /** The firmware version it answers, as text ("5.4.3"). */
  version?: string | undefined;
  /** The YubiKey serial from READ CONFIG, only when serials were asked for. */
  serial?: string | undefined;
}

/** The protocols keytap can use with what answered. */
export type SpokenProtocol = 'oath-over-ctaphid' | 'feitian-hotp' | 'oath-over-ccid';

export interface HidInterface {
  interface: number;
  usagePage?: number | undefined;
  usage?: number | undefined;
}

export interface HidDeviceProbe extends HidProbeAnswers {
  kind: 'hid' | 'virtual';
  /** The known key's name, the product string, or the virtual key's name. */
  name: string;
  /** 4 hex digits each; absent for a virtual key. */
  vendorId?: string | undefined;
  productId?: string | undefined;
  manufacturer?: string | undefined;
  product?: string | undefined;
  /** The USB serial string, only when serials were asked for. */
  usbSerial?: string | undefined;
  path: string;
  /** The device's HID interfaces as the OS lists them. */
  interfaces: HidInterface[];
  /** What keytap's table of known keys calls it, if it is in it. */
  knownAs?: string | undefined;
  /** A virtual key's announced dialect. */
  announcedDialect?: KeyDialect | undefined;
}

/** What a FIDO HID device answered, question by question. */
export interface HidProbeAnswers {
  init: InitProbe;
  u2fVersion: U2fVersionProbe;
  ctap2GetInfo: GetInfoProbe;
  /** OATH SELECT over CTAPHID vendor command 0x70 (Nitrokey 3 Secrets App). */
  oathOverCtapHid: OathProbe;
  feitian: FeitianProbe;
  speaks: SpokenProtocol[];
}

export interface PcscReaderProbe {
  kind: 'pcsc';
  /** The reader name; a USB serial in it ("(…)", as pcsc-lite adds one) is left out unless serials were asked for. */
  reader: string;
  cardPresent: boolean;
  /** The card's ATR in hex. */
  atr?: string | undefined;
  oath: OathProbe;
  management: ManagementProbe;
  speaks: SpokenProtocol[];
}

export type DeviceProbe = HidDeviceProbe | PcscReaderProbe;

export interface ProbeOptions {
  /** Put serial numbers (USB, YubiKey, Nitrokey 3, Feitian token) into the results. Default false. */
  includeSerials?: boolean | undefined;
  /** How long each question may take. Default 1.5 s. */
  questionTimeoutMs?: number | undefined;
  signal?: AbortSignal | undefined;
}

/** Each question answers at once on a working key (no question here needs a touch). */
export const PROBE_QUESTION_TIMEOUT_MS = 1_500;

export function hex4(n: number): string {
  return n.toString(16).padStart(4, '0');
}
