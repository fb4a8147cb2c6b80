/**
 * The focused window on sway (and i3) through its IPC socket ($SWAYSOCK, else $I3SOCK): one
 * GET_TREE message in the i3-ipc framing ("i3-ipc", then the payload's length and the message
 * type, 32-bit in the host's byte order), and the node with "focused": true in the tree that
 * comes back. A window's title is its "name"; its application is "app_id" (Wayland clients) or
 * "window_properties.class" (Xwayland clients). One connection a read, no process started.
 */
import { connect } from 'node:net';
import { KeytapError } from '../../errors.js';
import type { FocusedWindow, FocusedWindowSource } from './types.js';

const MAGIC = Buffer.from('i3-ipc', 'ascii');
const HEADER_LENGTH = MAGIC.length + 8;
export const GET_TREE = 4;
const TIMEOUT_MS = 1_000;
/** A tree of hundreds of windows is well under this; more is not sway talking. */
const MAX_REPLY_BYTES = 16 * 1024 * 1024;

export function ipcMessage(type: number, payload = ''): Buffer {
  const body = Buffer.from(payload, 'utf8');
  const header = Buffer.alloc(HEADER_LENGTH);
  MAGIC.copy(header);
  header.writeUInt32LE(body.length, MAGIC.length);
  header.writeUInt32LE(type, MAGIC.length + 4);
  return Buffer.concat([header, body]);
}

interface SwayNode {
  focused?: boolean;
  type?: string;
  name?: string | null;
  app_id?: string | null;
  window_properties?: { class?: string; instance?: string } | null;
  nodes?: SwayNode[];
  floating_nodes?: SwayNode[];
}

/** The focused node of a GET_TREE answer; a workspace or output with the focus is no window. */
export function focusedInTree(tree: SwayNode): FocusedWindow | undefined {
  const stack: SwayNode[] = [tree];
  while (stack.length > 0) {
    const node = stack.pop()!;
    if (node.focused) {
      if (node.type !== 'con' && node.type !== 'floating_con') return undefined;
      const app = node.app_id ?? node.window_properties?.class ?? node.window_properties?.instance ?? undefined;
      return { title: node.name ?? undefined, app: app ?? undefined };
    }
    stack.push(...(node.nodes ?? []), ...(node.floating_nodes ?? []));
  }
  return undefined;
}

export class SwayFocusedWindow implements FocusedWindowSource {
  readonly name = 'sway';

  constructor(private readonly socketPath: string) {}

  read(signal?: AbortSignal): Promise<FocusedWindow | undefined> {
    return new Promise((resolve, reject) => {
      const socket = connect(this.socketPath);
      let received = Buffer.alloc(0);
      let done = false;
      const finish = (error: KeytapError | undefined, window?: FocusedWindow): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        socket.destroy();
        if (error) reject(error);
        else resolve(window);
      };
      const fail = (why: string): void => finish(new KeytapError('UNSUPPORTED', `Asking sway which window has the focus failed (${why}).`));
      const onAbort = (): void => finish(new KeytapError('CANCELLED', 'Reading the focused window was cancelled.'));
      const timer = setTimeout(() => fail(`no answer on ${this.socketPath} in time`), TIMEOUT_MS);
      signal?.addEventListener('abort', onAbort, { once: true });
      socket.on('error', (error: NodeJS.ErrnoException) => fail(`${error.code ?? error.message} on ${this.socketPath}`));
      socket.on('connect', () => socket.write(ipcMessage(GET_TREE)));
      socket.on('data', (chunk: Buffer) => {
        received = Buffer.concat([received, chunk]);
        if (received.length < HEADER_LENGTH) return;
        if (!received.subarray(0, MAGIC.length).equals(MAGIC)) return fail('the socket does not speak i3-ipc');
        const length = received.readUInt32LE(MAGIC.length);
        const type = received.readUInt32LE(MAGIC.length + 4);
        if (length > MAX_REPLY_BYTES) return fail(`an answer of ${length} bytes`);
        if (received.length < HEADER_LENGTH + length) return;
        if (type !== GET_TREE) return fail(`an answer of type ${type} to GET_TREE`);
        let tree: SwayNode;
        try {
          tree = JSON.parse(received.subarray(HEADER_LENGTH, HEADER_LENGTH + length).toString('utf8')) as SwayNode;
        } catch {
          // The tree holds every window's title: the parse error's excerpt of it stays out of the message.
          return fail('its answer is not JSON');
        }
        finish(undefined, focusedInTree(tree));
      });
      socket.on('close', () => fail('the socket closed before the answer'));
    });
  }
}
