/** The options every key command shares, and opening the key they choose. */
import type { Command } from 'commander';
import { Option } from 'commander';
import type { OpenKey, OpenedKey } from '../device/open.js';
import { hotpOnlyKeyError, noKeyError, openAnyKey, openOathSession } from '../device/open.js';
import { virtualFileKey } from '../emulator/virtual-file.js';
import { THIS_PLATFORM, enumerateKeys } from '../device/discovery/enumerate.js';
import { INTERFACE_NAMES, interfaceNameOf, keyOverOnly } from '../device/discovery/interfaces.js';
import type { InterfaceName } from '../device/discovery/interfaces.js';
import type { KeyDescriptor } from '../device/discovery/enumerate.js';
import { KEY_DIALECTS, isOathDialect } from '../device/key-dialect.js';
import type { KeyDialect } from '../device/key-dialect.js';
import { existsSync, readlinkSync } from 'node:fs';
import type { UnlockContext } from '../app/unlock.js';
import { keyringIdOf, unlockSession, withPin } from '../app/unlock.js';
import { osKeyring } from '../desktop/keyring/index.js';
import type { SecretPrompt } from '../desktop/secret-prompt/index.js';
import { chooseSecretPrompt } from '../desktop/secret-prompt/index.js';
import { KeytapError } from '../errors.js';
import { terminalPrompt } from './hidden-prompt.js';
import type { CliIo } from './output.js';

export interface KeyOptions {
  virtual?: string;
  dialect?: KeyDialect;
  demo?: boolean;
  device?: string;
  interface?: InterfaceName;
  password?: string;
  pin?: string;
  remember?: boolean;
}

export function addKeyOptions(command: Command): Command {
  return command
    .addOption(new Option('--virtual <file>', 'use the virtual key kept in FILE, in this process (created if missing by commands that write, or with --demo/--dialect)'))
    .addOption(new Option('--dialect <dialect>', 'answer like this kind of key when --virtual creates FILE').choices(KEY_DIALECTS))
    .addOption(new Option('--demo', 'put demo accounts on the virtual key when --virtual creates FILE'))
    .addOption(new Option('--device <id>', 'use the key with this id, serial or OATH device id, or one of its interfaces by its id (see "keytap keys")'))
    .addOption(new Option('--interface <interface>', "reach the key over this interface only: hid (FIDO HID; a virtual key's socket) or ccid (its smart-card interface, through PC/SC)").choices(INTERFACE_NAMES))
    .addOption(new Option('--password <password>', 'password of a password-protected OATH application').env('KEYTAP_PASSWORD'))
    .addOption(new Option('--pin <pin>', 'Nitrokey 3: the PIN of PIN-protected accounts').env('KEYTAP_PIN'))
    .addOption(new Option('--remember', "remember the key's access key (or Nitrokey 3 PIN) in this computer's keyring once it works"));
}

/** The terminal this process is at, for pinentry-curses (which draws on it itself), when stdin and stderr are one. */
function terminalOf(): { ttyName: string; ttyType?: string | undefined } | undefined {
  if (!process.stdin.isTTY || !process.stderr.isTTY) return undefined;
  let ttyName = process.env.GPG_TTY;
  if (!ttyName && process.platform !== 'win32') {
    try {
      ttyName = readlinkSync('/proc/self/fd/0');
    } catch {
      ttyName = undefined;
    }
  }
  return ttyName?.startsWith('/dev/') ? { ttyName, ttyType: process.env.TERM } : undefined;
}

/** How to ask, when this process is at a terminal (a pinentry, GUI or curses, else the hidden prompt of its own). */
function promptFor(): (() => SecretPrompt) | undefined {
  if (!process.stdin.isTTY || !process.stderr.isTTY) return undefined;
  const terminal = terminalOf();
  return () => chooseSecretPrompt({ terminal, last: terminalPrompt() });
}

/**
 * What unlocking a key from the CLI may use: the secret given outright; the keyring (unless a
 * secret was given without --remember: then the keyring is not touched at all); the prompt on a
 * terminal. Notes go to stderr.
 */
export async function unlockContext(key: OpenKey, options: KeyOptions, io: CliIo, signal: AbortSignal, secret: string | undefined): Promise<UnlockContext> {
  const keyId = await keyringIdOf(key.session, signal);
  const useKeyring = secret === undefined || options.remember === true;
  return {
    keyName: key.name,
    keyId,
    secret,
    keyring: useKeyring ? osKeyring() : undefined,
    prompt: promptFor(),
    remember: options.remember,
    signal,
    onNote: (note) => {
      if (note.kind === 'remembered-wrong') {
        io.err(`keytap: the ${note.secret === 'nk3-pin' ? 'PIN' : 'password'} remembered for ${key.name} was wrong; it is forgotten.`);
      } else if (note.kind === 'remembered') {
        io.err(`Remembered the ${note.secret === 'nk3-pin' ? 'PIN' : 'access key'} of ${key.name} in the ${note.keyring}.`);
      } else if (note.kind === 'remembered-not-tried') {
        const left = note.attemptsLeft === undefined ? '' : ` (${note.attemptsLeft} attempt${note.attemptsLeft === 1 ? '' : 's'} left)`;
        io.err(`keytap: the PIN remembered for ${key.name} was not tried: the key says a wrong PIN was entered since it last worked${left}. Give the PIN with --pin; --remember stores it anew.`);
      } else if (note.kind === 'cannot-remember') {
        io.err(
          `keytap: warning: nothing was remembered: ${key.name} tells neither a serial nor an OATH device id, so keytap could not tell it from another key. Give the ${note.secret === 'nk3-pin' ? 'PIN with --pin' : 'password with --password'} each time instead.`,
        );
      } else if (options.remember) {
        io.err(`keytap: warning: ${note.error.message}`);
      }
    },
  };
}

/**
 * Runs `use` with the Nitrokey 3 PIN (given, remembered, or asked on a terminal). Only for keys
 * with a PIN set; the caller decides when PIN-protected accounts are needed.
 */
export async function withKeyPin<T>(key: OpenKey, options: KeyOptions, io: CliIo, signal: AbortSignal, use: (pin: string) => Promise<T>): Promise<T> {
  const context = await unlockContext(key, options, io, signal, options.pin);
  return (await withPin(key.session, context, use)).value;
}

/** The PIN where it costs no question: given, or remembered (a wrong remembered one is found out by its use). */
export async function pinWithoutAsking(key: OpenKey, options: KeyOptions, io: CliIo, signal: AbortSignal): Promise<boolean> {
  if (options.pin !== undefined) return true;
  const context = await unlockContext(key, options, io, signal, undefined);
  try {
    return context.keyId !== undefined && (await context.keyring?.get(context.keyId, 'nk3-pin')) !== undefined;
  } catch {
    return false;
  }
}

/**
 * What the command does with the key: only a command that writes creates a missing `--virtual
 * FILE`; one that resets it works on a locked applet too (and creates nothing: there is nothing to reset).
 */
export type KeyAccess = 'reads' | 'writes' | 'resets';

/**
 * Opens the chosen key: `--virtual FILE` in this process; `--device ID` by id, path or serial;
 * otherwise the only key there is (real, or a virtual key started with `keytap virtual start`).
 * Unlocks it, or refuses a locked one without a password, unless `access` is 'resets'. The
 * key is closed when `use` settles.
 */
export function withKey<T>(options: KeyOptions, io: CliIo, use: (key: OpenKey, signal: AbortSignal) => Promise<T>, access: KeyAccess = 'reads'): Promise<T> {
  return withOpenedKey((signal) => openChosenKey(options, access, io, signal, 'oath'), options, io, oathOnly(use), access);
}

/** The commands that need OATH accounts refuse a Feitian HOTP key, with a hotp-only-key detail. */
function oathOnly<T>(use: (key: OpenKey, signal: AbortSignal) => Promise<T>): (opened: OpenedKey, signal: AbortSignal) => Promise<T> {
  return (opened, signal) => (opened.kind === 'oath' ? use(opened.key, signal) : Promise.reject(hotpOnlyKeyError(opened.key.name)));
}

/**
 * As withKey, for the commands that handle Feitian HOTP keys too (keys, program, reset): `use`
 * gets whichever session the chosen key has. Only an OATH key is unlocked.
 */
export function withAnyKey<T>(options: KeyOptions, io: CliIo, use: (key: OpenedKey, signal: AbortSignal) => Promise<T>, access: KeyAccess = 'reads'): Promise<T> {
  return withOpenedKey((signal) => openChosenKey(options, access, io, signal, 'any'), options, io, use, access);
}

/** As withAnyKey, for a key already found (`connectedKeys`): no second enumeration. */
export function withConnectedAnyKey<T>(descriptor: KeyDescriptor, options: KeyOptions, io: CliIo, use: (key: OpenedKey, signal: AbortSignal) => Promise<T>): Promise<T> {
  return withOpenedKey((signal) => openAnyKey(descriptor, signal), options, io, use, 'reads');
}

/** As withKey, for a key already found (`connectedKeys`): no second enumeration. */
export function withConnectedKey<T>(descriptor: KeyDescriptor, options: KeyOptions, io: CliIo, use: (key: OpenKey, signal: AbortSignal) => Promise<T>): Promise<T> {
  return withOpenedKey(async (signal) => ({ kind: 'oath', key: await openOathSession(descriptor, signal) }), options, io, oathOnly(use), 'reads');
}

async function withOpenedKey<T>(
  open: (signal: AbortSignal) => Promise<OpenedKey>,
  options: KeyOptions,
  io: CliIo,
  use: (key: OpenedKey, signal: AbortSignal) => Promise<T>,
  access: KeyAccess,
): Promise<T> {
  const controller = new AbortController();
  const onSignal = (): void => controller.abort(new KeytapError('CANCELLED', 'Interrupted.'));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let opened: OpenedKey | undefined;
  try {
    opened = await open(controller.signal);
    // 'resets': RESET needs no password (docs/protocols.md §1.6), so a locked applet is no obstacle.
    if (opened.kind === 'oath' && opened.key.session.locked && access !== 'resets') {
      const context = await unlockContext(opened.key, options, io, controller.signal, options.password);
      // The applet stays unlocked for this session; the CLI has no later use for the access key.
      (await unlockSession(opened.key.session, context)).accessKey.fill(0);
    }
    return await use(opened, controller.signal);
  } finally {
    const key = opened?.key;
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (key) await key.close().catch((error: unknown) => io.err(`keytap: closing the key failed: ${String(error)}`));
  }
}

/**
 * Every key that can be reached now. A source that fails (node-hid that cannot load, as under
 * Wine or without libudev) does not hide the keys of the others: it is reported on stderr, and it
 * is the error when no key is found at all, since then it is the likelier reason.
 */
export async function connectedKeys(io: CliIo, options: Pick<KeyOptions, 'interface'> = {}): Promise<KeyDescriptor[]> {
  const failures: KeytapError[] = [];
  const keys = await enumerateKeys({ onError: (error) => failures.push(error) });
  if (keys.length === 0 && failures.length > 0) throw failures[0]!;
  for (const failure of failures) io.err(`keytap: warning: ${failure.message}`);
  return options.interface === undefined ? keys : overInterface(keys, options.interface);
}

/** What each key is called in a list of them: "Nitrokey 3 (/dev/hidraw3, over hid and ccid)". */
function keyWithInterfaces(key: KeyDescriptor): string {
  return `${key.name} (${key.id}, over ${[...new Set(key.interfaces.map(interfaceNameOf))].join(' and ')})`;
}

/** `--interface`: each key reached over that interface only; the keys without it are left out, and none left is NO_KEY. */
function overInterface(keys: readonly KeyDescriptor[], name: InterfaceName): KeyDescriptor[] {
  const over = keys.map((key) => keyOverOnly(key, name, THIS_PLATFORM)).filter((key): key is KeyDescriptor => key !== undefined);
  if (over.length > 0 || keys.length === 0) return over;
  throw new KeytapError('NO_KEY', `No key is reachable over ${name} now; found: ${keys.map(keyWithInterfaces).join(', ')}.`, {
    hint: `${name === 'ccid' ? `${CCID_HINT} ` : ''}Without --interface keytap uses whichever interface it finds.`,
  });
}

/** `--interface` for one key found already (a batch's next key): that key over that interface only, or NO_KEY saying how it is reached. */
export function keyReachedOver(key: KeyDescriptor, name: InterfaceName): KeyDescriptor {
  const reached = keyOverOnly(key, name, THIS_PLATFORM);
  if (reached) return reached;
  throw new KeytapError('NO_KEY', `${key.name} is not reachable over ${name} now (keytap finds it over ${key.interfaces.map(interfaceNameOf).join(' and ')}).`, {
    hint: name === 'ccid' ? CCID_HINT : undefined,
  });
}

/** What reaching a key over CCID takes. */
const CCID_HINT = 'Keys are reached over CCID through the PC/SC service: start pcscd (Linux), or the Smart Card service (Windows).';

/** Serials are compared without case: a Nitrokey 3's is hex, typed either way. */
function sameSerial(serial: string | undefined, wanted: string): boolean {
  return serial?.toLowerCase() === wanted.toLowerCase();
}

/** --device: the key by its id, path, serial or OATH device id; or one interface of it by that interface's id or path (the key over that interface only). */
function keyNamed(descriptors: readonly KeyDescriptor[], wanted: string): KeyDescriptor | undefined {
  const sameIdentity = (identity: string | undefined): boolean =>
    identity !== undefined && (identity === `device-id:${wanted}` || identity.toLowerCase() === `serial:${wanted.toLowerCase()}`);
  const direct = descriptors.find((d) => d.id === wanted || d.path === wanted || sameSerial(d.serial, wanted) || sameIdentity(d.identity));
  if (direct) return direct;
  for (const descriptor of descriptors) {
    const face = descriptor.interfaces.find((i) => i.id === wanted || i.path === wanted);
    if (face) return keyOverOnly(descriptor, interfaceNameOf(face), THIS_PLATFORM);
  }
  return undefined;
}

/**
 * The keys an OATH command (list, code, …) chooses from when none is named: the OATH keys; only
 * when there are none the others, so that a Feitian HOTP key alone is refused saying what it is.
 */
export function oathKeysFirst(descriptors: readonly KeyDescriptor[]): KeyDescriptor[] {
  const oath = descriptors.filter((d) => d.dialect !== 'feitian');
  return oath.length > 0 ? oath : [...descriptors];
}

/** The one key connected, when neither --virtual nor --device says which: NO_KEY for none, USAGE for several. */
export function onlyKey(descriptors: readonly KeyDescriptor[]): KeyDescriptor {
  if (descriptors.length === 0) throw noKeyError();
  if (descriptors.length > 1) {
    throw new KeytapError('USAGE', `${descriptors.length} keys are connected: ${descriptors.map((d) => `${d.name} (${d.id})`).join(', ')}.`, {
      hint: 'Choose one with --device ID.',
    });
  }
  return descriptors[0]!;
}

async function openChosenKey(options: KeyOptions, access: KeyAccess, io: CliIo, signal: AbortSignal, wants: 'oath' | 'any'): Promise<OpenedKey> {
  if (options.virtual !== undefined) {
    if (options.device !== undefined) throw new KeytapError('USAGE', 'Use either --virtual or --device, not both.');
    // A mistyped path for a command that only reads must not leave an empty key (and folders) behind.
    const create = access === 'writes' || options.demo === true || options.dialect !== undefined;
    // A command that needs OATH accounts would create a Feitian key only to refuse it: refuse first.
    if (create && wants === 'oath' && options.dialect !== undefined && !isOathDialect(options.dialect) && !existsSync(options.virtual)) {
      throw new KeytapError('UNSUPPORTED', `--dialect ${options.dialect} makes a Feitian HOTP key, which holds one HOTP token and has no OATH accounts; ${options.virtual} was not created.`, {
        detail: { kind: 'hotp-only-key', keyName: `virtual key ${options.virtual}` },
      });
    }
    return openAnyKey(virtualFileKey({ file: options.virtual, dialect: options.dialect, demo: options.demo, create }), signal);
  }
  if (options.dialect !== undefined || options.demo) {
    throw new KeytapError('USAGE', '--dialect and --demo only apply together with --virtual FILE.');
  }
  const all = await connectedKeys(io, options);
  const descriptors = options.device === undefined && wants === 'oath' ? oathKeysFirst(all) : all;
  if (options.device === undefined) return openAnyKey(onlyKey(descriptors), signal);
  const wanted = options.device;
  const named = keyNamed(descriptors, wanted);
  if (named) return openAnyKey(named, signal);
  // Not an id, path or announced serial: it may be a serial only the key itself can tell.
  for (const descriptor of descriptors) {
    let opened: OpenedKey | undefined;
    try {
      opened = await openAnyKey(descriptor, signal);
      const serial = opened.kind === 'oath' ? await opened.key.session.readSerial(signal) : opened.key.session.serial;
      if (sameSerial(serial, wanted)) return opened;
    } catch {
      // A key that cannot be opened now is not the one asked for.
    }
    await opened?.key.close().catch(() => undefined);
  }
  throw new KeytapError('NO_KEY', `No key with id or serial "${wanted}" is connected${options.interface === undefined ? '' : ` over ${options.interface}`}.`, {
    hint: 'Run "keytap keys" to see the connected keys and their interfaces.',
  });
}
