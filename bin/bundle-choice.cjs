'use strict';
// Which of the two bundles a command runs from (build/bundle-options.mjs says why there are two):
// the resident process (no command, `tray`), `doctor` and `pick` (the desktop's finders and
// clipboard) need the full one, every other command
// starts faster from the smaller one. Shared by bin/keytap.cjs and the single executable's
// launcher (src/sea/launcher.ts), so both choose alike.
// `keytap --version` and `keytap --help` name no command but start no tray either. `code --type`
// types the code itself when no tray runs, and the typing backends are desktop code; so does
// `code --focused` read the focused window (and the settings file) itself.
const ONLY_PRINTS = new Set(['--version', '-V', '--help', '-h']);

// The options that take a value and may stand before the command: `keytap --with rofi pick` is
// pick's --with (src/cli/program.ts takes it there too), and "rofi" is no command.
const VALUE_BEFORE_COMMAND = new Set(['--with']);

/** The command named, skipping options and the values of those above. */
function commandOf(args) {
  for (let i = 0; i < args.length; i++) {
    if (VALUE_BEFORE_COMMAND.has(args[i])) i++;
    else if (!args[i].startsWith('-')) return args[i];
  }
  return undefined;
}

function bundleFor(args) {
  const command = commandOf(args);
  const resident =
    command === 'tray' ||
    command === 'doctor' ||
    command === 'pick' ||
    (command === 'code' && (args.includes('--type') || args.includes('--focused'))) ||
    (command === undefined && !args.some((arg) => ONLY_PRINTS.has(arg)));
  // `add --qr` decodes images and captures the screen (src/cli/qr-accounts.ts): full bundle only.
  if (command === 'add' && args.some((arg) => arg === '--qr' || arg.startsWith('--qr='))) return 'keytap.cjs';
  // A feitian virtual key that types its codes through XTEST (src/cli/commands/virtual.ts): desktop code.
  if (command === 'virtual' && args.some((arg, i) => arg === '--type-codes=display' || (arg === '--type-codes' && args[i + 1] === 'display'))) return 'keytap.cjs';
  return resident ? 'keytap.cjs' : 'keytap-cli.cjs';
}

module.exports = { bundleFor };
