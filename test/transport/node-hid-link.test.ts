import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { hidInterfaces } from '../../src/device/discovery/enumerate.js';
import { linuxPermissionHint } from '../../src/device/discovery/known-keys.js';
import { NodeHidLink, loadNodeHid, nodeHidLoadError, openError } from '../../src/device/transport/node-hid-link.js';
import type { HidDeviceHandle } from '../../src/device/transport/node-hid-link.js';
import { rejection } from '../support/rejection.js';

class FakeDevice extends EventEmitter implements HidDeviceHandle {
  writes: Buffer[] = [];
  closed = false;
  failWrites = false;
  write(values: number[] | Buffer): Promise<number> {
    if (this.failWrites) return Promise.reject(new Error('Cannot write to hid device: No such device'));
    this.writes.push(Buffer.from(values));
    return Promise.resolve(values.length);
  }
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
  data(byte: number): void {
    this.emit('data', Buffer.alloc(64, byte));
  }
}

describe('NodeHidLink', () => {
  it('writes 65 bytes with the report id 0x00 first', async () => {
    const device = new FakeDevice();
    const link = new NodeHidLink(device, '/dev/hidraw0');
    await link.write(new Uint8Array(64).fill(0xab));
    expect(device.writes[0]!.length).toBe(65);
    expect(device.writes[0]![0]).toBe(0);
    expect(device.writes[0]!.subarray(1).every((b) => b === 0xab)).toBe(true);
    await expect(link.write(new Uint8Array(63))).rejects.toThrow(RangeError);
  });

  it('queues reports that arrive before a read, and hands later ones to a waiting read', async () => {
    const device = new FakeDevice();
    const link = new NodeHidLink(device, 'p');
    device.data(1);
    device.data(2);
    expect((await link.read(100))![0]).toBe(1);
    expect((await link.read(100))![0]).toBe(2);
    const pending = link.read(1_000);
    setTimeout(() => device.data(3), 10);
    expect((await pending)![0]).toBe(3);
  });

  it('resolves undefined at the timeout, and rejects CANCELLED at once on abort', async () => {
    const link = new NodeHidLink(new FakeDevice(), 'p');
    const started = Date.now();
    expect(await link.read(50)).toBeUndefined();
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    const controller = new AbortController();
    const pending = link.read(60_000, controller.signal);
    setTimeout(() => controller.abort(), 10);
    const abortAt = Date.now();
    expect((await rejection(pending)).code).toBe('CANCELLED');
    expect(Date.now() - abortAt).toBeLessThan(100);
  });

  it('bounds its queue', async () => {
    const device = new FakeDevice();
    const link = new NodeHidLink(device, 'p', { maxQueuedReports: 3 });
    for (let i = 0; i < 10; i++) device.data(i);
    expect((await link.read(10))![0]).toBe(7);
  });

  it('turns a read error (unplug) into KEY_REMOVED for the waiting read and every later call', async () => {
    const device = new FakeDevice();
    const link = new NodeHidLink(device, 'p');
    const pending = link.read(60_000);
    device.emit('error', 'could not read from HID device: No such device');
    expect((await rejection(pending)).code).toBe('KEY_REMOVED');
    expect((await rejection(link.read(10))).code).toBe('KEY_REMOVED');
    expect((await rejection(link.write(new Uint8Array(64)))).code).toBe('KEY_REMOVED');
  });

  it('turns a failed write into KEY_REMOVED', async () => {
    const device = new FakeDevice();
    device.failWrites = true;
    const link = new NodeHidLink(device, 'p');
    const error = await rejection(link.write(new Uint8Array(64)));
    expect(error.code).toBe('KEY_REMOVED');
  });

  it('closes the device, ends a waiting read, and ignores late errors', async () => {
    const device = new FakeDevice();
    const link = new NodeHidLink(device, 'p');
    const pending = link.read(60_000);
    await link.close();
    expect((await rejection(pending)).code).toBe('CANCELLED');
    expect(device.closed).toBe(true);
    expect(() => device.emit('error', new Error('late'))).not.toThrow();
    await link.close();
  });
});

describe('error mapping', () => {
  it('says PERMISSION_DENIED with the udev rule on Linux', async () => {
    // Discovery hands the link the udev rules for the keys it knows.
    const error = await openError(new Error('cannot open device with path /dev/null'), '/dev/null', 'linux', linuxPermissionHint());
    expect(error.code).toBe('PERMISSION_DENIED');
    expect(error.hint).toContain('ATTRS{idVendor}=="20a0", ATTRS{idProduct}=="42b2", TAG+="uaccess"');
    expect(error.hint).toContain('udevadm control --reload-rules && sudo udevadm trigger');
    expect(linuxPermissionHint()).toContain('/etc/udev/rules.d/70-keytap.rules');
  });

  it.runIf(process.platform === 'linux')('opens a HID key through node-hid and, when Linux refuses, names the udev rules', async () => {
    // /dev/null exists and is no hidraw node: hidapi refuses it as it refuses a node without uaccess.
    const [key] = hidInterfaces([{ vendorId: 0x20a0, productId: 0x42b2, path: '/dev/null', interface: 1, usagePage: 0xf1d0, usage: 1 }]);
    const error = await rejection(key!.open());
    expect(error.code).toBe('PERMISSION_DENIED');
    expect(error.hint).toContain('/etc/udev/rules.d/70-keytap.rules');
    expect(error.hint).toContain('ATTRS{idVendor}=="20a0", ATTRS{idProduct}=="42b2", TAG+="uaccess"');
  });

  it('says NO_KEY when the node is gone', async () => {
    const error = await openError(new Error('cannot open device with path /dev/hidraw99'), '/dev/hidraw99', 'linux');
    expect(error.code).toBe('NO_KEY');
  });

  it('says Administrator on Windows', async () => {
    const error = await openError(new Error('cannot open device with path \\\\?\\hid#vid_20a0'), '\\\\?\\hid#vid_20a0', 'win32');
    expect(error.code).toBe('PERMISSION_DENIED');
    expect(error.hint).toMatch(/Administrator/);
  });

  it('names the package when libusb or libudev is missing', () => {
    const libusb = nodeHidLoadError(new Error('libusb-1.0.so.0: cannot open shared object file: No such file or directory'));
    expect(libusb.code).toBe('UNSUPPORTED');
    expect(libusb.message).toContain('libusb-1.0.so.0');
    expect(libusb.hint).toContain('apt install libusb-1.0-0');
    expect(nodeHidLoadError(new Error('libudev.so.1: cannot open shared object file')).hint).toContain('libudev1');
    expect(nodeHidLoadError(Object.assign(new Error("Cannot find package 'node-hid'"), { code: 'ERR_MODULE_NOT_FOUND' })).message).toMatch(/not installed/);
  });

  it('gives hints a user of the executable or the package can follow: no npm, no compiler', () => {
    const missing = nodeHidLoadError(Object.assign(new Error("Cannot find module 'node-hid'"), { code: 'MODULE_NOT_FOUND' }));
    expect(missing.message).toMatch(/not installed/);
    expect(missing.hint).toBe('This copy of keytap is incomplete; install keytap again.');
    const noBuild = nodeHidLoadError(new Error('No native build was found for platform=freebsd arch=riscv64 runtime=node'));
    expect(noBuild.message).toMatch(/has no build for/);
    expect(noBuild.hint).toMatch(/YubiKeys still can, over PC\/SC/);
    for (const error of [missing, noBuild]) expect(error.hint).not.toMatch(/npm|compiler|toolchain|rebuild/i);
  });

  it('loads node-hid when asked', async () => {
    const hid = await loadNodeHid();
    expect(typeof hid.getHidapiVersion()).toBe('string');
  });
});
