import type { Command } from 'commander';
import { Option } from 'commander';
import { matchOne } from '../../device/oath/match.js';
import type { KeyOptions } from '../key-options.js';
import { addKeyOptions, withKey } from '../key-options.js';
import type { CliIo } from '../output.js';
import { isoTime, printJson } from '../output.js';

interface CodeOptions extends KeyOptions {
  json?: boolean;
}

export function registerCode(program: Command, io: CliIo): void {
  addKeyOptions(
    program
      .command('code')
      .description('print the current code of the account matching QUERY (the only account when QUERY is left out)')
      .argument('[query]', 'the account: its full name, or a part of it that matches only it')
      .addOption(new Option('--json', 'print {id, code, validFrom, validTo} as JSON')),
  ).action(async (query: string | undefined, options: CodeOptions) => {
    await withKey(options, io, async (key, signal) => {
      const credential = matchOne(await key.session.list(signal), query);
      const code = await key.session.calculate(credential, {
        signal,
        onTouchNeeded: () => io.err(`Touch your key (${credential.id})…`),
      });
      if (options.json) {
        printJson(io, { id: credential.id, code: code.code, validFrom: isoTime(code.validFrom), validTo: isoTime(code.validTo) });
      } else {
        io.out(code.code);
      }
    });
  });
}
