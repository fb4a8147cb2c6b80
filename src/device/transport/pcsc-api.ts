/**
 * The system's own PC/SC API through koffi (FFI, prebuilt natives for every platform, no compiler):
 * libpcsclite.so.1 (pcsc-lite, Linux and the BSDs), winscard.dll (Windows), PCSC.framework (macOS).
 * Every declaration keytap makes against those libraries is in this module, so it can be read
 * against the headers in one place. What it knows of keytap is the UNSUPPORTED error for a
 * library that cannot be loaded; what a return code means for the user is transport/pcsc.ts's.
 *
 * Where each fact comes from:
 * - pcsc-lite 1.9.9 `PCSC/wintypes.h` (/usr/include/PCSC on Debian): outside `__APPLE__`,
 *   `typedef unsigned long DWORD; typedef long LONG;` (64-bit on 64-bit Linux). `PCSC/pcsclite.h`:
 *   `typedef LONG SCARDCONTEXT; typedef LONG SCARDHANDLE;`, `MAX_ATR_SIZE 33`, SCARD_READERSTATE
 *   `{const char *szReader; void *pvUserData; DWORD dwCurrentState, dwEventState, cbAtr;
 *   unsigned char rgbAtr[MAX_ATR_SIZE];}` with natural alignment, SCARD_IO_REQUEST `{unsigned long
 *   dwProtocol, cbPciLength;}`, the SCARD_* return codes and flags below.
 * - The same headers under `__APPLE__`, which follow Apple's PCSC.framework: `typedef uint32_t DWORD;
 *   typedef int32_t LONG;` and `#pragma pack(1)` around SCARD_READERSTATE and SCARD_IO_REQUEST;
 *   pcsc-rust's pcsc-sys (`repr(C, packed)` on macOS, DWORD u32, LONG i32, MAX_ATR_SIZE 33) agrees.
 * - Windows SDK `winscard.h` / `winsmcrd.h` (as mirrored by pcsc-rust's pcsc-sys and pcsc-sharp):
 *   DWORD and LONG are 32 bits (LLP64), `typedef ULONG_PTR SCARDCONTEXT, SCARDHANDLE;`,
 *   SCARD_READERSTATEA's `rgbAtr[36]`, WINAPI (__stdcall on x86); the functions that take or give
 *   strings exist as A (ANSI) and W variants: SCardListReadersA, SCardGetStatusChangeA,
 *   SCardConnectA, SCardStatusA.
 *
 * Return codes are LONG: negative on 32-bit LONG platforms, positive on 64-bit Linux. They are
 * compared as unsigned 32-bit values (`>>> 0`) everywhere.
 *
 * Blocking calls run with koffi's async call (a libuv worker thread), so the event loop never waits
 * for pcscd or a card; only SCardCancel, which exists to be called while another thread is blocked,
 * is synchronous. koffi and the library are loaded on first use.
 */
import { KeytapError } from '../../errors.js';
import { importKoffi } from '../../util/koffi.js';

/** SCARD_S_SUCCESS and the SCARD_E_* / SCARD_F_* / SCARD_W_* codes (pcsclite.h, winerror.h). */
export const SCARD = {
  S_SUCCESS: 0x00000000,
  F_INTERNAL_ERROR: 0x80100001,
  E_CANCELLED: 0x80100002,
  E_INVALID_HANDLE: 0x80100003,
  E_INVALID_PARAMETER: 0x80100004,
  E_INVALID_TARGET: 0x80100005,
  E_NO_MEMORY: 0x80100006,
  F_WAITED_TOO_LONG: 0x80100007,
  E_INSUFFICIENT_BUFFER: 0x80100008,
  E_UNKNOWN_READER: 0x80100009,
  E_TIMEOUT: 0x8010000a,
  E_SHARING_VIOLATION: 0x8010000b,
  E_NO_SMARTCARD: 0x8010000c,
  E_UNKNOWN_CARD: 0x8010000d,
  E_CANT_DISPOSE: 0x8010000e,
  E_PROTO_MISMATCH: 0x8010000f,
  E_NOT_READY: 0x80100010,
  E_INVALID_VALUE: 0x80100011,
  E_SYSTEM_CANCELLED: 0x80100012,
  F_COMM_ERROR: 0x80100013,
  F_UNKNOWN_ERROR: 0x80100014,
  E_INVALID_ATR: 0x80100015,
  E_NOT_TRANSACTED: 0x80100016,
  E_READER_UNAVAILABLE: 0x80100017,
  P_SHUTDOWN: 0x80100018,
  E_PCI_TOO_SMALL: 0x80100019,
  E_READER_UNSUPPORTED: 0x8010001a,
  E_DUPLICATE_READER: 0x8010001b,
  E_CARD_UNSUPPORTED: 0x8010001c,
  E_NO_SERVICE: 0x8010001d,
  E_SERVICE_STOPPED: 0x8010001e,
  /** pcsc-lite gives SCARD_E_UNSUPPORTED_FEATURE this value too; Windows has it at 0x80100022. */
  E_UNEXPECTED: 0x8010001f,
  E_UNSUPPORTED_FEATURE: 0x80100022,
  E_NO_READERS_AVAILABLE: 0x8010002e,
  E_COMM_DATA_LOST: 0x8010002f,
  E_SERVER_TOO_BUSY: 0x80100031,
  W_UNSUPPORTED_CARD: 0x80100065,
  W_UNRESPONSIVE_CARD: 0x80100066,
  W_UNPOWERED_CARD: 0x80100067,
  W_RESET_CARD: 0x80100068,
  W_REMOVED_CARD: 0x80100069,
  /** pcsc-lite's client answers this too when pcscd goes away in the middle of a GetStatusChange. */
  W_SECURITY_VIOLATION: 0x8010006a,
  W_WRONG_CHV: 0x8010006b,
  W_CHV_BLOCKED: 0x8010006c,
  W_EOF: 0x8010006d,
  W_CANCELLED_BY_USER: 0x8010006e,
  W_CARD_NOT_AUTHENTICATED: 0x8010006f,
} as const;

export type ScardCodeName = keyof typeof SCARD;

const NAMES = new Map<number, string>(Object.entries(SCARD).map(([name, value]) => [value, `SCARD_${name}`]));

/** "SCARD_W_REMOVED_CARD" for a known return code, "0x8010ABCD" otherwise. */
export function scardSymbol(rc: number): string {
  const code = rc >>> 0;
  return NAMES.get(code) ?? `0x${code.toString(16).toUpperCase().padStart(8, '0')}`;
}

/** dwScope: pcsc-lite ignores it; on Windows USER is the one for an ordinary program. */
export const SCARD_SCOPE_USER = 0x0000;
export const SCARD_SHARE_EXCLUSIVE = 0x0001;
export const SCARD_PROTOCOL_T0 = 0x0001;
export const SCARD_PROTOCOL_T1 = 0x0002;
export const SCARD_LEAVE_CARD = 0x0000;
export const INFINITE = 0xffffffff;

/** dwCurrentState / dwEventState bits of SCARD_READERSTATE (the same everywhere). */
export const SCARD_STATE = {
  UNAWARE: 0x0000,
  IGNORE: 0x0001,
  CHANGED: 0x0002,
  UNKNOWN: 0x0004,
  UNAVAILABLE: 0x0008,
  EMPTY: 0x0010,
  PRESENT: 0x0020,
  ATRMATCH: 0x0040,
  EXCLUSIVE: 0x0080,
  INUSE: 0x0100,
  MUTE: 0x0200,
  UNPOWERED: 0x0400,
} as const;

/** The special reader name that SCardGetStatusChange reports reader arrival and removal on. */
export const PNP_NOTIFICATION = '\\\\?PnP?\\Notification';

/** pcsc-lite's MAX_BUFFER_SIZE_EXTENDED: an extended APDU's answer, 64 KiB of data and its framing. */
export const MAX_RESPONSE_SIZE = 4 + 3 + (1 << 16) + 3 + 2;

/** A failed PC/SC call: which function, and its return code. Never carries APDU bytes. */
export class ScardError extends Error {
  readonly rc: number;
  readonly call: string;

  constructor(call: string, rc: number) {
    super(`${call} failed: ${scardSymbol(rc)}`);
    this.name = 'ScardError';
    this.call = call;
    this.rc = rc >>> 0;
  }

  is(...names: ScardCodeName[]): boolean {
    return names.some((name) => SCARD[name] === this.rc);
  }
}

export function isScardError(error: unknown, ...names: ScardCodeName[]): error is ScardError {
  return error instanceof ScardError && (names.length === 0 || error.is(...names));
}

/** One platform's PC/SC ABI, as its headers state it (see the top of this file). */
export interface PcscAbi {
  readonly name: 'pcsc-lite' | 'winscard' | 'PCSC.framework';
  readonly library: string;
  /** koffi type names of DWORD, LONG and SCARDCONTEXT / SCARDHANDLE. */
  readonly dword: string;
  readonly long: string;
  readonly handle: string;
  /** Length of SCARD_READERSTATE's rgbAtr. */
  readonly atrSize: number;
  /** `#pragma pack(1)` around the structs. */
  readonly packed: boolean;
  /** Suffix of the functions that take or give strings: "A" picks Windows' ANSI variants. */
  readonly stringSuffix: '' | 'A';
  readonly convention: '__stdcall' | undefined;
  /** How reader names are encoded: UTF-8 in pcsc-lite and on macOS, the ANSI code page on Windows (latin1 keeps its bytes). */
  readonly nameEncoding: 'utf8' | 'latin1';
}

export function pcscAbi(platform: NodeJS.Platform = process.platform): PcscAbi {
  if (platform === 'win32') {
    return { name: 'winscard', library: 'winscard.dll', dword: 'uint32_t', long: 'int32_t', handle: 'uintptr_t', atrSize: 36, packed: false, stringSuffix: 'A', convention: '__stdcall', nameEncoding: 'latin1' };
  }
  if (platform === 'darwin') {
    return { name: 'PCSC.framework', library: '/System/Library/Frameworks/PCSC.framework/PCSC', dword: 'uint32_t', long: 'int32_t', handle: 'int32_t', atrSize: 33, packed: true, stringSuffix: '', convention: undefined, nameEncoding: 'utf8' };
  }
  // Linux and the BSDs: pcsc-lite. `long` and `unsigned long` are koffi's C types of the
  // platform, so this is right on 32-bit ARM too.
  return { name: 'pcsc-lite', library: 'libpcsclite.so.1', dword: 'unsigned long', long: 'long', handle: 'long', atrSize: 33, packed: false, stringSuffix: '', convention: undefined, nameEncoding: 'utf8' };
}

/** An SCARDCONTEXT or SCARDHANDLE: opaque, passed back as it came. */
export type ScardHandle = number | bigint;

/** One entry of SCardGetStatusChange's array, in JavaScript terms. */
export interface ReaderState {
  reader: string;
  currentState: number;
  /** Filled in by getStatusChange. */
  eventState: number;
  atr: Uint8Array;
}

export interface CardConnection {
  card: ScardHandle;
  /** SCARD_PROTOCOL_T0 or _T1: the one the card and reader agreed on. */
  protocol: number;
}

/** What keytap calls of the PC/SC API. Every method but cancel runs on a worker thread. */
export interface PcscLibrary {
  readonly abi: PcscAbi;
  establishContext(): Promise<ScardHandle>;
  releaseContext(context: ScardHandle): Promise<void>;
  /** The reader names; [] when there are none (SCARD_E_NO_READERS_AVAILABLE). */
  listReaders(context: ScardHandle): Promise<string[]>;
  /** Returns the return code (SUCCESS, TIMEOUT, CANCELLED …) rather than throwing; `states` are updated in place. */
  getStatusChange(context: ScardHandle, timeoutMs: number, states: ReaderState[]): Promise<number>;
  /** Cancels a getStatusChange blocked on `context` (synchronous: it is called while a worker thread waits). */
  cancel(context: ScardHandle): number;
  connect(context: ScardHandle, reader: string, shareMode: number, protocols: number): Promise<CardConnection>;
  /** Sends one APDU; the answer is data and status word, as the card gave them. */
  transmit(connection: CardConnection, apdu: Uint8Array): Promise<Uint8Array>;
  /** SCardStatus: throws (SCARD_W_REMOVED_CARD …) once the card is gone. */
  status(card: ScardHandle): Promise<{ state: number; protocol: number; atr: Uint8Array }>;
  disconnect(card: ScardHandle, disposition: number): Promise<void>;
}

// ---------------------------------------------------------------------------------------------

/** The part of koffi used here (its own types are declared loosely). */
interface Koffi {
  load(path: string): { func(convention: string, name: string, result: unknown, args: unknown[]): KoffiFunction; func(name: string, result: unknown, args: unknown[]): KoffiFunction };
  struct(def: Record<string, unknown>): unknown;
  pack(def: Record<string, unknown>): unknown;
  array(type: unknown, length: number): unknown;
  pointer(type: unknown): unknown;
  out(type: unknown): unknown;
  inout(type: unknown): unknown;
  sizeof(type: unknown): number;
  offsetof(type: unknown, member: string): number;
}

interface KoffiFunction {
  (...args: unknown[]): unknown;
  async(...args: unknown[]): void;
}

/** The koffi types of one ABI's structs; exported for the layout tests. */
export function declareStructs<T>(koffi: { struct(def: Record<string, unknown>): T; pack(def: Record<string, unknown>): T; array(type: string, length: number): unknown }, abi: PcscAbi): { readerState: T; ioRequest: T } {
  const make = abi.packed ? koffi.pack.bind(koffi) : koffi.struct.bind(koffi);
  return {
    readerState: make({
      szReader: 'const char *',
      pvUserData: 'void *',
      dwCurrentState: abi.dword,
      dwEventState: abi.dword,
      cbAtr: abi.dword,
      rgbAtr: koffi.array('uint8_t', abi.atrSize),
    }),
    // pcsc-lite writes `unsigned long` here, which is its DWORD; Windows and macOS use DWORD.
    ioRequest: make({ dwProtocol: abi.dword, cbPciLength: abi.dword }),
  };
}

/** Splits an SCardListReaders multi-string ("A\0B\0\0") into its names; an empty list is "\0" (or nothing). */
export function parseMultiString(bytes: Uint8Array, encoding: 'utf8' | 'latin1' = 'utf8'): string[] {
  const names: string[] = [];
  let start = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] !== 0) continue;
    if (i === start) break; // the empty string that ends the list
    names.push(Buffer.from(bytes.buffer, bytes.byteOffset + start, i - start).toString(encoding));
    start = i + 1;
  }
  // Bytes after the last NUL (a list cut short) are not a name.
  return names;
}

/** A name as the C API wants it: NUL-terminated, in the platform's encoding. */
function cString(text: string, encoding: 'utf8' | 'latin1'): Buffer {
  return Buffer.from(`${text}\0`, encoding);
}

let loading: Promise<PcscLibrary> | undefined;

/**
 * Loads koffi and this platform's PC/SC library once. A failure is not remembered: the user may
 * install the library and retry.
 */
export function loadPcsc(): Promise<PcscLibrary> {
  loading ??= openPcscLibrary(pcscAbi()).catch((error: unknown) => {
    loading = undefined;
    throw error;
  });
  return loading;
}

/** Loads koffi and `abi.library`; exported so that tests can name a library that is not there. */
export async function openPcscLibrary(abi: PcscAbi): Promise<PcscLibrary> {
  let koffi: Koffi;
  try {
    koffi = await importKoffi<Koffi>();
  } catch (error) {
    throw new KeytapError('UNSUPPORTED', 'keytap cannot use smart card readers: its PC/SC binding (koffi) could not be loaded.', {
      hint: 'This copy of keytap is incomplete or was made for another system; install keytap again.',
      cause: error,
    });
  }
  let lib: ReturnType<Koffi['load']>;
  try {
    lib = koffi.load(abi.library);
  } catch (error) {
    throw missingLibraryError(abi, error);
  }
  return bind(koffi, lib, abi);
}

function missingLibraryError(abi: PcscAbi, cause: unknown): KeytapError {
  if (abi.name === 'pcsc-lite') {
    return new KeytapError('UNSUPPORTED', 'keytap cannot use smart card readers: the library libpcsclite is missing.', {
      hint: 'Install it: sudo apt install libpcsclite1 pcscd (Debian, Ubuntu), sudo dnf install pcsc-lite-libs pcsc-lite (Fedora).',
      cause,
    });
  }
  // winscard.dll and PCSC.framework are part of the OS.
  return new KeytapError('UNSUPPORTED', `keytap cannot use smart card readers: the system library ${abi.library} could not be loaded.`, { cause });
}

function bind(koffi: Koffi, lib: ReturnType<Koffi['load']>, abi: PcscAbi): PcscLibrary {
  const { dword, long, handle } = abi;
  const { readerState, ioRequest } = declareStructs(koffi, abi);
  const ioRequestSize = koffi.sizeof(ioRequest);
  const fn = (name: string, args: unknown[]): KoffiFunction => (abi.convention ? lib.func(abi.convention, name, long, args) : lib.func(name, long, args));
  const A = abi.stringSuffix;

  const SCardEstablishContext = fn('SCardEstablishContext', [dword, 'void *', 'void *', koffi.out(koffi.pointer(handle))]);
  const SCardReleaseContext = fn('SCardReleaseContext', [handle]);
  const SCardListReaders = fn(`SCardListReaders${A}`, [handle, 'const char *', 'uint8_t *', koffi.inout(koffi.pointer(dword))]);
  const SCardGetStatusChange = fn(`SCardGetStatusChange${A}`, [handle, dword, koffi.inout(koffi.pointer(readerState)), dword]);
  const SCardCancel = fn('SCardCancel', [handle]);
  const SCardConnect = fn(`SCardConnect${A}`, [handle, 'const char *', dword, dword, koffi.out(koffi.pointer(handle)), koffi.out(koffi.pointer(dword))]);
  const SCardTransmit = fn('SCardTransmit', [handle, koffi.pointer(ioRequest), 'const uint8_t *', dword, 'void *', 'uint8_t *', koffi.inout(koffi.pointer(dword))]);
  const SCardStatus = fn(`SCardStatus${A}`, [handle, 'uint8_t *', koffi.inout(koffi.pointer(dword)), koffi.out(koffi.pointer(dword)), koffi.out(koffi.pointer(dword)), 'uint8_t *', koffi.inout(koffi.pointer(dword))]);
  const SCardDisconnect = fn('SCardDisconnect', [handle, dword]);

  /** Runs `f` on a worker thread; resolves its return code as an unsigned 32-bit number. */
  const call = (f: KoffiFunction, ...args: unknown[]): Promise<number> =>
    new Promise((resolve, reject) => {
      f.async(...args, (error: unknown, rc: unknown) => (error ? reject(error instanceof Error ? error : new Error('koffi async call failed')) : resolve(Number(rc) >>> 0)));
    });
  const check = (name: string, rc: number): void => {
    if (rc !== SCARD.S_SUCCESS) throw new ScardError(name, rc);
  };
  const num = (value: unknown): number => Number(value);
  const encoding = abi.nameEncoding;
  // One call with room for many readers; asked for the size only when that is not enough.
  const LIST_BUFFER = 4096;

  return {
    abi,
    async establishContext() {
      const out: ScardHandle[] = [0];
      check('SCardEstablishContext', await call(SCardEstablishContext, SCARD_SCOPE_USER, null, null, out));
      return out[0]!;
    },
    async releaseContext(context) {
      check('SCardReleaseContext', await call(SCardReleaseContext, context));
    },
    async listReaders(context) {
      let buffer = Buffer.alloc(LIST_BUFFER);
      const length: number[] = [buffer.length];
      let rc = await call(SCardListReaders, context, null, buffer, length);
      if (rc === SCARD.E_INSUFFICIENT_BUFFER) {
        // The list grew past the buffer: ask for its size, then read it (it may change in between).
        rc = await call(SCardListReaders, context, null, null, length);
        if (rc === SCARD.S_SUCCESS) {
          buffer = Buffer.alloc(num(length[0]));
          rc = await call(SCardListReaders, context, null, buffer, length);
        }
      }
      if (rc === SCARD.E_NO_READERS_AVAILABLE) return [];
      check(`SCardListReaders${A}`, rc);
      return parseMultiString(buffer.subarray(0, Math.min(buffer.length, num(length[0]))), encoding);
    },
    async getStatusChange(context, timeoutMs, states) {
      const native = states.map((state) => ({
        szReader: cString(state.reader, encoding),
        pvUserData: null,
        dwCurrentState: state.currentState >>> 0,
        dwEventState: 0,
        cbAtr: 0,
        rgbAtr: new Uint8Array(abi.atrSize),
      }));
      const rc = await call(SCardGetStatusChange, context, timeoutMs >>> 0, native, native.length);
      if (rc === SCARD.S_SUCCESS) {
        native.forEach((entry, i) => {
          const state = states[i]!;
          state.eventState = num(entry.dwEventState) >>> 0;
          state.atr = Uint8Array.from(entry.rgbAtr.subarray(0, Math.min(abi.atrSize, num(entry.cbAtr))));
        });
      }
      return rc;
    },
    cancel(context) {
      return Number(SCardCancel(context)) >>> 0;
    },
    async connect(context, reader, shareMode, protocols) {
      const card: ScardHandle[] = [0];
      const protocol: number[] = [0];
      check(`SCardConnect${A}`, await call(SCardConnect, context, cString(reader, encoding), shareMode, protocols, card, protocol));
      return { card: card[0]!, protocol: num(protocol[0]) };
    },
    async transmit(connection, apdu) {
      const response = Buffer.alloc(MAX_RESPONSE_SIZE);
      const length: number[] = [response.length];
      const pci = { dwProtocol: connection.protocol, cbPciLength: ioRequestSize };
      check('SCardTransmit', await call(SCardTransmit, connection.card, pci, Buffer.from(apdu), apdu.length, null, response, length));
      return Uint8Array.from(response.subarray(0, Math.min(response.length, num(length[0]))));
    },
    async status(card) {
      const name = Buffer.alloc(1024);
      const nameLength: number[] = [name.length];
      const state: number[] = [0];
      const protocol: number[] = [0];
      const atr = Buffer.alloc(abi.atrSize);
      const atrLength: number[] = [atr.length];
      check(`SCardStatus${A}`, await call(SCardStatus, card, name, nameLength, state, protocol, atr, atrLength));
      return { state: num(state[0]), protocol: num(protocol[0]), atr: Uint8Array.from(atr.subarray(0, Math.min(atr.length, num(atrLength[0])))) };
    },
    async disconnect(card, disposition) {
      check('SCardDisconnect', await call(SCardDisconnect, card, disposition));
    },
  };
}
