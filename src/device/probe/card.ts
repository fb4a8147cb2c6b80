/**
 * The card-side questions of the probe, over any ApduTransport (CTAPHID 0x70 or PC/SC): SELECT of
 * the OATH application and of Yubico's Management application, and, only when serials were asked
 * for, READ CONFIG for a YubiKey's serial. All of them only read. The OATH SELECT answer carries
 * a salt and, with a password set, a challenge: neither leaves this file, only "a password is set".
 */
import { formatSerial, INS_READ_CONFIG, MANAGEMENT_AID, parseDeviceInfo, serialOfDeviceInfo } from '../management.js';
import { Ins, OATH_AID, Tag } from '../oath/constants.js';
import { detectDialect } from '../oath/dialect.js';
import { findTlv, parseTlvs } from '../oath/tlv.js';
import type { ApduTransport } from '../transport/types.js';
import { encodeApdu } from '../transport/types.js';
import { answered, deviceGone, failureOutcome } from './outcome.js';
import type { ManagementProbe, OathProbe } from './types.js';

export const OATH_SELECT = encodeApdu(0x00, Ins.SELECT, 0x04, 0x00, OATH_AID);
export const MANAGEMENT_SELECT = encodeApdu(0x00, Ins.SELECT, 0x04, 0x00, MANAGEMENT_AID);
const READ_CONFIG_PAGE_0 = encodeApdu(0x00, INS_READ_CONFIG, 0x00, 0x00);

const SW_OK = 0x9000;

export interface CardQuestionOptions {
  includeSerials: boolean;
  timeoutMs: number;
  signal?: AbortSignal | undefined;
}

export async function probeOathSelect(transport: ApduTransport, options: CardQuestionOptions): Promise<OathProbe> {
  let answer;
  try {
    answer = await transport.transmit(OATH_SELECT, { timeoutMs: options.timeoutMs, signal: options.signal });
  } catch (error) {
    return { outcome: failureOutcome(error, options.timeoutMs, options.signal) };
  }
  const probe: OathProbe = { outcome: answered(answer.sw) };
  if (answer.sw !== SW_OK) return probe;
  try {
    const tlvs = parseTlvs(answer.data);
    const version = findTlv(tlvs, Tag.VERSION);
    if (version?.length === 3) probe.version = [...version].join('.');
    probe.dialect = detectDialect(tlvs);
    probe.passwordSet = findTlv(tlvs, Tag.CHALLENGE) !== undefined;
    const pinCounter = findTlv(tlvs, Tag.PIN_COUNTER);
    if (probe.dialect === 'nitrokey3') {
      probe.pinSet = pinCounter !== undefined;
      if (pinCounter?.length === 1) probe.pinAttemptsLeft = pinCounter[0];
    }
    const serial = findTlv(tlvs, Tag.SERIAL);
    if (options.includeSerials && serial !== undefined && serial.length > 0) probe.serial = formatSerial('nitrokey3', serial);
  } catch (error) {
    probe.unreadable = error instanceof Error ? error.message : String(error);
  }
  return probe;
}

/** Management SELECT answers the firmware version as text; READ CONFIG (serials only) the DEVICE INFO TLVs. */
export async function probeManagement(transport: ApduTransport, options: CardQuestionOptions): Promise<ManagementProbe> {
  let answer;
  try {
    answer = await transport.transmit(MANAGEMENT_SELECT, { timeoutMs: options.timeoutMs, signal: options.signal });
  } catch (error) {
    return { outcome: failureOutcome(error, options.timeoutMs, options.signal) };
  }
  const probe: ManagementProbe = { outcome: answered(answer.sw) };
  if (answer.sw !== SW_OK) return probe;
  const text = Buffer.from(answer.data).toString('latin1');
  // "5.4.3", possibly with a product prefix on old firmware ("Virtual mgmt - FW version 4.2.6"): keep the version only.
  const version = /\d+\.\d+\.\d+/u.exec(text);
  if (version) probe.version = version[0];
  if (!options.includeSerials || deviceGone(probe.outcome)) return probe;
  try {
    const config = await transport.transmit(READ_CONFIG_PAGE_0, { timeoutMs: options.timeoutMs, signal: options.signal });
    if (config.sw === SW_OK) {
      const tlvs = parseDeviceInfo(config.data);
      const serial = tlvs && serialOfDeviceInfo(tlvs);
      if (serial) probe.serial = formatSerial('yubikey', serial);
    }
  } catch (error) {
    failureOutcome(error, options.timeoutMs, options.signal); // rethrows a cancellation; the serial is just missing otherwise
  }
  return probe;
}
