/**
 * `keytap` (no arguments) and `keytap tray`: the command only; the resident process itself is in
 * tray-run.ts, imported when the command runs.
 */
import type { Command } from 'commander';
import { Option } from 'commander';
import type { CliIo } from '../output.js';
import { KEYTAP_PACKAGE_VERSION } from '../version.js';
import type { TrayOptions } from './tray-run.js';

export function registerTray(program: Command, io: CliIo): void {
  program
    .command('tray')
    .description('start the resident tray utility (what "keytap" with no command does)')
    .addOption(new Option('--demo', 'when no key is present, plug in a demo virtual key (kept in the data folder) so the tray has something to show'))
    .action(async (options: TrayOptions) => {
      const { runTray } = await import('./tray-run.js');
      await runTray(options, io, KEYTAP_PACKAGE_VERSION);
    });
}

