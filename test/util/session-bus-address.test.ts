/**
 * Reading D-Bus address lists (D-Bus specification, "Server Addresses"): %xx escapes, ';'-separated
 * lists, and where each entry says to connect. A real dbus-daemon on such addresses, with usocket
 * out of reach: test/platform/session-bus.test.ts.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { libuvConnectsAbstractNames } from '../../src/util/abstract-socket.js';
import { escapeAddressValue, parseBusAddress, sessionBusAddress } from '../../src/util/session-bus.js';

const linux = (list: string, env: NodeJS.ProcessEnv = {}) => parseBusAddress(list, env, 'linux');

describe('parseBusAddress', () => {
  it('reads a socket path and an abstract name (Linux only), dropping the guid', () => {
    expect(linux('unix:path=/run/user/1000/bus')).toEqual([{ target: { kind: 'path', path: '/run/user/1000/bus' } }]);
    expect(linux('unix:abstract=/tmp/dbus-Qx7aB,guid=0123456789abcdef0123456789abcdef')).toEqual([{ target: { kind: 'abstract', name: '/tmp/dbus-Qx7aB' } }]);
    expect(parseBusAddress('unix:abstract=/tmp/dbus-Qx7aB', {}, 'darwin')).toEqual([{ error: expect.stringContaining('only on Linux') }]);
  });

  it('unescapes %xx in values, bytes first and then UTF-8, so , ; = : and spaces can be in a path', () => {
    expect(linux('unix:path=/tmp/a%20b%2cc%3dd%3be%3af/bus')).toEqual([{ target: { kind: 'path', path: '/tmp/a b,c=d;e:f/bus' } }]);
    expect(linux('unix:path=/tmp/keytap%20bus%20%c3%a9/bus')).toEqual([{ target: { kind: 'path', path: '/tmp/keytap bus é/bus' } }]);
    expect(linux('unix:path=/tmp/100%25/bus')).toEqual([{ target: { kind: 'path', path: '/tmp/100%/bus' } }]);
    expect(linux('unix:path=/tmp/bad%2/bus')).toEqual([{ error: expect.stringContaining('%xx') }]);
    expect(linux('unix:path=/tmp/bad%zz')).toEqual([{ error: expect.stringContaining('%xx') }]);
  });

  it('keeps the order of a list, with a reason for each entry that cannot be used', () => {
    expect(linux('unix:tmpdir=/tmp;autolaunch:;unix:abstract=/tmp/dbus-1;tcp:host=127.0.0.1,port=4711,family=ipv4;unix:path=/run/bus')).toEqual([
      { error: expect.stringContaining('not an address a client can connect to') },
      { error: expect.stringContaining('"autolaunch" is not supported') },
      { target: { kind: 'abstract', name: '/tmp/dbus-1' } },
      { target: { kind: 'tcp', host: '127.0.0.1', port: 4711 } },
      { target: { kind: 'path', path: '/run/bus' } },
    ]);
  });

  it('reads unix:runtime=yes as $XDG_RUNTIME_DIR/bus', () => {
    expect(linux('unix:runtime=yes', { XDG_RUNTIME_DIR: '/run/user/1000' })).toEqual([{ target: { kind: 'path', path: '/run/user/1000/bus' } }]);
    expect(linux('unix:runtime=yes')).toEqual([{ error: expect.stringContaining('XDG_RUNTIME_DIR') }]);
  });

  it('says what is wrong with a malformed entry', () => {
    expect(linux('/run/user/1000/bus')).toEqual([{ error: expect.stringContaining('no transport') }]);
    expect(linux('unix:path')).toEqual([{ error: expect.stringContaining('key=value') }]);
    expect(linux('unix:path=')).toEqual([{ error: expect.stringContaining('names no socket') }]);
    expect(linux('tcp:host=localhost')).toEqual([{ error: expect.stringContaining('no port') }]);
    expect(linux('tcp:host=localhost,port=99999')).toEqual([{ error: expect.stringContaining('no port') }]);
    expect(linux('unix:guid=00')).toEqual([{ error: expect.stringContaining('path, abstract or runtime=yes') }]);
    expect(linux(';;')).toEqual([]);
  });
});

describe('escapeAddressValue', () => {
  it('escapes every byte outside [-0-9A-Za-z_/.\\*] and round-trips through the reader', () => {
    expect(escapeAddressValue('/run/user/1000/bus')).toBe('/run/user/1000/bus');
    expect(escapeAddressValue('/tmp/a b,c=d;é%')).toBe('/tmp/a%20b%2cc%3dd%3b%c3%a9%25');
    for (const path of ['/tmp/x y é/bus', '/tmp/a,b;c=d:e%f/bus']) expect(linux(`unix:path=${escapeAddressValue(path)}`)).toEqual([{ target: { kind: 'path', path } }]);
  });

  it('is what sessionBusAddress uses for the systemd user bus it finds', () => {
    const runtime = mkdtempSync(join(tmpdir(), 'keytap runtime, é='));
    try {
      writeFileSync(join(runtime, 'bus'), '');
      const address = sessionBusAddress({ XDG_RUNTIME_DIR: runtime })!;
      expect(address).toMatch(/^unix:path=[-0-9A-Za-z_/.%]+$/u);
      expect(linux(address)).toEqual([{ target: { kind: 'path', path: join(runtime, 'bus') } }]);
    } finally {
      rmSync(runtime, { recursive: true, force: true });
    }
    expect(sessionBusAddress({ DBUS_SESSION_BUS_ADDRESS: 'unix:abstract=/tmp/x' })).toBe('unix:abstract=/tmp/x');
    expect(sessionBusAddress({})).toBeUndefined();
  });
});

describe('abstract sockets', () => {
  it('uses libc for them below libuv 1.48 (Node 20 has 1.46), Node\'s own net from 1.48 on', () => {
    expect(libuvConnectsAbstractNames('1.46.0')).toBe(false);
    expect(libuvConnectsAbstractNames('1.47.9')).toBe(false);
    expect(libuvConnectsAbstractNames('1.48.0')).toBe(true);
    expect(libuvConnectsAbstractNames('1.51.0')).toBe(true);
    expect(libuvConnectsAbstractNames('2.0.0')).toBe(true);
  });
});
