/**
 * Windows with chosen titles and classes on an X display, made by this test process itself through
 * node-x11 (no window manager, no toolkit): CreateWindow, then _NET_WM_NAME (UTF-8), WM_NAME and
 * WM_CLASS, then MapWindow. They stay until close() ends the connection.
 */
import x11 from 'x11';

interface WindowClient {
  AllocID(): number;
  CreateWindow(id: number, parent: number, x: number, y: number, width: number, height: number, borderWidth?: number, depth?: number, windowClass?: number, visual?: number, values?: Record<string, number>): void;
  ChangeProperty(mode: number, window: number, property: number, type: number, format: number, data: Buffer): void;
  InternAtom(onlyIfExists: boolean, name: string, callback: (error: Error | null, atom: number) => void): void;
  MapWindow(window: number): void;
  GetInputFocus(callback: (error: Error | null, focus: unknown) => void): void;
  terminate(): void;
}

const WM_NAME = 39;
const WM_CLASS = 67;
const STRING = 31;

export interface TestWindows {
  /** A mapped top-level window; resolves with its id once the server has it. */
  open(options: { title?: string; instance?: string; className?: string }): Promise<number>;
  close(): void;
}

export async function testWindows(display: string): Promise<TestWindows> {
  const { client, root } = await new Promise<{ client: WindowClient; root: number }>((resolve, reject) => {
    const made = (x11 as unknown as { createClient(o: { display: string }, cb: (e: Error | null, d: { client: WindowClient; screen: { root: number }[] }) => void): { on(e: 'error', l: (e: Error) => void): unknown } }).createClient(
      { display },
      (error, opened) => (error ? reject(error) : resolve({ client: opened.client, root: opened.screen[0]!.root })),
    );
    made.on('error', reject);
  });
  const atom = (name: string): Promise<number> => new Promise((resolve, reject) => client.InternAtom(false, name, (e, a) => (e ? reject(e) : resolve(a))));
  const netName = await atom('_NET_WM_NAME');
  const utf8 = await atom('UTF8_STRING');
  return {
    async open({ title, instance, className }) {
      const id = client.AllocID();
      client.CreateWindow(id, root, 10, 10, 200, 100, 0, 0, 1, 0, { backgroundPixel: 0xffffff });
      if (title !== undefined) {
        client.ChangeProperty(0, id, netName, utf8, 8, Buffer.from(title, 'utf8'));
        client.ChangeProperty(0, id, WM_NAME, STRING, 8, Buffer.from(title, 'latin1'));
      }
      if (instance !== undefined || className !== undefined) client.ChangeProperty(0, id, WM_CLASS, STRING, 8, Buffer.from(`${instance ?? ''}\0${className ?? ''}\0`, 'latin1'));
      client.MapWindow(id);
      // A round trip: every request above has been handled.
      await new Promise<void>((resolve, reject) => client.GetInputFocus((e) => (e ? reject(e) : resolve())));
      return id;
    },
    close: () => client.terminate(),
  };
}
