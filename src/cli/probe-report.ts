/**
 * `keytap doctor --probe`: the words of the summary and the report file. The device layer
 * (src/device/probe/) says what each device answered, as data; this file says it to a person and
 * writes the report, which is that data as JSON under a short header of its own.
 */
import { resolve } from 'node:path';
import type { ProbeRun } from '../device/probe/run.js';
import type { DeviceProbe, HidDeviceProbe, PcscReaderProbe, ProbeOutcome } from '../device/probe/types.js';
import { printable } from '../util/printable.js';

/** The README names no project address yet: the report says this much. */
export const SEND_REPORT_TO = 'attach it to an issue at the keytap project';

export const REPORT_FORMAT = 'keytap-probe/1';

export interface ProbeReport {
  format: typeof REPORT_FORMAT;
  about: string;
  keytapVersion: string;
  platform: string;
  createdAt: string;
  includesSerials: boolean;
  devices: DeviceProbe[];
  problems: ProbeRun['problems'];
}

export function buildReport(run: ProbeRun, context: { version: string; platform: string; now: Date; includeSerials: boolean }): ProbeReport {
  return {
    format: REPORT_FORMAT,
    about:
      'What keytap doctor --probe learned from the USB security keys and smart card readers of this machine. ' +
      'It only read: nothing was written to any key. ' +
      (context.includeSerials
        ? 'Serial numbers are included (--include-serials). '
        : 'Serial numbers are left out; no secret is in it (the OATH answer is reduced to its version and whether a password is set). ') +
      `To help keytap support a key, ${SEND_REPORT_TO}.`,
    keytapVersion: context.version,
    platform: context.platform,
    createdAt: context.now.toISOString(),
    includesSerials: context.includeSerials,
    devices: run.devices,
    problems: run.problems,
  };
}

/** `keytap-probe-20261203-061500.json`, in the current folder. */
export function defaultReportName(now: Date): string {
  const stamp = now.toISOString().replace(/[-:]/gu, '').replace('T', '-').slice(0, 15);
  return `keytap-probe-${stamp}.json`;
}

export function describeOutcome(outcome: ProbeOutcome): string {
  switch (outcome.status) {
    case 'answered':
      return outcome.sw === undefined ? 'answered' : `answered ${outcome.sw}`;
    case 'ctaphid-error':
      return `refused: CTAPHID error ${outcome.error} (0x${outcome.code.toString(16).padStart(2, '0')})`;
    case 'no-answer':
      return `no answer within ${outcome.waitedMs} ms`;
    case 'failed':
      return `failed (${outcome.error}): ${printable(outcome.message)}`;
    case 'not-asked':
      return `not asked (${NOT_ASKED[outcome.reason]})`;
  }
}

const NOT_ASKED: Record<Extract<ProbeOutcome, { status: 'not-asked' }>['reason'], string> = {
  'no-channel': 'no CTAPHID channel',
  'device-gone': 'the device went away',
  'no-card': 'no card in the reader',
};

const SPOKEN: Record<string, string> = {
  'oath-over-ctaphid': 'OATH over the FIDO interface (CTAPHID 0x70, as on a Nitrokey 3)',
  'feitian-hotp': 'the Feitian HOTP programming protocol',
  'oath-over-ccid': 'OATH over the smart card interface (PC/SC, as on a YubiKey)',
};

function text(value: string | undefined): string {
  return value === undefined ? '' : printable(value);
}

function hidLines(device: HidDeviceProbe): string[] {
  const lines: string[] = [];
  const id = device.vendorId === undefined ? '' : ` ${device.vendorId}:${device.productId}`;
  lines.push(`${text(device.name)}${id} (${text(device.path)})${device.knownAs === undefined && device.kind === 'hid' ? ', not a key keytap knows' : ''}`);
  if (device.manufacturer !== undefined || device.product !== undefined) lines.push(`  strings: ${text(device.manufacturer)} / ${text(device.product)}`);
  if (device.usbSerial !== undefined) lines.push(`  USB serial: ${text(device.usbSerial)}`);
  if (device.announcedDialect !== undefined) lines.push(`  announced dialect: ${device.announcedDialect}`);
  lines.push(
    `  interfaces: ${device.interfaces.map((i) => `#${i.interface} usage page ${hexOrDash(i.usagePage)} usage ${hexOrDash(i.usage)}`).join(', ')}`,
  );
  const { init } = device;
  const caps = init.capabilities;
  lines.push(
    `  CTAPHID INIT: ${describeOutcome(init.outcome)}` +
      (caps ? `, version ${init.deviceVersion}, capabilities 0x${caps.raw.toString(16).padStart(2, '0')} (${capabilityWords(caps).join(', ') || 'none'})` : ''),
  );
  lines.push(`  U2F VERSION: ${describeOutcome(device.u2fVersion.outcome)}${device.u2fVersion.version ? `, "${device.u2fVersion.version}"` : ''}`);
  const info = device.ctap2GetInfo;
  let getInfo = `  CTAP2 getInfo: ${describeOutcome(info.outcome)}`;
  if (info.ctapStatus !== undefined && info.ctapStatus !== 0) getInfo += `, CTAP2 status 0x${info.ctapStatus.toString(16).padStart(2, '0')}`;
  if (info.versions) getInfo += `, versions ${info.versions.map(printable).join(' ')}`;
  if (info.aaguid) getInfo += `, AAGUID ${info.aaguid}`;
  if (info.unreadable) getInfo += `, unreadable: ${printable(info.unreadable)}`;
  lines.push(getInfo);
  lines.push(`  OATH over 0x70: ${oathWords(device.oathOverCtapHid)}`);
  let feitian = `  Feitian SELECT over MSG: ${describeOutcome(device.feitian.outcome)}`;
  const check = device.feitian.check;
  if (check) {
    feitian += `; CHECK ${describeOutcome(check.outcome)}`;
    if (check.programmed !== undefined) feitian += `, programmed: ${check.programmed ? 'yes' : 'no'}`;
    if (check.serial !== undefined) feitian += `, token serial ${printable(check.serial)}`;
  }
  lines.push(feitian);
  return lines;
}

function oathWords(oath: HidDeviceProbe['oathOverCtapHid']): string {
  let line = describeOutcome(oath.outcome);
  if (oath.version) line += `, version ${oath.version}`;
  if (oath.dialect) line += `, ${oath.dialect === 'nitrokey3' ? 'Nitrokey 3 Secrets App' : 'YKOATH'}`;
  if (oath.passwordSet !== undefined) line += `, password set: ${oath.passwordSet ? 'yes' : 'no'}`;
  if (oath.pinSet !== undefined) line += `, PIN set: ${oath.pinSet ? 'yes' : 'no'}`;
  if (oath.serial !== undefined) line += `, serial ${oath.serial}`;
  if (oath.unreadable) line += `, unreadable: ${printable(oath.unreadable)}`;
  return line;
}

function pcscLines(reader: PcscReaderProbe): string[] {
  const lines = [`PC/SC reader ${text(reader.reader)}${reader.cardPresent ? '' : ' (no card)'}`];
  if (reader.atr !== undefined) lines.push(`  ATR: ${reader.atr}`);
  lines.push(`  OATH SELECT: ${oathWords(reader.oath)}`);
  let management = `  Management SELECT: ${describeOutcome(reader.management.outcome)}`;
  if (reader.management.version) management += `, firmware ${printable(reader.management.version)}`;
  if (reader.management.serial) management += `, serial ${reader.management.serial}`;
  lines.push(management);
  return lines;
}

function capabilityWords(caps: NonNullable<HidDeviceProbe['init']['capabilities']>): string[] {
  const words: string[] = [];
  if (caps.wink) words.push('WINK');
  if (caps.lock) words.push('LOCK');
  if (caps.cbor) words.push('CBOR');
  if (caps.nmsg) words.push('NMSG: no U2F');
  return words;
}

function hexOrDash(n: number | undefined): string {
  return n === undefined ? '-' : `0x${n.toString(16).padStart(4, '0').toUpperCase()}`;
}

/** The summary printed to the terminal. */
export function formatProbe(run: ProbeRun, reportPath: string | undefined): string[] {
  const lines: string[] = [];
  if (run.devices.length === 0) lines.push('No FIDO HID device, virtual key or smart card reader found.');
  for (const device of run.devices) {
    lines.push(...(device.kind === 'pcsc' ? pcscLines(device) : hidLines(device)));
    lines.push(
      device.speaks.length > 0 ? `  keytap can use it with ${device.speaks.map((s) => SPOKEN[s]).join(' and ')}.` : '  keytap knows no protocol this device answered.',
    );
  }
  for (const problem of run.problems) {
    const source = { hid: 'HID devices', virtual: 'virtual keys', pcsc: 'smart card readers' }[problem.source];
    lines.push(`Could not list ${source}: ${printable(problem.message)}`);
  }
  if (reportPath !== undefined) {
    lines.push('', `Report written to ${resolve(reportPath)}.`, `Nothing was written to any key. To help keytap support a key, ${SEND_REPORT_TO}.`);
  }
  return lines;
}
