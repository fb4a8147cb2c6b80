/**
 * The OATH applet of the virtual key: the card side of YKOATH (docs/protocols.md §1), answering either
 * as a YubiKey 5 (firmware 5.4.3, oath-applet-yubikey.ts) or as a Nitrokey 3 Secrets App (4.13.0,
 * §2, oath-applet-nitrokey3.ts), byte for byte, quirks included, since the point of a virtual key
 * is that clients cannot tell it from a real one. This module is what both share on the way in:
 * one APDU at a time, parsing the APDU, and turning every failure into a status word.
 *
 * Every malformed input becomes a status word; process() never throws for what a host sends.
 */
import { isKeytapError } from '../errors.js';
import { Sw } from '../device/oath/constants.js';
import type { Dialect } from '../device/oath/dialect.js';
import { StatusError, sw } from './oath-applet-common.js';
import type { Apdu, DialectApplet } from './oath-applet-common.js';
import { Nitrokey3OathApplet } from './oath-applet-nitrokey3.js';
import { YubiKeyOathApplet } from './oath-applet-yubikey.js';
import type { VirtualKeyStore } from './store.js';
import type { AppletContext, CardApplet } from './types.js';

export interface OathAppletOptions {
  /** Defaults to the store's dialect. */
  dialect?: Dialect | undefined;
}

export class OathApplet implements CardApplet {
  readonly dialect: Dialect;
  private readonly applet: DialectApplet;
  /** One APDU at a time, as on a card: a touch wait holds up the next command. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(store: VirtualKeyStore, options: OathAppletOptions = {}) {
    this.dialect = options.dialect ?? store.dialect;
    this.applet = this.dialect === 'nitrokey3' ? new Nitrokey3OathApplet(store) : new YubiKeyOathApplet(store);
  }

  process(apdu: Uint8Array, context: AppletContext): Promise<Uint8Array> {
    const run = this.queue.then(() => this.processOne(Buffer.from(apdu), context));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async processOne(bytes: Buffer, context: AppletContext): Promise<Uint8Array> {
    this.applet.beginCommand();
    try {
      const apdu = parseApdu(bytes);
      if (apdu === undefined) return sw(Sw.WRONG_LENGTH);
      return await this.applet.handle(apdu, context);
    } catch (error) {
      if (error instanceof StatusError) return sw(error.sw);
      // A cancelled touch wait (CTAPHID CANCEL, unplug), as each dialect reports it.
      if (isKeytapError(error, 'CANCELLED')) return sw(this.applet.cancelledSw);
      // Anything else is ours (a store write failed): the key's "memory failure".
      return sw(this.applet.internalErrorSw);
    }
  }
}

/**
 * ISO 7816-4 command APDU: short (`Lc` 1 byte, optional `Le`) or extended (`00 Lc_hi Lc_lo`,
 * optional 2-byte `Le`; `00 Le_hi Le_lo` alone for no data). ykman 4.0.9's no-data commands end in
 * a lone `00`, which is a case-2 Le. undefined = the lengths do not add up (6700).
 */
export function parseApdu(bytes: Uint8Array): Apdu | undefined {
  const buf = Buffer.from(bytes);
  if (buf.length < 4) return undefined;
  const header = { cla: buf[0]!, ins: buf[1]!, p1: buf[2]!, p2: buf[3]! };
  const body = buf.subarray(4);
  if (body.length === 0 || body.length === 1) return { ...header, data: Buffer.alloc(0) };
  if (body[0] !== 0) {
    const lc = body[0]!;
    if (body.length === 1 + lc || body.length === 2 + lc) return { ...header, data: body.subarray(1, 1 + lc) };
    return undefined;
  }
  if (body.length === 3) return { ...header, data: Buffer.alloc(0) };
  if (body.length < 3) return undefined;
  const lc = body.readUInt16BE(1);
  if (lc === 0) return undefined;
  if (body.length === 3 + lc || body.length === 5 + lc) return { ...header, data: body.subarray(3, 3 + lc) };
  return undefined;
}
