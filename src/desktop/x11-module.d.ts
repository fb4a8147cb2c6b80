// What keytap uses of node-x11 (pure JavaScript, no typings of its own): the screen capture's
// core requests are typed here; the XTEST typist (typing/xtest.ts) describes its part itself.
declare module 'x11' {
  export interface X11Display {
    image_byte_order: number;
    format: Record<string, { bits_per_pixel: number; scanline_pad: number } | undefined>;
    screen: {
      root: number;
      pixel_width: number;
      pixel_height: number;
      root_depth: number;
      root_visual: number;
      depths: Record<string, Record<string, { class: number; red_mask: number; green_mask: number; blue_mask: number } | undefined> | undefined>;
    }[];
    client: X11Client;
  }
  export interface X11Client {
    GetImage(format: number, drawable: number, x: number, y: number, width: number, height: number, planeMask: number, callback: (error: unknown, image: { depth: number; data: Buffer }) => void): void;
    on(event: 'error', listener: (error: unknown) => void): unknown;
    terminate(): void;
  }
  export function createClient(options: { display: string }, callback: (error: unknown, display: X11Display) => void): { on(event: 'error', listener: (error: unknown) => void): unknown } | undefined;
}
