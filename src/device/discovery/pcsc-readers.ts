/**
 * PC/SC discovery: which readers there are and whether a card answers SELECT OATH, and reader and
 * card events (SCardGetStatusChange on the smartcard binding's own thread) as a hotplug trigger.
 * Talking to a card is transport/pcsc.ts, whose context helpers this uses.
 */
import { KeytapError, isKeytapError } from '../../errors.js';
import { Ins, OATH_AID } from '../oath/constants.js';
import { PCSCD_HINT, PcscApduTransport, conciseNativeMessage, establishContext, listReaders, loadSmartcard, releaseContext } from '../transport/pcsc.js';
import type { SmartcardModule } from '../transport/pcsc.js';
import { encodeApdu } from '../transport/types.js';

/** A probe SELECT answers at once on any card. */
const PROBE_TIMEOUT_MS = 3_000;

const OATH_SELECT = encodeApdu(0x00, Ins.SELECT, 0x04, 0x00, OATH_AID);

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

/** Every reader pcscd knows, with or without a card. */
export async function listPcscReaders(): Promise<PcscReaderInfo[]> {
  const { sc, context } = await establishContext();
  try {
    const readers = listReaders(context);
    return readers.map((reader) => ({
      name: reader.name,
      state: reader.state,
      cardPresent: (reader.state & sc.SCARD_STATE_PRESENT) !== 0 && (reader.state & sc.SCARD_STATE_MUTE) === 0,
      atr: reader.atr ? Uint8Array.from(reader.atr) : undefined,
    }));
  } finally {
    releaseContext(context);
  }
}

/** Probe answers by reader and ATR: a card held by another program cannot be asked again. */
const probeCache = new Map<string, boolean>();

/**
 * Does the card in `readerName` answer SELECT OATH with 9000? Connects EXCLUSIVE, so the SELECT
 * never lands between another program's commands (it would deselect that program's applet).
 * When the card is in use, the last answer for the same card (ATR) is returned, or undefined.
 */
export async function probeOathApplet(readerName: string, atr: Uint8Array | undefined): Promise<boolean | undefined> {
  const cacheKey = `${readerName}\u0000${atr ? Buffer.from(atr).toString('hex') : ''}`;
  let transport: PcscApduTransport;
  try {
    transport = await PcscApduTransport.open(readerName, { busyWaitMs: 0 });
  } catch (error) {
    if (isKeytapError(error, 'BUSY')) return probeCache.get(cacheKey);
    if (isKeytapError(error, 'KEY_REMOVED') || isKeytapError(error, 'NO_KEY')) return false;
    throw error;
  }
  try {
    const { sw } = await transport.transmit(OATH_SELECT, { timeoutMs: PROBE_TIMEOUT_MS });
    const oath = sw === 0x9000 || sw >> 8 === 0x61;
    probeCache.set(cacheKey, oath);
    return oath;
  } catch (error) {
    if (isKeytapError(error, 'KEY_REMOVED') || isKeytapError(error, 'TIMEOUT') || isKeytapError(error, 'DEVICE_ERROR')) return false;
    throw error;
  } finally {
    await transport.close();
  }
}

export interface PcscWatch {
  stop(): void;
}

/**
 * Calls `onChange` when a reader comes or goes or a card is inserted or removed (the binding's
 * monitor thread blocks in SCardGetStatusChange, so nothing runs in JavaScript while nothing
 * changes). Resolves undefined when PC/SC is not available here. `onError` hears of a monitor
 * failure (pcscd stopped), after which the watch has stopped itself.
 */
export async function watchPcscReaders(onChange: () => void, onError: (error: KeytapError) => void): Promise<PcscWatch | undefined> {
  let sc: SmartcardModule;
  try {
    sc = await loadSmartcard();
  } catch {
    return undefined;
  }
  const monitor = new sc.ReaderMonitor();
  let stopped = false;
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    try {
      monitor.stop();
    } catch {
      // stopping a monitor whose context died: nothing left to stop
    }
  };
  try {
    monitor.start((event) => {
      if (stopped) return;
      if (event.type === 'error') {
        // The monitor would retry every second forever (pcscd gone): stop, say so once.
        queueMicrotask(stop);
        onError(new KeytapError('DEVICE_ERROR', `Watching the smart card readers stopped (${conciseNativeMessage(event.reader)}).`, { hint: PCSCD_HINT }));
        return;
      }
      onChange();
    });
  } catch {
    // No pcscd (SCardEstablishContext failed): nothing to watch.
    return undefined;
  }
  return { stop };
}
