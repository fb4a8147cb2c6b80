import type { Command } from 'commander';
import { Option } from 'commander';
import type { KeyListing } from '../../app/controller.js';
import { answerError, askRunningInstance } from '../../app/ipc.js';
import { noKeyError } from '../../device/open.js';
import type { KeyCredential } from '../../device/oath/session.js';
import { KeytapError } from '../../errors.js';
import { readyOrError } from '../key-listing.js';
import type { KeyOptions } from '../key-options.js';
import { addKeyOptions, pinWithoutAsking, withKey, withKeyPin } from '../key-options.js';
import type { CliIo } from '../output.js';
import { printJson } from '../output.js';
import { usesRunningInstance } from './code.js';

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
    const print = (name: string, credentials: KeyCredential[]): void => {
      if (options.json) {
        printJson(io, credentials.map(toJson));
        return;
      }
      if (credentials.length === 0) {
        io.out(`${name} holds no accounts.`);
        return;
      }
      for (const c of credentials) io.out(describe(c));
    };
    if (usesRunningInstance(options)) {
      const answer = await askRunningInstance({ op: 'list' }, { onFallback: (note) => io.err(note) });
      if (answer) {
        if (!answer.ok) throw answerError(answer);
        const key = onlyKey(answer.keys as KeyListing[]);
        print(key.name, key.credentials);
        return;
      }
    }
    await withKey(options, io, async (key, signal) => {
      // PIN-protected accounts only with a PIN given or remembered: listing them costs a touch.
      if (key.session.pinSet && (await pinWithoutAsking(key, options, io, signal))) {
        print(key.name, await withKeyPin(key, options, io, signal, (pin) => key.session.listWithPin(pin, { signal, onTouchNeeded: () => io.err('Touch your key to give the PIN…') })));
        return;
      }
      print(key.name, await key.session.list(signal));
      if (key.session.pinSet && !options.json) io.err(`${key.name} has a PIN: its PIN-protected accounts are not listed without it.`);
    });
  });
}

/** The same rules (and words) as opening the only key directly: none, several, locked, broken. */
function onlyKey(keys: KeyListing[]): KeyListing {
  if (keys.length === 0) throw noKeyError();
  if (keys.length > 1) {
    throw new KeytapError('USAGE', `${keys.length} keys are connected: ${keys.map((k) => `${k.name} (${k.id})`).join(', ')}.`, {
      hint: 'Choose one with --device ID.',
    });
  }
  return readyOrError(keys[0]!);
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
