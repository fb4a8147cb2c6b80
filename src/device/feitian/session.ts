/**
 * A session with a Feitian/HyperFIDO HOTP key (docs/protocols.md §4) over any ApduTransport (MSG
 * framing over CTAPHID: open.ts `openFeitianSession`). What hyperhotp does, in its order: SELECT
 * the vendor application before every operation, CHECK before and after ERASE and PROGRAM, refuse
 * to program a programmed key. Failures are KeytapErrors with structured details; the words of
 * what to do are the CLI's.
 */
import { KeytapError } from '../../errors.js';
import type { ApduResponse, ApduTransport } from '../transport/types.js';
import { formatSw } from '../transport/types.js';
import type { CheckAnswer, FeitianToken } from './protocol.js';
import { checkApdu, eraseApdu, parseCheckAnswer, parseConfirmAnswer, programApdu, selectApdu } from './protocol.js';

export interface FeitianTouchOptions {
  signal?: AbortSignal | undefined;
  /** Called when the request that waits for a touch goes out (the key sends no keepalives [inferred]). */
  onTouchNeeded?: (() => void) | undefined;
}

/** SELECT and CHECK answer at once. */
const QUICK_TIMEOUT_MS = 10_000;

export class FeitianSession {
  readonly transport: ApduTransport;
  private lastCheck: CheckAnswer;

  private constructor(transport: ApduTransport, check: CheckAnswer) {
    this.transport = transport;
    this.lastCheck = check;
  }

  /** SELECTs the vendor application and reads the key's state. */
  static async open(transport: ApduTransport, options: { signal?: AbortSignal | undefined } = {}): Promise<FeitianSession> {
    const check = await readCheck(transport, options.signal);
    return new FeitianSession(transport, check);
  }

  /** What the last CHECK said: the token serial, or undefined for an erased key. */
  get serial(): string | undefined {
    return this.lastCheck.programmed ? this.lastCheck.serial : undefined;
  }

  get programmed(): boolean {
    return this.lastCheck.programmed;
  }

  /** Asks the key again whether it is programmed (SELECT, then CHECK). */
  async check(signal?: AbortSignal): Promise<CheckAnswer> {
    this.lastCheck = await readCheck(this.transport, signal);
    return this.lastCheck;
  }

  /** Erases the token (the key waits for a touch), then checks that it is gone. */
  async erase(options: FeitianTouchOptions = {}): Promise<void> {
    await select(this.transport, options.signal);
    options.onTouchNeeded?.();
    const answer = await this.transport.transmit(eraseApdu(), { signal: options.signal });
    confirm(answer, 'erasing the HOTP key');
    if ((await this.check(options.signal)).programmed) {
      throw new KeytapError('DEVICE_ERROR', 'The key said it erased its HOTP token, but it still holds one.', { hint: 'The key may be faulty.' });
    }
  }

  /**
   * Programs the token (the key waits for a touch) on an erased key, then checks that the key
   * holds it under its serial. A programmed key is refused before anything is sent.
   */
  async program(token: FeitianToken, options: FeitianTouchOptions = {}): Promise<void> {
    const before = await this.check(options.signal);
    if (before.programmed) {
      throw new KeytapError('EXISTS', `The key holds an HOTP token already (serial ${before.serial}); it takes a new one only once erased.`, {
        detail: { kind: 'hotp-key-programmed', serial: before.serial },
      });
    }
    const apdu = programApdu(token);
    await select(this.transport, options.signal);
    options.onTouchNeeded?.();
    const answer = await this.transport.transmit(apdu, { signal: options.signal });
    confirm(answer, 'programming the HOTP key');
    const after = await this.check(options.signal);
    if (!after.programmed) {
      throw new KeytapError('DEVICE_ERROR', 'The key said it stored the HOTP token, but it reports none.', { hint: 'The key may be faulty.' });
    }
    if (after.serial !== token.serial) {
      throw new KeytapError('DEVICE_ERROR', `The key stored the HOTP token under another serial than ${token.serial}.`, { hint: 'The key may be faulty.' });
    }
  }
}

/** The MSG payload as the key sent it: data ‖ SW1 SW2 (what hyperhotp indexes into). */
function rawAnswer(answer: ApduResponse): Uint8Array {
  return Uint8Array.of(...answer.data, answer.sw >> 8, answer.sw & 0xff);
}

/**
 * SELECT by AID. hyperhotp takes any answer but a CTAPHID ERROR (which the transport throws) as
 * success; keytap does not: a key without this applet answers 6A82 or 6D00, and taking that for
 * the applet would show it as erased and send it the seed.
 */
async function select(transport: ApduTransport, signal: AbortSignal | undefined): Promise<void> {
  const answer = await transport.transmit(selectApdu(), { signal, timeoutMs: QUICK_TIMEOUT_MS });
  if (answer.sw !== 0x9000) {
    throw new KeytapError('PROTOCOL', `The key refused to select the Feitian HOTP application (status ${formatSw(answer.sw)}); it may not be a Feitian/HyperFIDO HOTP key.`, {
      detail: { kind: 'status', sw: answer.sw, doing: 'selecting the HOTP application' },
    });
  }
}

async function readCheck(transport: ApduTransport, signal: AbortSignal | undefined): Promise<CheckAnswer> {
  await select(transport, signal);
  const answer = await transport.transmit(checkApdu(), { signal, timeoutMs: QUICK_TIMEOUT_MS });
  const check = parseCheckAnswer(rawAnswer(answer));
  if (check === undefined) {
    throw new KeytapError('PROTOCOL', `The key answered the HOTP state request in a way keytap does not know (status ${formatSw(answer.sw)}).`, {
      detail: { kind: 'status', sw: answer.sw, doing: 'reading the HOTP state' },
    });
  }
  return check;
}

function confirm(answer: ApduResponse, doing: string): void {
  const outcome = parseConfirmAnswer(rawAnswer(answer));
  if (outcome === 'done') return;
  if (outcome === 'refused') {
    throw new KeytapError('TOUCH_TIMEOUT', `The key refused ${doing} (status ${formatSw(answer.sw)}); it was probably not touched in time.`, {
      hint: 'Touch the key while it flashes.',
      detail: { kind: 'status', sw: answer.sw, doing },
    });
  }
  throw new KeytapError('PROTOCOL', `The key answered ${doing} in a way keytap does not know (status ${formatSw(answer.sw)}).`, {
    detail: { kind: 'status', sw: answer.sw, doing },
  });
}
