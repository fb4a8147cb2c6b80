import type { Command } from 'commander';
import { Option } from 'commander';
import { readKeySerial } from '../../device/open.js';
import { connectedKeys } from '../key-options.js';
import type { CliIo } from '../output.js';
import { printJson } from '../output.js';

export function registerKeys(program: Command, io: CliIo): void {
  program
    .command('keys')
    .description('list the connected keys (real ones, and virtual keys started with "keytap virtual start")')
    .addOption(new Option('--json', 'print a JSON array of {id, kind, name, path, serial}'))
    .action(async (options: { json?: boolean }) => {
      const keys = await connectedKeys(io);
      // One key at a time: a card reader answers one program at a time anyway.
      const serials: Array<string | undefined> = [];
      for (const key of keys) serials.push(await readKeySerial(key));
      if (options.json) {
        printJson(
          io,
          keys.map((k, i) => ({ id: k.id, kind: k.kind, name: k.name, path: k.path, serial: serials[i] ?? null })),
        );
        return;
      }
      if (keys.length === 0) io.out('No key found.');
      keys.forEach((k, i) => io.out(`${k.id}  ${k.name}${serials[i] === undefined ? '' : `  serial ${serials[i]}`}  (${k.path})`));
    });
}
