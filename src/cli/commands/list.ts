import type { Command } from 'commander';
import { Option } from 'commander';
import type { KeyCredential } from '../../device/oath/session.js';
import type { KeyOptions } from '../key-options.js';
import { addKeyOptions, withKey } from '../key-options.js';
import type { CliIo } from '../output.js';
import { printJson } from '../output.js';

interface ListOptions extends KeyOptions {
  json?: boolean;
}

export function registerList(program: Command, io: CliIo): void {
  addKeyOptions(
    program
      .command('list')
      .description('list the accounts on the key')
      .addOption(new Option('--json', 'print a JSON array of {id, issuer, account, type, algorithm, digits, period, touch}')),
  ).action(async (options: ListOptions) => {
    await withKey(options, io, async (key, signal) => {
      const credentials = await key.session.list(signal);
      if (options.json) {
        printJson(io, credentials.map(toJson));
        return;
      }
      if (credentials.length === 0) {
        io.out(`${key.name} holds no accounts.`);
        return;
      }
      for (const c of credentials) io.out(describe(c));
    });
  });
}

/** Fields the key does not report are null, not guessed. */
function toJson(c: KeyCredential): Record<string, unknown> {
  return {
    id: c.id,
    issuer: c.issuer ?? null,
    account: c.account,
    type: c.type,
    algorithm: c.algorithm,
    digits: c.digits ?? null,
    period: c.type === 'TOTP' ? c.period : null,
    touch: c.touch ?? null,
  };
}

function describe(c: KeyCredential): string {
  const details: string[] = [c.type, c.algorithm];
  if (c.digits !== undefined) details.push(`${c.digits} digits`);
  if (c.type === 'TOTP') details.push(`${c.period} s`);
  if (c.touch) details.push('touch');
  if (c.pinProtected) details.push('PIN');
  return `${c.id}  (${details.join(', ')})`;
}
