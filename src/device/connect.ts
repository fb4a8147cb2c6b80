/**
 * Opening an OATH session on a key: a HID link (real key, or a virtual key in another process),
 * or a virtual key kept in a file and run in this process. Callers get one `OpenKey` and close it.
 */
import { KeytapError } from '../errors.js';
import { OathSession } from './oath/session.js';
import { CtapHidApduTransport } from './transport/ctaphid.js';
import { traceApduTransport, traceHidLink, traceOptionsFromEnv } from './transport/trace.js';
import type { ApduTransport, HidLink } from './transport/types.js';
import type { Dialect, TouchPolicy } from './virtual/types.js';
import { VirtualKey } from './virtual/virtual-key.js';

/** KEYTAP_TRACE / KEYTAP_RECORD, read once: every link and transport opened here goes through trace.ts. */
const traffic = traceOptionsFromEnv(process.env);

export interface OpenKey {
  session: OathSession;
  /** Human name: "Nitrokey 3", "virtual key demo.json". */
  name: string;
  /** Stable identity: the serial where the key reports one, else the descriptor's id. */
  id: string;
  close(): Promise<void>;
}

export interface KeyDescriptorLike {
  id: string;
  name: string;
  /** A HID link to the key (CTAPHID underneath the session). */
  open(): Promise<HidLink>;
  /** Present on keys that speak APDUs natively (PC/SC): used instead of `open`. */
  openTransport?: ((signal?: AbortSignal) => Promise<ApduTransport>) | undefined;
}

/** CTAPHID INIT, then SELECT of the OATH application. Closes the link on failure. */
export async function openSessionOnLink(link: HidLink, description: string, signal?: AbortSignal): Promise<OathSession> {
  const transport = traceApduTransport(await CtapHidApduTransport.open(traceHidLink(link, traffic), { description }), traffic);
  try {
    return await OathSession.open(transport, signal ? { signal } : {});
  } catch (error) {
    await transport.close().catch(() => undefined);
    throw error;
  }
}

/** SELECT of the OATH application over an already open transport. Closes the transport on failure. */
async function openSessionOnTransport(transport: ApduTransport, signal?: AbortSignal): Promise<OathSession> {
  try {
    return await OathSession.open(transport, signal ? { signal } : {});
  } catch (error) {
    await transport.close().catch(() => undefined);
    throw error;
  }
}

export async function openDescriptor(descriptor: KeyDescriptorLike, signal?: AbortSignal): Promise<OpenKey> {
  const session = descriptor.openTransport
    ? await openSessionOnTransport(traceApduTransport(await descriptor.openTransport(signal), traffic), signal)
    : await openSessionOnLink(await descriptor.open(), descriptor.name, signal);
  return {
    session,
    name: descriptor.name,
    id: session.serial ?? descriptor.id,
    close: () => session.transport.close(),
  };
}

export interface VirtualFileOptions {
  file: string;
  dialect?: Dialect | undefined;
  demo?: boolean | undefined;
  touch?: TouchPolicy | undefined;
  touchTimeoutMs?: number | undefined;
}

/**
 * The virtual key kept in `file` (created when missing), run in this process. The session still
 * goes through the real CTAPHID client and the 64-byte report boundary.
 */
export async function openVirtualFile(options: VirtualFileOptions, signal?: AbortSignal): Promise<OpenKey> {
  const key = await VirtualKey.open(options);
  try {
    const session = await openSessionOnLink(key.openLink(), `virtual key ${options.file}`, signal);
    return {
      session,
      name: `virtual key ${options.file}`,
      id: session.serial ?? `virtual:${options.file}`,
      close: async () => {
        await session.transport.close().catch(() => undefined);
        await key.close();
      },
    };
  } catch (error) {
    await key.close().catch(() => undefined);
    throw error;
  }
}

export function noKeyError(): KeytapError {
  return new KeytapError('NO_KEY', 'No key found.', {
    hint: 'Plug in your key. To try keytap without one: keytap code --virtual demo-key.json --demo',
  });
}
