/**
 * A minimal Wayland client connection: the wl_display and wl_registry objects, round trips
 * (wl_display.sync → wl_callback.done), and the dispatch of events to the objects a caller
 * created. Just enough for the data-control clipboard (clipboard/wayland-data-control.ts); not a
 * general client library. Requests and events are those of wayland.xml (wl_display, wl_registry,
 * wl_callback).
 */
import { close as closeFd } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { KeytapError } from '../../errors.js';
import { connectUnixSocket } from './libc.js';
import type { FdSocket } from './libc.js';
import { ArgReader, MessageReader, WireFormatError, encodeMessage } from './wire.js';
import type { WireArg, WireMessage } from './wire.js';

const DISPLAY_ID = 1;
// wl_display requests and events.
const DISPLAY_SYNC = 0;
const DISPLAY_GET_REGISTRY = 1;
const DISPLAY_ERROR = 0;
const DISPLAY_DELETE_ID = 1;
// wl_registry.
const REGISTRY_BIND = 0;
const REGISTRY_GLOBAL = 0;
// wl_callback.done.
const CALLBACK_DONE = 0;

/** How long one poll of the socket waits; close() wakes it sooner (libc.ts). */
const POLL_MS = 5_000;

export interface WaylandGlobal {
  /** The registry's numeric name, for bind. */
  name: number;
  interface: string;
  version: number;
}

/**
 * One object's events: `opcode` and its arguments; `takeFd` hands over the next file descriptor
 * that came with the events (the handler then owns it).
 */
export type EventHandler = (opcode: number, args: ArgReader, takeFd: () => number) => void;

export interface ConnectOptions {
  /** How long a round trip may take. */
  timeoutMs?: number | undefined;
  /** The socket (tests: a fake compositor's). */
  connect?: ((path: string) => Promise<FdSocket>) | undefined;
}

/** The compositor's socket as libwayland finds it: $WAYLAND_DISPLAY, absolute or under $XDG_RUNTIME_DIR. */
export function waylandSocketPath(env: NodeJS.ProcessEnv): string {
  const display = env.WAYLAND_DISPLAY || 'wayland-0';
  if (isAbsolute(display)) return display;
  if (!env.XDG_RUNTIME_DIR) throw new KeytapError('UNSUPPORTED', 'XDG_RUNTIME_DIR is not set, so the Wayland socket cannot be found.');
  return join(env.XDG_RUNTIME_DIR, display);
}

export class WaylandConnection {
  private nextId = DISPLAY_ID + 1;
  private readonly handlers = new Map<number, EventHandler>();
  private readonly reader = new MessageReader();
  private readonly fds: number[] = [];
  private readonly waiting = new Set<(error: Error) => void>();
  private failure: Error | undefined;
  private closing = false;
  private registry: number | undefined;
  private readonly reading: Promise<void>;
  /** Called once when the connection fails after it was made (an error event, the compositor gone). */
  onFailure: ((error: Error) => void) | undefined;

  private constructor(
    private readonly socket: FdSocket,
    private readonly timeoutMs: number,
  ) {
    this.handlers.set(DISPLAY_ID, (opcode, args) => this.displayEvent(opcode, args));
    this.reading = this.readLoop();
  }

  static async connect(env: NodeJS.ProcessEnv, options: ConnectOptions = {}): Promise<WaylandConnection> {
    const path = waylandSocketPath(env);
    const socket = await (options.connect ?? connectUnixSocket)(path);
    return new WaylandConnection(socket, options.timeoutMs ?? 2_000);
  }

  /** A new client-side object id whose events go to `handler`. */
  newObject(handler: EventHandler): number {
    const id = this.nextId++;
    this.handlers.set(id, handler);
    return id;
  }

  /** An object the compositor made (a new_id in an event); its events go to `handler`. */
  serverObject(id: number, handler: EventHandler): void {
    this.handlers.set(id, handler);
  }

  /**
   * Sends a compositor-made object's destructor and forgets it: no delete_id comes for those, and
   * no event can follow the destructor.
   */
  destroyServerObject(id: number, destructorOpcode: number): void {
    this.request(id, destructorOpcode);
    this.handlers.delete(id);
  }

  request(objectId: number, opcode: number, args: readonly WireArg[] = []): void {
    if (this.failure) throw this.failure;
    try {
      this.socket.send(encodeMessage(objectId, opcode, args));
    } catch (error) {
      throw this.fail(error);
    }
  }

  /** Resolves once the compositor has handled every request sent before it (rejects on an error event). */
  roundtrip(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.failure) {
        reject(this.failure);
        return;
      }
      const settle = (error?: Error): void => {
        clearTimeout(timer);
        this.waiting.delete(settle);
        if (error) reject(error);
        else resolve();
      };
      const timer = setTimeout(() => settle(new KeytapError('TIMEOUT', `The Wayland compositor did not answer within ${this.timeoutMs / 1000} s.`)), this.timeoutMs);
      this.waiting.add(settle);
      const callback = this.newObject((opcode) => {
        if (opcode === CALLBACK_DONE) settle();
      });
      try {
        this.request(DISPLAY_ID, DISPLAY_SYNC, [{ type: 'new_id', value: callback }]);
      } catch (error) {
        settle(error as Error);
      }
    });
  }

  /** The compositor's globals (wl_registry.global events up to a round trip). */
  async globals(): Promise<WaylandGlobal[]> {
    const globals: WaylandGlobal[] = [];
    const registry = this.newObject((opcode, args) => {
      if (opcode !== REGISTRY_GLOBAL) return;
      const name = args.uint();
      const interfaceName = args.string() ?? '';
      globals.push({ name, interface: interfaceName, version: args.uint() });
    });
    this.registry = registry;
    this.request(DISPLAY_ID, DISPLAY_GET_REGISTRY, [{ type: 'new_id', value: registry }]);
    await this.roundtrip();
    return globals;
  }

  /** Binds a global found by globals() at `version`; returns the new object's id. */
  bind(global: WaylandGlobal, version: number, handler: EventHandler): number {
    if (this.registry === undefined) throw new Error('globals() comes before bind()');
    const id = this.newObject(handler);
    // wl_registry.bind's new_id has no interface in the XML, so it travels as interface, version, id.
    this.request(this.registry, REGISTRY_BIND, [
      { type: 'uint', value: global.name },
      { type: 'string', value: global.interface },
      { type: 'uint', value: version },
      { type: 'new_id', value: id },
    ]);
    return id;
  }

  /** Closes the socket and every descriptor not handed out. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.fail(new KeytapError('UNSUPPORTED', 'The Wayland connection was closed.'), false);
    await this.socket.close();
    await this.reading;
    for (const fd of this.fds.splice(0)) closeQuietly(fd);
  }

  private displayEvent(opcode: number, args: ArgReader): void {
    if (opcode === DISPLAY_ERROR) {
      const objectId = args.object();
      const code = args.uint();
      const message = args.string() ?? '';
      this.fail(new KeytapError('UNSUPPORTED', `The Wayland compositor refused a request of keytap's (object ${objectId}, error ${code}: ${message}).`));
    } else if (opcode === DISPLAY_DELETE_ID) {
      this.handlers.delete(args.uint());
    }
  }

  private async readLoop(): Promise<void> {
    while (!this.closing && !this.failure) {
      const readable = await this.socket.waitReadable(POLL_MS);
      if (this.closing || !readable) continue;
      try {
        for (let received = this.socket.receive(); received !== undefined; received = this.socket.receive()) {
          if (received === 'closed') throw new KeytapError('UNSUPPORTED', 'The Wayland compositor closed the connection.');
          this.fds.push(...received.fds);
          for (const message of this.reader.push(received.data)) this.dispatch(message);
          if (this.failure) return;
        }
      } catch (error) {
        this.fail(error);
        return;
      }
    }
  }

  private dispatch(message: WireMessage): void {
    const handler = this.handlers.get(message.objectId);
    // An event for an object never made would leave its descriptors unaccounted for.
    if (!handler) throw new WireFormatError(`The Wayland compositor sent an event to object ${message.objectId}, which keytap never made.`);
    const takeFd = (): number => {
      const fd = this.fds.shift();
      if (fd === undefined) throw new WireFormatError('A Wayland event that carries a file descriptor came without one.');
      return fd;
    };
    handler(message.opcode, new ArgReader(message.body), takeFd);
  }

  /** Records the first failure, rejects every round trip waiting, and tells onFailure. */
  private fail(error: unknown, notify = true): Error {
    const failure =
      error instanceof KeytapError
        ? error
        : new KeytapError('UNSUPPORTED', `keytap's Wayland connection failed (${error instanceof Error ? error.message : String(error)}).`, { cause: error });
    if (this.failure) return this.failure;
    this.failure = failure;
    for (const settle of [...this.waiting]) settle(failure);
    if (notify && !this.closing) this.onFailure?.(failure);
    return failure;
  }
}

function closeQuietly(fd: number): void {
  closeFd(fd, () => undefined);
}
