/**
 * An announcement that a live virtual key would make: the socket it names answers the status
 * request as that key (discovery probes it; a pid alone is not believed).
 */
import { rmSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import type { RunningVirtualKey } from '../../src/device/discovery/virtual-keys.js';
import { FrameDecoder, FrameType, encodeJsonFrame, parseJsonContent } from '../../src/device/transport/socket-link.js';
import { announce } from '../../src/emulator/registry.js';

const servers = new Map<string, { server: Server; sockets: Set<Socket> }>();

/** Listens on `info.socket` (once per path), answering `status` as `info.id`, then announces `info`. */
export async function announceLive(info: RunningVirtualKey): Promise<void> {
  if (!servers.has(info.socket)) {
    const sockets = new Set<Socket>();
    const server = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      const decoder = new FrameDecoder();
      socket.on('data', (chunk: Buffer) => {
        for (const body of decoder.push(chunk)) {
          if (body[0] === FrameType.CONTROL_REQUEST && parseJsonContent(body).op === 'status') {
            socket.write(encodeJsonFrame(FrameType.CONTROL_RESPONSE, { ok: true, id: info.id }));
          }
        }
      });
      socket.on('error', () => undefined);
    });
    rmSync(info.socket, { force: true });
    await new Promise<void>((resolve) => server.listen(info.socket, resolve));
    servers.set(info.socket, { server, sockets });
  }
  await announce(info);
}

/** Closes every answering socket. */
export async function closeLiveAnnouncements(): Promise<void> {
  const all = [...servers.values()];
  servers.clear();
  await Promise.all(
    all.map(
      ({ server, sockets }) =>
        new Promise<void>((resolve) => {
          for (const s of sockets) s.destroy();
          server.close(() => resolve());
        }),
    ),
  );
}
