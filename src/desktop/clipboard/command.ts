/**
 * Clipboards driven by command-line tools: xsel and xclip (X11), wl-copy/wl-paste (Wayland),
 * pbcopy/pbpaste (macOS without the concealed marker). Text always travels over stdin/stdout.
 * None of these can mark a copy as sensitive (see each note), so marksSensitive is false.
 */
import { KeytapError } from '../../errors.js';
import type { Clipboard } from '../platform.js';
import { runCommand } from './run.js';
import type { CommandRunner, RunResult } from './run.js';

interface Commands {
  name: string;
  write: readonly string[];
  read: readonly string[];
  /** undefined: clear by writing an empty text. */
  clear?: readonly string[] | undefined;
  /** Whether the write tool forks a child that keeps serving the clipboard. */
  detaches: boolean;
  /** Exit codes/messages of `read` that mean "no text", not "failed". */
  empty?: (result: RunResult) => boolean;
  /** Added to `write` for a sensitive copy, where the tool can mark one (then marksSensitive is true). */
  sensitive?: readonly string[] | undefined;
}

export class CommandClipboard implements Clipboard {
  readonly marksSensitive: boolean;
  readonly name: string;

  constructor(
    private readonly commands: Commands,
    private readonly run: CommandRunner = runCommand,
    private readonly env?: NodeJS.ProcessEnv,
  ) {
    this.name = commands.name;
    this.marksSensitive = commands.sensitive !== undefined;
  }

  async write(text: string, options?: { sensitive: boolean }): Promise<void> {
    const argv = options?.sensitive && this.commands.sensitive ? [...this.commands.write, ...this.commands.sensitive] : this.commands.write;
    await this.exec('copy to', argv, text, this.commands.detaches);
    if (this.commands.detaches) await this.settle(text);
  }

  /**
   * xsel, xclip and wl-copy take the clipboard in the child they fork, after the process we ran
   * has exited: a read right after the write (the guard's, a test's, a quick paste) can still see
   * the old content. Wait until the copy is visible, briefly; after that, give up quietly — the
   * copy is most likely there a moment later, and a failed clear is harmless.
   */
  private async settle(text: string): Promise<void> {
    const expected = text === '' ? undefined : text;
    for (let attempt = 0; attempt < 20; attempt++) {
      try {
        if ((await this.read()) === expected) return;
      } catch {
        // Not readable yet.
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  async read(): Promise<string | undefined> {
    const [command, ...args] = this.commands.read;
    if (!command) return undefined;
    let result: RunResult;
    try {
      result = await this.run(command, args, { env: this.env });
    } catch (error) {
      throw this.failure('read', error);
    }
    if (result.code !== 0) {
      if (this.commands.empty?.(result)) return undefined;
      throw this.failure('read', `${command} exited with ${result.code}`);
    }
    return result.stdout === '' ? undefined : result.stdout;
  }

  async clear(): Promise<void> {
    if (this.commands.clear) await this.exec('clear', this.commands.clear, '', false);
    else await this.exec('clear', this.commands.write, '', this.commands.detaches);
    if (!this.commands.clear && this.commands.detaches) await this.settle('');
  }

  private async exec(what: string, argv: readonly string[], input: string, detaches: boolean): Promise<void> {
    const [command, ...args] = argv;
    if (!command) return;
    let result: RunResult;
    try {
      result = await this.run(command, args, { input, detaches, env: this.env });
    } catch (error) {
      throw this.failure(what, error);
    }
    if (result.code !== 0) throw this.failure(what, `${command} exited with ${result.code}`);
  }

  private failure(what: string, cause: unknown): KeytapError {
    const detail = cause instanceof Error ? cause.message : String(cause);
    return new KeytapError('UNSUPPORTED', `Could not ${what} the clipboard with ${this.name} (${detail}).`, {
      hint: `Check that ${this.name} is installed and that the display is reachable.`,
    });
  }
}

export function xselClipboard(run?: CommandRunner, env?: NodeJS.ProcessEnv): CommandClipboard {
  return new CommandClipboard(
    {
      name: 'xsel',
      write: ['xsel', '--clipboard', '--input'],
      read: ['xsel', '--clipboard', '--output'],
      clear: ['xsel', '--clipboard', '--clear'],
      detaches: true,
    },
    run,
    env,
  );
}

export function xclipClipboard(run?: CommandRunner, env?: NodeJS.ProcessEnv): CommandClipboard {
  return new CommandClipboard(
    {
      name: 'xclip',
      write: ['xclip', '-selection', 'clipboard', '-in'],
      // xclip fails when the selection holds no text ("target STRING not available").
      read: ['xclip', '-selection', 'clipboard', '-out'],
      detaches: true,
      empty: () => true,
    },
    run,
    env,
  );
}

/**
 * wl-clipboard. Up to 2.2, wl-copy offers the text aliases of the one type it is given and nothing
 * else, so `x-kde-passwordManagerHint` cannot ride along (Debian 12 has 2.1.0).
 * wl-clipboard 2.3 added `--sensitive`: the hint is offered next to the text (answering `secret`),
 * and `wl-paste --watch` tells clipboard managers CLIPBOARD_STATE=sensitive. `withSensitive`: this
 * wl-copy has that flag (waylandCopyMarksSensitive asks it). `--type text/plain` avoids wl-copy's
 * content sniffing (KeePassXC PR #6832).
 */
export function waylandClipboard(run?: CommandRunner, env?: NodeJS.ProcessEnv, withSensitive = false): CommandClipboard {
  return new CommandClipboard(
    {
      name: 'wl-copy',
      write: ['wl-copy', '--type', 'text/plain'],
      sensitive: withSensitive ? ['--sensitive'] : undefined,
      read: ['wl-paste', '--no-newline', '--type', 'text'],
      clear: ['wl-copy', '--clear'],
      detaches: true,
      // "Nothing is copied" / "No suitable type of content copied": no text, not a failure.
      empty: (result) => /nothing is copied|no suitable type|no selection/i.test(result.stderr) || result.code === 1,
    },
    run,
    env,
  );
}

/** Whether this wl-copy can mark a copy sensitive (2.3 and later list `--sensitive` in `--help`). */
export async function waylandCopyMarksSensitive(run: CommandRunner = runCommand, env?: NodeJS.ProcessEnv): Promise<boolean> {
  try {
    const result = await run('wl-copy', ['--help'], { env, timeoutMs: 2_000 });
    return /--sensitive\b/u.test(result.stdout + result.stderr);
  } catch {
    return false;
  }
}

/** pbcopy/pbpaste: the fallback on macOS when osascript cannot run. */
export function pbcopyClipboard(run?: CommandRunner): CommandClipboard {
  return new CommandClipboard({ name: 'pbcopy', write: ['pbcopy'], read: ['pbpaste'], detaches: false }, run);
}
