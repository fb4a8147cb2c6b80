/**
 * The virtual key kept in a file and run in this process (`--virtual FILE`), as a key the client
 * opens like any other: `open(signal)` loads the store (creating it when missing, if asked) and gives a
 * CTAPHID transport over an in-process HID link, so the session still goes through the real
 * CTAPHID client and the 64-byte report boundary. Closing the transport unplugs the key.
 */
import type { KeyDialect } from '../device/key-dialect.js';
import type { OpenableKey } from '../device/open.js';
import { apduFramingFor, openCtapHidTransport } from '../device/open.js';
import type { CodeTyper } from './feitian-applet.js';
import type { ApduResponse, ApduTransport, TransmitOptions } from '../device/transport/types.js';
import type { TouchPolicy } from './types.js';
import { VirtualKey } from './virtual-key.js';

export interface VirtualFileOptions {
  file: string;
  dialect?: KeyDialect | undefined;
  /** Dialect 'feitian': where a touch types the code (default: the file beside FILE). */
  typer?: CodeTyper | undefined;
  demo?: boolean | undefined;
  /** Create FILE when it is missing; otherwise opening it fails with INPUT_FILE. */
  create?: boolean | undefined;
  touch?: TouchPolicy | undefined;
  touchTimeoutMs?: number | undefined;
}

export function virtualFileKey(options: VirtualFileOptions): OpenableKey {
  const name = `virtual key ${options.file}`;
  return {
    id: `virtual:${options.file}`,
    name,
    open: async (signal?: AbortSignal) => {
      const key = await VirtualKey.open(options);
      try {
        return new UnpluggingTransport(await openCtapHidTransport(key.openLink(), name, signal, apduFramingFor(key.dialect)), key);
      } catch (error) {
        await key.close().catch(() => undefined);
        throw error;
      }
    },
  };
}

/** A transport to an in-process virtual key whose close() also unplugs the key (it lives as long as the session). */
class UnpluggingTransport implements ApduTransport {
  constructor(
    private readonly inner: ApduTransport,
    private readonly key: VirtualKey,
  ) {}

  get description(): string {
    return this.inner.description;
  }

  /** Known once the store is loaded: what the file's key speaks. */
  get dialect(): KeyDialect {
    return this.key.dialect;
  }

  transmit(apdu: Uint8Array, options?: TransmitOptions): Promise<ApduResponse> {
    return this.inner.transmit(apdu, options);
  }

  async close(): Promise<void> {
    await this.inner.close().catch(() => undefined);
    await this.key.close();
  }
}
