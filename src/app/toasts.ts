/**
 * The toasts of the resident process. Toasts are kept in slots: a new toast in a slot replaces the
 * one shown there in place ("Code copied" replaces "Touch your key"). They go out one after
 * another, so a replacement never overtakes the toast it replaces. Whether a toast is shown at all
 * is the state machine's decision (state.ts); this module only shows what it is given.
 */
import type { Notification, NotificationHandle, Notifier } from '../notify/types.js';
import type { Logger } from './logger.js';
import { describeUnknown, settle } from './logger.js';
import type { ToastSlot } from './state.js';

export class Toasts {
  private readonly handles = new Map<ToastSlot, NotificationHandle>();
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly notifier: Notifier,
    private readonly logger: Logger,
  ) {}

  /** Shows `notification` in `slot`, replacing what the slot shows; without a slot, as a toast of its own. */
  show(slot: ToastSlot | undefined, notification: Notification): void {
    this.chain = this.chain.then(async () => {
      try {
        const handle = await this.notifier.show(notification, slot === undefined ? undefined : this.handles.get(slot));
        if (slot !== undefined) this.handles.set(slot, handle);
      } catch (error) {
        this.logger.warn(`showing a notification failed: ${describeUnknown(error)}`);
      }
    });
  }

  close(slot: ToastSlot): void {
    this.chain = this.chain.then(async () => {
      const handle = this.handles.get(slot);
      if (!handle) return;
      this.handles.delete(slot);
      try {
        await this.notifier.close(handle);
      } catch (error) {
        this.logger.warn(`closing a notification failed: ${describeUnknown(error)}`);
      }
    });
  }

  /** Resolves once every toast asked for so far went out. */
  settled(): Promise<void> {
    return this.chain;
  }

  /** At quit: waits for the toasts in flight and closes the slotted ones still shown. */
  async closeAll(): Promise<void> {
    await settle(this.chain, this.logger, 'toasts');
    for (const handle of this.handles.values()) await settle(this.notifier.close(handle), this.logger, 'closing a toast');
    this.handles.clear();
  }
}
