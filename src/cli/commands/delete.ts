import type { Command } from 'commander';
import { Option } from 'commander';
import { matchOne } from '../../device/oath/match.js';
import { KeytapError } from '../../errors.js';
import type { KeyOptions } from '../key-options.js';
import { addKeyOptions, withKey } from '../key-options.js';
import type { CliIo } from '../output.js';
import { openPrompter, yesNo } from '../prompt.js';

interface DeleteOptions extends KeyOptions {
  force?: boolean;
}

export function registerDelete(program: Command, io: CliIo): void {
  addKeyOptions(
    program
      .command('delete')
      .description('delete the account matching QUERY from the key (a part of its name asks first, or needs --force)')
      .argument('<query>', 'the account: its full name, or a part of it that matches only it')
      .addOption(new Option('--force', 'delete what a part of a name matches without asking')),
  ).action(async (query: string, options: DeleteOptions) => {
    const { force, ...keyOptions } = options;
    await withKey(keyOptions, io, async (key, signal) => {
      const credential = matchOne(await key.session.list(signal), query);
      // A part of a name may match another account than the one meant; the full name is deliberate.
      if (credential.id !== query && !force) await confirm(`Delete ${credential.id} from ${key.name}?`, query, credential.id, io);
      await key.session.delete(credential.id, { signal, onTouchNeeded: () => io.err('Touch your key to confirm…') });
      io.err(`Deleted ${credential.id} from ${key.name}.`);
    });
  });
}

/** On a terminal, asks (No by default, as ykman does); without one, refuses. */
async function confirm(question: string, query: string, id: string, io: CliIo): Promise<void> {
  if (process.stdin.isTTY !== true) {
    throw new KeytapError('USAGE', `"${query}" is only a part of the name ${id}; nothing was deleted.`, {
      hint: `Give the full name, "${id}", or add --force to delete it.`,
    });
  }
  const prompter = openPrompter({ input: process.stdin, output: process.stderr, err: (line) => io.err(line) });
  try {
    if ((await prompter.question(question, 'y/N', yesNo)) !== true) throw new KeytapError('CANCELLED', 'Nothing was deleted.');
  } finally {
    prompter.close();
  }
}
