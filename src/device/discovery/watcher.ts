/**
 * Hotplug: `added` / `removed` events for keys, from events where the OS has them.
 *
 * An OS event is only a trigger ("something changed"); identity comes from a debounced
 * re-enumeration diffed by id, as Ledger's listenDevices does. Triggers:
 * - virtual keys, everywhere: fs.watch on the runtime directory (an `<id>.json` appearing or
 *   going is plugging in or out);
 * - HID on Linux: fs.watch on /dev (inotify) for hidraw nodes;
 * - HID on macOS and Windows: no event source without the `usb` package (not a dependency), so a
 *   poll every 2 s. On Linux nothing runs while nothing changes: no timers, no polling.
 * - PC/SC, where pcscd (or the OS smart card service) is there: reader and card events from
 *   SCardGetStatusChange blocking on a worker thread (pcsc-readers.ts). Without PC/SC this trigger
 *   is simply absent; if the service stops, the trigger stops with it (reported as an error).
 *
 * A virtual key whose process crashed leaves its announcement behind; it is noticed (and cleaned
 * up by listRunningVirtualKeys) at the next re-enumeration, not at the moment of the crash.
 */
import { EventEmitter } from 'node:events';
import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import type { KeytapError } from '../../errors.js';
import { runtimeDir } from '../../util/runtime-dir.js';
import { INFO_SUFFIX } from './virtual-keys.js';
import { enumerateKeys, onUnknownFidoChange } from './enumerate.js';
import type { KeyDescriptor, SourceName } from './enumerate.js';
import { watchPcscReaders } from './pcsc-readers.js';
import type { PcscWatch } from './pcsc-readers.js';
import { interfaceFingerprint } from './interfaces.js';

export interface KeyWatcherEvents {
  added: [key: KeyDescriptor];
  removed: [key: KeyDescriptor];
  /**
   * A key still there is reached over other interfaces now (pcscd started or stopped, its CCID
   * card came or went): the same id, a descriptor to use from now on. Not a plug-in or unplugging.
   */
  changed: [key: KeyDescriptor];
  /** A source failed (node-hid cannot load, a watch could not start). Not fatal; only emitted when someone listens. */
  error: [error: KeytapError | Error, source: SourceName];
}

export type HidTrigger = 'auto' | 'inotify' | 'poll' | 'none';

export interface KeyWatcherOptions {
  /** Watch real keys over HID. Default true. */
  hid?: boolean | undefined;
  /** Watch virtual keys. Default true. */
  virtual?: boolean | undefined;
  /** Watch PC/SC readers (where PC/SC is available). Default true. */
  pcsc?: boolean | undefined;
  /** Quiet time after the last trigger before re-enumerating. Default 50 ms. */
  debounceMs?: number | undefined;
  /** HID poll interval where there are no events. Default (and minimum sensible) 2 s: each HID enumeration costs the bus. */
  pollIntervalMs?: number | undefined;
  /** How HID changes are noticed: inotify on Linux, polling elsewhere ('auto'). */
  hidTrigger?: HidTrigger | undefined;
  /** Listing, for tests. */
  enumerate?: typeof enumerateKeys | undefined;
}

interface Entry {
  key: KeyDescriptor;
  /** Per interface id, its fingerprint (interfaces.ts): a different one is another instance (a virtual key restarted within one debounce). */
  fingerprints: Map<string, string>;
}

function entryOf(key: KeyDescriptor): Entry {
  return { key, fingerprints: new Map(key.interfaces.map((i) => [i.id, interfaceFingerprint(i)])) };
}

/**
 * Whether `key` is the key `entry` was: it shares an interface with it, and no interface it shares
 * came back as another instance. A key whose CCID interface comes or goes stays the same key.
 */
function continues(entry: Entry, key: KeyDescriptor): boolean {
  let shared = false;
  for (const face of key.interfaces) {
    const before = entry.fingerprints.get(face.id);
    if (before === undefined) continue;
    if (before !== interfaceFingerprint(face)) return false;
    shared = true;
  }
  return shared;
}

function sameInterfaces(a: Entry, b: Entry): boolean {
  return a.fingerprints.size === b.fingerprints.size && [...a.fingerprints].every(([id, fingerprint]) => b.fingerprints.get(id) === fingerprint);
}

export class KeyWatcher extends EventEmitter<KeyWatcherEvents> {
  private readonly options: Required<Omit<KeyWatcherOptions, 'enumerate'>> & { enumerate: typeof enumerateKeys };
  private readonly entries = new Map<string, Entry>();
  private readonly watchers: FSWatcher[] = [];
  private pcscWatch: PcscWatch | undefined;
  private debounceTimer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private unsubscribeUnknownFido: (() => void) | undefined;
  private scanning: Promise<void> | undefined;
  private scanAgain = false;
  private running = false;
  /** Sources whose last listing failed: their keys are kept rather than reported removed. */
  private failedSources = new Set<SourceName>();

  constructor(options: KeyWatcherOptions = {}) {
    super();
    this.options = {
      hid: options.hid ?? true,
      virtual: options.virtual ?? true,
      pcsc: options.pcsc ?? true,
      debounceMs: options.debounceMs ?? 50,
      pollIntervalMs: options.pollIntervalMs ?? 2_000,
      hidTrigger: options.hidTrigger ?? 'auto',
      enumerate: options.enumerate ?? enumerateKeys,
    };
  }

  /** The keys present now. */
  get keys(): KeyDescriptor[] {
    return [...this.entries.values()].map((entry) => entry.key);
  }

  get isRunning(): boolean {
    return this.running;
  }

  /** Starts watching; resolves after the first enumeration, having emitted `added` for every key already there. */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    if (this.options.virtual) this.watchPath(runtimeDir(), 'virtual', (name) => name.endsWith(INFO_SUFFIX));
    if (this.options.hid) {
      const trigger = this.options.hidTrigger === 'auto' ? (process.platform === 'linux' ? 'inotify' : 'poll') : this.options.hidTrigger;
      if (trigger === 'inotify') this.watchPath('/dev', 'hid', (name) => name.startsWith('hidraw'));
      if (trigger === 'poll') this.startPolling();
      // An unknown FIDO device that answered after its listing, or is due to be asked again.
      this.unsubscribeUnknownFido = onUnknownFidoChange(() => this.rescan());
    }
    if (this.options.pcsc) await this.watchPcsc();
    await this.scanNow();
  }

  /** Stops every trigger and timer, and waits for a scan in flight. Afterwards nothing keeps the process alive. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    for (const watcher of this.watchers.splice(0)) watcher.close();
    this.unsubscribeUnknownFido?.();
    this.unsubscribeUnknownFido = undefined;
    const pcscWatch = this.pcscWatch;
    this.pcscWatch = undefined;
    clearTimeout(this.debounceTimer);
    clearInterval(this.pollTimer);
    this.debounceTimer = undefined;
    this.pollTimer = undefined;
    this.scanAgain = false;
    // The watch's worker thread must have returned, or the process could not exit.
    await Promise.all([pcscWatch?.stop(), this.scanning]);
  }

  /** Re-enumerates soon (after the debounce), e.g. after the machine resumed from sleep. */
  rescan(): void {
    if (!this.running) return;
    clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = undefined;
      void this.scanNow();
    }, this.options.debounceMs);
  }

  private watchPath(path: string, source: SourceName, relevant: (name: string) => boolean): void {
    let watcher: FSWatcher;
    try {
      watcher = watch(path, { persistent: true }, (_event, name) => {
        // Some platforms give no file name; then any change may be ours.
        if (name === null || relevant(name.toString())) this.rescan();
      });
    } catch (error) {
      this.report(error instanceof Error ? error : new Error(String(error)), source);
      if (source === 'hid') this.startPolling();
      return;
    }
    watcher.on('error', (error) => this.report(error, source));
    this.watchers.push(watcher);
  }

  private async watchPcsc(): Promise<void> {
    try {
      const watch = await watchPcscReaders(
        () => this.rescan(),
        (error) => {
          this.pcscWatch = undefined;
          this.report(error, 'pcsc');
          this.rescan();
        },
      );
      // stop() may have come while the library loaded.
      if (this.running) this.pcscWatch = watch;
      else await watch?.stop();
    } catch (error) {
      this.report(error instanceof Error ? error : new Error(String(error)), 'pcsc');
    }
  }

  private startPolling(): void {
    if (this.pollTimer) return;
    this.pollTimer = setInterval(() => void this.scanNow(), Math.max(this.options.pollIntervalMs, 1));
  }

  /** Runs one enumeration, or queues one if a scan is in flight (the in-flight one may predate the change). */
  private scanNow(): Promise<void> {
    if (!this.running) return Promise.resolve();
    if (this.scanning) {
      this.scanAgain = true;
      return this.scanning;
    }
    this.scanning = (async () => {
      try {
        do {
          this.scanAgain = false;
          await this.scanOnce();
        } while (this.scanAgain && this.running);
      } finally {
        this.scanning = undefined;
      }
    })();
    return this.scanning;
  }

  private async scanOnce(): Promise<void> {
    const failed = new Set<SourceName>();
    let keys: KeyDescriptor[];
    try {
      keys = await this.options.enumerate({
        hid: this.options.hid,
        virtual: this.options.virtual,
        pcsc: this.options.pcsc,
        onError: (error, source) => {
          failed.add(source);
          this.report(error, source);
        },
      });
    } catch (error) {
      this.report(error instanceof Error ? error : new Error(String(error)), 'virtual');
      return;
    }
    if (!this.running) return;
    this.failedSources = failed;

    // Each key listed now either continues an entry (keeping its id, so that an interface coming or
    // going is no unplugging) or is new; an entry nothing continues is gone, unless its source
    // could not be listed this time.
    const next = new Map<string, Entry>();
    const continued = new Set<string>();
    const added: KeyDescriptor[] = [];
    const changed: KeyDescriptor[] = [];
    const fresh: KeyDescriptor[] = [];
    for (const key of keys) {
      const before = [...this.entries.values()].find((entry) => !continued.has(entry.key.id) && continues(entry, key));
      if (before === undefined) {
        fresh.push(key);
        continue;
      }
      continued.add(before.key.id);
      const now = entryOf(key.id === before.key.id ? key : { ...key, id: before.key.id });
      if (sameInterfaces(before, now)) {
        next.set(before.key.id, before);
      } else {
        next.set(before.key.id, now);
        changed.push(now.key);
      }
    }
    for (const key of fresh) {
      if (next.has(key.id)) continue; // listed twice under one id: the first counts
      next.set(key.id, entryOf(key));
      added.push(key);
    }
    const removed: KeyDescriptor[] = [];
    for (const [id, entry] of this.entries) {
      if (continued.has(id)) continue;
      if (!next.has(id) && entry.key.interfaces.some((face) => this.failedSources.has(face.kind))) {
        next.set(id, entry); // its source could not be listed this time: keep it until we know
        continue;
      }
      removed.push(entry.key);
    }
    this.entries.clear();
    for (const [id, entry] of next) this.entries.set(id, entry);

    // A listener that throws must not stop the watcher (EventEmitter would throw into our scan).
    for (const key of removed) this.safeEmit('removed', key);
    for (const key of changed) this.safeEmit('changed', key);
    for (const key of added) this.safeEmit('added', key);
  }

  private safeEmit(event: 'added' | 'removed' | 'changed', key: KeyDescriptor): void {
    try {
      this.emit(event, key);
    } catch (error) {
      this.report(error instanceof Error ? error : new Error(String(error)), sourceOf(key));
    }
  }

  private report(error: KeytapError | Error, source: SourceName): void {
    // An 'error' event nobody listens to would be thrown: the resident process must not die of a failed listing.
    if (this.listenerCount('error') === 0) return;
    try {
      this.emit('error', error, source);
    } catch {
      // a throwing error listener is its own problem
    }
  }
}

function sourceOf(key: KeyDescriptor): SourceName {
  return key.kind;
}
