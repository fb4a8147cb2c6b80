/**
 * Rendering the menu model into the tray. The events of one tick (a key added, its toast, …) are
 * coalesced into one render, renders run one after another, and a model equal to the one last
 * rendered is not sent again.
 */
import type { TrayBackend, TrayModel } from '../tray/model.js';
import type { Logger } from './logger.js';
import { describeUnknown } from './logger.js';

export class TrayRenderer {
  private scheduled = false;
  private stopped = false;
  private rendering: Promise<void> = Promise.resolve();
  private lastRendered: string | undefined;

  constructor(
    private readonly tray: TrayBackend,
    private readonly model: () => TrayModel,
    private readonly logger: Logger,
  ) {}

  /** Renders the current model at the end of this tick. */
  schedule(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      this.rendering = this.rendering.then(() => this.render());
    });
  }

  /** The tray host came back and shows nothing: render even an unchanged model. */
  renderAgain(): void {
    this.lastRendered = undefined;
    this.schedule();
  }

  /** Resolves once the renders started so far have finished. */
  settled(): Promise<void> {
    return this.rendering;
  }

  /** No renders after this (quitting); `settled()` still waits for the one in flight. */
  halt(): void {
    this.stopped = true;
  }

  private async render(): Promise<void> {
    let model: TrayModel;
    try {
      model = this.model();
    } catch (error) {
      this.logger.error(`building the menu failed: ${describeUnknown(error)}`);
      return;
    }
    const json = JSON.stringify(model);
    if (json === this.lastRendered) return;
    try {
      await this.tray.render(model);
      this.lastRendered = json;
    } catch (error) {
      this.logger.warn(`updating the tray failed: ${describeUnknown(error)}`);
    }
  }
}
