/**
 * The tray's words for a KeytapError. The layers below say what went wrong (a code, a neutral
 * message, a structured detail); the tray has no options to name, so this says what to do in the
 * tray, or which command in a terminal does what the tray cannot (yet). Pure: no I/O.
 */
import type { DesktopBinding } from '../desktop/platform.js';
import type { ErrorDetail, KeytapError } from '../errors.js';

export interface TrayExplanation {
  message: string;
  hint: string | undefined;
}

/** A locked key: "Unlock…" in its section of the menu asks for the password. */
export const TRAY_LOCKED_HINT = 'Choose "Unlock…" under the key in the menu to give its password.';

/** The words around a desktop's own bindings, line by line: where they go, then the lines (or each shortcut's command, for a settings page). */
export function explainDesktopBinding(binding: DesktopBinding): string[] {
  if (binding.lines.length > 0) return [`Add to ${binding.where} (${binding.desktop}), then reload it:`, ...binding.lines];
  return [`Add custom shortcuts in ${binding.where} (${binding.desktop}):`, ...binding.commands.map(({ accelerator, command }) => `${accelerator}: ${command}`)];
}

/** The same on one line (a log line, a doctor's fix): the lines apart by "; ", since a binding line may hold spaces. */
export function explainDesktopBindingInline(binding: DesktopBinding): string {
  const [intro, ...lines] = explainDesktopBinding(binding);
  return `${intro ?? ''} ${lines.join('; ')}`;
}

export function explainForTray(error: KeytapError): TrayExplanation {
  return { message: error.message, hint: error.detail === undefined ? error.hint : hintFor(error.detail, error.hint) };
}

function hintFor(detail: ErrorDetail, hint: string | undefined): string | undefined {
  switch (detail.kind) {
    case 'locked':
      return TRAY_LOCKED_HINT;
    case 'no-key':
      return 'Plug in your key.';
    case 'no-accounts':
      return 'Add one from a terminal with "keytap add".';
    case 'not-found':
      return 'It is no longer on the key; the menu shows what is there now.';
    case 'exists':
      return 'Choose another name.';
    case 'wrong-password':
      return 'Check the password, then choose "Unlock…" again.';
    case 'wrong-pin':
      return `Check the PIN: after ${detail.attemptsLeft} more wrong tr${detail.attemptsLeft === 1 ? 'y' : 'ies'} it is blocked.`;
    case 'pin-blocked':
      return 'Only resetting the Secrets App unblocks it, and that deletes every account on it (nitropy nk3 secrets reset).';
    case 'pin-required':
      return 'The tray cannot give the PIN yet: use "keytap code --pin …" (or KEYTAP_PIN) from a terminal.';
    case 'no-pin':
      return hint;
    case 'no-keyring':
      return 'Remembering needs the desktop keyring (Secret Service, Keychain, Credential Manager); the key can still be unlocked each time.';
    case 'cannot-remember':
      return 'Unlock it each time instead.';
    case 'no-secret-prompt':
      return "Install a pinentry (GnuPG's: pinentry-gnome3, pinentry-qt, pinentry-mac, Gpg4win), or name one in KEYTAP_PINENTRY.";
    case 'secret-prompt-failed':
      return 'Check KEYTAP_PINENTRY, or try another pinentry program.';
    case 'status':
    case 'invalid-seed-file':
      return hint;
    // The tray neither reads seed files nor programs keys; these come from "keytap program" and "keytap seeds".
    case 'not-a-seed-file':
    case 'seed-format-unknown':
    case 'pskc-secret-needed':
    case 'pskc-secret-wrong':
    case 'slow-kdf':
    case 'ledger-missing':
    case 'ledger-encrypted':
    case 'ledger-busy':
    case 'seed-files-not-written':
    case 'file-exists':
    case 'short-secret':
    case 'serial-taken':
    case 'serials-exhausted':
    case 'format-cannot-carry':
      return hint ?? 'Seed files and programming are done from a terminal, with "keytap program" and "keytap seeds".';
    case 'reader-missing':
      return 'Plug the key in again.';
    case 'ambiguous-keys':
      return hint;
    case 'no-virtual-key':
      return 'Check the path of the virtual key.';
    case 'virtual-key-not-running':
    case 'virtual-key-gone':
      return 'Start the virtual key again from a terminal with "keytap virtual start FILE".';
    case 'virtual-key-running':
    case 'bad-vpcd-address':
    case 'graph':
      return hint;
    case 'hid-needs-elevation':
      return detail.smartCard
        ? 'Start the Smart Card service (SCardSvr) so that keytap reaches the key over its smart-card interface, or start keytap as Administrator.'
        : 'Start keytap as Administrator: Windows opens this key for no other program.';
    case 'hotp-key-programmed':
    case 'hotp-key-cannot-take':
    case 'hotp-only-key':
      return 'A Feitian HOTP key is programmed and erased from a terminal, with "keytap program" and "keytap reset".';
  }
}
