/**
 * Which keys are there right now. Each source lists what it can reach; a key is a KeyDescriptor
 * that the tray, the CLI and the programmer open the same way: `open(signal)` → ApduTransport,
 * then `openOathSession` (open.ts).
 *
 * Sources: the FIDO HID interfaces of keys that carry OATH over HID (known-keys.ts; node-hid link
 * + CTAPHID) and of unknown Nitrokey/Feitian-vendor FIDO devices that answer OATH over 0x70 or the Feitian HOTP protocol, virtual keys announced in the runtime directory (socket link + CTAPHID), and PC/SC
 * readers holding a card with an OATH applet (YubiKeys: OATH over CCID only; the PC/SC transport).
 */
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { KeytapError, isKeytapError } from '../../errors.js';
import { delay } from '../../util/abortable.js';
import type { KeyDialect } from '../key-dialect.js';
import { apduFramingFor, openCtapHidTransport } from '../open.js';
import { NodeHidLink } from '../transport/node-hid-link.js';
import { PcscApduTransport, isPcscUnavailable } from '../transport/pcsc.js';
import { SocketHidLink } from '../transport/socket-link.js';
import type { ApduTransport, HidLink } from '../transport/types.js';
import { listHidDevices } from './hid-devices.js';
import type { HidDeviceInfo } from './hid-devices.js';
import { FIDO_USAGE_PAGE, findKnownKey, identificationQuestions, linuxPermissionHint, reachableOverHid } from './known-keys.js';
import { identifyHidLink } from '../probe/hid.js';
import type { Identification } from '../probe/hid.js';
import { hex4 } from '../probe/types.js';
import { listPcscReaders, probeOathApplet } from './pcsc-readers.js';
import type { PcscReaderInfo } from './pcsc-readers.js';
import { listRunningVirtualKeys } from './virtual-keys.js';
import type { RunningVirtualKey } from './virtual-keys.js';

export type KeyKind = 'hid' | 'virtual' | 'pcsc';

export interface KeyDescriptor {
  /**
   * Stable while the key stays plugged in: `virtual:<id>` for a virtual key, the HID path for a
   * real one, `pcsc:<reader name>` for a card in a PC/SC reader. The session layer replaces it with the serial from SELECT where the key has one.
   */
  readonly id: string;
  readonly kind: KeyKind;
  /** "Nitrokey 3", "virtual key demo.json". */
  readonly name: string;
  /** HID path (/dev/hidraw3, IOService:…, \\?\hid#…), the virtual key's socket, or the PC/SC reader name. */
  readonly path: string;
  readonly vendorId?: number | undefined;
  readonly productId?: number | undefined;
  /** The USB serial string, where the OS reports one (Nitrokey 3 reports none over HID). */
  readonly usbSerial?: string | undefined;
  /**
   * Which OATH dialect to expect, where the kind of key tells (the session still decides from
   * SELECT); 'feitian' for a Feitian/HyperFIDO HOTP key, which has no OATH applet (open.ts `openAnyKey`).
   */
  readonly dialect?: KeyDialect | undefined;
  /** The serial a virtual key announces (8 hex digits). */
  readonly serial?: string | undefined;
  /** For virtual keys: what the running key announced. */
  readonly virtual?: RunningVirtualKey | undefined;
  /**
   * Opens a fresh APDU transport to the key (CTAPHID over a HID link, or PC/SC); the caller closes
   * it. `openOathSession` (open.ts) is how callers use it.
   */
  open(signal?: AbortSignal): Promise<ApduTransport>;
}

export type SourceName = 'hid' | 'virtual' | 'pcsc';

export interface EnumerateOptions {
  /** List real keys over HID (loads node-hid). Default true. */
  hid?: boolean | undefined;
  /** List running virtual keys. Default true. */
  virtual?: boolean | undefined;
  /**
   * List PC/SC readers holding an OATH card (loads koffi and the PC/SC library). Default true. Where
   * PC/SC is not installed or pcscd is not running, this source is empty, not an error.
   */
  pcsc?: boolean | undefined;
  /**
   * Called when a source fails (node-hid cannot load, listing HID devices failed). Without it the
   * error is thrown. With it, the other sources are still listed.
   */
  onError?: ((error: KeytapError, source: SourceName) => void) | undefined;
}

/** All keys that can be reached now. */
export async function enumerateKeys(options: EnumerateOptions = {}): Promise<KeyDescriptor[]> {
  const sources: [SourceName, () => Promise<KeyDescriptor[]>][] = [];
  if (options.hid ?? true) sources.push(['hid', listHidKeys]);
  if (options.virtual ?? true) sources.push(['virtual', listVirtualKeys]);
  if (options.pcsc ?? true) sources.push(['pcsc', listPcscKeys]);
  const results = await Promise.all(
    sources.map(async ([name, list]) => {
      try {
        return await list();
      } catch (error) {
        const keytapError = isKeytapError(error) ? error : new KeytapError('DEVICE_ERROR', `Listing ${name} keys failed.`, { cause: error });
        if (!options.onError) throw keytapError;
        options.onError(keytapError, name);
        return [];
      }
    }),
  );
  return results.flat();
}

export async function listHidKeys(): Promise<KeyDescriptor[]> {
  const devices = await listHidDevices();
  return [...hidDescriptors(devices), ...(await unknownFidoKeys(devices))];
}

/** How to reach a HID path; the tests replace it at the report boundary. */
export type HidOpener = (path: string) => Promise<HidLink>;

/** How long one listing waits for all unknown FIDO devices together; one still answering is used at a later listing. */
export const IDENTIFY_BUDGET_MS = 1_500;
/** After an identification that could not tell (busy, no answer), the device is asked again this long after, doubling up to the maximum. */
const RETRY_FIRST_MS = 2_000;
const RETRY_MAX_MS = 60_000;

interface Identifying {
  /** The identification running now, or the last one's result. */
  answer: Promise<Identification>;
  settled: Identification | undefined;
  /** A listing stopped waiting for it (the budget ran out): its answer comes after that listing. */
  late: boolean;
  /** 'unsure' answers in a row, and when the next question may go out. */
  failures: number;
  retryAt: number;
}

/**
 * What each unknown FIDO device answered, by path and USB id, while it stays plugged in (a path that
 * leaves the listing is forgotten, so a replug asks again). Only definite answers are kept for good;
 * an 'unsure' one is asked again after a backoff. In this process only: a CLI command asks afresh,
 * within IDENTIFY_BUDGET_MS, and only devices of the vendor ids identificationQuestions allows.
 */
const identified = new Map<string, Identifying>();

export interface UnknownFidoOptions {
  /** How long to wait for the answers (default IDENTIFY_BUDGET_MS). */
  budgetMs?: number | undefined;
  /** Tests: the clock for the backoff. */
  now?: (() => number) | undefined;
}

/**
 * FIDO interfaces whose VID:PID is not in known-keys.ts but whose vendor id has questions
 * (known-keys.ts `identificationQuestions`): all are asked at once (probe/hid.ts `identifyHidLink`),
 * and listed when they answer, as a Nitrokey-3-dialect or a Feitian key. The listing waits at most
 * the budget for all of them together; a device that cannot be opened, answers neither, or has not
 * answered within the budget is left out of this listing, as any other FIDO key is.
 */
export async function unknownFidoKeys(devices: readonly HidDeviceInfo[], open: HidOpener = openHid, options: UnknownFidoOptions = {}): Promise<KeyDescriptor[]> {
  const now = options.now ?? Date.now;
  const unknown = new Map<string, HidDeviceInfo>();
  for (const device of devices) {
    if (device.path === undefined || device.usagePage !== FIDO_USAGE_PAGE || findKnownKey(device.vendorId, device.productId)) continue;
    if (identificationQuestions(device.vendorId) === undefined) continue;
    unknown.set(`${device.path}\u0000${device.vendorId}:${device.productId}`, device);
  }
  for (const key of [...identified.keys()]) if (!unknown.has(key)) identified.delete(key);
  const asked = [...unknown].map(([cacheKey, device]) => {
    let entry = identified.get(cacheKey);
    if (entry === undefined || (entry.settled?.kind === 'unsure' && now() >= entry.retryAt)) {
      entry = identify(device, open, now, entry?.failures ?? 0);
      identified.set(cacheKey, entry);
    }
    return { device, entry };
  });
  let timer: NodeJS.Timeout | undefined;
  const budget = new Promise<void>((resolve) => (timer = setTimeout(resolve, options.budgetMs ?? IDENTIFY_BUDGET_MS)));
  await Promise.race([Promise.all(asked.map(({ entry }) => entry.answer)), budget]);
  clearTimeout(timer);
  for (const { entry } of asked) if (entry.settled === undefined) entry.late = true;
  const keys: KeyDescriptor[] = [];
  for (const { device, entry } of asked) {
    if (entry.settled?.kind === 'key') keys.push(unknownKeyDescriptor(device, entry.settled.dialect, open));
  }
  return keys;
}

function identify(device: HidDeviceInfo, open: HidOpener, now: () => number, failuresBefore: number): Identifying {
  const questions = identificationQuestions(device.vendorId)!;
  const entry: Identifying = { answer: Promise.resolve({ kind: 'unsure' }), settled: undefined, late: false, failures: failuresBefore, retryAt: 0 };
  entry.answer = open(device.path!)
    .then(
      (link) => identifyHidLink(link, questions),
      (): Identification => ({ kind: 'unsure' }),
    )
    .catch((): Identification => ({ kind: 'unsure' }))
    .then((answer) => {
      entry.settled = answer;
      entry.failures = answer.kind === 'unsure' ? entry.failures + 1 : 0;
      const retryInMs = Math.min(RETRY_FIRST_MS * 2 ** Math.max(0, entry.failures - 1), RETRY_MAX_MS);
      entry.retryAt = now() + retryInMs;
      // The tray's watcher rescans only on hotplug events: tell it when a listing would now differ.
      if (answer.kind === 'key' && entry.late) notifyUnknownFidoChange();
      if (answer.kind === 'unsure') setTimeout(notifyUnknownFidoChange, retryInMs).unref();
      return answer;
    });
  return entry;
}

const changeListeners = new Set<() => void>();

function notifyUnknownFidoChange(): void {
  for (const listener of changeListeners) listener();
}

/**
 * Calls `listener` when listing the HID keys again may find something new about an unknown FIDO
 * device: an answer that came after its listing's budget, or a retry that fell due. The watcher
 * rescans then. Returns the unsubscribe.
 */
export function onUnknownFidoChange(listener: () => void): () => void {
  changeListeners.add(listener);
  return () => void changeListeners.delete(listener);
}

function unknownKeyDescriptor(device: HidDeviceInfo, dialect: KeyDialect, open: HidOpener): KeyDescriptor {
  const path = device.path!;
  const id = `${hex4(device.vendorId)}:${hex4(device.productId)}`;
  const name = device.product ? `${device.product} (${id})` : `FIDO key ${id}`;
  const framing = apduFramingFor(dialect);
  return {
    id: path,
    kind: 'hid',
    name,
    path,
    vendorId: device.vendorId,
    productId: device.productId,
    usbSerial: device.serialNumber || undefined,
    dialect,
    open: async (signal?: AbortSignal) => openCtapHidTransport(await open(path), name, signal, framing),
  };
}

/** Tests: forget what unknown devices answered. */
export function forgetUnknownFidoDevices(): void {
  identified.clear();
}

export async function listVirtualKeys(): Promise<KeyDescriptor[]> {
  return (await listRunningVirtualKeys()).map(virtualDescriptor);
}

/**
 * PC/SC readers with a card that has an OATH applet: Yubico readers by name (as ykman decides:
 * "yubico yubikey"; such a reader is the key itself), other readers only when the card answers
 * SELECT OATH with 9000. Nitrokey readers are left out: the same key is listed over HID already.
 */
export async function listPcscKeys(): Promise<KeyDescriptor[]> {
  let readers: PcscReaderInfo[];
  try {
    readers = await listPcscReaders();
  } catch (error) {
    if (isPcscUnavailable(error)) return [];
    throw error;
  }
  const keys: KeyDescriptor[] = [];
  for (const reader of readers) {
    if (!reader.cardPresent || NITROKEY_READER.test(reader.name)) continue;
    const yubico = YUBICO_READER.test(reader.name);
    if (!yubico && !(await probeOathApplet(reader))) continue;
    keys.push(pcscDescriptor(reader.name, yubico ? 'YubiKey' : reader.name));
  }
  return keys;
}

const YUBICO_READER = /yubico yubikey/iu;
const NITROKEY_READER = /nitrokey/iu;

export function pcscDescriptor(readerName: string, name: string): KeyDescriptor {
  return {
    id: `pcsc:${readerName}`,
    kind: 'pcsc',
    name,
    path: readerName,
    dialect: YUBICO_READER.test(readerName) ? 'yubikey' : undefined,
    open: (signal?: AbortSignal) => PcscApduTransport.open(readerName, { description: name, signal }),
  };
}

/**
 * The OATH-capable FIDO interfaces among the HID devices the OS lists. One descriptor per path:
 * macOS and Windows may list one interface once per top-level collection.
 */
export function hidDescriptors(devices: readonly HidDeviceInfo[]): KeyDescriptor[] {
  const seen = new Set<string>();
  const keys: KeyDescriptor[] = [];
  for (const device of devices) {
    if (device.path === undefined || device.usagePage !== FIDO_USAGE_PAGE) continue;
    const known = findKnownKey(device.vendorId, device.productId);
    if (!known || !reachableOverHid(known) || seen.has(device.path)) continue;
    seen.add(device.path);
    const path = device.path;
    const name = known.name;
    const framing = apduFramingFor(known.dialect);
    keys.push({
      id: path,
      kind: 'hid',
      name: known.name,
      path,
      vendorId: device.vendorId,
      productId: device.productId,
      usbSerial: device.serialNumber || undefined,
      dialect: known.dialect,
      open: async (signal?: AbortSignal) => openCtapHidTransport(await openHid(path), name, signal, framing),
    });
  }
  return keys;
}

export function virtualDescriptor(info: RunningVirtualKey): KeyDescriptor {
  const name = `virtual key ${basename(info.file)}`;
  return {
    id: `virtual:${info.id}`,
    kind: 'virtual',
    name,
    path: info.socket,
    dialect: info.dialect,
    serial: info.serial,
    virtual: info,
    open: async (signal?: AbortSignal) => openCtapHidTransport(await SocketHidLink.connect(info.socket), name, signal, apduFramingFor(info.dialect)),
  };
}

/** How long after a hidraw node appears udev may still be granting access to it. */
const SETTLE_MS = 3_000;
const SETTLE_RETRY_MS = 100;

/**
 * Opens a HID path. Right after plug-in on Linux the node exists before udev has applied the
 * `uaccess` ACL, so an open at once (the tray reacts within milliseconds) may be refused: while the
 * node is younger than a few seconds, a refusal is retried instead of reported.
 */
async function openHid(path: string): Promise<HidLink> {
  for (;;) {
    try {
      return await NodeHidLink.open(path, { linuxPermissionHint: linuxPermissionHint() });
    } catch (error) {
      if (!isKeytapError(error, 'PERMISSION_DENIED') || !(await isFreshNode(path))) throw error;
    }
    await delay(SETTLE_RETRY_MS, undefined);
  }
}

async function isFreshNode(path: string): Promise<boolean> {
  if (process.platform !== 'linux') return false;
  try {
    // ctime, not mtime: it is what creating the node (and changing its ACL) sets.
    return Date.now() - (await stat(path)).ctimeMs < SETTLE_MS;
  } catch {
    return false;
  }
}
