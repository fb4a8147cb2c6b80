import type { Command } from 'commander';
import { Option } from 'commander';
import { KeytapError } from '../../errors.js';
import type { KeyOptions } from '../key-options.js';
import { addKeyOptions, withKey } from '../key-options.js';
import type { CliIo } from '../output.js';

interface ResetOptions extends KeyOptions {
  force?: boolean;
}

export function registerReset(program: Command, io: CliIo): void {
  addKeyOptions(
    program
      .command('reset')
      .description('delete every account and the password from the key')
      .addOption(new Option('--force', 'really do it (required: this cannot be undone)')),
  ).action(async (options: ResetOptions) => {
    if (!options.force) {
      throw new KeytapError('USAGE', 'Resetting deletes every account on the key and cannot be undone.', { hint: 'Add --force if you mean it.' });
    }
    // RESET needs no password (YKOATH and the Nitrokey 3 alike), so a forgotten one is recoverable;
    // a password given anyway is not even tried.
    await withKey(
      options,
      io,
      async (key, signal) => {
        await key.session.reset({ signal, onTouchNeeded: () => io.err('Touch your key to confirm…') });
        io.err(`Reset the OATH application on ${key.name}.`);
      },
      'resets',
    );
  });
}
