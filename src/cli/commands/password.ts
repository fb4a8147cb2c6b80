import type { Command } from 'commander';
import { Option } from 'commander';
import { KeytapError } from '../../errors.js';
import type { KeyOptions } from '../key-options.js';
import { addKeyOptions, withKey } from '../key-options.js';
import type { CliIo } from '../output.js';

interface PasswordOptions extends KeyOptions {
  newPassword?: string;
  clear?: boolean;
}

export function registerPassword(program: Command, io: CliIo): void {
  addKeyOptions(
    program
      .command('password')
      .description('set, change or remove the password of the OATH application (YubiKey)')
      .addOption(new Option('--new-password <password>', 'the new password').env('KEYTAP_NEW_PASSWORD'))
      .addOption(new Option('--clear', 'remove the password')),
  ).action(async (options: PasswordOptions) => {
    if ((options.newPassword === undefined) === !options.clear) {
      throw new KeytapError('USAGE', 'Give either --new-password or --clear.');
    }
    await withKey(options, io, async (key, signal) => {
      await key.session.setPassword(options.clear ? undefined : options.newPassword, signal);
      io.err(options.clear ? `Removed the password from ${key.name}.` : `Set the password of ${key.name}.`);
    }, 'writes');
  });
}
