/**
 * HidLink on node-hid 3's async API.
 *
 * Reading uses node-hid's 'data' event: HIDAsync runs one native read thread per open device
 * (hid_read_timeout in 50 ms slices, off the libuv pool) and we queue what it delivers. So a read
 * never occupies a libuv worker, an abort is seen at once, and no report is lost between two
 * `read` calls. The thread exists only while a link is open; links live for one operation.
 *
 * Listing the HID devices is discovery's (discovery/hid-devices.ts).
 *
 * node-hid is loaded on first use (dynamic import): commands that never touch hardware don't pay
 * for it, and a missing shared library (libusb, libudev) becomes a KeytapError that names the
 * package to install instead of a crash at start-up.
 */
import { access, constants } from 'node:fs/promises';
import { KeytapError } from '../../errors.js';
import type * as NodeHid from 'node-hid';
import { ReportQueue } from './report-queue.js';
import type { HidLink } from './types.js';

type NodeHidModule = typeof NodeHid;

/** The part of node-hid's HIDAsync this link uses; tests hand in a fake. */
export interface HidDeviceHandle {
  write(values: number[] | Buffer): Promise<number>;
  close(): Promise<void>;
  on(event: 'data', listener: (data: Buffer) => void): unknown;
  on(event: 'error', listener: (error: unknown) => void): unknown;
  removeAllListeners(event?: string): unknown;
}

let loading: Promise<NodeHidModule> | undefined;

/** Loads node-hid and its native binding once. A failure is not remembered: the user may install the library and retry. */
export function loadNodeHid(): Promise<NodeHidModule> {
  loading ??= (async () => {
    let mod: NodeHidModule;
    try {
      mod = await importNodeHid();
      // The native binding loads lazily inside node-hid; force it here so a missing library shows up now.
      mod.getHidapiVersion();
    } catch (error) {
      loading = undefined;
      throw nodeHidLoadError(error);
    }
    return mod;
  })();
  return loading;
}

/**
 * In the CommonJS bundle require() loads node-hid directly, where import() would first start Node's
 * ESM loader for it (part of every key command's start-up); the TypeScript source runs as ESM
 * (tests, tsx), which has no require.
 */
async function importNodeHid(): Promise<NodeHidModule> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- see above
  if (typeof require === 'function') return require('node-hid') as NodeHidModule;
  const imported = (await import('node-hid')) as NodeHidModule & { default?: NodeHidModule };
  // node-hid is CommonJS: its exports are on `default`, and also named where Node could detect them.
  return imported.default ?? imported;
}

export interface NodeHidLinkOptions {
  /** Reports queued beyond this (nobody reading; other programs' traffic on a shared node) drop the oldest. */
  maxQueuedReports?: number;
  /**
   * What to tell a Linux user whom the OS refused the open: how to get access. Discovery passes
   * the udev rules for the keys it knows (discovery/known-keys.ts).
   */
  linuxPermissionHint?: string | undefined;
}

export class NodeHidLink implements HidLink {
  readonly reportSize = 64;
  readonly path: string;
  private readonly device: HidDeviceHandle;
  /**
   * Reports node-hid delivered and nobody read yet, the waiting read, and the failure (closing is
   * one). Reports that came before a failure are still read ('drain'): they are real.
   */
  private readonly reports: ReportQueue;
  private closed = false;

  /** Opens the HID interface at `path` (from discovery's `listHidDevices`). */
  static async open(path: string, options: NodeHidLinkOptions = {}): Promise<NodeHidLink> {
    const hid = await loadNodeHid();
    let device: HidDeviceHandle;
    try {
      device = await hid.HIDAsync.open(path);
    } catch (error) {
      throw await openError(error, path, process.platform, options.linuxPermissionHint);
    }
    return new NodeHidLink(device, path, options);
  }

  /** Wraps an already open device handle (node-hid's HIDAsync, or a test double). */
  constructor(device: HidDeviceHandle, path: string, options: NodeHidLinkOptions = {}) {
    this.device = device;
    this.path = path;
    this.reports = new ReportQueue({ maxQueued: options.maxQueuedReports ?? 256, afterFailure: 'drain' });
    device.on('data', (data) => this.deliver(new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice()));
    // Without an 'error' listener an EventEmitter error would be thrown: a crash of the resident process.
    device.on('error', (error) => this.fail(removedError(error)));
  }

  async write(report: Uint8Array): Promise<void> {
    if (this.reports.failure) throw this.reports.failure;
    if (report.length !== this.reportSize) throw new RangeError(`A report has ${this.reportSize} bytes, not ${report.length}.`);
    // Report-id byte 0x00 first: FIDO keys use no report ids, and the OS APIs want the byte anyway (docs/protocols.md §3.1).
    const buffer = Buffer.alloc(this.reportSize + 1);
    buffer.set(report, 1);
    let written: number;
    try {
      written = await this.device.write(buffer);
    } catch (error) {
      // hidraw answers ENODEV, hidapi on Windows/macOS an I/O error: either way the key is gone.
      const failure = removedError(error);
      this.fail(failure);
      throw failure;
    }
    if (written < 0) {
      const failure = removedError(new Error(`write returned ${written}`));
      this.fail(failure);
      throw failure;
    }
  }

  read(timeoutMs: number, signal?: AbortSignal): Promise<Uint8Array | undefined> {
    // A read waits only while nothing is queued and nothing failed, so this is the case of the
    // queue's own read that would wait.
    if (this.reports.pendingReads > 0 && !signal?.aborted) {
      return Promise.reject(new KeytapError('PROTOCOL', 'Two reads at once on one HID link.'));
    }
    return this.reports.read(timeoutMs, signal);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.reports.fail(closedError());
    this.device.removeAllListeners('data');
    // Keep an error listener: the native read thread may still report while it winds down.
    this.device.removeAllListeners('error');
    this.device.on('error', () => undefined);
    try {
      await this.device.close();
    } catch {
      // Closing a device that was unplugged fails; there is nothing left to release.
    }
  }

  private deliver(report: Uint8Array): void {
    if (!this.closed) this.reports.push(report);
  }

  private fail(error: KeytapError): void {
    this.reports.fail(error);
  }
}

function closedError(): KeytapError {
  return new KeytapError('CANCELLED', 'The connection to the key was closed.');
}

function removedError(cause: unknown): KeytapError {
  return new KeytapError('KEY_REMOVED', 'The key was removed (or stopped answering).', {
    hint: 'Plug the key in again.',
    cause: cause instanceof Error ? cause : new Error(String(cause)),
  });
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export const WINDOWS_PERMISSION_HINT =
  'Windows lets only administrators open FIDO security keys (Windows 10 1903 and later): run keytap as Administrator.';

/** Turns a failed HIDAsync.open into a KeytapError the user can act on. Exported for tests. */
export async function openError(error: unknown, path: string, platform: NodeJS.Platform = process.platform, linuxPermissionHint?: string): Promise<KeytapError> {
  const text = messageOf(error);
  if (platform === 'linux') {
    const gone = /no such (file|device)|ENOENT|ENODEV/i.test(text) || (path.startsWith('/dev/') && !(await exists(path)));
    if (gone) return new KeytapError('NO_KEY', 'The key is no longer connected.', { cause: error });
    // hidapi's hidraw backend says "cannot open device with path …", sometimes with the errno text after it.
    if (/permission denied|EACCES|EPERM|cannot open device/i.test(text)) {
      return new KeytapError('PERMISSION_DENIED', `You are not allowed to open the key (${path}).`, { hint: linuxPermissionHint, cause: error });
    }
  }
  if (platform === 'win32' && /cannot open device|access is denied|permission/i.test(text)) {
    return new KeytapError('PERMISSION_DENIED', 'Windows did not let keytap open the key.', { hint: WINDOWS_PERMISSION_HINT, cause: error });
  }
  if (platform === 'darwin' && /exclusive/i.test(text)) {
    return new KeytapError('BUSY', 'Another program holds the key exclusively.', { hint: 'Close the other program and try again.', cause: error });
  }
  return new KeytapError('DEVICE_ERROR', 'Opening the key failed.', { cause: error });
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path, constants.F_OK);
    return true;
  } catch {
    return false;
  }
}

/** Turns a failed load of node-hid or its binding into a KeytapError that names the fix. Exported for tests. */
export function nodeHidLoadError(error: unknown): KeytapError {
  const text = messageOf(error);
  const library = /(lib[\w.+-]*\.so(?:\.\d+)*)/.exec(text)?.[1];
  if (library?.startsWith('libusb')) {
    return new KeytapError('UNSUPPORTED', `keytap cannot talk to USB keys: the library ${library} is missing.`, {
      hint: 'Install libusb: sudo apt install libusb-1.0-0 (Debian, Ubuntu), sudo dnf install libusb1 (Fedora), sudo pacman -S libusb (Arch).',
      cause: error,
    });
  }
  if (library?.startsWith('libudev')) {
    return new KeytapError('UNSUPPORTED', `keytap cannot talk to USB keys: the library ${library} is missing.`, {
      hint: 'Install libudev: sudo apt install libudev1 (Debian, Ubuntu), sudo dnf install systemd-libs (Fedora).',
      cause: error,
    });
  }
  if (/cannot find (module|package) 'node-hid'|ERR_MODULE_NOT_FOUND/i.test(text) || (error as { code?: unknown }).code === 'ERR_MODULE_NOT_FOUND') {
    return new KeytapError('UNSUPPORTED', 'keytap cannot talk to USB keys: the node-hid package is not installed.', {
      hint: 'This copy of keytap is incomplete; install keytap again.',
      cause: error,
    });
  }
  if (/no native build|prebuild/i.test(text)) {
    return new KeytapError('UNSUPPORTED', `keytap cannot talk to USB keys: node-hid has no build for ${process.platform}-${process.arch}.`, {
      hint: 'keytap ships no USB (HID) support for this system, so a Nitrokey 3 cannot be reached here; YubiKeys still can, over PC/SC.',
      cause: error,
    });
  }
  return new KeytapError('UNSUPPORTED', 'keytap cannot talk to USB keys: node-hid could not be loaded.', { cause: error });
}
