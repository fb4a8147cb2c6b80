import type { Command } from 'commander';
import { matchOne } from '../../device/oath/match.js';
import type { KeyOptions } from '../key-options.js';
import { addKeyOptions, withKey } from '../key-options.js';
import type { CliIo } from '../output.js';

export function registerDelete(program: Command, io: CliIo): void {
  addKeyOptions(
    program
      .command('delete')
      .description('delete the account matching QUERY from the key')
      .argument('<query>', 'the account: its full name, or a part of it that matches only it'),
  ).action(async (query: string, options: KeyOptions) => {
    await withKey(options, io, async (key, signal) => {
      const credential = matchOne(await key.session.list(signal), query);
      await key.session.delete(credential.id, { signal, onTouchNeeded: () => io.err('Touch your key to confirm…') });
      io.err(`Deleted ${credential.id} from ${key.name}.`);
    });
  });
}
