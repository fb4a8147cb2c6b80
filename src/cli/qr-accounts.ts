/**
 * `keytap add --qr [IMAGE]`: the accounts in the QR codes of an image file or of the screen, the
 * ones to add (the only one, --pick, --all, or a choice on the terminal), and a confirmation that
 * shows what will be written. The image decoding and the screen capture are loaded only here (the
 * full bundle: bin/bundle-choice.cjs), so that every other command starts without them.
 */
import type { CredentialWithSecret } from '../otp/credential.js';
import { KeytapError } from '../errors.js';
import type { IncompleteExport, QrAccount, QrScan, QrSource } from '../qr/accounts.js';
import { readInputFile } from '../util/input-file.js';
import type { CliIo } from './output.js';
import { choice, openPrompter, yesNo } from './prompt.js';

export interface QrChoice {
  /** 1-based numbers from --pick. */
  pick?: number[] | undefined;
  all?: boolean | undefined;
  yes?: boolean | undefined;
}

/** Reads the image file (PNG/JPEG), or captures the screen when there is no file, and scans it. */
export async function scanQr(image: string | undefined, io: CliIo): Promise<QrScan> {
  const { scanAndWipe } = await import('../qr/accounts.js');
  if (image !== undefined) return scanAndWipe({ format: 'file', data: await readInputFile(image, 'the image') }, 'image');
  const { createScreenCapture } = await import('../desktop/screen-capture/index.js');
  const capture = createScreenCapture();
  if (capture.name !== 'none') io.err(`Looking for QR codes on the screen (${capture.name})…`);
  return scanAndWipe(await capture.capture(), 'screen');
}

/** "ACME Co: alice@example.com (TOTP, SHA1, 6 digits, every 30 s)". */
export function describeAccount(credential: CredentialWithSecret): string {
  const name = credential.issuer ? `${credential.issuer}: ${credential.account}` : credential.account;
  const timing = credential.type === 'TOTP' ? `every ${credential.period} s` : `counter ${credential.counter ?? 0}`;
  return `${name} (${credential.type}, ${credential.algorithm}, ${credential.digits} digits, ${timing})`;
}

/** Reports what was skipped, picks the accounts to add and has them confirmed. */
export async function chooseQrAccounts(scan: QrScan, options: QrChoice, io: CliIo): Promise<CredentialWithSecret[]> {
  for (const line of scan.skipped) io.err(`Skipped: ${line}.`);
  for (const batch of scan.incomplete) io.err(describeIncomplete(batch, scan.where));
  const { accounts } = scan;
  const interactive = process.stdin.isTTY === true;
  let chosen: QrAccount[];
  if (options.all) {
    chosen = accounts;
  } else if (options.pick !== undefined) {
    const beyond = options.pick.filter((n) => n > accounts.length);
    if (beyond.length > 0) {
      throw new KeytapError('USAGE', `--pick ${beyond.join(',')}: the QR code${scan.codes === 1 ? '' : 's'} hold${scan.codes === 1 ? 's' : ''} ${accounts.length} account${accounts.length === 1 ? '' : 's'}: ${numbered(accounts)}.`);
    }
    chosen = [...new Set(options.pick)].map((n) => accounts[n - 1]!);
  } else if (accounts.length === 1) {
    chosen = accounts;
  } else if (!interactive) {
    throw new KeytapError('USAGE', `${accounts.length} accounts found: ${numbered(accounts)}.`, { hint: 'Choose with --pick N (several: --pick 1,3), or add them all with --all.' });
  } else {
    chosen = await ask(async (prompter) => {
      const all = { all: true } as const;
      const picked = await choice<QrAccount | typeof all>(prompter, 'Which account to add', [...accounts, all], (item) => ('all' in item ? `all ${accounts.length}` : `${describeAccount(item.credential)}, from the ${item.source}`), (line) => io.err(line));
      return 'all' in picked ? accounts : [picked];
    }, io);
  }
  const credentials = chosen.map((account) => account.credential);
  if (!options.yes) {
    if (!interactive) {
      throw new KeytapError('USAGE', `To add: ${numbered(chosen)}. keytap asks before writing, and there is no terminal to ask on; nothing was added.`, {
        hint: 'Add --yes to write without asking.',
      });
    }
    for (const credential of credentials) io.err(`  ${describeAccount(credential)}`);
    const question = credentials.length === 1 ? 'Add this account to the key?' : `Add these ${credentials.length} accounts to the key?`;
    const yes = await ask((prompter) => prompter.question(question, 'y/N', yesNo), io);
    if (yes !== true) throw new KeytapError('CANCELLED', 'Nothing was added.');
  }
  return credentials;
}

/** "Google Authenticator export: codes 2 and 3 of 3 were not in the image; …". */
function describeIncomplete(batch: IncompleteExport, where: QrSource): string {
  const { missing, size } = batch;
  const numbers = missing.length === 1 ? `code ${missing[0]!}` : `codes ${missing.slice(0, -1).join(', ')} and ${missing.at(-1)!}`;
  const verb = missing.length === 1 ? 'was' : 'were';
  const it = missing.length === 1 ? 'it' : 'them';
  return `Google Authenticator export: ${numbers} of ${size} ${verb} not ${where === 'screen' ? 'on the screen' : 'in the image'}; read ${it} too, for the accounts ${missing.length === 1 ? 'it holds' : 'they hold'}.`;
}

function numbered(accounts: readonly QrAccount[]): string {
  return accounts.map((account, i) => `${i + 1}) ${describeAccount(account.credential)}`).join(', ');
}

async function ask<T>(use: (prompter: ReturnType<typeof openPrompter>) => Promise<T>, io: CliIo): Promise<T> {
  const prompter = openPrompter({ input: process.stdin, output: process.stderr, err: (line) => io.err(line) });
  try {
    return await use(prompter);
  } finally {
    prompter.close();
  }
}
