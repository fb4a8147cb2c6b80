/**
 * `keytap virtual start --foreground`: one process that owns one virtual key and serves it until
 * SIGTERM/SIGINT, a `stop` control request, or the caller's AbortSignal. The CLI also spawns this
 * detached; readiness is the announcement in the runtime directory (or `onReady`).
 */
import { KeytapError } from '../errors.js';
import type { RunningVirtualKey } from '../device/discovery/virtual-keys.js';
import { virtualKeyId } from './registry.js';
import { serveVirtualKey } from './server.js';
import { VirtualKeyStore } from './store.js';
import { TouchButton } from './touch.js';
import type { TouchPolicy } from './types.js';
import type { KeyDialect } from '../device/key-dialect.js';
import { isOathDialect } from '../device/key-dialect.js';
import type { CodeTyper } from './feitian-applet.js';
import { VirtualKey, appletParts } from './virtual-key.js';
import { VpcdCard } from './vpcd.js';
import type { VpcdAddress } from './vpcd.js';

export interface VirtualKeyServerOptions {
  file: string;
  dialect?: KeyDialect | undefined;
  /** Dialect 'feitian': where a touch types the code (default: the file beside the store, feitian-applet.ts). */
  typer?: CodeTyper | undefined;
  demo?: boolean | undefined;
  /** A served key waits for `keytap virtual touch` unless told otherwise. */
  touch?: TouchPolicy | undefined;
  touchTimeoutMs?: number | undefined;
  /** Also insert the key as a card into vsmartcard's virtual reader (vpcd) at this address. */
  vpcd?: VpcdAddress | undefined;
  /** Stops the server like a signal would (tests, embedding). */
  signal?: AbortSignal | undefined;
  /** Listen for SIGTERM/SIGINT (default true). */
  handleSignals?: boolean | undefined;
  /** Called once the key is reachable and announced. */
  onReady?: ((info: RunningVirtualKey) => void) | undefined;
  /** Progress lines for a human (foreground mode); default: none. */
  log?: ((line: string) => void) | undefined;
}

/** Default touch policy of a served key: a person (or `keytap virtual touch`) presses the button. */
export const DEFAULT_SERVED_TOUCH: TouchPolicy = { mode: 'manual' };

/** Runs until stopped; resolves after the key was withdrawn, its socket closed and the key unplugged. */
export async function runVirtualKeyServer(options: VirtualKeyServerOptions): Promise<void> {
  const log = options.log ?? (() => undefined);
  if (options.signal?.aborted) throw new KeytapError('CANCELLED', 'Cancelled before the virtual key started.');

  // Composed here rather than with VirtualKey.open, so that the vpcd card can share the key's
  // applet (one store, one APDU at a time) and its button (`keytap virtual touch` answers both).
  const store = await VirtualKeyStore.open(options.file, { dialect: options.dialect, demo: options.demo });
  const parts = appletParts(store, options.typer);
  const applet = parts.applet;
  const button = new TouchButton(options.touch ?? DEFAULT_SERVED_TOUCH, options.touchTimeoutMs ?? store.touchTimeoutMs);
  const key = new VirtualKey({ ...parts, button, serial: store.serial, file: options.file });
  // A Feitian key is no smart card: it has no CCID interface to put into vpcd.
  if (options.vpcd && !isOathDialect(store.dialect)) {
    await key.close();
    throw new KeytapError('UNSUPPORTED', `A ${store.dialect} virtual key has no smart card interface to insert into vpcd.`);
  }

  let stop!: (reason: string) => void;
  const stopped = new Promise<string>((resolve) => {
    stop = resolve;
  });

  let server;
  try {
    server = await serveVirtualKey(key, {
      id: virtualKeyId(options.file),
      file: options.file,
      dialect: key.dialect,
      serial: key.serial,
      onStop: () => stop('stop request'),
    });
  } catch (error) {
    await key.close();
    throw error;
  }

  const onSignal = (signal: NodeJS.Signals) => stop(signal);
  const onAbort = () => stop('aborted');
  const handleSignals = options.handleSignals ?? true;
  if (handleSignals) {
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  }
  options.signal?.addEventListener('abort', onAbort, { once: true });

  const card = options.vpcd ? new VpcdCard({ ...options.vpcd, applet, requestTouch: (signal) => button.wait(signal), log: (line) => log(`vpcd: ${line}`) }) : undefined;
  card?.start();

  try {
    log(`virtual key ${server.info.id} (${key.dialect}${key.serial ? `, serial ${key.serial}` : ''}) listening on ${server.socketPath}`);
    if (card) log(`inserting it as a card into vpcd at ${card.host}:${card.port}`);
    try {
      options.onReady?.(server.info);
    } catch (error) {
      console.error('keytap virtual key: onReady failed:', error);
    }
    const reason = await stopped;
    log(`stopping (${reason})`);
  } finally {
    if (handleSignals) {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
    }
    options.signal?.removeEventListener('abort', onAbort);
    // Pull the card first (a PC/SC client sees "removed"), then withdraw (server.close does), so
    // nobody is sent to a key that is going away.
    await card?.close();
    await server.close();
    await key.close();
  }
}
