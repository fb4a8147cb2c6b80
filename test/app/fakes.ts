/** In-memory fakes of everything the controller talks to. */
import { EventEmitter } from 'node:events';
import type { AccountFinder, ClipboardGuardLike, ControllerDeps, KeySource } from '../../src/app/controller.js';
import type { Clock, Logger } from '../../src/app/logger.js';
import { Controller } from '../../src/app/controller.js';
import { ConfigStore } from '../../src/app/config.js';
import type { Autostart, DesktopBinding, GlobalShortcut, ShortcutBinding, ShortcutToBind, Typist } from '../../src/desktop/platform.js';
import type { KeySession, OpenedKey } from '../../src/app/key-session.js';
import type { KeyDescriptor } from '../../src/device/discovery/enumerate.js';
import type { CalculateOptions, KeyCredential, OathCode } from '../../src/device/oath/session.js';
import { KeytapError, cancelledError } from '../../src/errors.js';
import type { CredentialWithSecret } from '../../src/otp/credential.js';
import type { Notification, NotificationHandle, Notifier } from '../../src/notify/types.js';
import type { TrayBackend, TrayModel } from '../../src/tray/model.js';
import { tempDir } from '../support/cli.js';
import { keyOverOne } from '../support/key-descriptor.js';

export class FakeKeys extends EventEmitter implements KeySource {
  started = false;
  initial: KeyDescriptor[] = [];
  start(): Promise<void> {
    this.started = true;
    for (const key of this.initial) this.emit('added', key);
    return Promise.resolve();
  }
  stop(): Promise<void> {
    this.started = false;
    return Promise.resolve();
  }
  plug(key: KeyDescriptor): void {
    this.emit('added', key);
  }
  unplug(key: KeyDescriptor): void {
    this.emit('removed', key);
  }
  /** The key is reached over other interfaces now, as the watcher says when pcscd starts or stops. */
  change(key: KeyDescriptor): void {
    this.emit('changed', key);
  }
}

export function descriptor(id: string, name = 'Nitrokey 3'): KeyDescriptor {
  return keyOverOne({ id, kind: 'hid', name, path: id, open: () => Promise.reject(new Error('not used')) });
}

/** One fake key: its accounts, and how CALCULATE behaves. */
export class FakeDevice {
  credentials: KeyCredential[];
  locked = false;
  serial: string | undefined;
  opens = 0;
  closes = 0;
  calculations: { id: string; time: number | undefined }[] = [];
  /** Make open() fail with this. */
  openError: unknown;
  /** Make calculate() fail with this. */
  calculateError: unknown;
  /** A YubiKey over PC/SC: SELECT tells no serial, readSerial() does (or fails with this). */
  serialFromManagement: string | undefined;
  readSerialError: unknown;
  serialReads = 0;
  /** When set, calculate waits for `release()` (touch). */
  holdTouch = false;
  /** What put() stored, secrets copied (the caller zeroes its own afterwards). */
  puts: CredentialWithSecret[] = [];
  /** Make put() fail with this. */
  putError: unknown;
  private releases: (() => void)[] = [];

  constructor(credentials: KeyCredential[], serial?: string) {
    this.credentials = credentials;
    this.serial = serial;
  }

  release(): void {
    for (const r of this.releases.splice(0)) r();
  }

  get waiting(): number {
    return this.releases.length;
  }

  session(): KeySession {
    return {
      locked: this.locked,
      serial: this.serial,
      readSerial: () => {
        this.serialReads += 1;
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- non-Error rejections are part of what is tested
        if (this.readSerialError !== undefined) return Promise.reject(this.readSerialError);
        return Promise.resolve(this.serial ?? this.serialFromManagement);
      },
      list: () => Promise.resolve(this.credentials.map((c) => ({ ...c }))),
      put: (credential: CredentialWithSecret): Promise<KeyCredential> => {
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- any rejection is tested
        if (this.putError !== undefined) return Promise.reject(this.putError);
        this.puts.push({ ...credential, secret: Uint8Array.from(credential.secret) });
        const prefix = credential.type === 'TOTP' && credential.period !== 30 ? `${credential.period}/` : '';
        const { issuer, account, type, algorithm, period, digits, touch } = credential;
        const stored: KeyCredential = { id: `${prefix}${issuer ? `${issuer}:` : ''}${account}`, issuer, account, type, algorithm, period, digits, touch };
        this.credentials.push(stored);
        return Promise.resolve(stored);
      },
      calculate: async (credential: KeyCredential, options: CalculateOptions = {}): Promise<OathCode> => {
        this.calculations.push({ id: credential.id, time: options.time });
        // eslint-disable-next-line @typescript-eslint/only-throw-error -- non-Error throws are part of what is tested
        if (this.calculateError !== undefined) throw this.calculateError;
        if (credential.touch || this.holdTouch) {
          options.onTouchNeeded?.();
          await new Promise<void>((resolve, reject) => {
            this.releases.push(resolve);
            options.signal?.addEventListener(
              'abort',
              () => {
                this.releases.splice(this.releases.indexOf(resolve), 1);
                reject(cancelledError(options.signal));
              },
              { once: true },
            );
          });
        }
        const time = options.time ?? Date.now() / 1000;
        if (credential.type === 'HOTP') return { code: '755224', digits: 6 };
        const from = Math.floor(time / credential.period) * credential.period;
        return { code: '287082', digits: 6, validFrom: from, validTo: from + credential.period };
      },
    };
  }
}

export class FakeTray implements TrayBackend {
  readonly name = 'fake tray';
  renders: TrayModel[] = [];
  /** The clock's time of each render. */
  renderTimes: number[] = [];
  constructor(private readonly now: () => number = Date.now) {}
  onClick: ((id: string) => void) | undefined;
  onStatus: ((status: 'shown' | 'no-host') => void) | undefined;
  /** What the backend calls when the host leaves the menu to keytap (swaybar's ContextMenu). */
  onMenuWanted: (() => void) | undefined;
  failRender = false;
  failStart = false;
  stopped = false;
  start(onClick: (id: string) => void, onStatus?: (status: 'shown' | 'no-host') => void, onMenuWanted?: () => void): Promise<void> {
    if (this.failStart) return Promise.reject(new KeytapError('UNSUPPORTED', 'No tray here.', { hint: 'Install a tray.' }));
    this.onClick = onClick;
    this.onStatus = onStatus;
    this.onMenuWanted = onMenuWanted;
    return Promise.resolve();
  }
  render(model: TrayModel): Promise<void> {
    this.renders.push(model);
    this.renderTimes.push(this.now());
    return this.failRender ? Promise.reject(new Error('tray host vanished')) : Promise.resolve();
  }
  stop(): Promise<void> {
    this.stopped = true;
    return Promise.resolve();
  }
  get last(): TrayModel {
    return this.renders.at(-1)!;
  }
}

/** A desktop finder that waits until the test answers for the user (a line, or Esc). */
export class FakeFinder implements AccountFinder {
  readonly name = 'fakefinder';
  /** The lines of each opening, in order. */
  opened: string[][] = [];
  /** Whether the open finder was closed by its signal (keytap quitting). */
  aborted = false;
  fail: Error | undefined;
  private answer: ((line: string) => void) | undefined;
  private cancel: ((error: Error) => void) | undefined;
  choose(lines: readonly string[], signal: AbortSignal): Promise<string> {
    this.opened.push([...lines]);
    if (this.fail) return Promise.reject(this.fail);
    return new Promise((resolve, reject) => {
      this.answer = resolve;
      this.cancel = reject;
      signal.addEventListener('abort', () => {
        this.aborted = true;
        reject(new KeytapError('CANCELLED', 'Interrupted.'));
      });
    });
  }
  pick(line: string): void {
    this.answer!(line);
  }
  escape(): void {
    this.cancel!(new KeytapError('CANCELLED', 'Cancelled.'));
  }
}

export class FakeNotifier implements Notifier {
  readonly name = 'fake notifier';
  shown: { notification: Notification; replaces: NotificationHandle | undefined; handle: NotificationHandle }[] = [];
  closed: NotificationHandle[] = [];
  fail = false;
  private next = 1;
  show(notification: Notification, replaces?: NotificationHandle): Promise<NotificationHandle> {
    if (this.fail) return Promise.reject(new Error('notification server gone'));
    const handle = replaces ?? { id: this.next++ };
    this.shown.push({ notification, replaces, handle });
    return Promise.resolve(handle);
  }
  close(handle: NotificationHandle): Promise<void> {
    this.closed.push(handle);
    return Promise.resolve();
  }
  stop(): Promise<void> {
    return Promise.resolve();
  }
  titles(): string[] {
    return this.shown.map((s) => s.notification.title);
  }
}

export class FakeClipboard implements ClipboardGuardLike {
  copies: { text: string; clearAfterSeconds: number }[] = [];
  stopped = false;
  fail: unknown;
  copy(text: string, clearAfterSeconds: number): Promise<void> {
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- any rejection is tested
    if (this.fail !== undefined) return Promise.reject(this.fail);
    this.copies.push({ text, clearAfterSeconds });
    return Promise.resolve();
  }
  stop(): Promise<void> {
    this.stopped = true;
    return Promise.resolve();
  }
}

export class FakeShortcut implements GlobalShortcut {
  readonly name = 'fake shortcut';
  registered: string | undefined;
  onPress: (() => void) | undefined;
  /** The further shortcuts registered with the first (the type shortcut), by accelerator. */
  also: ShortcutBinding[] = [];
  fail: KeytapError | undefined;
  /** Refuses registrations that include a further shortcut with this accelerator. */
  failAlso: string | undefined;
  /** What desktopBinding() was asked for, and what it answers. */
  bindingAsked: (readonly ShortcutToBind[])[] = [];
  binding: DesktopBinding | undefined;
  desktopBinding(shortcuts: readonly ShortcutToBind[]): DesktopBinding | undefined {
    this.bindingAsked.push(shortcuts);
    return this.binding;
  }
  register(accelerator: string, onPress: () => void, also: readonly ShortcutBinding[] = []): Promise<void> {
    if (this.fail) return Promise.reject(this.fail);
    if (this.failAlso && also.some((b) => b.accelerator === this.failAlso)) return Promise.reject(new KeytapError('USAGE', `"${this.failAlso}" is not a shortcut.`));
    this.registered = accelerator;
    this.onPress = onPress;
    this.also = [...also];
    return Promise.resolve();
  }
  unregister(): Promise<void> {
    this.registered = undefined;
    this.also = [];
    return Promise.resolve();
  }
}

/** Records what it would type (the test checks the code), or fails with `fail`. */
export class FakeTypist implements Typist {
  readonly name = 'fake typist';
  typed: string[] = [];
  fail: KeytapError | undefined;
  /** Keeps typing until the signal fires (a slow portal dialog), then fails with the signal's reason. */
  hang = false;
  signals: (AbortSignal | undefined)[] = [];
  type(text: string, signal?: AbortSignal): Promise<void> {
    this.signals.push(signal);
    if (this.hang) {
      return new Promise((_resolve, reject) => {
        // Ignoring a missing signal would hang the test, not pass it.
        signal?.addEventListener('abort', () => reject(signal.reason instanceof Error ? signal.reason : new Error('aborted')), { once: true });
      });
    }
    if (this.fail) return Promise.reject(this.fail);
    this.typed.push(text);
    return Promise.resolve();
  }
}

export class FakeAutostart implements Autostart {
  readonly name = 'fake autostart';
  enabled = false;
  command: readonly string[] | undefined;
  isEnabled(): Promise<boolean> {
    return Promise.resolve(this.enabled);
  }
  enable(command: readonly string[]): Promise<void> {
    this.enabled = true;
    this.command = command;
    return Promise.resolve();
  }
  disable(): Promise<void> {
    this.enabled = false;
    return Promise.resolve();
  }
}

/** Timers that only fire when told; `now` moves by hand. */
export class FakeClock implements Clock {
  nowMs = 1_700_000_010_000;
  private timers = new Map<number, { at: number; callback: () => void }>();
  private nextId = 1;
  now(): number {
    return this.nowMs;
  }
  setTimeout(callback: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.set(id, { at: this.nowMs + ms, callback });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }
  advance(ms: number): void {
    this.nowMs += ms;
    for (const [id, timer] of [...this.timers]) {
      if (timer.at <= this.nowMs) {
        this.timers.delete(id);
        timer.callback();
      }
    }
  }
  get pending(): number {
    return this.timers.size;
  }
}

export class MemoryLogger implements Logger {
  lines: string[] = [];
  info(m: string): void {
    this.lines.push(`info ${m}`);
  }
  warn(m: string): void {
    this.lines.push(`warn ${m}`);
  }
  error(m: string): void {
    this.lines.push(`error ${m}`);
  }
}

export interface Rig {
  controller: Controller;
  keys: FakeKeys;
  devices: Map<string, FakeDevice>;
  tray: FakeTray;
  notifier: FakeNotifier;
  clipboard: FakeClipboard;
  shortcut: FakeShortcut;
  typist: FakeTypist;
  autostart: FakeAutostart;
  clock: FakeClock;
  logger: MemoryLogger;
  config: ConfigStore;
  opened: string[];
  /** The descriptors open was given, in order (the newest a 'changed' event left). */
  openedDescriptors: KeyDescriptor[];
}

export function rig(overrides: Partial<ControllerDeps> = {}): Rig {
  const keys = new FakeKeys();
  const devices = new Map<string, FakeDevice>();
  const opened: string[] = [];
  const openedDescriptors: KeyDescriptor[] = [];
  const clock = new FakeClock();
  const tray = new FakeTray(() => clock.now());
  const notifier = new FakeNotifier();
  const clipboard = new FakeClipboard();
  const shortcut = new FakeShortcut();
  const typist = new FakeTypist();
  const autostart = new FakeAutostart();
  const logger = new MemoryLogger();
  const config = ConfigStore.open({ dir: tempDir() });
  const controller = new Controller({
    keys,
    open: (d: KeyDescriptor): Promise<OpenedKey> => {
      const device = devices.get(d.id);
      if (!device) return Promise.reject(new KeytapError('KEY_REMOVED', 'The key went away.'));
      opened.push(d.id);
      openedDescriptors.push(d);
      device.opens++;
      if (device.openError !== undefined) {
        device.closes++; // nothing was left open
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- any rejection is tested
        return Promise.reject(device.openError);
      }
      return Promise.resolve({
        session: device.session(),
        name: d.name,
        id: device.serial ?? d.id,
        close: () => {
          device.closes++;
          return Promise.resolve();
        },
      });
    },
    tray,
    notifier,
    clipboard,
    shortcut,
    typist,
    autostart,
    autostartCommand: ['node', 'keytap.cjs', 'tray'],
    config,
    openPath: () => Promise.resolve(),
    clock,
    logger,
    version: '9.9.9',
    ...overrides,
  });
  return { controller, keys, devices, tray, notifier, clipboard, shortcut, typist, autostart, clock, logger, config, opened, openedDescriptors };
}

/** Lets queued promises and microtasks run. */
export async function flush(r: Rig): Promise<void> {
  for (let i = 0; i < 5; i++) {
    await r.controller.idle();
    await new Promise((resolve) => setImmediate(resolve));
  }
}
