/**
 * The OATH applet of the virtual key: the card side of YKOATH (docs/protocols.md §1), answering either
 * as a YubiKey 5 (firmware 5.4.3, oath-applet-yubikey.ts) or as a Nitrokey 3 Secrets App (4.13.0,
 * §2, oath-applet-nitrokey3.ts), byte for byte, quirks included, since the point of a virtual key
 * is that clients cannot tell it from a real one. This module is what both share on the way in:
 * one APDU at a time, parsing the APDU, and turning every failure into a status word.
 *
 * Every malformed input becomes a status word; process() never throws for what a host sends.
 */
import { KeytapError, isKeytapError } from '../errors.js';
import { isOathDialect } from '../device/key-dialect.js';
import { Sw } from '../device/oath/constants.js';
import type { Dialect } from '../device/oath/dialect.js';
import { decodeApdu } from '../device/transport/types.js';
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
    const dialect = options.dialect ?? store.dialect;
    if (!isOathDialect(dialect)) throw new KeytapError('UNSUPPORTED', `A ${dialect} key has no OATH applet.`);
    this.dialect = dialect;
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

/** The command APDU the applet handles; undefined = the lengths do not add up (6700). */
export function parseApdu(bytes: Uint8Array): Apdu | undefined {
  const apdu = decodeApdu(bytes);
  if (apdu === undefined) return undefined;
  const { cla, ins, p1, p2, data } = apdu;
  return { cla, ins, p1, p2, data: Buffer.from(data.buffer, data.byteOffset, data.byteLength) };
}
