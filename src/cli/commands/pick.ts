/**
 * `keytap pick`: the command only; choosing and reading are in pick-run.ts, imported when the
 * command runs (it needs the desktop's finders and clipboard, which the small CLI bundle leaves out).
 */
import type { Command } from 'commander';
import { Option } from 'commander';
import type { CliIo } from '../output.js';
import { PICKERS } from './pick-options.js';
import type { PickOptions } from './pick-options.js';

export function registerPick(program: Command, io: CliIo): void {
  program
    .command('pick')
    .description('choose an account of any connected key in a fuzzy finder, and read it as a click in the tray does (copy, toast)')
    .addOption(new Option('--with <finder>', 'the finder to choose with (default: $KEYTAP_PICKER, else the first of rofi, fuzzel, wofi, dmenu found for this session, else the terminal)').choices(PICKERS))
    .action(async (_options: PickOptions, command: Command) => {
      const { runPick } = await import('./pick-run.js');
      // With the globals: `keytap --with rofi pick` names the finder before the command.
      await runPick(command.optsWithGlobals<PickOptions>(), io);
    });
}
