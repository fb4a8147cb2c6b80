/**
 * A session-bus connection for the tray that can neither hang nor crash the process: dbus-next
 * emits socket failures as 'error' events (unhandled, they would throw), never rejects calls whose
 * connection died, and does not surface the end of the stream. Here every call has a deadline and
 * a lost connection is reported once through onClose.
 */
import type { MessageBus, MessageLike } from 'dbus-next';
import { Message, sessionBus } from 'dbus-next';

export const CALL_TIMEOUT_MS = 5_000;

export interface BusLink {
  readonly bus: MessageBus;
  /** Our unique name (":1.42"). */
  readonly uniqueName: string;
  readonly closed: boolean;
  /** Calls a method; rejects on a D-Bus error, a lost connection or after the deadline. */
  call(message: MessageLike, timeoutMs?: number): Promise<Message>;
  /** org.freedesktop.DBus.<member>(…) on the bus daemon itself. */
  callDaemon(member: string, signature: string, body: unknown[]): Promise<Message>;
  /** Sends a message that expects no reply (signals); false when it could not be sent. */
  send(message: Message): boolean;
  /** Runs `listener` on every incoming message; a throwing listener is contained. */
  onMessage(listener: (message: Message) => void): void;
  /** Runs once when the connection is lost or closed. */
  onClose(listener: (reason: string) => void): void;
  close(): void;
}

export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const text = (error as { text?: unknown }).text;
    return typeof text === 'string' && text ? text : error.message;
  }
  return String(error);
}

/** The D-Bus error name of a failed call, if it was one. */
export function dbusErrorName(error: unknown): string | undefined {
  const type = (error as { type?: unknown } | null)?.type;
  return typeof type === 'string' ? type : undefined;
}

/** Connects and completes Hello; rejects (never throws synchronously) when there is no usable bus. */
export async function openSessionBus(address: string | undefined, timeoutMs = CALL_TIMEOUT_MS): Promise<BusLink> {
  if (!address) throw new Error('no session bus (DBUS_SESSION_BUS_ADDRESS is not set)');
  let bus: MessageBus;
  try {
    bus = sessionBus({ busAddress: address });
  } catch (error) {
    throw new Error(`cannot connect to the session bus at ${address}: ${describeError(error)}`);
  }
  let closed = false;
  const closeListeners: Array<(reason: string) => void> = [];
  const markClosed = (reason: string): void => {
    if (closed) return;
    closed = true;
    for (const listener of closeListeners.splice(0)) {
      try {
        listener(reason);
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

  const link: BusLink = {
    bus,
    get uniqueName() {
      return (bus as unknown as { name?: string }).name ?? '';
    },
    get closed() {
      return closed;
    },
    call(message, deadlineMs = timeoutMs) {
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
        const onClose = (reason: string): void => finish(() => reject(new Error(reason)));
        closeListeners.push(onClose);
        let pending: Promise<Message | null>;
        try {
          pending = bus.call(new Message(message));
        } catch (error) {
          finish(() => reject(error instanceof Error ? error : new Error(describeError(error))));
          return;
        }
        pending.then(
          (reply) => finish(() => (reply ? resolve(reply) : reject(new Error(`no reply to ${message.member ?? 'a call'}`)))),
          (error: unknown) => finish(() => reject(error instanceof Error ? error : new Error(describeError(error)))),
        );
      });
    },
    callDaemon(member, signature, body) {
      return link.call({ destination: 'org.freedesktop.DBus', path: '/org/freedesktop/DBus', interface: 'org.freedesktop.DBus', member, signature, body });
    },
    send(message) {
      if (closed) return false;
      try {
        bus.send(message);
        return true;
      } catch {
        return false;
      }
    },
    onMessage(listener) {
      bus.on('message', (message: Message) => {
        try {
          listener(message);
        } catch {
          // dbus-next would answer the sender with our stack trace; nothing useful to do with it.
        }
      });
    },
    onClose(listener) {
      if (closed) listener('the session bus connection is closed');
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

  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      link.close();
      reject(new Error(`the session bus at ${address} did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    timer.unref();
    bus.once('connect', () => {
      clearTimeout(timer);
      resolve();
    });
    link.onClose((reason) => {
      clearTimeout(timer);
      reject(new Error(reason));
    });
  });
  return link;
}
