import type { Command } from 'commander';
import { Option } from 'commander';
import { connectedKeys } from '../key-options.js';
import type { CliIo } from '../output.js';
import { printJson } from '../output.js';

export function registerKeys(program: Command, io: CliIo): void {
  program
    .command('keys')
    .description('list the connected keys (real ones, and virtual keys started with "keytap virtual start")')
    .addOption(new Option('--json', 'print a JSON array of {id, kind, name, path}'))
    .action(async (options: { json?: boolean }) => {
      const keys = await connectedKeys(io);
      if (options.json) {
        printJson(io, keys.map((k) => ({ id: k.id, kind: k.kind, name: k.name, path: k.path })));
        return;
      }
      if (keys.length === 0) io.out('No key found.');
      for (const k of keys) io.out(`${k.id}  ${k.name}  (${k.path})`);
    });
}
