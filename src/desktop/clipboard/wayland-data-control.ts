/**
 * The Wayland clipboard served from inside this process through the compositor's data-control
 * protocol (ext-data-control-v1, or wlroots' older zwlr_data_control_unstable_v1: the same
 * requests and events), so that a sensitive copy carries `x-kde-passwordManagerHint: secret` next
 * to the text, as the X11 owner's does (x11-selection.ts). wl-copy up to 2.2 offers one type per
 * copy and cannot.
 *
 * keytap holds a Wayland connection only while it owns the selection: from a copy until the clear,
 * or until another client copies (the source's `cancelled`). A data-control client needs no
 * focused surface, which a tray has not. Reading stays with wl-paste (the `fallback`), and so does
 * clearing what someone else put there (a clipboard manager that took over our copy).
 *
 * sway, Hyprland, river, labwc, Wayfire and KDE Plasma offer data-control; GNOME's mutter does
 * not, and createClipboard then keeps wl-copy.
 */
import { close as closeFd, write as writeFd } from 'node:fs';
import { KeytapError } from '../../errors.js';
import type { Clipboard } from '../platform.js';
import { WaylandConnection } from '../wayland/connection.js';
import type { ConnectOptions, WaylandGlobal } from '../wayland/connection.js';
import type { ArgReader } from '../wayland/wire.js';

/** The managers keytap can use, best first, with the version it binds (1 has all it needs). */
const MANAGERS = ['ext_data_control_manager_v1', 'zwlr_data_control_manager_v1'] as const;
export type DataControlManager = (typeof MANAGERS)[number];

// Requests and events, identical in both protocols.
const MANAGER_CREATE_DATA_SOURCE = 0;
const MANAGER_GET_DATA_DEVICE = 1;
const DEVICE_SET_SELECTION = 0;
const DEVICE_DATA_OFFER = 0;
const DEVICE_SELECTION = 1;
const DEVICE_FINISHED = 2;
const SOURCE_OFFER = 0;
const SOURCE_DESTROY = 1;
const SOURCE_SEND = 0;
const SOURCE_CANCELLED = 1;
const OFFER_DESTROY = 1;

/** What wl-copy --type text/plain offers, so every client that pastes text finds a type it asks for. */
export const TEXT_MIME_TYPES = ['text/plain;charset=utf-8', 'text/plain', 'UTF8_STRING', 'STRING', 'TEXT'] as const;
/** KDE's marker (Klipper, and wl-clipboard 2.3's `wl-paste --watch`) that a copy is a password. */
export const SENSITIVE_MIME_TYPE = 'x-kde-passwordManagerHint';

/** Which data-control manager the compositor offers; throws, naming what is missing, when none. */
export async function findDataControl(env: NodeJS.ProcessEnv, options: ConnectOptions = {}): Promise<DataControlManager> {
  const connection = await WaylandConnection.connect(env, options);
  try {
    return pickManager(await connection.globals()).manager.interface as DataControlManager;
  } finally {
    await connection.close();
  }
}

function pickManager(globals: readonly WaylandGlobal[]): { manager: WaylandGlobal; seat: WaylandGlobal } {
  const manager = MANAGERS.map((name) => globals.find((g) => g.interface === name)).find((g) => g !== undefined);
  if (!manager) {
    throw new KeytapError('UNSUPPORTED', 'This Wayland compositor offers no data-control protocol (ext-data-control-v1 or wlr-data-control), so keytap cannot offer the clipboard itself.', {
      hint: 'GNOME has none; wl-copy serves instead, without the password marker.',
    });
  }
  const seat = globals.find((g) => g.interface === 'wl_seat');
  if (!seat) throw new KeytapError('UNSUPPORTED', 'This Wayland compositor has no seat, so it has no clipboard.');
  return { manager, seat };
}

interface Owned {
  source: number;
  /** The copied text as a paste receives it (UTF-8). Zeroed when the copy ends. */
  text: Buffer;
  sensitive: boolean;
}

interface Session {
  connection: WaylandConnection;
  manager: number;
  device: number;
  owned: Owned | undefined;
}

export class WaylandDataControlClipboard implements Clipboard {
  readonly name: string;
  readonly marksSensitive = true;
  private session: Promise<Session> | undefined;
  /** One write or clear at a time, in order. */
  private queue: Promise<unknown> = Promise.resolve();

  /**
   * @param fallback reads (wl-paste) and clears what keytap does not own (wl-copy --clear).
   */
  constructor(
    manager: DataControlManager,
    private readonly env: NodeJS.ProcessEnv,
    private readonly fallback: Clipboard,
    private readonly options: ConnectOptions = {},
  ) {
    this.name = `${manager === 'ext_data_control_manager_v1' ? 'ext-data-control' : 'wlr-data-control'} (in-process)`;
  }

  /** Whether keytap holds a Wayland connection now (it does only while it owns the selection). */
  get connected(): boolean {
    return this.session !== undefined;
  }

  write(text: string, options: { sensitive: boolean }): Promise<void> {
    return this.serialized(async () => {
      try {
        const session = await this.open();
        const { connection } = session;
        const owned: Owned = { source: 0, text: Buffer.from(text, 'utf8'), sensitive: options.sensitive };
        owned.source = connection.newObject((opcode, args, takeFd) => this.sourceEvent(session, owned, opcode, args, takeFd));
        connection.request(session.manager, MANAGER_CREATE_DATA_SOURCE, [{ type: 'new_id', value: owned.source }]);
        for (const type of options.sensitive ? [...TEXT_MIME_TYPES, SENSITIVE_MIME_TYPE] : TEXT_MIME_TYPES) {
          connection.request(owned.source, SOURCE_OFFER, [{ type: 'string', value: type }]);
        }
        connection.request(session.device, DEVICE_SET_SELECTION, [{ type: 'object', value: owned.source }]);
        // The source it replaces hears `cancelled` and is let go there.
        session.owned = owned;
        // Until the compositor has taken it, a paste right after this could see the old selection.
        await connection.roundtrip();
      } catch (error) {
        await this.drop();
        throw failure('copy to', error);
      }
    });
  }

  read(): Promise<string | undefined> {
    return this.fallback.read();
  }

  clear(): Promise<void> {
    return this.serialized(async () => {
      const session = this.session ? await this.session.catch(() => undefined) : undefined;
      if (!session?.owned) {
        await this.drop();
        return this.fallback.clear();
      }
      try {
        session.connection.request(session.device, DEVICE_SET_SELECTION, [{ type: 'object', value: 0 }]);
        await session.connection.roundtrip();
      } catch (error) {
        throw failure('clear', error);
      } finally {
        await this.drop();
      }
    });
  }

  /** Lets the selection go and closes the connection (the resident process on its way out). */
  close(): Promise<void> {
    return this.serialized(() => this.drop());
  }

  private serialized<T>(action: () => Promise<T>): Promise<T> {
    const next = this.queue.then(action, action);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private open(): Promise<Session> {
    this.session ??= this.connect();
    return this.session;
  }

  private async connect(): Promise<Session> {
    const connection = await WaylandConnection.connect(this.env, this.options);
    try {
      const { manager, seat } = pickManager(await connection.globals());
      // Version 1 of each: no primary selection events (so none is handled), no seat name; nothing keytap needs is newer.
      const seatId = connection.bind(seat, 1, () => undefined);
      const managerId = connection.bind(manager, 1, () => undefined);
      const session: Session = { connection, manager: managerId, device: 0, owned: undefined };
      session.device = connection.newObject((opcode, args) => this.deviceEvent(session, opcode, args));
      connection.request(managerId, MANAGER_GET_DATA_DEVICE, [
        { type: 'new_id', value: session.device },
        { type: 'object', value: seatId },
      ]);
      connection.onFailure = () => void this.forget(session);
      await connection.roundtrip();
      return session;
    } catch (error) {
      await connection.close();
      throw error;
    }
  }

  private deviceEvent(session: Session, opcode: number, args: ArgReader): void {
    if (opcode === DEVICE_DATA_OFFER) {
      // Every selection (ours too) arrives as an offer; keytap reads with wl-paste, so it lets each go.
      session.connection.serverObject(args.newId(), () => undefined);
    } else if (opcode === DEVICE_SELECTION) {
      const offer = args.object();
      if (offer !== 0) session.connection.destroyServerObject(offer, OFFER_DESTROY);
    } else if (opcode === DEVICE_FINISHED) {
      void this.forget(session);
    }
  }

  private sourceEvent(session: Session, owned: Owned, opcode: number, args: ArgReader, takeFd: () => number): void {
    if (opcode === SOURCE_SEND) {
      const type = args.string();
      const fd = takeFd();
      const live = session.owned === owned;
      const payload = !live ? Buffer.alloc(0) : type === SENSITIVE_MIME_TYPE ? Buffer.from('secret') : Buffer.from(owned.text);
      // Through the thread pool: a pasting client that reads slowly blocks a worker, not the loop.
      writeFd(fd, payload, (error) => {
        payload.fill(0);
        void error; // A paste that went wrong is the pasting client's to report.
        closeFd(fd, () => undefined);
      });
    } else if (opcode === SOURCE_CANCELLED) {
      owned.text.fill(0);
      try {
        session.connection.request(owned.source, SOURCE_DESTROY);
      } catch {
        // The connection is going anyway.
      }
      // Someone else copied: nothing left to serve, so no reason to stay connected.
      if (session.owned === owned) void this.serialized(() => (session.owned === owned ? this.forget(session) : Promise.resolve()));
    }
  }

  /** Closes the session if it is still the current one. */
  private async forget(session: Session): Promise<void> {
    if (this.session && (await this.session.catch(() => undefined)) === session) await this.drop();
  }

  private async drop(): Promise<void> {
    const current = this.session;
    this.session = undefined;
    const session = current ? await current.catch(() => undefined) : undefined;
    if (!session) return;
    session.owned?.text.fill(0);
    session.owned = undefined;
    await session.connection.close();
  }
}

function failure(what: string, cause: unknown): KeytapError {
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new KeytapError('UNSUPPORTED', `Could not ${what} the Wayland clipboard (${detail}).`, {
    hint: 'Check that the Wayland compositor is still running; keytap connects again on the next copy.',
    cause,
  });
}
