/** The notifier for where no other works (headless, no session bus): every call is a no-op. */
import type { NotificationHandle, Notifier } from './types.js';

const INERT: NotificationHandle = Object.freeze({ id: 0 });

export class NoneNotifier implements Notifier {
  readonly name = 'none';
  show(): Promise<NotificationHandle> {
    return Promise.resolve(INERT);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
  stop(): Promise<void> {
    return Promise.resolve();
  }
}
