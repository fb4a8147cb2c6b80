/**
 * `keytap pick`: every account of every connected key, one line each (labelled as the tray labels
 * them, with the key when there are several), offered to a fuzzy finder; the chosen account is
 * read as a click reads it. With a running tray, the tray lists and reads (touch toast, copy,
 * toast, clearing the clipboard later); without one, this process does, and copies the code
 * without clearing it afterwards (that would need a process left behind).
 * The lines carry names only: never a code or a secret.
 */
import { choicesOf, type Choice } from '../../app/account-choices.js';
import type { KeyListing } from '../../app/controller.js';
import { answerError, askRunningInstance } from '../../app/ipc.js';
import type { IpcAnswer, IpcRequest } from '../../app/ipc.js';
import { createClipboard } from '../../desktop/clipboard/index.js';
import { findDesktopFinder, runDesktopFinder } from '../../desktop/picker.js';
import { noKeyError } from '../../device/open.js';
import type { KeyCredential } from '../../device/oath/session.js';
import { KeytapError, isKeytapError } from '../../errors.js';
import { connectedKeys, oathKeysFirst, withConnectedKey } from '../key-options.js';
import { notCopied, readEachKey, readyOrError } from '../key-listing.js';
import type { CliIo } from '../output.js';
import { pickOnTerminal } from '../terminal-picker.js';
import type { Picker, PickOptions } from './pick-options.js';
import { PICKERS } from './pick-options.js';

const PROMPT = 'keytap';


export async function runPick(options: PickOptions, io: CliIo): Promise<void> {
  const picker = choosePicker(options.with ?? pickerFromEnv());
  const listed = await askRunningInstance({ op: 'list' }, { onFallback: (note) => io.err(note) });
  if (listed && !listed.ok) throw answerError(listed);
  const viaTray = listed !== undefined;
  const keys = viaTray ? readyKeys(listed.keys as KeyListing[]) : await listKeysDirectly(io);
  const choices = choicesOf(keys);
  if (choices.length === 0) throw new KeytapError('NO_MATCH', 'The connected keys hold no accounts.', { hint: 'Add one with "keytap add".', detail: { kind: 'no-accounts' } });

  const chosen = choices[await choose(picker, choices.map((c) => c.line))]!;
  const touch = (): void => io.err(`Touch your key (${chosen.credential.id})…`);
  if (viaTray) {
    const answer = await askRunningInstance({ op: 'read', keyId: chosen.keyId, credentialId: chosen.credential.id }, { onEvent: touch, onFallback: (note) => io.err(note) });
    if (answer && refusedAsUnknown(answer, 'read')) {
      io.err('The running keytap is older and cannot read a picked account: reading the key directly, with no touch toast and no clearing of the clipboard. Quit keytap from its menu and start it again to get them.');
    } else if (answer) {
      if (!answer.ok) throw answerError(answer);
      // The tray delivers as that account's click would: typed, the code is where it should be
      // (printed too, it could land in a focused terminal twice).
      if (answer.typed === true) return;
      io.out(String(answer.code));
      const typeError = answer.typeError as { message?: unknown; hint?: unknown } | undefined;
      if (typeof typeError?.message === 'string') {
        const where = answer.copied === true ? ' It is on the clipboard instead.' : '';
        throw new KeytapError('NOT_DELIVERED', `The code was not typed. ${typeError.message}${where}`, { hint: typeof typeError.hint === 'string' ? typeError.hint : undefined });
      }
      const copyError = notCopied(answer.copied, answer.copyError);
      if (copyError) throw new KeytapError('NOT_DELIVERED', `The code was printed but not copied. ${copyError.message}`, { hint: copyError.hint });
      return;
    }
  }
  await readDirectly(chosen, touch, io);
}

/** A tray from before `op` was added answers it with its parse error (src/app/ipc.ts parseRequest): USAGE, "Unknown operation …". */
function refusedAsUnknown(answer: IpcAnswer, op: IpcRequest['op']): boolean {
  return !answer.ok && answer.code === 'USAGE' && answer.message === `Unknown operation ${JSON.stringify(op)}.`;
}

function pickerFromEnv(): Picker | undefined {
  const named = process.env.KEYTAP_PICKER;
  if (named === undefined || named === '') return undefined;
  if (!(PICKERS as readonly string[]).includes(named)) {
    throw new KeytapError('USAGE', `KEYTAP_PICKER names ${JSON.stringify(named)}, which is not a finder keytap knows.`, { hint: `Set it to one of ${PICKERS.join(', ')}, or unset it.` });
  }
  return named as Picker;
}

/** The named finder, else the first desktop finder for this session, else the terminal when there is one. */
function choosePicker(named: Picker | undefined): Picker {
  const terminal = process.stdin.isTTY && process.stderr.isTTY;
  if (named === 'terminal' && !terminal) throw new KeytapError('USAGE', 'The terminal picker needs a terminal: standard input and standard error are not one.', { hint: 'Run "keytap pick" in a terminal, or choose a desktop finder with --with.' });
  if (named) return named;
  const found = findDesktopFinder();
  if (found) return found;
  if (terminal) return 'terminal';
  throw new KeytapError('UNSUPPORTED', 'There is no finder to pick with: none of rofi, fuzzel, wofi or dmenu is installed for this session, and this is not a terminal.', {
    hint: 'Install one (rofi or dmenu on X11; fuzzel, wofi or rofi on Wayland), or run "keytap pick" in a terminal.',
  });
}

async function choose(picker: Picker, lines: string[]): Promise<number> {
  if (picker === 'terminal') return pickOnTerminal(lines, `${PROMPT}> `);
  const abort = new AbortController();
  const onSignal = (): void => abort.abort();
  // The finder runs in its own process group: a Ctrl+C or a hang-up of this terminal reaches it
  // only through us.
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const name of signals) process.once(name, onSignal);
  try {
    const line = await runDesktopFinder(picker, lines, PROMPT, abort.signal);
    const index = lines.indexOf(line);
    if (index < 0) throw new KeytapError('NO_MATCH', `${picker} answered a line that is none of the accounts offered.`, { hint: 'Choose one of the lines shown rather than typing a name of your own.' });
    return index;
  } finally {
    for (const name of signals) process.off(name, onSignal);
  }
}

/** The keys whose accounts can be offered; with none, the error a direct read would give. */
function readyKeys(keys: KeyListing[]): KeyListing[] {
  if (keys.length === 0) throw noKeyError();
  const ready = keys.filter((k) => k.status === 'ready');
  if (ready.length === 0) {
    readyOrError(keys[0]!);
    throw noKeyError(); // not ready yet, and no error of its own
  }
  return ready;
}

/** Without a tray: every key found, listed; a key that cannot be (locked, busy) is passed over with a warning. */
async function listKeysDirectly(io: CliIo): Promise<{ id: string; name: string; serial?: string | undefined; credentials: KeyCredential[] }[]> {
  const descriptors = oathKeysFirst(await connectedKeys(io));
  if (descriptors.length === 0) throw noKeyError();
  return readEachKey(descriptors, {}, io, async (descriptor, key, signal) => ({ id: descriptor.id, name: descriptor.name, serial: descriptor.serial, credentials: await key.session.list(signal) }));
}

async function readDirectly(chosen: Choice, touch: () => void, io: CliIo): Promise<void> {
  const descriptors = await connectedKeys(io);
  const descriptor = descriptors.find((d) => d.id === chosen.keyId);
  if (!descriptor) throw new KeytapError('NO_KEY', `${chosen.keyName} is not connected any more.`, { hint: 'Plug it in again and pick once more.' });
  const code = await withConnectedKey(descriptor, {}, io, (key, signal) => key.session.calculate(chosen.credential, { signal, onTouchNeeded: touch }));
  io.out(code.code);
  let copyError: KeytapError | undefined;
  try {
    const clipboard = await createClipboard({ resident: false });
    await clipboard.write(code.code, { sensitive: true });
  } catch (error) {
    copyError = isKeytapError(error) ? error : new KeytapError('NOT_DELIVERED', error instanceof Error ? error.message : String(error));
  }
  if (copyError) throw new KeytapError('NOT_DELIVERED', `The code was printed but not copied. ${copyError.message}`, { hint: copyError.hint });
  io.err('Copied to the clipboard. Without a running keytap tray it is not cleared later: start "keytap" for that.');
}
