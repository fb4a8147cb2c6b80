/**
 * Opening an OATH session on a key. Every key, whatever reaches it (node-hid, PC/SC, a virtual
 * key's socket, a virtual key in this process), opens one way: `open(signal)` gives an
 * ApduTransport, and `openOathSession` selects the OATH application on it. Callers get one
 * `OpenKey` and close it.
 */
import { KeytapError } from '../errors.js';
import { OathSession } from './oath/session.js';
import { CtapHidApduTransport } from './transport/ctaphid.js';
import { traceApduTransport, traceHidLink, traceOptionsFromEnv } from './transport/trace.js';
import type { ApduTransport, HidLink } from './transport/types.js';

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

/** What `openOathSession` needs of a key: discovery's KeyDescriptor, or the CLI's in-process virtual key. */
export interface OpenableKey {
  id: string;
  name: string;
  /** Opens a fresh transport to the key; the caller closes it (closing the session closes it). */
  open(signal?: AbortSignal): Promise<ApduTransport>;
}

/** Opens the key's transport, then SELECTs the OATH application on it. Closes the transport on failure. */
export async function openOathSession(key: OpenableKey, signal?: AbortSignal): Promise<OpenKey> {
  const transport = traceApduTransport(await key.open(signal), traffic);
  let session: OathSession;
  try {
    session = await OathSession.open(transport, signal ? { signal } : {});
  } catch (error) {
    await transport.close().catch(() => undefined);
    throw error;
  }
  return {
    session,
    name: key.name,
    id: session.serial ?? key.id,
    close: () => session.transport.close(),
  };
}

/**
 * The serial keytap shows for a key: the one a virtual key announced, else the one the key reports
 * (opened briefly; `OathSession.readSerial`). Undefined when it has none, or cannot be opened now
 * (another program holds it): listing keys must not fail for that.
 */
export async function readKeySerial(key: OpenableKey & { serial?: string | undefined }, signal?: AbortSignal): Promise<string | undefined> {
  if (key.serial !== undefined) return key.serial;
  let opened: OpenKey | undefined;
  try {
    opened = await openOathSession(key, signal);
    return await opened.session.readSerial(signal);
  } catch {
    return undefined;
  } finally {
    await opened?.close().catch(() => undefined);
  }
}

/** CTAPHID (INIT, then vendor command 0x70) over a 64-byte HID link: how HID keys and virtual keys open. */
export function openCtapHidTransport(link: HidLink, description: string, signal?: AbortSignal): Promise<ApduTransport> {
  return CtapHidApduTransport.open(traceHidLink(link, traffic), { description, signal });
}

export function noKeyError(): KeytapError {
  return new KeytapError('NO_KEY', 'No key found.', { detail: { kind: 'no-key' } });
}
