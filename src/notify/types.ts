/** Desktop notifications ("toasts"). */

/** The state a toast tells of; it carries that state's icon, as the tray icon does. */
export type NotificationIcon = 'idle' | 'key' | 'touch' | 'error';

export interface Notification {
  title: string;
  body: string;
  /** critical is for errors only: servers draw it as an alarm (red) and keep it. */
  urgency?: 'low' | 'normal' | 'critical' | undefined;
  /** Milliseconds until the server hides it; undefined: the server's default. */
  timeoutMs?: number | undefined;
  /** Stays until it is replaced or closed, where the server allows (a prompt that waits for the user); timeoutMs is then ignored. */
  sticky?: boolean | undefined;
  /** The icon of the state it tells of; undefined: keytap's own icon. */
  icon?: NotificationIcon | undefined;
}

/** What `show` returns: pass it back to replace the notification in place, or to close it. */
export interface NotificationHandle {
  readonly id: number | string;
}

export interface Notifier {
  /** "org.freedesktop.Notifications", "node-notifier", "none". */
  readonly name: string;
  /**
   * Shows a notification, replacing `replaces` in place where the platform can (so "Touch your
   * key" turns into "Code copied" instead of stacking). Never rejects: a missing notification
   * server is reported through `onError` of the implementation and the returned handle is inert.
   */
  show(notification: Notification, replaces?: NotificationHandle): Promise<NotificationHandle>;
  /** Closes it early (e.g. the touch prompt once the code was read). Never rejects. */
  close(handle: NotificationHandle): Promise<void>;
  stop(): Promise<void>;
}
