/**
 * A virtual key: store + applet (OATH, or the Feitian HOTP one) + touch button + CTAPHID device,
 * and in-process HID links to it. `openLink()` is the 64-byte report boundary the real client code talks to, exactly where
 * node-hid would sit for a physical key; `close()` is pulling the key out of the port.
 */
import { KeytapError } from '../errors.js';
import { CTAPHID_REPORT_SIZE } from '../device/transport/ctaphid-frames.js';
import { ReportQueue } from '../device/transport/report-queue.js';
import type { HidLink } from '../device/transport/types.js';
import { CtapHidDevice } from './ctaphid-device.js';
import type { CtapHidDeviceOptions, HidOpen } from './ctaphid-device.js';
import { resolve } from 'node:path';
import { FeitianApplet, fileTyper, typedCodesFile } from './feitian-applet.js';
import type { CodeTyper } from './feitian-applet.js';
import { OathApplet } from './oath-applet.js';
import { VirtualKeyStore } from './store.js';
import { TouchButton } from './touch.js';
import type { CardApplet, TouchPolicy } from './types.js';
import type { KeyDialect } from '../device/key-dialect.js';
import { isOathDialect } from '../device/key-dialect.js';

/** The button as the key uses it (touch.ts's TouchButton; tests may pass their own). */
export interface TouchSource {
  policy: TouchPolicy;
  wait(signal: AbortSignal): Promise<boolean>;
  /** True when a pending wait was answered. */
  press(): boolean;
}

export interface VirtualKeyOpenOptions {
  /** The JSON store. */
  file: string;
  /** Create the store when it is missing (the default); otherwise INPUT_FILE. */
  create?: boolean | undefined;
  dialect?: KeyDialect | undefined;
  /** Dialect 'feitian': where a touch types the code; default: appended to typedCodesFile(file). */
  typer?: CodeTyper | undefined;
  /** Seed a new store with demo credentials. */
  demo?: boolean | undefined;
  /** In-process default: touched at once (`{ mode: 'auto', delayMs: 0 }`). */
  touch?: TouchPolicy | undefined;
  /** Defaults to the store's setting. */
  touchTimeoutMs?: number | undefined;
}

export interface VirtualKeyParts {
  dialect: KeyDialect;
  applet: CardApplet;
  button: TouchSource;
  /** What a touch does when no request waits for one (a Feitian key types its next code). */
  onIdleTouch?: (() => Promise<unknown>) | undefined;
  /** The serial as keytap shows it (store.ts `serial`), where the key has one. */
  serial?: string | undefined;
  file?: string | undefined;
  /** Passed to the CTAPHID device (timers, limits), mainly for tests. */
  device?: Partial<Omit<CtapHidDeviceOptions, 'dialect' | 'applet' | 'requestTouch'>> | undefined;
}

export const DEFAULT_IN_PROCESS_TOUCH: TouchPolicy = { mode: 'auto', delayMs: 0 };

/** Input reports a link keeps when nobody reads (a 15 s touch wait with keepalives is ~300). */
const MAX_QUEUED_REPORTS = 4096;

export class VirtualKey {
  readonly dialect: KeyDialect;
  readonly serial: string | undefined;
  readonly file: string | undefined;
  readonly device: CtapHidDevice;
  private readonly button: TouchSource;
  private readonly onIdleTouch: (() => Promise<unknown>) | undefined;
  private readonly links = new Set<InProcessHidLink>();
  private closed = false;

  static async open(options: VirtualKeyOpenOptions): Promise<VirtualKey> {
    const store = await VirtualKeyStore.open(options.file, { dialect: options.dialect, demo: options.demo, create: options.create });
    return new VirtualKey({
      ...appletParts(store, options.typer),
      button: new TouchButton(options.touch ?? DEFAULT_IN_PROCESS_TOUCH, options.touchTimeoutMs ?? store.touchTimeoutMs),
      serial: store.serial,
      file: options.file,
    });
  }

  /** Composes a key from its parts (tests use their own applet or button). */
  constructor(parts: VirtualKeyParts) {
    this.dialect = parts.dialect;
    this.serial = parts.serial;
    this.file = parts.file;
    this.button = parts.button;
    this.onIdleTouch = parts.onIdleTouch;
    this.device = new CtapHidDevice({
      ...parts.device,
      dialect: parts.dialect,
      applet: parts.applet,
      requestTouch: (signal) => this.button.wait(signal),
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  get touchPolicy(): TouchPolicy {
    return this.button.policy;
  }

  /** A new HID "open" of the key. Every link sees every input report, as hidraw readers do. */
  openLink(): HidLink {
    if (this.closed) throw new KeytapError('KEY_REMOVED', 'The virtual key is unplugged.');
    const link = new InProcessHidLink(this.device, () => this.links.delete(link));
    this.links.add(link);
    return link;
  }

  /**
   * Presses the button: answers a pending touch request; with none pending, does what the key
   * does then (a Feitian key types its next code; the others nothing). Resolves once that is done.
   */
  async touch(): Promise<void> {
    if (this.button.press() || this.closed) return;
    await this.onIdleTouch?.();
  }

  setTouchPolicy(policy: TouchPolicy): void {
    this.button.policy = policy;
  }

  /** Unplugs the key: the pending applet request is cancelled and every link fails with KEY_REMOVED. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    this.device.close();
    for (const link of [...this.links]) link.unplug();
    this.links.clear();
    return Promise.resolve();
  }
}

/** The applet for the store's dialect, and what an idle touch does with it. */
export function appletParts(store: VirtualKeyStore, typer?: CodeTyper): Pick<VirtualKeyParts, 'dialect' | 'applet' | 'onIdleTouch'> {
  const dialect = store.dialect;
  if (isOathDialect(dialect)) return { dialect, applet: new OathApplet(store, { dialect }) };
  const applet = new FeitianApplet(store, typer ?? fileTyper(typedCodesFile(resolve(store.file))));
  return { dialect, applet, onIdleTouch: () => applet.typeNextCode() };
}

/** The client side of the 64-byte boundary for one in-process open of a virtual key. */
class InProcessHidLink implements HidLink {
  readonly reportSize = CTAPHID_REPORT_SIZE;
  /** Input reports not read yet, waiting reads, and why the link is unusable once it is. */
  private readonly reports = new ReportQueue({ maxQueued: MAX_QUEUED_REPORTS });
  /** This open of the device: the channels it allocates are freed when the link closes. */
  private readonly open: HidOpen;

  constructor(
    device: CtapHidDevice,
    private readonly forget: () => void,
  ) {
    this.open = device.connect((report) => this.reports.push(report));
  }

  write(report: Uint8Array): Promise<void> {
    if (this.reports.failure) return Promise.reject(this.reports.failure);
    if (report.length !== this.reportSize) {
      return Promise.reject(new RangeError(`A HID report for this key has ${this.reportSize} bytes, not ${report.length}.`));
    }
    this.open.receive(report);
    return Promise.resolve();
  }

  read(timeoutMs: number, signal?: AbortSignal): Promise<Uint8Array | undefined> {
    return this.reports.read(timeoutMs, signal);
  }

  close(): Promise<void> {
    this.fail(new KeytapError('CANCELLED', 'The HID link was closed.'));
    return Promise.resolve();
  }

  /** The key went away. */
  unplug(): void {
    this.fail(new KeytapError('KEY_REMOVED', 'The virtual key was unplugged.', { detail: { kind: 'virtual-key-gone' } }));
  }

  private fail(error: KeytapError): void {
    if (!this.reports.fail(error)) return;
    this.open.close();
    this.forget();
  }
}
