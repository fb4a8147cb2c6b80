/** What a screen capture gives: pixels, or an image file's bytes (PNG) to be decoded by the caller. */
export type ScreenShot =
  /** Four bytes a pixel (red, green, blue, alpha), rows without padding. */
  | { format: 'rgba'; width: number; height: number; data: Uint8Array }
  | { format: 'png'; data: Uint8Array };

export interface ScreenCapture {
  /** "X11", "xdg-desktop-portal", "PowerShell", "screencapture". */
  readonly name: string;
  /**
   * The whole screen (every monitor) as it is now. Rejects with a KeytapError: UNSUPPORTED when
   * this backend cannot work here, CANCELLED when the user refused the desktop's dialog.
   */
  capture(signal?: AbortSignal): Promise<ScreenShot>;
}
