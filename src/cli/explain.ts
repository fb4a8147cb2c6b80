/**
 * The CLI's words for a KeytapError. The layers below say what went wrong (a code, a neutral
 * message, a structured detail); this says what to do about it in terms of the command that is
 * running: its own option names, since the same need has different options in different commands
 * (an encrypted PSKC file is opened with --passphrase in "seeds codes" but --from-passphrase in
 * "program --from"). A hint names an option only if the running command has it, or after naming
 * the other command it belongs to ("keytap seeds export --ledger …").
 */
import type { Command } from 'commander';
import type { ErrorDetail, HotpKeyParameter, KeytapError } from '../errors.js';

/** What the renderer needs to know of the running command. */
export interface CliCommand {
  /** The command's path below "keytap": "code", "seeds codes". */
  readonly path: string;
  /** Its long options ("--password"), each with the environment variable that also sets it, if any. */
  readonly options: ReadonlyMap<string, string | undefined>;
}

/** No command known (the error came before one was chosen): hints name other commands only. */
export const NO_COMMAND: CliCommand = { path: '', options: new Map() };

export function cliCommand(command: Command): CliCommand {
  const names: string[] = [];
  for (let c: Command | null = command; c?.parent; c = c.parent) names.unshift(c.name());
  const options = new Map<string, string | undefined>();
  for (const option of command.options) if (option.long) options.set(option.long, option.envVar);
  return { path: names.join(' '), options };
}

export interface CliExplanation {
  message: string;
  hint: string | undefined;
}

export function explainForCli(error: KeytapError, command: CliCommand = NO_COMMAND): CliExplanation {
  return { message: error.message, hint: error.detail === undefined ? error.hint : hintFor(error.detail, error.hint, command) };
}

/** The first of the options that the command has. */
function pick(command: CliCommand, ...candidates: string[]): string | undefined {
  return candidates.find((option) => command.options.has(option));
}

/** "--password or the KEYTAP_PASSWORD environment variable", or just the option. */
function withEnv(command: CliCommand, option: string): string {
  const env = command.options.get(option);
  return env === undefined ? option : `${option} or the ${env} environment variable`;
}

function hintFor(detail: ErrorDetail, hint: string | undefined, command: CliCommand): string | undefined {
  switch (detail.kind) {
    case 'locked': {
      const option = pick(command, '--password');
      return option ? `Give the password with ${withEnv(command, option)}.` : 'Give the password to a command that opens the key, e.g. "keytap list --password …".';
    }
    case 'wrong-password': {
      const option = pick(command, '--password');
      return option ? `Check the password (${withEnv(command, option)}).` : 'Check the password.';
    }
    case 'wrong-pin': {
      const option = pick(command, '--pin');
      const check = option ? `Check the PIN (${withEnv(command, option)})` : 'Check the PIN';
      return `${check}: after ${detail.attemptsLeft} more wrong tr${detail.attemptsLeft === 1 ? 'y' : 'ies'} it is blocked.`;
    }
    case 'pin-blocked':
      return 'Only resetting the Secrets App unblocks it, and that deletes every account on it (nitropy nk3 secrets reset).';
    case 'pin-required': {
      const option = pick(command, '--pin');
      return option ? `Give the PIN with ${withEnv(command, option)}, or run the command on a terminal to be asked.` : 'Give the PIN to a command that reads codes, e.g. "keytap code --pin …".';
    }
    case 'no-pin':
      return 'This key has no PIN; leave the PIN out.';
    case 'no-keyring':
      return process.platform === 'linux'
        ? 'Start a Secret Service (gnome-keyring or KeePassXC) in your desktop session, or give the secret each time.'
        : 'Unlock the keychain of your account, or give the secret each time.';
    case 'cannot-remember': {
      const option = pick(command, '--password', '--pin');
      return option ? `Give the secret each time (${withEnv(command, option)}), without --remember.` : 'Give the secret each time instead.';
    }
    case 'no-secret-prompt': {
      const option = pick(command, '--password', '--pin');
      const each = option ? ` or give it with ${withEnv(command, option)}` : '';
      return `Install a pinentry (GnuPG's: pinentry-gnome3, pinentry-qt, pinentry-mac, Gpg4win) or name one in KEYTAP_PINENTRY, run the command on a terminal${each}.`;
    }
    case 'secret-prompt-failed':
      return 'Check KEYTAP_PINENTRY, or try another pinentry program.';
    case 'status':
    case 'invalid-seed-file':
      return hint;
    case 'no-key':
      return 'Plug in your key. To try keytap without one: keytap code Demo --virtual demo-key.json --demo';
    case 'no-accounts':
      return 'Add one with "keytap add".';
    case 'exists': {
      if (!command.options.has('--replace')) return 'Choose another name.';
      const naming = command.path === 'program' ? 'another --issuer/--account' : 'another name';
      return `Choose ${naming}, or replace it with --replace.`;
    }
    case 'not-found':
      return 'Run "keytap list" to see the accounts on the key.';
    case 'not-a-seed-file':
      return command.path === 'seeds export' ? undefined : `"keytap seeds export --ledger ${detail.dir} --format LIST" writes seed files from it.`;
    case 'seed-format-unknown': {
      const names = detail.formats.join(', ');
      if (command.options.has('--format') && command.path !== 'seeds export') return `Name the format with --format (${names}).`;
      return `Check the file with "keytap seeds codes FILE --format NAME" (names: ${names}).`;
    }
    case 'pskc-secret-needed': {
      if (detail.need === 'passphrase') {
        const option = pick(command, '--passphrase', '--from-passphrase');
        return option ? `Give the passphrase with ${withEnv(command, option)}.` : 'Read it with "keytap seeds codes FILE --passphrase …".';
      }
      const option = pick(command, '--key', '--from-key');
      return option ? `Give the pre-shared key in hex with ${withEnv(command, option)}.` : 'Read it with "keytap seeds codes FILE --key HEX".';
    }
    case 'pskc-secret-wrong': {
      if (detail.need === 'passphrase') {
        const option = pick(command, '--passphrase', '--from-passphrase');
        return option ? `Check the passphrase (${option}).` : 'Check the passphrase.';
      }
      const option = pick(command, '--key', '--from-key');
      return option ? `Check the pre-shared key (${option}, 32 hex digits for AES-128).` : 'Check the pre-shared key (32 hex digits for AES-128).';
    }
    case 'slow-kdf': {
      const option = pick(command, '--allow-slow-kdf');
      const trust = 'Only a file from someone you trust should need that many.';
      return option ? `${trust} To read it anyway, give ${option}.` : `${trust} To read it anyway: "keytap seeds codes FILE --allow-slow-kdf".`;
    }
    case 'ledger-missing':
      return 'Give the folder that "keytap program --out DIR" wrote to.';
    case 'ledger-encrypted': {
      const option = pick(command, '--ledger-passphrase');
      return option ? `Give its passphrase with ${withEnv(command, option)}.` : 'Give its passphrase.';
    }
    case 'ledger-busy':
      return command.options.has('--out') ? 'Wait for it to finish, or use another --out folder.' : 'Wait for it to finish.';
    case 'seed-files-not-written':
      return joinSentences(hint, `"keytap seeds export --ledger ${detail.ledgerDir} --format LIST" writes the files again.`);
    case 'file-exists': {
      if (!command.options.has('--force')) return 'Move it away, or choose another place.';
      return command.options.has('--out') ? 'Give --force to replace it, or choose another --out folder.' : 'Give --force to replace it.';
    }
    case 'short-secret':
      return command.options.has('--allow-short-secret')
        ? 'Let keytap generate the secret, or give --allow-short-secret if the other side cannot do better.'
        : `Use a secret of at least ${detail.minimum} bytes.`;
    case 'serial-taken':
      return command.options.has('--serial') ? 'Leave out --serial to generate one, or choose another.' : 'Choose another serial.';
    case 'serials-exhausted':
      return command.options.has('--serial-prefix') ? 'Choose another --serial-prefix.' : 'Choose another serial prefix.';
    case 'format-cannot-carry': {
      if (detail.needsUser === true && command.options.has('--users')) {
        return 'Give each key its user with --users FILE (a CSV with a UPN column, or one UPN a line), or one user for every key with --upn.';
      }
      if (detail.needsUser === true && command.options.has('--upn')) return 'Give the user with --upn.';
      const option = command.path === 'seeds export' ? pick(command, '--format') : pick(command, '--formats');
      return option ? `Change the token parameters, or leave this format out of ${option}.` : 'Change the token parameters, or write another format.';
    }
    case 'reader-missing':
      return 'Plug the key in, or run "keytap keys" to see the keys that are connected.';
    case 'ambiguous-keys': {
      const keys = detail.keys.map((k) => `${k.device} (${k.name})`).join(', ');
      const choose = command.options.has('--device') ? 'the key with --device' : 'the key with "keytap code --device ID"';
      return joinSentences(hint, `${hint ? 'Or choose' : 'Choose'} ${choose}: ${keys}.`);
    }
    case 'no-virtual-key':
      return command.options.has('--demo')
        ? `Check the path; to make a virtual key there, add --demo (demo accounts) or run "keytap add --virtual ${detail.file} …".`
        : 'Check the path; "keytap add --virtual FILE …" makes a virtual key.';
    case 'virtual-key-not-running':
      return 'Start one with "keytap virtual start FILE".';
    case 'virtual-key-gone':
      return 'Start it again with "keytap virtual start FILE".';
    case 'virtual-key-running':
      return 'Stop it first with "keytap virtual stop", or use the running one.';
    case 'graph':
      return hint;
    case 'bad-vpcd-address':
      return command.options.has('--vpcd') ? 'For example --vpcd 127.0.0.1:35963.' : 'For example 127.0.0.1:35963.';
    case 'hotp-key-programmed':
      return command.options.has('--device')
        ? `Erase it first with "keytap reset --device ${detail.serial}" (the key asks for a touch); its old token stops working.`
        : 'Erase it first with "keytap reset" (the key asks for a touch); its old token stops working.';
    case 'hotp-key-cannot-take':
      return hotpKeyHint(detail.parameter, command);
    case 'hid-needs-elevation':
      return detail.smartCard
        ? 'Run keytap as Administrator, or start the Smart Card service (in an Administrator prompt: sc config SCardSvr start= auto, then sc start SCardSvr) so that keytap reaches the key over CCID, which needs no elevation; "keytap keys" lists the interfaces it finds.'
        : 'Run keytap as Administrator: this key has no smart-card interface keytap could use instead.';
    case 'hotp-only-key':
      return '"keytap keys" shows whether it is programmed, "keytap program --type hotp" programs it and "keytap reset" erases it.';
  }
}

/** What a Feitian HOTP key needs, in the running command's options where it has them. */
function hotpKeyHint(parameter: HotpKeyParameter, command: CliCommand): string {
  const has = (option: string): boolean => command.options.has(option);
  switch (parameter) {
    case 'type':
      return has('--type') ? 'Give --type hotp: the key has no clock, so it cannot make TOTP codes.' : 'Use an HOTP token: the key has no clock, so it cannot make TOTP codes.';
    case 'algorithm':
      return has('--algorithm') ? 'Leave out --algorithm, or give --algorithm SHA1: the key computes SHA-1 codes only.' : 'Use a SHA-1 token: the key computes SHA-1 codes only.';
    case 'digits':
      return has('--digits') ? 'Give --digits 6 or --digits 8.' : 'Use a token of 6 or 8 digits.';
    case 'secret':
      return has('--secret') ? 'Leave out --secret to have a 20-byte seed generated, or give one of exactly 20 bytes (40 hex digits).' : 'Use a token whose seed is exactly 20 bytes.';
    case 'serial':
      return has('--serial')
        ? 'Give --serial with exactly 8 letters or digits, or leave it out: keytap then generates one of 8 characters (with --serial-prefix up to 7).'
        : 'Use a serial of exactly 8 letters or digits.';
    case 'counter':
      return has('--counter')
        ? 'Leave out --counter: the key is sent no counter and starts at 0.'
        : 'Use a token whose counter is 0: the key is sent no counter and starts at 0.';
    case 'period':
      return has('--period') ? 'Leave out --period: the key makes HOTP codes, which have no time step.' : 'Use an HOTP token: the key makes HOTP codes, which have no time step.';
  }
}

function joinSentences(...parts: (string | undefined)[]): string {
  return parts.filter((p): p is string => p !== undefined && p !== '').join(' ');
}
