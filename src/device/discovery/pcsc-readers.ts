/**
 * PC/SC discovery: which readers there are and whether a card answers SELECT OATH, and reader and
 * card events (SCardGetStatusChange on a worker thread, on a context of its own) as a hotplug
 * trigger. Talking to a card is transport/pcsc.ts, whose context helpers this uses.
 */
import { KeytapError, isKeytapError } from '../../errors.js';
import { Ins, OATH_AID } from '../oath/constants.js';
import { INFINITE, PNP_NOTIFICATION, SCARD, SCARD_STATE, scardSymbol } from '../transport/pcsc-api.js';
import type { PcscLibrary, ReaderState, ScardHandle } from '../transport/pcsc-api.js';
import { PCSCD_HINT, PcscApduTransport, establishContext, listReaderNames, loadPcsc, nativeReason, releaseContext } from '../transport/pcsc.js';
import type { PcscContext } from '../transport/pcsc.js';
import { encodeApdu } from '../transport/types.js';
import { oathIdentity } from '../oath/identity.js';
import { parseTlvs } from '../oath/tlv.js';
import { cardInsertion, knownOathCard, rememberOathCard } from './oath-cards.js';

/** A probe SELECT answers at once on any card. */
const PROBE_TIMEOUT_MS = 3_000;

const OATH_SELECT = encodeApdu(0x00, Ins.SELECT, 0x04, 0x00, OATH_AID);

/** pcsc-lite's PCSCLITE_MAX_READERS_CONTEXTS: at most this many entries in one SCardGetStatusChange. */
const MAX_STATES_PER_CALL = 16;

export interface PcscReaderInfo {
  /** "Yubico YubiKey OTP+FIDO+CCID 00 00", "Virtual PCD 00 00". */
  name: string;
  /** SCARD_STATE_* flags. */
  state: number;
  /** A card is in the reader and answered reset. */
  cardPresent: boolean;
  /** The card's ATR, where one is present. */
  atr: Uint8Array | undefined;
}

/** Every reader the PC/SC service knows, with or without a card. */
export async function listPcscReaders(): Promise<PcscReaderInfo[]> {
  const scope = await establishContext();
  try {
    const names = await listReaderNames(scope);
    const states = names.map((name): ReaderState => ({ reader: name, currentState: SCARD_STATE.UNAWARE, eventState: 0, atr: new Uint8Array(0) }));
    // UNAWARE entries make SCardGetStatusChange answer at once with each reader's state and ATR.
    for (let i = 0; i < states.length; i += MAX_STATES_PER_CALL) {
      const rc = await scope.pcsc.getStatusChange(scope.context, 0, states.slice(i, i + MAX_STATES_PER_CALL));
      // A reader that went between the listing and now is left out below (state 0), not an error.
      if (rc !== SCARD.S_SUCCESS && rc !== SCARD.E_TIMEOUT && rc !== SCARD.E_UNKNOWN_READER) {
        throw new KeytapError('DEVICE_ERROR', `Reading the state of the smart card readers failed (${scardSymbol(rc)}).`);
      }
    }
    return states
      .filter((s) => (s.eventState & SCARD_STATE.UNKNOWN) === 0)
      .map((s) => ({
        name: s.reader,
        state: s.eventState,
        cardPresent: (s.eventState & SCARD_STATE.PRESENT) !== 0 && (s.eventState & SCARD_STATE.MUTE) === 0,
        atr: s.atr.length > 0 ? s.atr : undefined,
      }));
  } finally {
    await releaseContext(scope);
  }
}

/** What a card answered to SELECT OATH: no, or yes with the identity of the key (oath/identity.ts), where it told one. */
export type OathCardAnswer = { oath: false } | { oath: true; identity: string | undefined };

/** Probe answers by reader and ATR: a card held by another program cannot be asked again. */
const probeCache = new Map<string, OathCardAnswer>();

/**
 * Does the card in the reader answer SELECT OATH with 9000, and which key is it? Connects
 * EXCLUSIVE, so the SELECT never lands between another program's commands (it would deselect that
 * program's applet). When the card is in use, the last answer for the same card (ATR) is
 * returned, or undefined.
 *
 * A yes is also remembered across processes (oath-cards.ts) for as long as the same card stays in
 * the reader, so that neither every `keytap` command nor every rescan of the tray has to take the
 * card from other programs to ask again.
 */
export async function probeOathCard(reader: Pick<PcscReaderInfo, 'name' | 'state' | 'atr'>): Promise<OathCardAnswer | undefined> {
  const cacheKey = `${reader.name}\u0000${reader.atr ? Buffer.from(reader.atr).toString('hex') : ''}`;
  const insertion = cardInsertion(reader);
  const known = insertion && (await knownOathCard(insertion));
  if (known) return { oath: true, identity: known.identity };
  let transport: PcscApduTransport;
  try {
    transport = await PcscApduTransport.open(reader.name, { busyWaitMs: 0 });
  } catch (error) {
    if (isKeytapError(error, 'BUSY')) return probeCache.get(cacheKey);
    if (isKeytapError(error, 'KEY_REMOVED') || isKeytapError(error, 'NO_KEY')) return { oath: false };
    throw error;
  }
  let answer: OathCardAnswer;
  try {
    const { sw, data } = await transport.transmit(OATH_SELECT, { timeoutMs: PROBE_TIMEOUT_MS });
    answer = sw === 0x9000 ? { oath: true, identity: identityOf(data) } : sw >> 8 === 0x61 ? { oath: true, identity: undefined } : { oath: false };
  } catch (error) {
    if (isKeytapError(error, 'KEY_REMOVED') || isKeytapError(error, 'TIMEOUT') || isKeytapError(error, 'DEVICE_ERROR')) return { oath: false };
    throw error;
  } finally {
    await transport.close();
  }
  probeCache.set(cacheKey, answer.oath ? { oath: true, identity: undefined } : answer);
  // Only a serial is remembered: a device id comes from the salt, which a RESET (by any program,
  // the card staying in) replaces. Discovery asks again for it where it matters (enumerate.ts).
  if (insertion) await rememberOathCard(insertion, answer.oath, answer.oath && answer.identity?.startsWith('serial:') ? answer.identity : undefined);
  return answer;
}

/** The identity in a SELECT answer; one that does not parse tells none (the card is still an OATH card). */
function identityOf(data: Uint8Array): string | undefined {
  try {
    return oathIdentity(parseTlvs(data));
  } catch {
    return undefined;
  }
}

export interface PcscWatch {
  /** Ends the watch; resolves once its native call has returned and its context is released. */
  stop(): Promise<void>;
  /** How many times the native SCardGetStatusChange has returned so far: none while nothing changes. */
  readonly returns: number;
}

/**
 * Calls `onChange` when a reader comes or goes or a card is inserted or removed. A worker thread
 * blocks in SCardGetStatusChange (INFINITE) on the "\\?PnP?\Notification" pseudo-reader and every
 * known reader, so nothing runs in JavaScript while nothing changes. Resolves once the readers'
 * current state is known (a change after that is reported), or undefined when PC/SC is not
 * available here. `onError` hears of a failure (pcscd stopped), after which the watch has stopped
 * itself.
 */
export async function watchPcscReaders(onChange: () => void, onError: (error: KeytapError) => void): Promise<PcscWatch | undefined> {
  let scope: PcscContext;
  try {
    const pcsc = await loadPcsc();
    scope = { pcsc, context: await pcsc.establishContext() };
  } catch {
    // No library or no pcscd: nothing to watch.
    return undefined;
  }
  const watch = new ReaderWatch(scope, onChange, onError);
  await watch.start();
  return watch;
}

/**
 * The loop: list the readers, then SCardGetStatusChange(INFINITE) on the pseudo-reader and each of
 * them, every entry's current state being what the last call reported (its upper 16 bits count
 * insertions and removals, so a change between two calls is not lost). A change of a reader's
 * presence bits, or of the reader list, is reported; EXCLUSIVE / INUSE flips (another program, or
 * keytap itself, connecting to the card) only wake the loop. pcsc-lite before 2.3 compares the
 * reader count with the one at the start of each call rather than with the pseudo-reader's
 * current state, so a reader that arrives between the listing and the next call is seen with the
 * next event instead; later pcsc-lite and Windows keep the count in that state.
 */

/** Which bits of a reader's state make a change worth a rescan: presence, not who holds the card. */
const PRESENCE_BITS = SCARD_STATE.UNKNOWN | SCARD_STATE.UNAVAILABLE | SCARD_STATE.EMPTY | SCARD_STATE.PRESENT | SCARD_STATE.MUTE;
/** The upper 16 bits of dwEventState count insertions and removals (pcsc-lite, Windows). */
const EVENT_COUNT = 0xffff0000;

/** Without PnP notifications (a PC/SC service that does not know the pseudo-reader), readers are listed again this often. */
const NO_PNP_RELIST_MS = 2_000;
/** After SCARD_E_UNKNOWN_READER for a reader the service still lists. */
const UNKNOWN_READER_PAUSE_MS = 200;
/** SCardCancel only reaches a call that is already waiting; a stop this soon after a call started cancels again. */
const CANCEL_RETRY_MS = 20;

/** Watches that a native call may be blocked for; `process.exit` must cancel them or it waits for the worker thread forever. */
const running = new Set<ReaderWatch>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const watch of running) watch.cancelForExit();
  });
}

class ReaderWatch implements PcscWatch {
  private readonly pcsc: PcscLibrary;
  private readonly context: ScardHandle;
  private readonly onChange: () => void;
  private readonly onError: (error: KeytapError) => void;
  /** The pseudo-reader first (when the service knows it), then every reader. */
  private states: ReaderState[] = [];
  private pnp = true;
  private stopped = false;
  /** When the native call now running started (0: none running). */
  private callStarted = 0;
  private finished!: () => void;
  private readonly done = new Promise<void>((resolve) => (this.finished = resolve));
  /** How many times SCardGetStatusChange has returned (for tests: none while nothing changes). */
  returns = 0;

  constructor(scope: PcscContext, onChange: () => void, onError: (error: KeytapError) => void) {
    this.pcsc = scope.pcsc;
    this.context = scope.context;
    this.onChange = onChange;
    this.onError = onError;
  }

  /** Learns the current state of every reader; the loop then waits for changes from it. */
  async start(): Promise<void> {
    running.add(this);
    installExitHook();
    try {
      await this.relist();
      const rc = await this.wait(0);
      if (rc === SCARD.S_SUCCESS) this.settle();
      else if (rc !== SCARD.E_TIMEOUT) return this.fail(rc);
    } catch (error) {
      return this.fail(error);
    }
    void this.loop();
  }

  stop(): Promise<void> {
    if (!this.stopped) {
      this.stopped = true;
      this.endPause?.();
      if (this.callStarted === 0) void this.finish();
      else this.cancelUntilReturned();
    }
    return this.done;
  }

  /** From process 'exit': no timers and no callbacks any more, so cancel now (and once more if the call may not be waiting yet). */
  cancelForExit(): void {
    if (this.callStarted === 0) return;
    this.pcsc.cancel(this.context);
    if (Date.now() - this.callStarted < CANCEL_RETRY_MS * 5) {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, CANCEL_RETRY_MS);
      this.pcsc.cancel(this.context);
    }
  }

  private cancelUntilReturned(): void {
    if (this.callStarted === 0) return;
    this.pcsc.cancel(this.context);
    // pcsc-lite's SCardCancel is a no-op until the call has registered for events; try again
    // until the call has returned.
    setTimeout(() => this.cancelUntilReturned(), CANCEL_RETRY_MS);
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      try {
        if (!(await this.step())) return;
      } catch (error) {
        return this.fail(error);
      }
    }
    await this.finish();
  }

  /** One wait and what follows from it; false when the watch has failed (and said so). */
  private async step(): Promise<boolean> {
    if (this.states.length === 0) {
      // No pseudo-reader and no reader: SCardGetStatusChange would return at once, so wait here.
      await this.pause(NO_PNP_RELIST_MS);
      if (!this.stopped && (await this.relistChanged())) this.report();
      return true;
    }
    const rc = await this.wait(this.pnp ? INFINITE : NO_PNP_RELIST_MS);
    if (this.stopped) return true;
    if (rc === SCARD.E_TIMEOUT) {
      // Only without PnP notifications: look for readers that came or went.
      if (await this.relistChanged()) this.report();
      return true;
    }
    if (rc === SCARD.E_UNKNOWN_READER || rc === SCARD.E_READER_UNAVAILABLE) {
      // A reader listed a moment ago has gone already: list again (and do not spin if the
      // service still lists it).
      if (await this.relistChanged()) this.report();
      else await this.pause(UNKNOWN_READER_PAUSE_MS);
      return true;
    }
    if (rc !== SCARD.S_SUCCESS) {
      await this.fail(rc);
      return false;
    }
    const readersChanged = this.pnp && (this.states[0]!.eventState & SCARD_STATE.CHANGED) !== 0;
    const presenceChanged = this.states.some((s, i) => (i > 0 || !this.pnp) && presenceOf(s.currentState) !== presenceOf(s.eventState));
    this.settle();
    if (readersChanged) await this.relistChanged();
    if (readersChanged || presenceChanged) this.report();
    return true;
  }

  private endPause: (() => void) | undefined;

  /** A timer that stop() ends early. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.endPause = undefined;
        resolve();
      }, ms);
      this.endPause = () => {
        clearTimeout(timer);
        this.endPause = undefined;
        resolve();
      };
    });
  }

  /** One SCardGetStatusChange on the worker thread. */
  private async wait(timeoutMs: number): Promise<number> {
    this.callStarted = Date.now();
    try {
      return await this.pcsc.getStatusChange(this.context, timeoutMs, this.states);
    } finally {
      this.callStarted = 0;
      this.returns++;
    }
  }

  /** What the service said becomes what we believe: the next call returns when it differs. */
  private settle(): void {
    if (this.pnp && (this.states[0]!.eventState & SCARD_STATE.UNKNOWN) !== 0) {
      // A service without the pseudo-reader (it reports it as an unknown reader): fall back to
      // listing the readers every NO_PNP_RELIST_MS.
      this.pnp = false;
      this.states = this.states.slice(1);
    }
    for (const state of this.states) state.currentState = state.eventState & ~SCARD_STATE.CHANGED;
  }

  /** Lists the readers; true when the set changed. New readers start UNAWARE (answered at once with their state). */
  private async relistChanged(): Promise<boolean> {
    const before = this.readerNames().join('\u0000');
    await this.relist();
    return this.readerNames().join('\u0000') !== before;
  }

  private async relist(): Promise<void> {
    const names = (await this.pcsc.listReaders(this.context)).slice(0, MAX_STATES_PER_CALL - 1);
    const known = new Map(this.readerStates().map((s) => [s.reader, s]));
    const readers = names.map((name) => known.get(name) ?? { reader: name, currentState: SCARD_STATE.UNAWARE, eventState: 0, atr: new Uint8Array(0) });
    const pnp = this.pnp ? [this.states[0] ?? { reader: PNP_NOTIFICATION, currentState: SCARD_STATE.UNAWARE, eventState: 0, atr: new Uint8Array(0) }] : [];
    this.states = [...pnp, ...readers];
  }

  private readerStates(): ReaderState[] {
    return this.pnp ? this.states.slice(1) : this.states;
  }

  private readerNames(): string[] {
    return this.readerStates().map((s) => s.reader);
  }

  private report(): void {
    if (this.stopped) return;
    try {
      this.onChange();
    } catch {
      // a listener's bug must not end the watch
    }
  }

  private async fail(reason: unknown): Promise<void> {
    const wasStopped = this.stopped;
    this.stopped = true;
    await this.finish();
    if (wasStopped) return;
    // Said once; the watch does not retry (pcscd gone).
    this.onError(new KeytapError('DEVICE_ERROR', `Watching the smart card readers stopped (${typeof reason === 'number' ? scardSymbol(reason) : nativeReason(reason)}).`, { hint: PCSCD_HINT }));
  }

  private async finish(): Promise<void> {
    if (!running.delete(this)) return this.done;
    try {
      await this.pcsc.releaseContext(this.context);
    } catch {
      // the service is gone: nothing to release
    }
    this.finished();
    return this.done;
  }
}

function presenceOf(state: number): number {
  return state & (PRESENCE_BITS | EVENT_COUNT);
}
