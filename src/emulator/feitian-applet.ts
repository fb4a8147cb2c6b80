/**
 * The virtual key's third dialect: a Feitian/HyperFIDO HOTP key (docs/protocols.md §4), the card
 * side of what hyperhotp sends over U2FHID MSG. SELECT of the vendor application, CHECK (E6),
 * ERASE (07, touch) and PROGRAM (09, touch, erased keys only), byte for byte as protocol.ts says;
 * where hyperhotp only tells what a client looks at, the rest of the answer is our guess, marked
 * [inferred] there.
 *
 * Such a key gives its codes by typing them as a USB keyboard when touched, not over HID. The
 * virtual key does that with `typeNextCode()` (VirtualKey.touch() with no request waiting): the
 * next HOTP code goes to a CodeTyper — by default appended to a file beside the key's file
 * (`typedCodesFile`), so that a test can read what the key "typed"; `keytap virtual start` passes
 * an XTEST typer when there is an X display (the emulator may not import the desktop layer, so
 * the CLI, which may, injects it).
 *
 * Every malformed input becomes a status word; process() never throws for what a host sends.
 */
import { appendFile } from 'node:fs/promises';
import { isKeytapError } from '../errors.js';
import { Sw } from '../device/oath/constants.js';
import { FEITIAN_HOTP_AID, FeitianIns, checkAnswerFor, parseProgramData } from '../device/feitian/protocol.js';
import { hotp } from '../otp/hotp.js';
import { sameBytes, sw } from './oath-applet-common.js';
import { parseApdu } from './oath-applet.js';
import type { VirtualKeyStore } from './store.js';
import type { AppletContext, CardApplet } from './types.js';

/** Types one code where a real key's keyboard interface would (a file, an X display). */
export type CodeTyper = (code: string) => Promise<void>;

/** Where the default typer appends what the key of `storeFile` types: one code a line. */
export function typedCodesFile(storeFile: string): string {
  return `${storeFile}.typed`;
}

/** The default typer: appends the code and a newline (Enter, as a keyboard key would end it) to `file`, owner-only. */
export function fileTyper(file: string): CodeTyper {
  return async (code) => {
    // A one-time code, spent by being typed; still owner-only like the store beside it.
    await appendFile(file, `${code}\n`, { mode: 0o600 });
  };
}

export class FeitianApplet implements CardApplet {
  /** SELECTed since the last SELECT of something else (the client selects before every operation). */
  private selected = false;
  /** One APDU at a time, as on a card: a touch wait holds up the next command. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: VirtualKeyStore,
    private readonly typer: CodeTyper,
  ) {}

  process(apdu: Uint8Array, context: AppletContext): Promise<Uint8Array> {
    const run = this.queue.then(() => this.processOne(apdu, context));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * A touch with no request waiting: the key types its next code and moves its counter on.
   * Undefined (nothing typed) while erased. The counter is saved before the code goes out.
   */
  async typeNextCode(): Promise<string | undefined> {
    const token = await this.store.takeHotpCounter();
    if (token === undefined) return undefined;
    const code = hotp(token.seed, token.counter, token.digits, 'SHA1');
    await this.typer(code);
    return code;
  }

  private async processOne(bytes: Uint8Array, context: AppletContext): Promise<Uint8Array> {
    const apdu = parseApdu(bytes);
    if (apdu === undefined) return sw(Sw.WRONG_LENGTH);
    if (apdu.cla !== 0x00) return sw(Sw.CLA_NOT_SUPPORTED);
    if (apdu.ins === FeitianIns.SELECT && apdu.p1 === 0x04) {
      this.selected = sameBytes(apdu.data, FEITIAN_HOTP_AID);
      return sw(this.selected ? Sw.OK : Sw.NOT_FOUND);
    }
    // Outside the vendor application the key's U2F applet answers, which knows none of these [inferred].
    if (!this.selected) return sw(Sw.INS_NOT_SUPPORTED);
    try {
      switch (apdu.ins) {
        case FeitianIns.CHECK:
          return checkAnswerFor(this.store.hotp?.serial);
        case FeitianIns.ERASE:
          if (!(await context.requestTouch())) return sw(Sw.CONDITIONS_OF_USE);
          await this.store.setHotp(undefined);
          return sw(Sw.OK);
        case FeitianIns.PROGRAM: {
          const token = parseProgramData(apdu.data);
          if (token === undefined) return sw(Sw.WRONG_DATA);
          // "Only works on an unprogrammed key" (hyperhotp); the status word is our choice [inferred].
          if (this.store.hotp !== undefined) return sw(Sw.CONDITIONS_OF_USE);
          if (!(await context.requestTouch())) return sw(Sw.CONDITIONS_OF_USE);
          // No counter is sent: the key starts at 0 [inferred].
          await this.store.setHotp({ ...token, counter: 0 });
          return sw(Sw.OK);
        }
        default:
          return sw(Sw.INS_NOT_SUPPORTED);
      }
    } catch (error) {
      // A cancelled touch wait (CTAPHID CANCEL, unplug) is a refusal like no touch; anything else is ours (a store write failed).
      if (isKeytapError(error, 'CANCELLED')) return sw(Sw.CONDITIONS_OF_USE);
      return sw(Sw.MEMORY_FAILURE);
    }
  }
}
