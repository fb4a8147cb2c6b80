// The Wayland wire format (src/desktop/wayland/wire.ts) against bytes worked out by hand from the
// protocol's "Wire Format" chapter, and the client connection (connection.ts, through the real
// libc socket) against fake compositors that misbehave: no data-control, an error event, silence,
// a broken message, a hang-up. sway itself is in test/wayland/clipboard-data-control.test.ts.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { findDataControl } from '../../src/desktop/clipboard/wayland-data-control.js';
import { waylandSocketPath } from '../../src/desktop/wayland/connection.js';
import { ArgReader, MessageReader, WireFormatError, encodeMessage } from '../../src/desktop/wayland/wire.js';

const hex = (bytes: Buffer): string => bytes.toString('hex');

describe('the Wayland wire format', () => {
  it('encodes requests as the protocol lays them out', () => {
    // wl_display(1).get_registry(new_id 2): id, size 12 << 16 | opcode 1, the new id.
    expect(hex(encodeMessage(1, 1, [{ type: 'new_id', value: 2 }]))).toBe('01000000' + '01000c00' + '02000000');
    // A source's offer("text/plain"): length 11 with the NUL, 10 bytes + NUL + 1 byte of padding: 24 bytes.
    expect(hex(encodeMessage(5, 0, [{ type: 'string', value: 'text/plain' }]))).toBe('05000000' + '00001800' + '0b000000' + hex(Buffer.from('text/plain\0\0')));
    // set_selection(null): object 0.
    expect(hex(encodeMessage(4, 0, [{ type: 'object', value: 0 }]))).toBe('04000000' + '00000c00' + '00000000');
    // A string of exactly 3 bytes fills its word with the NUL; a null string is length 0.
    expect(hex(encodeMessage(3, 2, [{ type: 'string', value: 'abc' }, { type: 'string', value: null }, { type: 'int', value: -1 }]))).toBe(
      '03000000' + '02001800' + '04000000' + hex(Buffer.from('abc\0')) + '00000000' + 'ffffffff',
    );
  });

  it('refuses what cannot be sent', () => {
    expect(() => encodeMessage(3, 0, [{ type: 'string', value: 'a\0b' }])).toThrow(WireFormatError);
    expect(() => encodeMessage(3, 0, [{ type: 'string', value: 'x'.repeat(70_000) }])).toThrow(/at most 65535 bytes/);
  });

  it('decodes events split anywhere, and keeps a partial one for later', () => {
    // wl_registry(2).global(name 7, "wl_seat", version 8) followed by wl_callback(3).done(42).
    const global = Buffer.from('02000000' + '00001c00' + '07000000' + '08000000' + hex(Buffer.from('wl_seat\0')) + '08000000', 'hex');
    const done = Buffer.from('03000000' + '00000c00' + '2a000000', 'hex');
    const stream = Buffer.concat([global, done]);
    for (let cut = 0; cut <= stream.length; cut++) {
      const reader = new MessageReader();
      const messages = [...reader.push(stream.subarray(0, cut)), ...reader.push(stream.subarray(cut))];
      expect(messages.map((m) => [m.objectId, m.opcode])).toEqual([
        [2, 0],
        [3, 0],
      ]);
      expect(reader.buffered).toBe(0);
      const args = new ArgReader(messages[0]!.body);
      expect([args.uint(), args.string(), args.uint()]).toEqual([7, 'wl_seat', 8]);
      expect(new ArgReader(messages[1]!.body).uint()).toBe(42);
    }
    const reader = new MessageReader();
    expect(reader.push(global.subarray(0, 10))).toEqual([]);
    expect(reader.buffered).toBe(10);
  });

  it('names a malformed header', () => {
    expect(() => new MessageReader().push(Buffer.from('02000000' + '00000600', 'hex'))).toThrow(/6 bytes is malformed/);
    expect(() => new MessageReader().push(Buffer.from('02000000' + '00000e00' + '0000000000000000', 'hex'))).toThrow(/14 bytes is malformed/);
    expect(() => new MessageReader().push(Buffer.from('00000000' + '00000800', 'hex'))).toThrow(/object 0/);
  });

  it('names malformed arguments', () => {
    const body = (h: string) => new ArgReader(Buffer.from(h, 'hex'));
    // A string without its NUL, one running past the message, one that is not UTF-8, a short message.
    expect(() => body('04000000' + '61626364').string()).toThrow(/did not end with a NUL/);
    expect(() => body('09000000' + '61626364').string()).toThrow(/runs past the end/);
    expect(() => body('03000000' + 'c32800' + '00').string()).toThrow(/not UTF-8/);
    expect(() => body('0100').uint()).toThrow(/ended before all of its arguments/);
    expect(() => body('00000000').newId()).toThrow(/new_id argument was 0/);
  });
});

describe('finding the socket', () => {
  it('takes $WAYLAND_DISPLAY under $XDG_RUNTIME_DIR, an absolute one as it is, and wayland-0 by default', () => {
    expect(waylandSocketPath({ WAYLAND_DISPLAY: 'wayland-1', XDG_RUNTIME_DIR: '/run/user/1000' })).toBe('/run/user/1000/wayland-1');
    expect(waylandSocketPath({ WAYLAND_DISPLAY: '/tmp/w', XDG_RUNTIME_DIR: '/run/user/1000' })).toBe('/tmp/w');
    expect(waylandSocketPath({ XDG_RUNTIME_DIR: '/run/user/1000' })).toBe('/run/user/1000/wayland-0');
    expect(() => waylandSocketPath({ WAYLAND_DISPLAY: 'wayland-1' })).toThrow(/XDG_RUNTIME_DIR is not set/);
  });
});

/** A fake compositor on a Unix socket: `answer` sees each request and writes what it likes back. */
function fakeCompositor(answer: (request: { objectId: number; opcode: number; args: ArgReader }, client: Socket) => void) {
  const dir = mkdtempSync(join(tmpdir(), 'keytap-wl-'));
  const path = join(dir, 'wayland-fake');
  const clients: Socket[] = [];
  const server: Server = createServer((client) => {
    clients.push(client);
    const reader = new MessageReader();
    client.on('data', (chunk) => {
      for (const message of reader.push(chunk)) answer({ objectId: message.objectId, opcode: message.opcode, args: new ArgReader(message.body) }, client);
    });
    client.on('error', () => undefined);
  });
  const listening = new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    env: { WAYLAND_DISPLAY: path },
    listening,
    connections: () => clients.filter((c) => !c.destroyed && !c.readableEnded).length,
    close: async () => {
      for (const c of clients) c.destroy();
      await new Promise((resolve) => server.close(resolve));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Answers get_registry with `globals` and sync with done, as a compositor does. */
function registryAnswers(globals: [string, number][], extra?: (request: { objectId: number; opcode: number; args: ArgReader }, client: Socket) => boolean) {
  let registry = 0;
  return (request: { objectId: number; opcode: number; args: ArgReader }, client: Socket): void => {
    if (extra?.(request, client)) return;
    if (request.objectId === 1 && request.opcode === 1) {
      registry = request.args.newId();
      globals.forEach(([name, version], i) =>
        client.write(encodeMessage(registry, 0, [{ type: 'uint', value: i + 1 }, { type: 'string', value: name }, { type: 'uint', value: version }])),
      );
    } else if (request.objectId === 1 && request.opcode === 0) {
      const callback = request.args.newId();
      client.write(encodeMessage(callback, 0, [{ type: 'uint', value: 1 }]));
      client.write(encodeMessage(1, 1, [{ type: 'uint', value: callback }]));
    }
  };
}

describe('the data-control probe against fake compositors', () => {
  let compositor: ReturnType<typeof fakeCompositor> | undefined;
  afterEach(async () => {
    await compositor?.close();
    compositor = undefined;
  });

  it('finds the ext protocol before the wlroots one, and hangs up', async () => {
    compositor = fakeCompositor(registryAnswers([['wl_compositor', 6], ['zwlr_data_control_manager_v1', 2], ['wl_seat', 8], ['ext_data_control_manager_v1', 1]]));
    await compositor.listening;
    expect(await findDataControl(compositor.env)).toBe('ext_data_control_manager_v1');
    await expect.poll(() => compositor!.connections()).toBe(0);
  });

  it('says the compositor has no data-control (GNOME)', async () => {
    compositor = fakeCompositor(registryAnswers([['wl_compositor', 6], ['wl_seat', 8], ['wl_data_device_manager', 3]]));
    await compositor.listening;
    await expect(findDataControl(compositor.env)).rejects.toMatchObject({ code: 'UNSUPPORTED', message: expect.stringContaining('offers no data-control protocol') });
  });

  it("passes on the compositor's error event", async () => {
    compositor = fakeCompositor((request, client) => {
      if (request.objectId === 1 && request.opcode === 1) client.write(encodeMessage(1, 0, [{ type: 'object', value: 1 }, { type: 'uint', value: 1 }, { type: 'string', value: 'invalid method 1' }]));
    });
    await compositor.listening;
    await expect(findDataControl(compositor.env)).rejects.toThrow('The Wayland compositor refused a request of keytap\'s (object 1, error 1: invalid method 1).');
  });

  it('gives up on a compositor that never answers, without hanging', async () => {
    compositor = fakeCompositor(() => undefined);
    await compositor.listening;
    const started = Date.now();
    await expect(findDataControl(compositor.env, { timeoutMs: 300 })).rejects.toMatchObject({ code: 'TIMEOUT', message: 'The Wayland compositor did not answer within 0.3 s.' });
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('names a broken message and a hang-up', async () => {
    compositor = fakeCompositor((_request, client) => client.write(Buffer.from('02000000' + '00000600', 'hex')));
    await compositor.listening;
    await expect(findDataControl(compositor.env)).rejects.toThrow(/6 bytes is malformed/);
    await compositor.close();
    compositor = fakeCompositor((_request, client) => client.end());
    await compositor.listening;
    await expect(findDataControl(compositor.env)).rejects.toThrow('The Wayland compositor closed the connection.');
  });

  it('an event to an object never made is a protocol breach, not a crash', async () => {
    compositor = fakeCompositor((_request, client) => client.write(encodeMessage(77, 0, [])));
    await compositor.listening;
    await expect(findDataControl(compositor.env)).rejects.toThrow('The Wayland compositor sent an event to object 77, which keytap never made.');
  });

  it('names a socket that is not there', async () => {
    await expect(findDataControl({ WAYLAND_DISPLAY: '/nonexistent/wayland-9' })).rejects.toThrow(/Could not connect to the Wayland socket \(No such file or directory, errno 2\)/);
  });
});
