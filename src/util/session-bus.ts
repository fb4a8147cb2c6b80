/**
 * A session-bus connection that can neither hang nor crash its user (notifications, the tray, the
 * shortcut portal, doctor). A leaf module: it imports dbus-next and nothing of keytap's.
 *
 * What dbus-next 0.10 does that this works around:
 * - socket and stream failures are re-emitted as 'error' on the MessageBus; without a listener
 *   that event would throw out of a socket callback, so one listener stays for the object's life;
 * - a call whose connection died is never settled (its reply handler just stays registered), so
 *   every call here has a deadline and is rejected as soon as the connection is known to be lost;
 * - the end of the stream is not surfaced on the MessageBus: its internal connection emits 'end'
 *   and the underlying socket emits 'close', both watched here, and reported once through onClose;
 * - an exception in a 'message' listener is caught by dbus-next and sent back to the caller as a
 *   D-Bus error with our stack trace, so listeners here are contained;
 * - disconnect() leaves 'message' listeners attached, and the socket may still deliver what was in
 *   flight, so nothing is passed on after close;
 * - it reads an address naively (no %xx unescaping, a value cut at ':' ',' '='), tries only the first
 *   entry of a ';'-separated list whose stream it could create, and needs the native `usocket` for
 *   `unix:abstract=` (and tries it first for `unix:path=`). usocket must be compiled at install, so
 *   keytap does not build it. So the address is read here (D-Bus specification, "Server
 *   Addresses"), each entry is tried in turn, and the socket is opened here with Node's own net
 *   (abstract-socket.ts for a Linux abstract name) and handed to dbus-next (`handTo`).
 */
import { existsSync } from 'node:fs';
import net from 'node:net';
import type { Socket } from 'node:net';

import type { MessageBus, MessageLike } from 'dbus-next';
import { Message, Variant, sessionBus } from 'dbus-next';

import { connectAbstractSocket } from './abstract-socket.js';

export { Message, Variant };

/** The default deadline of a call and of the connection's Hello. */
export const CALL_TIMEOUT_MS = 5_000;

export interface SessionBus {
  readonly bus: MessageBus;
  /** Our unique name (":1.42"), known once connected. */
  readonly uniqueName: string;
  readonly closed: boolean;
  /** Calls a method; rejects on a D-Bus error, a lost connection or after `timeoutMs`. */
  call(message: MessageLike, timeoutMs?: number): Promise<Message>;
  /** org.freedesktop.DBus.<member>(…) on the bus daemon itself. */
  callDaemon(member: string, signature: string, body: unknown[]): Promise<Message>;
  /** Adds a match rule so the bus routes those signals to us. */
  addMatch(rule: string): Promise<void>;
  /** Runs `listener` for every incoming message (signals included); returns the remover. */
  onMessage(listener: (message: Message) => void): () => void;
  /** Runs once when the connection is lost or closed (at once when it already is); returns the remover. */
  onClose(listener: (error: Error) => void): () => void;
  close(): void;
}

export interface ConnectOptions {
  /** How long the connection and Hello may take. Default CALL_TIMEOUT_MS. */
  timeoutMs?: number | undefined;
}

/**
 * Connects to the bus at `address` (a D-Bus address list: each entry in turn until one answers) and
 * completes Hello; rejects (never throws synchronously) when there is no usable bus. Without an
 * address it rejects: callers say where to look, usually with `sessionBusAddress()`.
 */
export async function connectSessionBus(address: string | undefined, options: ConnectOptions = {}): Promise<SessionBus> {
  if (!address) throw new Error('no session bus (DBUS_SESSION_BUS_ADDRESS is not set)');
  const timeoutMs = options.timeoutMs ?? CALL_TIMEOUT_MS;
  const entries = parseBusAddress(address);
  let lastError: Error | undefined;
  for (const entry of entries) {
    if ('error' in entry) {
      lastError = new Error(`cannot connect to the session bus at ${address}: ${entry.error}`);
      continue;
    }
    try {
      return await connectOne(entry.target, address, timeoutMs);
    } catch (error) {
      lastError = error instanceof Error ? error : new Error(String(error));
    }
  }
  throw lastError ?? new Error(`cannot connect to the session bus at ${address}: no address in it`);
}

/** Where one entry of an address list says to connect. */
export type BusTarget = { kind: 'path'; path: string } | { kind: 'abstract'; name: string } | { kind: 'tcp'; host: string; port: number };

/** One entry of an address list: where to connect, or why it cannot be used. */
export type BusAddressEntry = { target: BusTarget } | { error: string };

/**
 * Reads a D-Bus address list (`transport:key=value,key=value;…`, values %xx-escaped) into where
 * to connect, in order: `unix:path=`, `unix:abstract=` (Linux), `unix:runtime=yes`, `tcp:`. The
 * rest (listen-only `unix:dir=` / `unix:tmpdir=`, `unixexec:`, `nonce-tcp:`, `autolaunch:`,
 * `launchd:`) says why not.
 */
export function parseBusAddress(list: string, env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): BusAddressEntry[] {
  const entries: BusAddressEntry[] = [];
  for (const text of list.split(';')) {
    if (text.trim() === '') continue;
    const colon = text.indexOf(':');
    if (colon <= 0) {
      entries.push({ error: `"${text}" is not a D-Bus address (no transport)` });
      continue;
    }
    const transport = text.slice(0, colon);
    const params = new Map<string, string>();
    let malformed: string | undefined;
    for (const pair of text.slice(colon + 1).split(',')) {
      if (pair === '') continue;
      const eq = pair.indexOf('=');
      const value = eq > 0 ? unescapeValue(pair.slice(eq + 1)) : undefined;
      if (eq <= 0 || value === undefined) {
        malformed = `"${pair}" in "${text}" is not key=value with %xx escapes`;
        break;
      }
      params.set(pair.slice(0, eq), value);
    }
    if (malformed) {
      entries.push({ error: malformed });
      continue;
    }
    entries.push(entryFor(transport, params, text, env, platform));
  }
  return entries;
}

function entryFor(transport: string, params: Map<string, string>, text: string, env: NodeJS.ProcessEnv, platform: NodeJS.Platform): BusAddressEntry {
  if (transport === 'unix') {
    const path = params.get('path');
    const abstract = params.get('abstract');
    if (path !== undefined) return path ? { target: { kind: 'path', path } } : { error: `"${text}" names no socket` };
    if (abstract !== undefined) {
      if (platform !== 'linux') return { error: `abstract socket addresses exist only on Linux ("${text}")` };
      return abstract ? { target: { kind: 'abstract', name: abstract } } : { error: `"${text}" names no socket` };
    }
    if (params.get('runtime') === 'yes') {
      if (!env.XDG_RUNTIME_DIR) return { error: `"${text}" needs XDG_RUNTIME_DIR, which is not set` };
      return { target: { kind: 'path', path: `${env.XDG_RUNTIME_DIR}/bus` } };
    }
    return { error: `"${text}" is not an address a client can connect to (it needs path, abstract or runtime=yes)` };
  }
  if (transport === 'tcp') {
    const port = params.get('port');
    if (!port || !/^\d{1,5}$/u.test(port) || Number(port) > 65_535) return { error: `"${text}" has no port` };
    return { target: { kind: 'tcp', host: params.get('host') ?? 'localhost', port: Number(port) } };
  }
  return { error: `the transport "${transport}" is not supported ("${text}")` };
}

/** %xx-unescapes an address value (bytes, then UTF-8); undefined when an escape is malformed. */
function unescapeValue(value: string): string | undefined {
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) {
    const char = value[i]!;
    if (char === '%') {
      const hex = value.slice(i + 1, i + 3);
      if (!/^[0-9a-fA-F]{2}$/u.test(hex)) return undefined;
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(char, 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** %xx-escapes every byte of `value` outside the D-Bus specification's optionally-escaped set. */
export function escapeAddressValue(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const char = String.fromCharCode(byte);
    out += /[-0-9A-Za-z_/.\\*]/u.test(char) ? char : `%${byte.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/** Opens the socket an address entry names, with Node's own net (and libc for an abstract name, where libuv pads it). */
async function openStream(target: BusTarget): Promise<Socket> {
  if (target.kind === 'path') return net.createConnection(target.path);
  if (target.kind === 'tcp') return net.createConnection(target.port, target.host);
  return connectAbstractSocket(target.name);
}

/**
 * dbus-next opens its stream itself, from an address, with `net.createConnection` for
 * `unix:socket=` (lib/connection.js, inside the synchronous sessionBus() call). For that one call,
 * net.createConnection hands it our socket instead; it is restored before sessionBus() returns.
 */
function handTo(stream: Socket): MessageBus {
  const original = net.createConnection;
  let handedOver = 0;
  net.createConnection = () => {
    handedOver++;
    return stream;
  };
  let bus: MessageBus;
  try {
    bus = sessionBus({ busAddress: 'unix:socket=keytap' });
  } finally {
    net.createConnection = original;
  }
  if (handedOver !== 1) {
    stream.destroy();
    throw new Error('this dbus-next does not open its connection with net.createConnection');
  }
  // dbus-next starts the handshake on 'connect'; a socket made from a connected fd never emits it.
  if (!stream.connecting) process.nextTick(() => stream.emit('connect'));
  return bus;
}

async function connectOne(target: BusTarget, address: string, timeoutMs: number): Promise<SessionBus> {
  let bus: MessageBus;
  try {
    bus = handTo(await openStream(target));
  } catch (error) {
    throw new Error(`cannot connect to the session bus at ${address}: ${describeError(error)}`);
  }
  let closed = false;
  const closeListeners: ((error: Error) => void)[] = [];
  const markClosed = (reason: string): void => {
    if (closed) return;
    closed = true;
    const error = new Error(reason);
    for (const listener of closeListeners.splice(0)) {
      try {
        listener(error);
      } catch {
        // A close listener's bug must not stop the others.
      }
    }
  };
  // This listener stays for the life of the object: late socket errors on a dead bus are swallowed.
  bus.on('error', (error: unknown) => markClosed(`session bus error: ${describeError(error)}`));
  const connection = (bus as unknown as { _connection?: NodeJS.EventEmitter })._connection;
  connection?.on('end', () => markClosed('the session bus closed the connection'));
  const stream = (connection as unknown as { stream?: NodeJS.EventEmitter } | undefined)?.stream;
  stream?.on('close', () => markClosed('the session bus connection closed'));

  const session: SessionBus = {
    bus,
    get uniqueName() {
      return (bus as unknown as { name?: string | null }).name ?? '';
    },
    get closed() {
      return closed;
    },
    call(message, deadlineMs = CALL_TIMEOUT_MS) {
      if (closed) return Promise.reject(new Error('the session bus connection is closed'));
      return new Promise<Message>((resolve, reject) => {
        let settled = false;
        const finish = (fn: () => void): void => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          const i = closeListeners.indexOf(onClose);
          if (i >= 0) closeListeners.splice(i, 1);
          fn();
        };
        const timer = setTimeout(() => finish(() => reject(new Error(`no answer to ${message.member ?? 'a call'} within ${deadlineMs} ms`))), deadlineMs);
        timer.unref();
        const onClose = (error: Error): void => finish(() => reject(error));
        closeListeners.push(onClose);
        let pending: Promise<Message | null>;
        try {
          pending = bus.call(new Message(message));
        } catch (error) {
          finish(() => reject(error instanceof Error ? error : new Error(describeError(error))));
          return;
        }
        pending.then(
          // A call with NO_REPLY_EXPECTED resolves null; every call here expects a reply.
          (reply) => finish(() => (reply ? resolve(reply) : reject(new Error(`no reply to ${message.member ?? 'a call'}`)))),
          (error: unknown) => finish(() => reject(error instanceof Error ? error : new Error(describeError(error)))),
        );
      });
    },
    callDaemon(member, signature, body) {
      return session.call({ destination: 'org.freedesktop.DBus', path: '/org/freedesktop/DBus', interface: 'org.freedesktop.DBus', member, signature, body });
    },
    async addMatch(rule) {
      await session.callDaemon('AddMatch', 's', [rule]);
    },
    onMessage(listener) {
      const wrapped = (message: Message): void => {
        // After close the socket may still deliver what was in flight; nobody wants it.
        if (closed) return;
        try {
          listener(message);
        } catch {
          // dbus-next would answer the sender with our stack trace; nothing useful to do with it.
        }
      };
      bus.on('message', wrapped);
      return () => bus.removeListener('message', wrapped);
    },
    onClose(listener) {
      if (closed) {
        listener(new Error('the session bus connection is closed'));
        return () => undefined;
      }
      closeListeners.push(listener);
      return () => {
        const i = closeListeners.indexOf(listener);
        if (i >= 0) closeListeners.splice(i, 1);
      };
    },
    close() {
      markClosed('closed by keytap');
      try {
        bus.disconnect();
      } catch {
        // Already gone.
      }
    },
  };

  // Hello has to complete before the bus routes anything to us; wait for it with a deadline.
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      session.close();
      reject(new Error(`the session bus at ${address} did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    timer.unref();
    bus.once('connect', () => {
      clearTimeout(timer);
      resolve();
    });
    const offClose = session.onClose((error) => {
      clearTimeout(timer);
      reject(error);
    });
    bus.once('connect', offClose);
  });
  return session;
}

/**
 * $DBUS_SESSION_BUS_ADDRESS, or the systemd user bus at $XDG_RUNTIME_DIR/bus that some session
 * starters leave unannounced (autostart entries under a bare window manager, for one).
 */
export function sessionBusAddress(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.DBUS_SESSION_BUS_ADDRESS) return env.DBUS_SESSION_BUS_ADDRESS;
  const runtime = env.XDG_RUNTIME_DIR;
  if (runtime && existsSync(`${runtime}/bus`)) return `unix:path=${escapeAddressValue(`${runtime}/bus`)}`;
  return undefined;
}

/** A D-Bus error's text ("The name … was not provided by any .service files"), else the message. */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const text = (error as { text?: unknown }).text;
    return typeof text === 'string' && text ? text : error.message;
  }
  return String(error);
}

/** The D-Bus error name of a failed call ("org.freedesktop.DBus.Error.ServiceUnknown"), if any. */
export function dbusErrorName(error: unknown): string | undefined {
  const type = (error as { type?: unknown } | null)?.type;
  return typeof type === 'string' ? type : undefined;
}
