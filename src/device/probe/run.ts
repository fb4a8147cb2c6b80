/**
 * The probe over everything that may be a key: every HID interface on the FIDO usage page
 * (node-hid's list), every served virtual key (so the tests can probe them), and every PC/SC reader.
 * One device at a time, each question bounded (hid.ts, card.ts), so the whole probe ends in
 * bounded time. A source that cannot be listed (no node-hid, no pcscd) is reported, not thrown.
 */
import { basename } from 'node:path';
import { cancelledError, isKeytapError, KeytapError } from '../../errors.js';
import type { HidDeviceInfo } from '../discovery/hid-devices.js';
import { listHidDevices } from '../discovery/hid-devices.js';
import { FIDO_USAGE_PAGE, findKnownKey, linuxPermissionHint } from '../discovery/known-keys.js';
import { listPcscReaders } from '../discovery/pcsc-readers.js';
import type { PcscReaderInfo } from '../discovery/pcsc-readers.js';
import { listRunningVirtualKeys } from '../discovery/virtual-keys.js';
import type { RunningVirtualKey } from '../discovery/virtual-keys.js';
import { NodeHidLink } from '../transport/node-hid-link.js';
import { isPcscUnavailable, PcscApduTransport } from '../transport/pcsc.js';
import { SocketHidLink } from '../transport/socket-link.js';
import type { PcscLibrary } from '../transport/pcsc-api.js';
import type { ApduTransport, HidLink } from '../transport/types.js';
import { probeManagement, probeOathSelect } from './card.js';
import { probeHidLink, unreachable } from './hid.js';
import type { HidProbeAnswers } from './types.js';
import { failureOutcome } from './outcome.js';
import type { HidDeviceProbe, HidInterface, PcscReaderProbe, ProbeOptions, SpokenProtocol } from './types.js';
import { hex4, PROBE_QUESTION_TIMEOUT_MS } from './types.js';

export type ProbeSource = 'hid' | 'virtual' | 'pcsc';

export interface ProbeSourceProblem {
  source: ProbeSource;
  /** KeytapError code. */
  error: string;
  message: string;
}

export interface ProbeRun {
  devices: Array<HidDeviceProbe | PcscReaderProbe>;
  /** Sources that could not be listed (node-hid missing, pcscd not running). */
  problems: ProbeSourceProblem[];
}

export interface ProbeRunOptions extends ProbeOptions {
  hid?: boolean | undefined;
  virtual?: boolean | undefined;
  pcsc?: boolean | undefined;
  /** Tests: how HID devices are listed and opened (default node-hid). */
  listHid?: (() => Promise<HidDeviceInfo[]>) | undefined;
  openHid?: ((path: string) => Promise<HidLink>) | undefined;
}

export async function probeEverything(options: ProbeRunOptions = {}): Promise<ProbeRun> {
  const run: ProbeRun = { devices: [], problems: [] };
  const note = (source: ProbeSource, error: unknown): void => {
    if (options.signal?.aborted) throw cancelledError(options.signal);
    const keytapError = isKeytapError(error) ? error : new KeytapError('DEVICE_ERROR', `Listing ${source} devices failed.`, { cause: error });
    run.problems.push({ source, error: keytapError.code, message: keytapError.message });
  };
  if (options.hid ?? true) {
    try {
      run.devices.push(...(await probeHidDevices(await (options.listHid ?? listHidDevices)(), options)));
    } catch (error) {
      note('hid', error);
    }
  }
  if (options.virtual ?? true) {
    try {
      for (const key of await listRunningVirtualKeys()) run.devices.push(await probeVirtualKey(key, options));
    } catch (error) {
      note('virtual', error);
    }
  }
  if (options.pcsc ?? true) {
    try {
      for (const reader of await listPcscReaders()) run.devices.push(await probePcscReader(reader, options));
    } catch (error) {
      // No PC/SC library or no pcscd is "no readers here", said once.
      note('pcsc', error);
      if (isPcscUnavailable(error)) run.problems.at(-1)!.error = 'PCSC_UNAVAILABLE';
    }
  }
  return run;
}

/** One probe per FIDO interface path; each lists every interface of its device (same VID:PID and USB serial). */
export async function probeHidDevices(devices: readonly HidDeviceInfo[], options: ProbeRunOptions = {}): Promise<HidDeviceProbe[]> {
  const seen = new Set<string>();
  const probes: HidDeviceProbe[] = [];
  for (const device of devices) {
    if (device.path === undefined || device.usagePage !== FIDO_USAGE_PAGE || seen.has(device.path)) continue;
    seen.add(device.path);
    const siblings = devices.filter(
      (d) => d.vendorId === device.vendorId && d.productId === device.productId && (d.serialNumber ?? '') === (device.serialNumber ?? ''),
    );
    const interfaces: HidInterface[] = [];
    for (const d of siblings) {
      if (!interfaces.some((i) => i.interface === d.interface && i.usagePage === d.usagePage && i.usage === d.usage)) {
        interfaces.push({ interface: d.interface, usagePage: d.usagePage, usage: d.usage });
      }
    }
    const known = findKnownKey(device.vendorId, device.productId);
    const path = device.path;
    const open = options.openHid ?? ((p: string) => NodeHidLink.open(p, { linuxPermissionHint: linuxPermissionHint() }));
    const probe: HidDeviceProbe = {
      kind: 'hid',
      name: known?.name ?? device.product ?? `FIDO device ${hex4(device.vendorId)}:${hex4(device.productId)}`,
      vendorId: hex4(device.vendorId),
      productId: hex4(device.productId),
      manufacturer: device.manufacturer || undefined,
      product: device.product || undefined,
      usbSerial: options.includeSerials ? device.serialNumber || undefined : undefined,
      path,
      interfaces,
      knownAs: known?.name,
      ...(await probeLink(() => open(path), options)),
    };
    const serial = device.serialNumber ?? '';
    probes.push(options.includeSerials || serial.length < MIN_REDACTED_SERIAL ? probe : withoutSerial(probe, serial));
  }
  return probes;
}

/** Shorter USB "serials" (a placeholder "0") are not hunted for in the report's other strings. */
const MIN_REDACTED_SERIAL = 4;
const SERIAL_LEFT_OUT = '(serial left out)';

/**
 * Every string of `value` with the USB serial replaced: on some platforms node-hid's path carries
 * it (hidapi builds paths from the OS's device ids), and so do error texts that name the path.
 */
function withoutSerial<T>(value: T, serial: string): T {
  const pattern = new RegExp(serial.replace(/[.*+?^${}()|[\]\\]/gu, '\\$&'), 'giu');
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return v.replace(pattern, SERIAL_LEFT_OUT);
    if (Array.isArray(v)) return v.map(walk);
    if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return walk(value) as T;
}

export async function probeVirtualKey(key: RunningVirtualKey, options: ProbeOptions = {}): Promise<HidDeviceProbe> {
  return {
    kind: 'virtual',
    name: `virtual key ${basename(key.file)}`,
    path: key.socket,
    interfaces: [{ interface: 0, usagePage: FIDO_USAGE_PAGE, usage: 0x01 }],
    announcedDialect: key.dialect,
    ...(await probeLink(() => SocketHidLink.connect(key.socket), options)),
  };
}

/** Opens the link and probes it; a link that cannot be opened is the INIT question's outcome. */
async function probeLink(open: () => Promise<HidLink>, options: ProbeOptions): Promise<HidProbeAnswers> {
  let link: HidLink;
  try {
    link = await open();
  } catch (error) {
    return unreachable(failureOutcome(error, 0, options.signal));
  }
  return probeHidLink(link, options);
}

/** pcsc-lite puts a reader's USB serial in parentheses before the index ("Nitrokey 3 [CCID] (0123ABCD) 00 00"). */
const READER_SERIAL = /\(([^()]*)\)(?=\s+[0-9A-F]{2}\s+[0-9A-F]{2}$)/u;

export function readerNameForReport(name: string, includeSerials: boolean): string {
  return includeSerials ? name : name.replace(READER_SERIAL, SERIAL_LEFT_OUT);
}

export interface PcscProbeOptions extends ProbeOptions {
  /** Tests: the transport to the reader's card (default PC/SC, exclusive, no waiting for another program). */
  openCard?: ((reader: string) => Promise<ApduTransport>) | undefined;
  /** Tests: another implementation of the PC/SC API for the default transport. */
  pcscLibrary?: PcscLibrary | undefined;
}

export async function probePcscReader(reader: PcscReaderInfo, options: PcscProbeOptions = {}): Promise<PcscReaderProbe> {
  const includeSerials = options.includeSerials ?? false;
  const timeoutMs = options.questionTimeoutMs ?? PROBE_QUESTION_TIMEOUT_MS;
  const probe: PcscReaderProbe = {
    kind: 'pcsc',
    reader: readerNameForReport(reader.name, includeSerials),
    cardPresent: reader.cardPresent,
    atr: reader.atr ? Buffer.from(reader.atr).toString('hex') : undefined,
    oath: { outcome: { status: 'not-asked', reason: 'no-card' } },
    management: { outcome: { status: 'not-asked', reason: 'no-card' } },
    speaks: [],
  };
  if (!reader.cardPresent) return probe;
  let transport: ApduTransport;
  try {
    // The report's name as the description: the transport's errors (BUSY, TIMEOUT, removed…) name
    // the reader by it, and they end up in the report, where pcsc-lite's name would carry the serial.
    const openCard =
      options.openCard ??
      ((name: string) =>
        PcscApduTransport.open(name, { description: probe.reader, busyWaitMs: 0, connectTimeoutMs: timeoutMs, signal: options.signal, library: options.pcscLibrary }));
    transport = await openCard(reader.name);
  } catch (error) {
    // A TIMEOUT here is the connect's, bounded by the question timeout.
    const outcome = failureOutcome(error, timeoutMs, options.signal);
    probe.oath.outcome = outcome;
    probe.management.outcome = outcome;
    return probe;
  }
  try {
    const card = { includeSerials, timeoutMs, signal: options.signal };
    probe.oath = await probeOathSelect(transport, card);
    probe.management = await probeManagement(transport, card);
  } finally {
    await transport.close().catch(() => undefined);
  }
  const speaks: SpokenProtocol[] = [];
  if (probe.oath.outcome.status === 'answered' && probe.oath.outcome.sw === '9000' && probe.oath.unreadable === undefined) speaks.push('oath-over-ccid');
  probe.speaks = speaks;
  return probe;
}
