/**
 * Opening an OATH session on a key. Every key, whatever reaches it (node-hid, PC/SC, a virtual
 * key's socket, a virtual key in this process), opens one way: `open(signal)` gives an
 * ApduTransport, and `openOathSession` selects the OATH application on it. Callers get one
 * `OpenKey` and close it.
 *
 * A Feitian/HyperFIDO HOTP key (dialect 'feitian') has no OATH application: `openOathSession`
 * refuses it with a `hotp-only-key` detail, `openFeitianSession` opens its programming session,
 * and `openAnyKey` opens whichever the key has, for the commands that handle both.
 */
import { KeytapError } from '../errors.js';
import { FeitianSession } from './feitian/session.js';
import type { KeyDialect } from './key-dialect.js';
import { OathSession } from './oath/session.js';
import { CtapHidApduTransport } from './transport/ctaphid.js';
import type { ApduFraming } from './transport/ctaphid.js';
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
  /** What the key speaks, where it is known before opening (discovery's; a virtual key's transport tells it when opened). */
  dialect?: KeyDialect | undefined;
  /** Opens a fresh transport to the key; the caller closes it (closing the session closes it). */
  open(signal?: AbortSignal): Promise<ApduTransport>;
}

/** An open Feitian/HyperFIDO HOTP key. */
export interface OpenFeitianKey {
  session: FeitianSession;
  name: string;
  /** The token serial while programmed, else the descriptor's id. */
  id: string;
  close(): Promise<void>;
}

/** Either session, for the commands that handle OATH keys and Feitian HOTP keys alike (keys, program, reset). */
export type OpenedKey = { kind: 'oath'; key: OpenKey } | { kind: 'feitian'; key: OpenFeitianKey };

/** The CTAPHID command a key of this dialect takes its APDUs in (§2.2, §4.2). */
export function apduFramingFor(dialect: KeyDialect | undefined): ApduFraming {
  return dialect === 'feitian' ? 'msg' : 'vendor-secrets';
}

export function hotpOnlyKeyError(keyName: string): KeytapError {
  return new KeytapError('UNSUPPORTED', `${keyName} is a Feitian HOTP key: it holds one HOTP token and types its codes, and has no OATH accounts.`, {
    detail: { kind: 'hotp-only-key', keyName },
  });
}

/** Opens the key and the session its dialect has. Closes the transport on failure. */
export async function openAnyKey(key: OpenableKey, signal?: AbortSignal): Promise<OpenedKey> {
  const raw = await key.open(signal);
  const transport = traceApduTransport(raw, traffic);
  if ((key.dialect ?? raw.dialect) === 'feitian') return { kind: 'feitian', key: await feitianOn(transport, key, signal) };
  return { kind: 'oath', key: await oathOn(transport, key, signal) };
}

/** Opens the key's transport, then SELECTs the OATH application on it. Closes the transport on failure. */
export async function openOathSession(key: OpenableKey, signal?: AbortSignal): Promise<OpenKey> {
  if (key.dialect === 'feitian') throw hotpOnlyKeyError(key.name);
  const raw = await key.open(signal);
  const transport = traceApduTransport(raw, traffic);
  if (raw.dialect === 'feitian') {
    await transport.close().catch(() => undefined);
    throw hotpOnlyKeyError(key.name);
  }
  return oathOn(transport, key, signal);
}

/** Opens a Feitian HOTP key: SELECT of its vendor application and CHECK. Closes the transport on failure. */
export async function openFeitianSession(key: OpenableKey, signal?: AbortSignal): Promise<OpenFeitianKey> {
  return feitianOn(traceApduTransport(await key.open(signal), traffic), key, signal);
}

/** The session `open` makes on `transport`; the transport is closed when that fails. */
async function sessionOrClose<S>(transport: ApduTransport, open: () => Promise<S>): Promise<S> {
  try {
    return await open();
  } catch (error) {
    await transport.close().catch(() => undefined);
    throw error;
  }
}

async function feitianOn(transport: ApduTransport, key: OpenableKey, signal: AbortSignal | undefined): Promise<OpenFeitianKey> {
  const session = await sessionOrClose(transport, () => FeitianSession.open(transport, { signal }));
  return {
    session,
    name: key.name,
    get id() {
      return session.serial ?? key.id;
    },
    close: () => transport.close(),
  };
}

async function oathOn(transport: ApduTransport, key: OpenableKey, signal: AbortSignal | undefined): Promise<OpenKey> {
  const session = await sessionOrClose(transport, () => OathSession.open(transport, signal ? { signal } : {}));
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

/**
 * CTAPHID (INIT, then vendor command 0x70, or MSG for a Feitian HOTP key) over a 64-byte HID link:
 * how HID keys and virtual keys open.
 */
export function openCtapHidTransport(link: HidLink, description: string, signal?: AbortSignal, framing?: ApduFraming): Promise<ApduTransport> {
  return CtapHidApduTransport.open(traceHidLink(link, traffic), { description, signal, framing });
}

export function noKeyError(): KeytapError {
  return new KeytapError('NO_KEY', 'No key found.', { detail: { kind: 'no-key' } });
}
