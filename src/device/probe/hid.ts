/**
 * Probing one FIDO HID device (or a virtual key's socket link): INIT on the broadcast channel,
 * then one question at a time, each with a short deadline and the caller's signal — U2F VERSION
 * over MSG, CTAP2 authenticatorGetInfo over CBOR, OATH SELECT over the Nitrokey 3's vendor command
 * 0x70, the Feitian HOTP application's SELECT over MSG and, when that answers 9000, its CHECK.
 *
 * Read-only by construction: no PUT, RESET, PROGRAM, ERASE or anything that waits for a touch is
 * ever built here (Feitian 07/09 are not even imported). A broken or garbled answer is recorded
 * as such; only a cancellation leaves this file as an exception.
 */
import { printable } from '../../util/printable.js';
import { Capability, CtapHidCommand, CtapHidError } from '../transport/ctaphid-frames.js';
import { CtapHidApduTransport, CtapHidChannel } from '../transport/ctaphid.js';
import type { ApduResponse, HidLink } from '../transport/types.js';
import { checkApdu, parseCheckAnswer, selectApdu as feitianSelectApdu } from '../feitian/protocol.js';
import { probeOathSelect } from './card.js';
import type { CardQuestionOptions } from './card.js';
import { CborError, decodeCbor, readGetInfo } from './cbor.js';
import { answered, deviceGone, failureOutcome } from './outcome.js';
import type { FeitianProbe, GetInfoProbe, HidProbeAnswers, InitProbe, OathProbe, ProbeOptions, ProbeOutcome, SpokenProtocol, U2fVersionProbe } from './types.js';
import { PROBE_QUESTION_TIMEOUT_MS } from './types.js';

/** U2F VERSION (CTAP1): short Le, and the extended form for keys that take only extended APDUs (6700 to the short one). */
export const U2F_VERSION_SHORT = Uint8Array.of(0x00, 0x03, 0x00, 0x00, 0x00);
export const U2F_VERSION_EXTENDED = Uint8Array.of(0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00);
/** authenticatorGetInfo: CTAPHID CBOR with the one byte 0x04. */
export const CTAP2_GET_INFO = Uint8Array.of(0x04);

const SW_OK = 0x9000;
const SW_WRONG_LENGTH = 0x6700;


const notAsked = (reason: 'no-channel' | 'device-gone'): ProbeOutcome => ({ status: 'not-asked', reason });

/** The answers of a device without a channel: `init` says why (it could not be opened, INIT failed); nothing else was asked. */
export function unreachable(init: ProbeOutcome): HidProbeAnswers {
  const skipped = notAsked(deviceGone(init) ? 'device-gone' : 'no-channel');
  return { init: { outcome: init }, u2fVersion: { outcome: skipped }, ctap2GetInfo: { outcome: skipped }, oathOverCtapHid: { outcome: skipped }, feitian: { outcome: skipped }, speaks: [] };
}

/** Asks the device on `link` everything the probe asks, then closes the link. */
export async function probeHidLink(link: HidLink, options: ProbeOptions = {}): Promise<HidProbeAnswers> {
  const timeoutMs = options.questionTimeoutMs ?? PROBE_QUESTION_TIMEOUT_MS;
  const { signal } = options;
  const includeSerials = options.includeSerials ?? false;
  let channel: CtapHidChannel;
  try {
    channel = await CtapHidChannel.open(link, { initTimeoutMs: timeoutMs, signal });
  } catch (error) {
    await link.close().catch(() => undefined);
    return unreachable(failureOutcome(error, timeoutMs, signal));
  }
  try {
    const { info } = channel;
    const caps = info.capabilities;
    const init: InitProbe = {
      outcome: answered(),
      protocolVersion: info.protocolVersion,
      deviceVersion: info.deviceVersion.join('.'),
      capabilities: {
        raw: caps,
        wink: (caps & Capability.WINK) !== 0,
        lock: (caps & Capability.LOCK) !== 0,
        cbor: (caps & Capability.CBOR) !== 0,
        nmsg: (caps & Capability.NMSG) !== 0,
      },
    };
    const msg = new CtapHidApduTransport(channel, 'probed key', 'msg');
    const vendor = new CtapHidApduTransport(channel, 'probed key', 'vendor-secrets');
    let gone = false;
    // Each question runs only while the device is still there; once it is gone the rest say so.
    const ask = async <T extends { outcome: ProbeOutcome }>(question: () => Promise<T>): Promise<T> => {
      if (gone) return { outcome: notAsked('device-gone') } as T;
      const result = await question();
      gone = deviceGone(result.outcome);
      return result;
    };
    const transmit = (transport: CtapHidApduTransport, apdu: Uint8Array): Promise<ApduResponse> => transport.transmit(apdu, { timeoutMs, signal });

    const u2fVersion = await ask(async (): Promise<U2fVersionProbe> => {
      try {
        let answer = await transmit(msg, U2F_VERSION_SHORT);
        if (answer.sw === SW_WRONG_LENGTH) answer = await transmit(msg, U2F_VERSION_EXTENDED);
        const probe: U2fVersionProbe = { outcome: answered(answer.sw) };
        if (answer.sw === SW_OK) probe.version = printableAscii(answer.data);
        return probe;
      } catch (error) {
        return { outcome: failureOutcome(error, timeoutMs, signal) };
      }
    });

    const ctap2GetInfo = await ask(async (): Promise<GetInfoProbe> => {
      let payload: Uint8Array;
      try {
        payload = await channel.call(CtapHidCommand.CBOR, CTAP2_GET_INFO, { timeoutMs, signal, operation: 'authenticatorGetInfo' });
      } catch (error) {
        return { outcome: failureOutcome(error, timeoutMs, signal) };
      }
      const probe: GetInfoProbe = { outcome: answered() };
      if (payload.length === 0) {
        probe.unreadable = 'the answer has no status byte';
        return probe;
      }
      probe.ctapStatus = payload[0];
      if (payload[0] !== 0) return probe;
      try {
        Object.assign(probe, readGetInfo(decodeCbor(payload.subarray(1))));
      } catch (error) {
        probe.unreadable = error instanceof CborError || error instanceof TypeError ? error.message : String(error);
      }
      return probe;
    });

    const oathOverCtapHid = await ask(() => probeOathSelect(vendor, { includeSerials, timeoutMs, signal }));

    const feitian = await ask(() => probeFeitian(msg, { includeSerials, timeoutMs, signal }));

    return { init, u2fVersion, ctap2GetInfo, oathOverCtapHid, feitian, speaks: spokenOverHid(oathOverCtapHid, feitian) };
  } finally {
    await channel.close().catch(() => undefined);
  }
}

/** SELECT OATH answered 9000 with an answer that reads. */
function answersOath(oath: OathProbe): boolean {
  return oath.outcome.status === 'answered' && oath.outcome.sw === '9000' && oath.unreadable === undefined;
}

/**
 * The Feitian application is there and CHECK, ending in 90 00, says programmed or not as hyperhotp
 * reads it (a short refusal such as 6D00 would otherwise read as "not programmed").
 */
function answersFeitian(feitian: FeitianProbe): boolean {
  const check = feitian.check;
  return check?.programmed !== undefined && check.outcome.status === 'answered' && check.outcome.sw === '9000';
}

function spokenOverHid(oath: OathProbe, feitian: FeitianProbe): SpokenProtocol[] {
  const speaks: SpokenProtocol[] = [];
  if (answersOath(oath)) speaks.push('oath-over-ctaphid');
  if (answersFeitian(feitian)) speaks.push('feitian-hotp');
  return speaks;
}

/** SELECT of the Feitian HOTP application over MSG and, when it answers 9000, CHECK. */
async function probeFeitian(msg: CtapHidApduTransport, options: CardQuestionOptions): Promise<FeitianProbe> {
  const { timeoutMs, signal } = options;
  let select: ApduResponse;
  try {
    select = await msg.transmit(feitianSelectApdu(), { timeoutMs, signal });
  } catch (error) {
    return { outcome: failureOutcome(error, timeoutMs, signal) };
  }
  const probe: FeitianProbe = { outcome: answered(select.sw) };
  if (select.sw !== SW_OK) return probe;
  try {
    // CHECK needs no touch (docs/protocols.md §4.3); it reads the token serial, which is kept only when asked for.
    const check = await msg.transmit(checkApdu(), { timeoutMs, signal });
    const state = parseCheckAnswer(Uint8Array.of(...check.data, check.sw >> 8, check.sw & 0xff));
    probe.check = { outcome: answered(check.sw) };
    if (state !== undefined) probe.check.programmed = state.programmed;
    if (state?.programmed && options.includeSerials) probe.check.serial = state.serial;
  } catch (error) {
    probe.check = { outcome: failureOutcome(error, timeoutMs, signal) };
  }
  return probe;
}

/** How long discovery lets an unknown FIDO device take for each of its questions. */
export const IDENTIFY_TIMEOUT_MS = 1_000;

/** Which questions discovery may send to a device (discovery/known-keys.ts `identificationQuestions` decides by vendor id). */
export interface IdentifyQuestions {
  /** OATH SELECT over the Nitrokey vendor command 0x70. */
  oathOverVendorCommand: boolean;
  /** The Feitian HOTP application's SELECT over MSG and, after 9000, its CHECK. */
  feitianSelect: boolean;
}

/**
 * What identification found out. 'key': it answers a protocol keytap speaks. 'not-a-key': every
 * question got a definite no (a status word other than 9000, or CTAPHID INVALID_CMD), which holds
 * until the device is unplugged. 'unsure': it could not be told (the open or INIT failed, no answer
 * in time, BUSY, another CTAPHID error: a browser may be using the key), so discovery asks again later.
 */
export type Identification = { kind: 'key'; dialect: 'nitrokey3' | 'feitian' } | { kind: 'not-a-key' } | { kind: 'unsure' };

/** A question's outcome that says no for good: the device understood and refused. */
function definiteNo(outcome: ProbeOutcome): boolean {
  return outcome.status === 'answered' || (outcome.status === 'ctaphid-error' && outcome.code === CtapHidError.INVALID_CMD);
}

/**
 * Discovery's questions to a FIDO device keytap does not know by USB id: does it answer OATH over
 * 0x70 (then it is used as a Nitrokey-3-dialect key) or the Feitian HOTP application over MSG
 * (SELECT 9000, then a CHECK that ends in 90 00 and reads)? Only INIT and the questions `ask`
 * allows are sent. Never throws but for a cancellation. Closes the link.
 */
export async function identifyHidLink(link: HidLink, ask: IdentifyQuestions, signal?: AbortSignal): Promise<Identification> {
  const options = { includeSerials: false, timeoutMs: IDENTIFY_TIMEOUT_MS, signal };
  let channel: CtapHidChannel;
  try {
    channel = await CtapHidChannel.open(link, { initTimeoutMs: IDENTIFY_TIMEOUT_MS, signal });
  } catch (error) {
    await link.close().catch(() => undefined);
    failureOutcome(error, IDENTIFY_TIMEOUT_MS, signal); // rethrows a cancellation
    return { kind: 'unsure' };
  }
  try {
    let sure = true;
    if (ask.oathOverVendorCommand) {
      const oath = await probeOathSelect(new CtapHidApduTransport(channel, 'FIDO device', 'vendor-secrets'), options);
      if (answersOath(oath)) return { kind: 'key', dialect: 'nitrokey3' };
      if (deviceGone(oath.outcome)) return { kind: 'unsure' };
      sure &&= definiteNo(oath.outcome);
    }
    if (ask.feitianSelect) {
      const feitian = await probeFeitian(new CtapHidApduTransport(channel, 'FIDO device', 'msg'), options);
      if (answersFeitian(feitian)) return { kind: 'key', dialect: 'feitian' };
      sure &&= definiteNo(feitian.outcome) && (feitian.check === undefined || definiteNo(feitian.check.outcome));
    }
    return sure ? { kind: 'not-a-key' } : { kind: 'unsure' };
  } finally {
    await channel.close().catch(() => undefined);
  }
}

/** A version string as the key sent it, with anything unprintable escaped (it ends up in a terminal and a file). */
function printableAscii(bytes: Uint8Array): string {
  return printable(Buffer.from(bytes).toString('latin1'));
}
