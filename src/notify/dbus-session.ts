/**
 * A session-bus connection that cannot hang or crash its user. dbus-next forwards socket errors
 * as an 'error' event (an unhandled one would throw) and leaves calls pending forever when the
 * bus is gone, so every call here has a deadline and a dead connection is reported, not thrown.
 */
import { existsSync } from 'node:fs';

import type { MessageBus, MessageLike } from 'dbus-next';
import { Message, Variant, sessionBus } from 'dbus-next';

export { Message, Variant };
type DbusMessage = Message;

export interface SessionBus {
  readonly bus: MessageBus;
  /** Calls a method; rejects on a D-Bus error, a dead connection or after `timeoutMs`. */
  call(message: MessageLike, timeoutMs?: number): Promise<DbusMessage>;
  /** Adds a match rule so the bus routes those signals to us. */
  addMatch(rule: string): Promise<void>;
  /** Runs `listener` for every incoming message (signals included); returns the remover. */
  onMessage(listener: (message: DbusMessage) => void): () => void;
  /** Runs once when the connection fails or is closed. */
  onClose(listener: (error: Error) => void): void;
  readonly closed: boolean;
  close(): void;
}

const DEFAULT_TIMEOUT_MS = 5_000;

/** Connects to the session bus; rejects (never throws synchronously) when there is none. */
export async function connectSessionBus(options: { address?: string; timeoutMs?: number } = {}): Promise<SessionBus> {
  const address = options.address ?? sessionBusAddress();
  if (!address) throw new Error('no session bus (DBUS_SESSION_BUS_ADDRESS is not set)');
  let bus: MessageBus;
  try {
    bus = sessionBus({ busAddress: address });
  } catch (error) {
    throw new Error(`cannot connect to the session bus: ${describe(error)}`);
  }
  const closeListeners: ((error: Error) => void)[] = [];
  let closed = false;
  const markClosed = (error: Error) => {
    if (closed) return;
    closed = true;
    for (const listener of closeListeners.splice(0)) listener(error);
  };
  // Without a listener an 'error' event would throw out of the socket callback.
  bus.on('error', (error: unknown) => markClosed(new Error(`session bus: ${describe(error)}`)));
  // dbus-next does not surface the end of the stream; its connection object does.
  const connection = (bus as unknown as { _connection?: NodeJS.EventEmitter })._connection;
  connection?.on('end', () => markClosed(new Error('session bus closed the connection')));
  connection?.on('close', () => markClosed(new Error('session bus connection closed')));

  const session: SessionBus = {
    bus,
    get closed() {
      return closed;
    },
    call(message, timeoutMs = DEFAULT_TIMEOUT_MS) {
      if (closed) return Promise.reject(new Error('session bus connection is closed'));
      return new Promise<DbusMessage>((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(new Error(`no answer to ${message.member ?? 'call'} within ${timeoutMs} ms`));
        }, timeoutMs);
        timer.unref();
        const onClose = (error: Error) => {
          clearTimeout(timer);
          reject(error);
        };
        closeListeners.push(onClose);
        const done = () => {
          clearTimeout(timer);
          const index = closeListeners.indexOf(onClose);
          if (index >= 0) closeListeners.splice(index, 1);
        };
        bus.call(new Message(message)).then(
          (reply) => {
            done();
            // A call with NO_REPLY_EXPECTED resolves null; every call here expects a reply.
            if (reply) resolve(reply);
            else reject(new Error(`no reply to ${message.member ?? 'call'}`));
          },
          (error: unknown) => {
            done();
            reject(error instanceof Error ? error : new Error(describe(error)));
          },
        );
      });
    },
    async addMatch(rule) {
      await session.call({
        destination: 'org.freedesktop.DBus',
        path: '/org/freedesktop/DBus',
        interface: 'org.freedesktop.DBus',
        member: 'AddMatch',
        signature: 's',
        body: [rule],
      });
    },
    onMessage(listener) {
      const wrapped = (message: DbusMessage) => {
        // After close() the socket may still deliver what was in flight; nobody wants it.
        if (closed) return;
        try {
          listener(message);
        } catch {
          // A listener's bug must not reach dbus-next, which would answer the sender with it.
        }
      };
      bus.on('message', wrapped);
      return () => bus.removeListener('message', wrapped);
    },
    onClose(listener) {
      if (closed) listener(new Error('session bus connection is closed'));
      else closeListeners.push(listener);
    },
    close() {
      markClosed(new Error('closed by keytap'));
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
      reject(new Error('the session bus did not answer'));
    }, options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
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

export function describe(error: unknown): string {
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
