import type { Command } from 'commander';
import { Option } from 'commander';
import type { DefaultAccount, WindowRule } from '../../app/config.js';
import { accountForCommand } from '../../app/window-rules.js';
import type { FocusedWindow } from '../../desktop/focused-window/types.js';
import { chooseAccount } from '../../app/choose-account.js';
import { answerError, askRunningInstance } from '../../app/ipc.js';
import { matchCredentials, matchOne } from '../../device/oath/match.js';
import type { KeyDescriptor } from '../../device/discovery/enumerate.js';
import type { OpenKey } from '../../device/open.js';
import type { KeyCredential, OathCode } from '../../device/oath/session.js';
import type { KeyOptions } from '../key-options.js';
import { addKeyOptions, connectedKeys, oathKeysFirst, withConnectedKey, withKey, withKeyPin } from '../key-options.js';
import { KeytapError } from '../../errors.js';
import { notCopied, readEachKey } from '../key-listing.js';
import type { CliIo } from '../output.js';
import { isoTime, printJson } from '../output.js';

interface CodeOptions extends KeyOptions {
  json?: boolean;
  type?: boolean;
  focused?: boolean;
}

/** What `--focused` reads without a running keytap: the window, and the settings' rules and default account. */
interface FocusedChoice {
  window: FocusedWindow | undefined;
  rules: WindowRule[];
  defaultAccount: DefaultAccount | null;
}

/** Read first (before a key is opened), from this process: the window focused when the command ran. */
async function readFocusedChoice(io: CliIo): Promise<FocusedChoice> {
  const [{ createFocusedWindowSource }, { ConfigStore }] = await Promise.all([import('../../desktop/focused-window/index.js'), import('../../app/config.js')]);
  const source = createFocusedWindowSource();
  let window: FocusedWindow | undefined;
  try {
    window = await source.read();
  } catch (error) {
    io.err(`keytap: warning: the focused window cannot be read (${source.name}): ${error instanceof Error ? error.message : String(error)}`);
  }
  const config = ConfigStore.open();
  try {
    if (config.problem) io.err(`keytap: warning: ${config.problem.message}`);
    return { window, rules: config.current.windowRules, defaultAccount: config.current.defaultAccount };
  } finally {
    config.close();
  }
}

/**
 * Options that pick a key or change how it is opened (a file, a device, a password) go to the key
 * directly, with the errors they always gave; plain `keytap code` / `keytap list` ask the tray.
 */
export function usesRunningInstance(options: KeyOptions): boolean {
  return options.virtual === undefined && options.device === undefined && options.interface === undefined && options.password === undefined && options.pin === undefined && !options.remember && options.dialect === undefined && !options.demo;
}

export function registerCode(program: Command, io: CliIo): void {
  addKeyOptions(
    program
      .command('code')
      .description('print the current code of the account matching QUERY (the only account when QUERY is left out)')
      .argument('[query]', 'the account: its full name, or a part of it that matches only it')
      .addOption(new Option('--json', 'print {id, code, validFrom, validTo} as JSON'))
      .addOption(new Option('--type', 'type the code into the focused window instead of printing it (through the running keytap when there is one)'))
      .addOption(new Option('--focused', "the account the focused window calls for (its window rules, else the issuer in its title), else the default account; for a compositor's key binding")),
  ).action(async (query: string | undefined, options: CodeOptions) => {
    if (options.focused && query !== undefined) {
      throw new KeytapError('USAGE', '--focused chooses the account from the focused window; it takes no QUERY.', { hint: 'Leave out QUERY, or leave out --focused.' });
    }
    const print = (
      id: string,
      code: { code: string; validFrom?: number | undefined; validTo?: number | undefined },
      delivery?: { copied?: boolean; copyError?: string | undefined; typed?: boolean; typeError?: string | undefined },
    ): void => {
      if (options.json) printJson(io, { id, code: code.code, validFrom: isoTime(code.validFrom), validTo: isoTime(code.validTo), ...delivery });
      // Typed, the code is where the user wants it; printed as well it would land in a focused terminal twice.
      else if (!options.type) io.out(code.code);
    };
    // A running keytap tray owns the flow (touch toast, clipboard) and answers over IPC; this is
    // what a desktop shortcut bound to "keytap code" reaches, Wayland included.
    if (usesRunningInstance(options)) {
      const focused = options.focused ? { focused: true } : {};
      const request = options.type ? ({ op: 'code', query, deliver: 'type', ...focused } as const) : ({ op: 'code', query, ...focused } as const);
      const answer = await askRunningInstance(request, { onEvent: (event) => io.err(`Touch your key (${event.id})…`), onFallback: (note) => io.err(note) });
      if (answer && options.type) {
        if (!answer.ok) throw answerError(answer);
        const typeError = notTyped(answer.typed, answer.typeError);
        const code = { code: String(answer.code), validFrom: typeof answer.validFrom === 'number' ? answer.validFrom : undefined, validTo: typeof answer.validTo === 'number' ? answer.validTo : undefined };
        print(String(answer.id), code, { typed: !typeError, ...(typeError ? { typeError: typeError.message } : {}), copied: answer.copied === true });
        if (typeError) {
          // The tray falls back to copying: say where the code is.
          const where = answer.copied === true ? ' It is on the clipboard instead.' : '';
          throw new KeytapError('NOT_DELIVERED', `The code was not typed. ${typeError.message}${where}`, { hint: typeError.hint });
        }
        return;
      }
      if (answer) {
        if (!answer.ok) throw answerError(answer);
        const copyError = notCopied(answer.copied, answer.copyError);
        print(
          String(answer.id),
          {
            code: String(answer.code),
            validFrom: typeof answer.validFrom === 'number' ? answer.validFrom : undefined,
            validTo: typeof answer.validTo === 'number' ? answer.validTo : undefined,
          },
          { copied: !copyError, ...(copyError ? { copyError: copyError.message } : {}) },
        );
        // The code is out (stdout); the exit code and stderr say it is not on the clipboard.
        if (copyError) throw new KeytapError('NOT_DELIVERED', `The code was printed but not copied. ${copyError.message}`, { hint: copyError.hint });
        return;
      }
    }
    // --virtual, --device (and the misuse of --demo or --dialect without --virtual) are withKey's.
    const findsKey = options.virtual === undefined && options.device === undefined && options.dialect === undefined && !options.demo;
    const focus = options.focused ? await readFocusedChoice(io) : undefined;
    const chosen = findsKey ? await keyHoldingAccount(query, options, io, focus) : undefined;
    const readCode = async (key: OpenKey, signal: AbortSignal): Promise<void> => {
      // A 30-second TOTP account comes with its code from listing (CALCULATE ALL): one APDU less.
      const { credentials, codes } = await key.session.listWithReadyCodes({ signal });
      if (focus) {
        // The full name: it matches only itself.
        query = accountForCommand(focus.window, credentials.map((c) => ({ keyId: key.id, credentialId: c.id, issuer: c.issuer })), focus.rules, focus.defaultAccount)?.credentialId;
      }
      const onTouchNeeded = (id: string) => () => io.err(`Touch your key (${id})…`);
      let read: { id: string; code: OathCode };
      if (key.session.pinSet && matchCredentials(credentials, query).length === 0) {
        // PIN-protected accounts are listed only right after VERIFY PIN, and each CALCULATE of one
        // needs its own VERIFY PIN: two touches.
        read = await withKeyPin(key, options, io, signal, async (pin) => {
          io.err('The key holds PIN-protected accounts: touch it to give the PIN…');
          const all = await key.session.listWithPin(pin, { signal });
          const credential = matchOne(all, query);
          return { id: credential.id, code: await key.session.calculate(credential, { signal, pin, onTouchNeeded: onTouchNeeded(credential.id) }) };
        });
      } else {
        const credential = matchOne(credentials, query);
        read = { id: credential.id, code: codes.get(credential.id) ?? (await key.session.calculate(credential, { signal, onTouchNeeded: onTouchNeeded(credential.id) })) };
      }
      if (options.type) {
        // The code is read: a touch that still had the shortcut's keys held is over by now too.
        // Loaded only here: the typing backends live in the full bundle (bin/bundle-choice.cjs sends `code --type` there).
        // The tray's portal restore token, so the desktop does not ask again; saved before exit.
        const { keytapTypist } = await import('../typist.js');
        const { typist, restoreToken } = keytapTypist((problem) => io.err(`keytap: warning: ${problem}`));
        try {
          await typist.type(read.code.code, signal);
        } finally {
          await restoreToken.saved();
        }
        print(read.id, read.code, { typed: true });
        return;
      }
      print(read.id, read.code);
    };
    await (chosen ? withConnectedKey(chosen, options, io, readCode) : withKey(options, io, readCode));
  });
}

/**
 * The key to read from when none is chosen: the only one, or with several, the one the tray's rule
 * picks (src/app/choose-account.ts): the same name on a key and its backup is one account, read
 * from the first key found; different accounts on different keys are ambiguous, and the error
 * names the keys. undefined when there is none (withKey then says so). A key that cannot be
 * listed (locked, busy) is passed over with a warning, unless no key could be.
 */
async function keyHoldingAccount(query: string | undefined, options: KeyOptions, io: CliIo, focus?: FocusedChoice): Promise<KeyDescriptor | undefined> {
  const descriptors = oathKeysFirst(await connectedKeys(io, options));
  if (descriptors.length < 2) return descriptors[0];
  const holders: { id: string; name: string; serial?: string | undefined; credentials: KeyCredential[] }[] = await readEachKey(
    descriptors,
    options,
    io,
    async (descriptor, key, signal) => ({
      id: descriptor.id,
      name: key.name,
      // The announced serial only: it is for the message when the query is ambiguous, and reading
      // a YubiKey's from its Management application would SELECT away from the unlocked OATH.
      serial: descriptor.serial,
      credentials: await key.session.list(signal),
    }),
  );
  const accounts = holders.flatMap((h) => h.credentials.map((c) => ({ keyId: h.id, keySerial: h.serial, credentialId: c.id, issuer: c.issuer })));
  const fits = focus ? accountForCommand(focus.window, accounts, focus.rules, focus.defaultAccount) : undefined;
  const { keyId } = fits ?? chooseAccount(holders, query);
  return descriptors.find((d) => d.id === keyId);
}

/** The tray's word on typing: undefined when it typed; an older tray that knows no typing copies and says nothing. */
function notTyped(typed: unknown, typeError: unknown): { message: string; hint?: string | undefined } | undefined {
  if (typed === true) return undefined;
  const { message, hint } = (typeof typeError === 'object' && typeError !== null ? typeError : {}) as { message?: unknown; hint?: unknown };
  if (typed === undefined) return { message: 'The running keytap is older and cannot type codes.', hint: 'Quit keytap from its menu and start it again to use this version.' };
  return { message: typeof message === 'string' ? message : 'The running keytap could not type it.', hint: typeof hint === 'string' ? hint : undefined };
}
