import type { Command } from 'commander';
import { Option } from 'commander';
import { udevRules } from '../../device/discovery/known-keys.js';
import { KeytapError } from '../../errors.js';
import type { CliIo } from '../output.js';
import { printJson } from '../output.js';

export function registerDoctor(program: Command, io: CliIo): void {
  program
    .command('doctor')
    .description('check what keytap needs on this machine (device access, tray, notifications, clipboard, shortcut, settings), with fixes')
    .addOption(new Option('--json', 'print the checks as JSON'))
    .addOption(new Option('--udev-rules', 'print udev rules that let the logged-in user open security keys (Linux)'))
    .action(async (options: { json?: boolean; udevRules?: boolean }) => {
      if (options.udevRules) {
        io.out(udevRules().trimEnd());
        return;
      }
      // Imported here: the checks load D-Bus and conf, which other commands should not pay for at start-up.
      const { formatDoctor, runDoctor } = await import('../../app/doctor.js');
      const checks = await runDoctor();
      if (options.json) printJson(io, checks);
      else for (const line of formatDoctor(checks)) io.out(line);
      // Exit 1 when something needed is missing, so scripts can tell.
      const failed = checks.filter((c) => c.status === 'fail');
      if (failed.length > 0) throw new KeytapError('DEVICE_ERROR', `${failed.length} of ${checks.length} checks failed: ${failed.map((c) => c.name).join(', ')}.`);
    });
}
