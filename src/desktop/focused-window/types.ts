/**
 * The window that has the focus, as the shortcut's choice of account needs it. Its title can hold
 * private text (a mail's subject, a chat's name): it is matched in memory and never logged, sent
 * anywhere, or put into an error message.
 */
export interface FocusedWindow {
  title?: string | undefined;
  /** The application: WM_CLASS's class on X11, app_id (or the X11 class) on sway, the executable's name on Windows, the application's name on macOS. */
  app?: string | undefined;
}

export interface FocusedWindowSource {
  /** "X11", "sway", "Windows", "macOS", or "none". */
  readonly name: string;
  /**
   * The focused window now; undefined when none has the focus (the desktop itself). Rejects with
   * a KeytapError (UNSUPPORTED) when this source cannot tell here; the message names no title.
   */
  read(signal?: AbortSignal): Promise<FocusedWindow | undefined>;
}
