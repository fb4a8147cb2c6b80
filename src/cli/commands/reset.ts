import type { Command } from 'commander';
import { Option } from 'commander';
import { KeytapError } from '../../errors.js';
import type { KeyOptions } from '../key-options.js';
import { addKeyOptions, withAnyKey } from '../key-options.js';
import type { CliIo } from '../output.js';

interface ResetOptions extends KeyOptions {
  force?: boolean;
}

export function registerReset(program: Command, io: CliIo): void {
  addKeyOptions(
    program
      .command('reset')
      .description('delete every account and the password from the key (a Feitian HOTP key: erase its token)')
      .addOption(new Option('--force', 'really do it (required: this cannot be undone)')),
  ).action(async (options: ResetOptions) => {
    if (!options.force) {
      throw new KeytapError('USAGE', 'Resetting deletes every account on the key (or the token of an HOTP key) and cannot be undone.', { hint: 'Add --force if you mean it.' });
    }
    // RESET needs no password (YKOATH and the Nitrokey 3 alike), so a forgotten one is recoverable;
    // a password given anyway is not even tried.
    await withAnyKey(
      options,
      io,
      async (opened, signal) => {
        if (opened.kind === 'oath') {
          await opened.key.session.reset({ signal, onTouchNeeded: () => io.err('Touch your key to confirm…') });
          io.err(`Reset the OATH application on ${opened.key.name}.`);
          return;
        }
        const { session, name } = opened.key;
        const serial = session.serial;
        if (serial === undefined) {
          io.err(`${name} holds no HOTP token; there is nothing to erase.`);
          return;
        }
        // The key's own confirmation is the touch it waits for while its LED flashes.
        await session.erase({ signal, onTouchNeeded: () => io.err(`Touch the key while it flashes to erase its HOTP token ${serial}…`) });
        io.err(`Erased the HOTP token ${serial} from ${name}; its codes no longer work.`);
      },
      'resets',
    );
  });
}
