/** The command line: commander wiring only; the work happens in the device and otp layers. */
import { Command, CommanderError, Option } from 'commander';
import { KeytapError } from '../errors.js';
import type { StepHook } from '../provision/steps.js';
import { registerAdd } from './commands/add.js';
import { registerCode } from './commands/code.js';
import { registerDelete } from './commands/delete.js';
import { registerDoctor } from './commands/doctor.js';
import { registerEntra } from './commands/entra.js';
import { registerKeys } from './commands/keys.js';
import { registerList } from './commands/list.js';
import { registerPassword } from './commands/password.js';
import { registerPick } from './commands/pick.js';
import { PICKERS } from './commands/pick-options.js';
import { registerProgram } from './commands/program.js';
import { registerReset } from './commands/reset.js';
import { registerSeeds } from './commands/seeds.js';
import { registerTray } from './commands/tray.js';
import { registerVirtual } from './commands/virtual.js';
import { ExitCode, exitCodeFor } from './exit-codes.js';
import type { CliCommand } from './explain.js';
import { cliCommand } from './explain.js';
import type { CliIo } from './output.js';
import { describeError } from './output.js';
import { KEYTAP_PACKAGE_VERSION } from './version.js';

/** Seams for tests that drive the real program in a process of their own (test/cli/program-crash-entry.ts). */
export interface CliHooks {
  /** Called after each durable step of `keytap program` (provision/steps.ts). */
  afterStep?: StepHook | undefined;
}

export function createProgram(io: CliIo, hooks: CliHooks = {}): Command {
  const program = new Command('keytap')
    .description('Read TOTP/HOTP codes from USB security keys, and program keys with OATH accounts.')
    .version(KEYTAP_PACKAGE_VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) })
    .exitOverride()
    // `keytap --with rofi pick` as well as `keytap pick --with rofi` (bin/bundle-choice.cjs routes
    // both to the full bundle); refused before any other command.
    .addOption(new Option('--with <finder>', 'the finder of "keytap pick"').choices(PICKERS).hideHelp());
  program.hook('preAction', (_program, actionCommand) => {
    if (program.opts<{ with?: string }>().with !== undefined && actionCommand.name() !== 'pick') {
      const names: string[] = [];
      for (let c: Command | null = actionCommand; c && c !== program; c = c.parent) names.unshift(c.name());
      throw new KeytapError('USAGE', `--with is an option of "keytap pick", not of "keytap ${names.join(' ')}".`, { hint: 'Leave it out, or run "keytap pick --with FINDER".' });
    }
  });
  for (const register of [registerCode, registerPick, registerList, registerAdd, registerDelete, registerReset, registerPassword, registerKeys, registerVirtual, registerTray, registerDoctor]) {
    register(program, io);
  }
  registerProgram(program, io, hooks.afterStep);
  registerSeeds(program, io);
  registerEntra(program, io);
  for (const command of program.commands) {
    command.exitOverride();
    for (const sub of command.commands) sub.exitOverride();
  }
  return program;
}

/** Runs the CLI and returns the exit code; never throws. */
export async function runCli(argv: string[], io: CliIo, hooks: CliHooks = {}): Promise<number> {
  const program = createProgram(io, hooks);
  // The command whose action runs: errors are worded with its own option names.
  let running: CliCommand | undefined;
  program.hook('preAction', (_program, actionCommand) => {
    running = cliCommand(actionCommand);
  });
  try {
    // No command at all starts the resident tray process.
    await program.parseAsync(argv.length === 0 ? ['tray'] : argv, { from: 'user' });
    return ExitCode.OK;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version end through here too, with exit code 0.
      return error.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE;
    }
    for (const line of describeError(error, running)) io.err(line);
    return error instanceof KeytapError ? exitCodeFor(error.code) : ExitCode.ERROR;
  }
}
