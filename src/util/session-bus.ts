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
 *   flight, so nothing is passed on after close.
 */
import { existsSync } from 'node:fs';

import type { MessageBus, MessageLike } from 'dbus-next';
import { Message, Variant, sessionBus } from 'dbus-next';

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
  /** Runs once when the connection is lost or closed (at once when it already is). */
  onClose(listener: (error: Error) => void): void;
  close(): void;
}

export interface ConnectOptions {
  /** How long the connection and Hello may take. Default CALL_TIMEOUT_MS. */
  timeoutMs?: number | undefined;
}

/**
 * Connects to the bus at `address` and completes Hello; rejects (never throws synchronously) when
 * there is no usable bus. Without an address it rejects: callers say where to look, usually with
 * `sessionBusAddress()`.
 */
export async function connectSessionBus(address: string | undefined, options: ConnectOptions = {}): Promise<SessionBus> {
  if (!address) throw new Error('no session bus (DBUS_SESSION_BUS_ADDRESS is not set)');
  const timeoutMs = options.timeoutMs ?? CALL_TIMEOUT_MS;
  let bus: MessageBus;
  try {
    bus = sessionBus({ busAddress: address });
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
      if (closed) listener(new Error('the session bus connection is closed'));
      else closeListeners.push(listener);
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
    session.onClose((error) => {
      clearTimeout(timer);
      reject(error);
    });
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
  if (runtime && existsSync(`${runtime}/bus`)) return `unix:path=${runtime}/bus`;
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
