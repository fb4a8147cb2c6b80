/**
 * Typing on Wayland compositors that let a program type through a helper: `wtype` (the
 * virtual-keyboard protocol: sway, Hyprland, river and other wlroots compositors; not GNOME, not
 * KDE) and `ydotool` (a uinput device through the ydotoold daemon: any compositor, but it needs
 * /dev/uinput access and presses US-layout key positions). The text goes in on stdin, never on the
 * command line, where every user of the machine could read it in the process list.
 *
 * The shortcut's modifiers: wtype's virtual keyboard is a keyboard of its own, whose modifiers
 * start up, so what the user holds on the real one does not reach the focused window with our keys
 * (the compositor sends the modifiers of the keyboard a key came from). ydotool's uinput device is
 * merged with the real keyboard by the compositor, so it waits a moment first for the fingers to
 * leave the keys; it cannot tell when they did.
 */
import { KeytapError } from '../../errors.js';
import { delay } from '../../util/abortable.js';
import type { CommandRunner } from '../clipboard/run.js';
import { runCommand } from '../clipboard/run.js';
import type { Typist } from '../platform.js';

export interface CommandTypistOptions {
  run?: CommandRunner | undefined;
  env?: NodeJS.ProcessEnv | undefined;
  /** ydotool only: how long to let the shortcut's modifiers come up. */
  releaseWaitMs?: number | undefined;
}

abstract class CommandTypist implements Typist {
  abstract readonly name: string;
  protected abstract readonly args: readonly string[];
  protected abstract readonly hint: string;

  constructor(protected readonly options: CommandTypistOptions = {}) {}

  async type(text: string, signal?: AbortSignal): Promise<void> {
    await this.before(signal);
    const run = this.options.run ?? runCommand;
    let result;
    try {
      result = await run(this.name, this.args, { input: text, env: this.options.env, timeoutMs: 10_000 });
    } catch (error) {
      const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
      throw new KeytapError('UNSUPPORTED', missing ? `${this.name} is not installed, so keytap cannot type the code.` : `${this.name} could not be started (${(error as Error).message}).`, { hint: this.hint });
    }
    if (result.code !== 0) {
      // stderr is the tool's own words (never the code: it came in on stdin and is not echoed).
      const said = result.stderr.trim().split('\n')[0]?.slice(0, 200);
      throw new KeytapError('UNSUPPORTED', `${this.name} could not type the code (${said ? said : `exit ${result.code ?? 'killed'}`}).`, { hint: this.hint });
    }
  }

  protected before(signal: AbortSignal | undefined): Promise<void> {
    return signal?.aborted ? Promise.reject(new KeytapError('CANCELLED', 'Typing the code was cancelled.')) : Promise.resolve();
  }
}

/** `wtype -` reads the text from stdin. */
export class WtypeTypist extends CommandTypist {
  readonly name = 'wtype';
  protected readonly args = ['-'];
  protected readonly hint = 'wtype works on wlroots compositors (sway, Hyprland); install it there (Debian: apt install wtype). On GNOME and KDE keytap types through the RemoteDesktop portal.';
}

/** ydotool 1.x: `ydotool type --file -` reads the text from stdin; ydotoold must be running. */
export class YdotoolTypist extends CommandTypist {
  readonly name = 'ydotool';
  protected readonly args = ['type', '--file', '-'];
  protected readonly hint = 'ydotool needs its daemon (ydotoold) running and access to /dev/uinput; it types US-layout key positions.';

  protected override async before(signal: AbortSignal | undefined): Promise<void> {
    await super.before(signal);
    await delay(this.options.releaseWaitMs ?? 600, signal);
  }
}
