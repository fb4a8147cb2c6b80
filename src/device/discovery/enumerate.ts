/**
 * Which keys are there right now. Each source lists the interfaces it can reach (KeyInterface);
 * the interfaces of one physical key are merged into one KeyDescriptor (interfaces.ts), which the
 * tray, the CLI and the programmer open the same way: `open(signal)` → ApduTransport, then
 * `openOathSession` (open.ts).
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
import { apduFramingFor, openCtapHidTransport, openOathSession } from '../open.js';
import type { OpenKey } from '../open.js';
import { isElevated } from '../../util/elevation.js';
import { interfaceFingerprint, interfaceNameOf, mergeInterfaces } from './interfaces.js';
import type { ReachPlatform } from './interfaces.js';
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
import { listPcscReaders, probeOathCard } from './pcsc-readers.js';
import type { PcscReaderInfo } from './pcsc-readers.js';
import { listRunningVirtualKeys } from './virtual-keys.js';
import type { RunningVirtualKey } from './virtual-keys.js';

export type KeyKind = 'hid' | 'virtual' | 'pcsc';

/** One way to reach a key, as one source lists it. */
export interface KeyInterface {
  /**
   * Stable while the key stays plugged in: `virtual:<id>` for a virtual key, the HID path for a
   * real one, `pcsc:<reader name>` for a card in a PC/SC reader.
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
  /** Which physical key it is (oath/identity.ts), where the listing already knows (a PC/SC card's probe tells it). */
  readonly identity?: string | undefined;
  /**
   * Opens a fresh APDU transport to the key (CTAPHID over a HID link, or PC/SC); the caller closes
   * it. `openOathSession` (open.ts) is how callers use it.
   */
  open(signal?: AbortSignal): Promise<ApduTransport>;
}

/**
 * A key: one or more interfaces of one physical key. Its id, kind and path are those of the
 * interface tried first; `open` tries them in `interfaces` order (interfaces.ts).
 */
export interface KeyDescriptor extends KeyInterface {
  /** Every way to reach the key now, in the order they are tried (at least one). */
  readonly interfaces: readonly KeyInterface[];
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

/** How this process reaches keys: its platform, and on Windows whether it runs as Administrator. */
export const THIS_PLATFORM: ReachPlatform = { platform: process.platform, isElevated: () => isElevated() };

/** All keys that can be reached now, one entry per physical key. */
export async function enumerateKeys(options: EnumerateOptions = {}): Promise<KeyDescriptor[]> {
  const interfaces = await enumerateInterfaces(options);
  return mergeInterfaces(interfaces, await identities(interfaces), THIS_PLATFORM);
}

/** Every interface that can be reached now, as the sources list them. */
export async function enumerateInterfaces(options: EnumerateOptions = {}): Promise<KeyInterface[]> {
  const sources: [SourceName, () => Promise<KeyInterface[]>][] = [];
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

/** How long one interface may take to answer the SELECT that tells which key it is. */
const IDENTIFY_INTERFACE_MS = 2_000;
/** After a HID interface could not tell, the listing is offered again this long after. */
const IDENTIFY_RETRY_MS = 1_000;

/** What an interface last told of its identity, by interfaceFingerprint, while it stays listed (this process only). */
interface ToldIdentity {
  /** undefined: it answered, telling neither serial nor device id. */
  identity: string | undefined;
  /** Asks in a row that could not reach it, since it last answered. */
  missed: number;
}
const told = new Map<string, ToldIdentity>();
/** An interface that cannot be asked this many times in a row is not asked again until it is listed anew. */
const IDENTIFY_TRIES = 5;

/**
 * The identity of each interface that could be another's. Only when there are both HID interfaces
 * of OATH keys and CCID interfaces, the interfaces whose listing did not tell are asked (one
 * SELECT each, one after the other: two at once could be two interfaces of one key). A serial
 * once told is kept while the interface stays listed; a device id is asked again each time, since
 * it comes from the salt, which a RESET replaces while the key stays in, and the last one told
 * stands in while the interface cannot be asked (another program holds the card). One never
 * told stays a key of its own in this listing, and a relisting is offered (onUnknownFidoChange).
 */
async function identities(interfaces: readonly KeyInterface[]): Promise<Map<KeyInterface, string>> {
  const known = new Map<KeyInterface, string>();
  const listed = new Set(interfaces.map(interfaceFingerprint));
  for (const fingerprint of [...told.keys()]) if (!listed.has(fingerprint)) told.delete(fingerprint);
  for (const key of interfaces) if (key.identity !== undefined) known.set(key, key.identity);
  const oath = interfaces.filter((k) => k.dialect !== 'feitian');
  const hid = oath.filter((k) => interfaceNameOf(k) === 'hid');
  const ccid = oath.filter((k) => interfaceNameOf(k) === 'ccid');
  if (hid.length === 0 || ccid.length === 0) return known;
  let retry = false;
  for (const key of [...hid, ...ccid]) {
    if (known.has(key)) continue;
    const fingerprint = interfaceFingerprint(key);
    const before = told.get(fingerprint);
    if (before?.identity?.startsWith('serial:')) {
      known.set(key, before.identity);
      continue;
    }
    if (before !== undefined && before.missed >= IDENTIFY_TRIES) {
      if (before.identity !== undefined) known.set(key, before.identity);
      continue;
    }
    const answer = await askIdentity(key);
    if (answer === 'unreachable') {
      told.set(fingerprint, { identity: before?.identity, missed: (before?.missed ?? 0) + 1 });
      if (before?.identity !== undefined) known.set(key, before.identity);
      else retry = true;
      continue;
    }
    told.set(fingerprint, { identity: answer.identity, missed: 0 });
    if (answer.identity !== undefined) known.set(key, answer.identity);
  }
  if (retry) setTimeout(notifyUnknownFidoChange, IDENTIFY_RETRY_MS).unref();
  return known;
}

/** What the interface's SELECT tells, or 'unreachable' when it cannot be asked now (busy, no answer). */
async function askIdentity(key: KeyInterface): Promise<{ identity: string | undefined } | 'unreachable'> {
  let opened: OpenKey | undefined;
  try {
    opened = await openOathSession(key, AbortSignal.timeout(IDENTIFY_INTERFACE_MS));
    return { identity: opened.session.identity };
  } catch {
    return 'unreachable';
  } finally {
    await opened?.close().catch(() => undefined);
  }
}

export async function listHidKeys(): Promise<KeyInterface[]> {
  const devices = await listHidDevices();
  return [...hidInterfaces(devices), ...(await unknownFidoKeys(devices))];
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
export async function unknownFidoKeys(devices: readonly HidDeviceInfo[], open: HidOpener = openHid, options: UnknownFidoOptions = {}): Promise<KeyInterface[]> {
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
  const keys: KeyInterface[] = [];
  for (const { device, entry } of asked) {
    if (entry.settled?.kind === 'key') keys.push(unknownKeyInterface(device, entry.settled.dialect, open));
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

function unknownKeyInterface(device: HidDeviceInfo, dialect: KeyDialect, open: HidOpener): KeyInterface {
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

export async function listVirtualKeys(): Promise<KeyInterface[]> {
  return (await listRunningVirtualKeys()).map(virtualInterface);
}

/**
 * PC/SC readers with a card that has an OATH applet: Yubico readers by name (as ykman decides:
 * "yubico yubikey"; such a reader is the key itself, and a YubiKey has OATH over CCID only),
 * other readers when the card answers SELECT OATH with 9000, which also tells which key it is: a
 * Nitrokey 3's CCID interface is merged with its HID interface by that (interfaces.ts).
 */
export async function listPcscKeys(): Promise<KeyInterface[]> {
  let readers: PcscReaderInfo[];
  try {
    readers = await listPcscReaders();
  } catch (error) {
    if (isPcscUnavailable(error)) return [];
    throw error;
  }
  const keys: KeyInterface[] = [];
  for (const reader of readers) {
    if (!reader.cardPresent) continue;
    if (YUBICO_READER.test(reader.name)) {
      keys.push(pcscInterface(reader.name, 'YubiKey'));
      continue;
    }
    const answer = await probeOathCard(reader);
    if (!answer?.oath) continue;
    keys.push(pcscInterface(reader.name, NITROKEY_READER.test(reader.name) ? 'Nitrokey 3' : reader.name, answer.identity));
  }
  return keys;
}

const YUBICO_READER = /yubico yubikey/iu;
const NITROKEY_READER = /nitrokey/iu;

export function pcscInterface(readerName: string, name: string, identity?: string): KeyInterface {
  return {
    id: `pcsc:${readerName}`,
    kind: 'pcsc',
    name,
    path: readerName,
    dialect: YUBICO_READER.test(readerName) ? 'yubikey' : NITROKEY_READER.test(readerName) ? 'nitrokey3' : undefined,
    identity,
    open: (signal?: AbortSignal) => PcscApduTransport.open(readerName, { description: name, signal }),
  };
}

/**
 * The OATH-capable FIDO interfaces among the HID devices the OS lists. One descriptor per path:
 * macOS and Windows may list one interface once per top-level collection.
 */
export function hidInterfaces(devices: readonly HidDeviceInfo[]): KeyInterface[] {
  const seen = new Set<string>();
  const keys: KeyInterface[] = [];
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

export function virtualInterface(info: RunningVirtualKey): KeyInterface {
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
