import type { Command } from 'commander';
import { Option } from 'commander';
import { forgetKey, keyringIdOf } from '../../app/unlock.js';
import { osKeyring } from '../../desktop/keyring/index.js';
import { KeytapError } from '../../errors.js';
import type { KeyOptions } from '../key-options.js';
import { addKeyOptions, withKey } from '../key-options.js';
import type { CliIo } from '../output.js';

interface PasswordOptions extends KeyOptions {
  newPassword?: string;
  clear?: boolean;
  forget?: boolean;
}

export function registerPassword(program: Command, io: CliIo): void {
  addKeyOptions(
    program
      .command('password')
      .description('set, change or remove the password of the OATH application (YubiKey)')
      .addOption(new Option('--new-password <password>', 'the new password').env('KEYTAP_NEW_PASSWORD'))
      .addOption(new Option('--clear', 'remove the password'))
      .addOption(new Option('--forget', "forget what this computer's keyring remembers for the key (access key and PIN)")),
  ).action(async (options: PasswordOptions) => {
    if (options.forget) {
      if (options.newPassword !== undefined || options.clear) throw new KeytapError('USAGE', 'Give --forget alone, without --new-password or --clear.');
      await withKey(options, io, async (key, signal) => {
        const keyId = await keyringIdOf(key.session, signal);
        const keyring = osKeyring();
        const forgotten = keyId !== undefined && (await forgetKey(keyring, keyId));
        io.err(forgotten ? `Forgot what the ${keyring.name} remembered for ${key.name}.` : `The ${keyring.name} remembered nothing for ${key.name}.`);
      }, 'resets');
      return;
    }
    if ((options.newPassword === undefined) === !options.clear) {
      throw new KeytapError('USAGE', 'Give either --new-password or --clear (or --forget).');
    }
    await withKey(options, io, async (key, signal) => {
      await key.session.setPassword(options.clear ? undefined : options.newPassword, signal);
      io.err(options.clear ? `Removed the password from ${key.name}.` : `Set the password of ${key.name}.`);
    }, 'writes');
  });
}
