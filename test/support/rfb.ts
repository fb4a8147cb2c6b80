/**
 * The few RFB (VNC, RFC 6143) messages the Wayland tests send to wayvnc, whose virtual pointer and
 * keyboard (wlr-virtual-pointer, virtual-keyboard) are the only input a headless sway has: a click
 * at a point, and key presses by X keysym. Security type None only (wayvnc on loopback offers it).
 */
import { connect } from 'node:net';
import type { Socket } from 'node:net';

export class RfbClient {
  private buffer = Buffer.alloc(0);
  private waiting: (() => void) | undefined;
  private closed: Error | undefined;
  width = 0;
  height = 0;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.waiting?.();
    });
    const fail = (error?: Error): void => {
      this.closed = error ?? new Error('wayvnc closed the connection');
      this.waiting?.();
    };
    socket.on('error', fail);
    socket.on('close', () => fail());
  }

  static async open(port: number, host = '127.0.0.1'): Promise<RfbClient> {
    const socket = connect(port, host);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const client = new RfbClient(socket);
    await client.handshake();
    return client;
  }

  private async take(length: number): Promise<Buffer> {
    while (this.buffer.length < length) {
      if (this.closed) throw this.closed;
      await new Promise<void>((resolve) => (this.waiting = resolve));
      this.waiting = undefined;
    }
    const head = this.buffer.subarray(0, length);
    this.buffer = this.buffer.subarray(length);
    return head;
  }

  private async handshake(): Promise<void> {
    const version = (await this.take(12)).toString('latin1');
    if (!version.startsWith('RFB 003.')) throw new Error(`not an RFB server: ${JSON.stringify(version)}`);
    this.socket.write('RFB 003.008\n');
    const count = (await this.take(1))[0]!;
    if (count === 0) throw new Error('the RFB server refused the connection');
    const types = [...(await this.take(count))];
    if (!types.includes(1)) throw new Error(`the RFB server wants authentication (security types ${types.join(', ')})`);
    this.socket.write(Buffer.from([1]));
    const result = (await this.take(4)).readUInt32BE(0);
    if (result !== 0) throw new Error(`RFB security handshake failed (${result})`);
    this.socket.write(Buffer.from([1])); // ClientInit: shared
    const init = await this.take(24);
    this.width = init.readUInt16BE(0);
    this.height = init.readUInt16BE(2);
    await this.take(init.readUInt32BE(20));
  }

  private pointer(x: number, y: number, buttons: number): void {
    const message = Buffer.alloc(6);
    message[0] = 5;
    message[1] = buttons;
    message.writeUInt16BE(x, 2);
    message.writeUInt16BE(y, 4);
    this.socket.write(message);
  }

  /** Moves to (x, y) and clicks `button` (1 left, 2 middle, 3 right). */
  async click(x: number, y: number, button: 1 | 2 | 3 = 1): Promise<void> {
    this.pointer(x, y, 0);
    await pause(60);
    this.pointer(x, y, 1 << (button - 1));
    await pause(60);
    this.pointer(x, y, 0);
    await pause(20);
  }

  /** Presses and releases the key of each X keysym in turn. */
  async keys(...keysyms: number[]): Promise<void> {
    for (const keysym of keysyms) {
      for (const down of [1, 0]) {
        const message = Buffer.alloc(8);
        message[0] = 4;
        message[1] = down;
        message.writeUInt32BE(keysym, 4);
        this.socket.write(message);
        await pause(15);
      }
    }
  }

  /** Holds the modifier keysyms down in order, presses and releases `key`, then lets the modifiers go in reverse: a shortcut. */
  async chord(modifiers: readonly number[], key: number): Promise<void> {
    for (const modifier of modifiers) await this.key(modifier, true);
    await this.key(key, true);
    await this.key(key, false);
    for (const modifier of [...modifiers].reverse()) await this.key(modifier, false);
  }

  /** Presses the keys of these keysyms and keeps them down (a shortcut's modifiers while its command runs), until release(). */
  async hold(...keysyms: number[]): Promise<void> {
    for (const keysym of keysyms) await this.key(keysym, true);
  }

  /** Lets go of held keys, in reverse order. */
  async release(...keysyms: number[]): Promise<void> {
    for (const keysym of [...keysyms].reverse()) await this.key(keysym, false);
  }

  private async key(keysym: number, down: boolean): Promise<void> {
    const message = Buffer.alloc(8);
    message[0] = 4;
    message[1] = down ? 1 : 0;
    message.writeUInt32BE(keysym, 4);
    this.socket.write(message);
    await pause(15);
  }

  /** Types ASCII text, then Return when asked. */
  async type(text: string, enter = false): Promise<void> {
    await this.keys(...[...text].map((c) => c.charCodeAt(0)), ...(enter ? [KEYSYM_RETURN] : []));
  }

  close(): void {
    this.socket.destroy();
  }
}

export const KEYSYM_RETURN = 0xff0d;
export const KEYSYM_ESCAPE = 0xff1b;
export const KEYSYM_SHIFT_L = 0xffe1;
export const KEYSYM_CONTROL_L = 0xffe3;
export const KEYSYM_ALT_L = 0xffe9;
export const KEYSYM_SUPER_L = 0xffeb;

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
