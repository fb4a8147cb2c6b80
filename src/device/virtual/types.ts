/**
 * Seams inside the virtual key: the OATH applet (an ISO 7816 card application), the human at the
 * key (touch), and the CTAPHID device that carries APDUs to the applet.
 */

/** Which real key the virtual key answers like (docs/protocols.md §1 and §2.12). */
export type Dialect = 'yubikey' | 'nitrokey3';
export const DIALECTS: readonly Dialect[] = ['yubikey', 'nitrokey3'];

/**
 * How the virtual key's button behaves:
 * - `auto`: touched by itself `delayMs` after the key asks;
 * - `manual`: waits for `keytap virtual touch` (or `VirtualKey.touch()`);
 * - `never`: never touched, so every touch request times out.
 */
export type TouchPolicy = { mode: 'auto'; delayMs: number } | { mode: 'manual' } | { mode: 'never' };

/** How long a key waits for a touch before it gives up (Nitrokey 3: UP_TIMEOUT 15 000 ms). */
export const DEFAULT_TOUCH_TIMEOUT_MS = 15_000;

/** What an applet may ask of the device around it while processing one APDU. */
export interface AppletContext {
  /**
   * Asks the user to touch the key and waits. Resolves true when touched, false when the key's
   * touch timeout passed. Rejects (with KeytapError CANCELLED) when `signal` fires: the host sent
   * CTAPHID CANCEL or the key is being unplugged.
   */
  requestTouch(): Promise<boolean>;
  readonly signal: AbortSignal;
}

/** A card application: one command APDU in, one response APDU (data ‖ SW1 SW2, ISO order) out. */
export interface CardApplet {
  process(apdu: Uint8Array, context: AppletContext): Promise<Uint8Array>;
}
