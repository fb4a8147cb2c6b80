// Words at the edges: every structured error detail, worded by the CLI for every command and by the
// tray, names only options that exist where it names them, and never a secret from the input.
import type { Command } from 'commander';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { explainForTray } from '../../src/app/explain.js';
import type { ErrorCode, ErrorDetail, ErrorDetailKind } from '../../src/errors.js';
import { ERROR_DETAIL_KINDS, KeytapError } from '../../src/errors.js';
import type { CliCommand } from '../../src/cli/explain.js';
import { NO_COMMAND, cliCommand, explainForCli } from '../../src/cli/explain.js';
import { describeError } from '../../src/cli/output.js';
import { createProgram } from '../../src/cli/program.js';
import { base32Decode } from '../../src/otp/encoding.js';
import { checkSecretLength } from '../../src/provision/token.js';
import type { SeedToken } from '../../src/seeds/index.js';
import { pskcFormat } from '../../src/seeds/index.js';
import { runKeytap, tempDir } from '../support/cli.js';
import { rejection } from '../support/rejection.js';

const SECRET_B32 = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
const PASSPHRASE = 'correct horse battery staple';
const WRONG_PASSPHRASE = 'tr0ub4dor&3-wrong';
const PSK_HEX = '00112233445566778899aabbccddeeff';

/** One sample of every kind (the Record makes TypeScript refuse a missing one), with the code it comes with. */
const SAMPLES: Record<ErrorDetailKind, { code: ErrorCode; detail: ErrorDetail }> = {
  locked: { code: 'AUTH_REQUIRED', detail: { kind: 'locked', keyName: 'Nitrokey 3' } },
  'wrong-password': { code: 'WRONG_PASSWORD', detail: { kind: 'wrong-password' } },
  'wrong-pin': { code: 'WRONG_PASSWORD', detail: { kind: 'wrong-pin', attemptsLeft: 3 } },
  'pin-blocked': { code: 'AUTH_REQUIRED', detail: { kind: 'pin-blocked' } },
  'pin-required': { code: 'AUTH_REQUIRED', detail: { kind: 'pin-required' } },
  'no-pin': { code: 'UNSUPPORTED', detail: { kind: 'no-pin' } },
  'no-keyring': { code: 'UNSUPPORTED', detail: { kind: 'no-keyring', reason: 'no Secret Service on the session bus' } },
  'cannot-remember': { code: 'UNSUPPORTED', detail: { kind: 'cannot-remember' } },
  'no-secret-prompt': { code: 'UNSUPPORTED', detail: { kind: 'no-secret-prompt', platform: 'linux', tried: ['pinentry'] } },
  'secret-prompt-failed': { code: 'DEVICE_ERROR', detail: { kind: 'secret-prompt-failed', program: 'pinentry', reason: 'it ended' } },
  status: { code: 'DEVICE_ERROR', detail: { kind: 'status', sw: 0x6f00, doing: 'reading a code' } },
  'no-key': { code: 'NO_KEY', detail: { kind: 'no-key' } },
  'no-accounts': { code: 'NO_MATCH', detail: { kind: 'no-accounts' } },
  exists: { code: 'EXISTS', detail: { kind: 'exists', id: 'GitHub:alice' } },
  'not-found': { code: 'NOT_FOUND', detail: { kind: 'not-found', id: 'GitHub:alice' } },
  'not-a-seed-file': { code: 'BAD_INPUT', detail: { kind: 'not-a-seed-file', found: 'ledger', dir: '/tmp/seeds' } },
  'seed-format-unknown': { code: 'BAD_INPUT', detail: { kind: 'seed-format-unknown', formats: ['entra', 'pskc'] } },
  'pskc-secret-needed': { code: 'BAD_INPUT', detail: { kind: 'pskc-secret-needed', need: 'passphrase' } },
  'pskc-secret-wrong': { code: 'BAD_INPUT', detail: { kind: 'pskc-secret-wrong', need: 'key', maybeAltered: true } },
  'slow-kdf': { code: 'BAD_INPUT', detail: { kind: 'slow-kdf', iterations: 10_000_000, cap: 2_000_000 } },
  'invalid-seed-file': { code: 'BAD_INPUT', detail: { kind: 'invalid-seed-file', line: 3 } },
  'ledger-missing': { code: 'INPUT_FILE', detail: { kind: 'ledger-missing', dir: '/tmp/seeds' } },
  'ledger-encrypted': { code: 'AUTH_REQUIRED', detail: { kind: 'ledger-encrypted', path: '/tmp/seeds/ledger.jsonl' } },
  'ledger-busy': { code: 'BUSY', detail: { kind: 'ledger-busy', pid: 4242, dir: '/tmp/seeds' } },
  'seed-files-not-written': { code: 'DEVICE_ERROR', detail: { kind: 'seed-files-not-written', ledgerDir: '/tmp/seeds' } },
  'file-exists': { code: 'EXISTS', detail: { kind: 'file-exists', path: '/tmp/seeds/tseeds.csv' } },
  'short-secret': { code: 'BAD_INPUT', detail: { kind: 'short-secret', bytes: 10, minimum: 16 } },
  'serial-taken': { code: 'EXISTS', detail: { kind: 'serial-taken', serial: 'KT00000001' } },
  'serials-exhausted': { code: 'BAD_INPUT', detail: { kind: 'serials-exhausted', prefix: 'KT' } },
  'format-cannot-carry': { code: 'BAD_INPUT', detail: { kind: 'format-cannot-carry', format: 'entra', reason: 'Entra takes only TOTP' } },
  'reader-missing': { code: 'NO_KEY', detail: { kind: 'reader-missing', reader: 'Yubico YubiKey OTP+FIDO+CCID 00 00' } },
  'ambiguous-keys': { code: 'AMBIGUOUS', detail: { kind: 'ambiguous-keys', keys: [{ name: 'Nitrokey 3', device: '1234ABCD' }] } },
  'no-virtual-key': { code: 'INPUT_FILE', detail: { kind: 'no-virtual-key', file: '/tmp/typo/key.json' } },
  'virtual-key-not-running': { code: 'NO_KEY', detail: { kind: 'virtual-key-not-running', socket: '/run/user/0/keytap/vk-1.sock' } },
  'virtual-key-gone': { code: 'KEY_REMOVED', detail: { kind: 'virtual-key-gone' } },
  'virtual-key-running': { code: 'BUSY', detail: { kind: 'virtual-key-running' } },
  'bad-vpcd-address': { code: 'USAGE', detail: { kind: 'bad-vpcd-address' } },
  'hotp-key-programmed': { code: 'EXISTS', detail: { kind: 'hotp-key-programmed', serial: 'KT000001' } },
  'hotp-key-cannot-take': { code: 'UNSUPPORTED', detail: { kind: 'hotp-key-cannot-take', parameter: 'type' } },
  'hotp-only-key': { code: 'UNSUPPORTED', detail: { kind: 'hotp-only-key', keyName: 'HyperFIDO HOTP key' } },
  'hid-needs-elevation': { code: 'PERMISSION_DENIED', detail: { kind: 'hid-needs-elevation', keyName: 'Nitrokey 3', smartCard: true } },
  graph: { code: 'PERMISSION_DENIED', detail: { kind: 'graph', problem: 'permission', status: 403, serial: 'KT00000001', permission: 'Policy.ReadWrite.AuthenticationMethod' } },
};

/** Variants whose wording differs by a field (passphrase or key). */
const VARIANTS: ErrorDetail[] = [
  ...Object.values(SAMPLES).map((s) => s.detail),
  { kind: 'pskc-secret-needed', need: 'key', keyName: 'Pre-shared-key' },
  { kind: 'pskc-secret-wrong', need: 'passphrase', maybeAltered: false },
  ...(['algorithm', 'digits', 'secret', 'serial', 'counter', 'period'] as const).map((parameter): ErrorDetail => ({ kind: 'hotp-key-cannot-take', parameter })),
  { kind: 'hid-needs-elevation', keyName: 'HyperFIDO HOTP key', smartCard: false },
];

const silent = { out: () => undefined, err: () => undefined };

/** Every command that runs an action ("seeds codes", not "seeds"), as the renderer sees it. */
function leafCommands(): CliCommand[] {
  const leaves: CliCommand[] = [];
  const walk = (command: Command): void => {
    if (command.commands.length === 0) leaves.push(cliCommand(command));
    for (const sub of command.commands) walk(sub);
  };
  for (const command of createProgram(silent).commands) walk(command);
  return leaves;
}

const COMMANDS = leafCommands();
const BY_PATH = new Map(COMMANDS.map((c) => [c.path, c]));

/**
 * Every "--option" in the text that the command it belongs to does not have. An option belongs to
 * the running command, unless the text names another command first ("keytap seeds export --ledger …"),
 * up to the end of that quote or sentence.
 */
function strayOptions(text: string, running: CliCommand | undefined): string[] {
  const stray: string[] = [];
  const words = text.split(/\s+/u);
  let named: CliCommand | undefined;
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (word.replace(/^["'`(]+/u, '') === 'keytap') {
      const two = `${words[i + 1] ?? ''} ${words[i + 2] ?? ''}`.replace(/["'`.,;:)]+$/u, '');
      const one = (words[i + 1] ?? '').replace(/["'`.,;:)]+$/u, '');
      named = BY_PATH.get(two) ?? BY_PATH.get(one) ?? named;
      continue;
    }
    for (const match of word.matchAll(/--[a-z][a-z0-9-]*/gu)) {
      const owner = named ?? running;
      if (!owner?.options.has(match[0])) stray.push(`${match[0]} (in ${owner ? `"${owner.path}"` : 'the tray'})`);
    }
    if (/["'`.;)]$/u.test(word)) named = undefined;
  }
  return stray;
}

const sample = (detail: ErrorDetail, hint?: string): KeytapError =>
  new KeytapError(SAMPLES[detail.kind].code, 'Something went wrong.', { detail, hint });

describe('the option checker', () => {
  it('catches the hints the issue found wrong, and accepts an option of a named command', () => {
    const seedsCodes = BY_PATH.get('seeds codes')!;
    expect(strayOptions('Use --pskc-passphrase.', seedsCodes)).toEqual(['--pskc-passphrase (in "seeds codes")']);
    expect(strayOptions('Name the format with --format.', BY_PATH.get('add'))).toHaveLength(1);
    expect(strayOptions('Use --password.', undefined)).toHaveLength(1);
    expect(strayOptions('"keytap seeds export --ledger DIR --format LIST" writes them; then --passphrase.', seedsCodes)).toEqual([]);
    expect(strayOptions('"keytap seeds export --ledger DIR --replace" writes them.', seedsCodes)).toEqual(['--replace (in "seeds export")']);
  });

  it('sees the real commands and their options', () => {
    expect(BY_PATH.get('seeds codes')?.options.has('--passphrase')).toBe(true);
    expect(BY_PATH.get('program')?.options.get('--from-passphrase')).toBe('KEYTAP_FROM_PASSPHRASE');
    expect(BY_PATH.get('code')?.options.has('--password')).toBe(true);
    expect(COMMANDS.length).toBeGreaterThan(12);
  });
});

describe('every error detail kind', () => {
  it('has a sample', () => {
    expect(Object.keys(SAMPLES).sort()).toEqual([...ERROR_DETAIL_KINDS].sort());
  });

  it('is worded for every command with only that command’s options', () => {
    const stray: string[] = [];
    for (const detail of VARIANTS) {
      for (const command of [...COMMANDS, NO_COMMAND]) {
        const { message, hint } = explainForCli(sample(detail, 'Neutral advice.'), command);
        for (const option of strayOptions(`${message} ${hint ?? ''}`, command)) stray.push(`${detail.kind}: ${option}`);
      }
    }
    expect(stray).toEqual([]);
  });

  it('is worded for the tray without options, except those of a terminal command it names', () => {
    for (const detail of VARIANTS) {
      const { message, hint } = explainForTray(sample(detail, 'Neutral advice.'));
      expect(strayOptions(`${message} ${hint ?? ''}`, undefined), detail.kind).toEqual([]);
      expect(message).toBe('Something went wrong.');
    }
  });

  it('names the option each command really takes for the same need', () => {
    const hint = (detail: ErrorDetail, path: string): string => explainForCli(sample(detail), BY_PATH.get(path)).hint ?? '';
    const passphrase: ErrorDetail = { kind: 'pskc-secret-needed', need: 'passphrase' };
    const key: ErrorDetail = { kind: 'pskc-secret-needed', need: 'key' };
    expect(hint(passphrase, 'seeds codes')).toBe('Give the passphrase with --passphrase or the KEYTAP_PSKC_PASSPHRASE environment variable.');
    expect(hint(passphrase, 'program')).toBe('Give the passphrase with --from-passphrase or the KEYTAP_FROM_PASSPHRASE environment variable.');
    expect(hint(key, 'seeds codes')).toContain('--key');
    expect(hint(key, 'program')).toContain('--from-key');
    expect(hint({ kind: 'pskc-secret-wrong', need: 'passphrase', maybeAltered: false }, 'program')).toBe('Check the passphrase (--from-passphrase).');
    for (const path of ['code', 'list', 'add', 'delete', 'reset', 'password', 'program']) {
      expect(hint(SAMPLES.locked.detail, path)).toBe('Give the password with --password or the KEYTAP_PASSWORD environment variable.');
    }
    expect(hint(SAMPLES.locked.detail, 'keys')).toBe('Give the password to a command that opens the key, e.g. "keytap list --password …".');
    expect(hint(SAMPLES.exists.detail, 'add')).toBe('Choose another name, or replace it with --replace.');
    expect(hint(SAMPLES.exists.detail, 'program')).toBe('Choose another --issuer/--account, or replace it with --replace.');
    expect(hint(SAMPLES['seed-format-unknown'].detail, 'seeds codes')).toBe('Name the format with --format (entra, pskc).');
    // program --from takes --format as seeds codes does (issue 9 item 15).
    expect(hint(SAMPLES['seed-format-unknown'].detail, 'program')).toBe('Name the format with --format (entra, pskc).');
    expect(hint(SAMPLES['seed-format-unknown'].detail, 'seeds export')).toMatch(/^Check the file with "keytap seeds codes FILE --format NAME"/u);
    expect(hint(SAMPLES['slow-kdf'].detail, 'seeds codes')).toMatch(/give --allow-slow-kdf\.$/u);
    expect(hint(SAMPLES['slow-kdf'].detail, 'program')).toMatch(/give --allow-slow-kdf\.$/u);
    expect(hint(SAMPLES['format-cannot-carry'].detail, 'program')).toContain('out of --formats');
    expect(hint(SAMPLES['format-cannot-carry'].detail, 'seeds export')).toContain('out of --format.');
    expect(hint(SAMPLES['ledger-encrypted'].detail, 'seeds export')).toContain('--ledger-passphrase');
    expect(hint(SAMPLES['file-exists'].detail, 'seeds export')).toBe('Give --force to replace it, or choose another --out folder.');
  });

  it('names --device and the keys when accounts on different keys match', () => {
    const detail: ErrorDetail = {
      kind: 'ambiguous-keys',
      keys: [
        { name: 'Nitrokey 3', device: '1234ABCD' },
        { name: 'virtual key b.json', device: 'virtual:b.json' },
      ],
    };
    const error = new KeytapError('AMBIGUOUS', '2 accounts match "alice": …', { hint: 'Give more of the name (the full name always does).', detail });
    expect(explainForCli(error, BY_PATH.get('code')).hint).toBe(
      'Give more of the name (the full name always does). Or choose the key with --device: 1234ABCD (Nitrokey 3), virtual:b.json (virtual key b.json).',
    );
    expect(explainForCli(error, NO_COMMAND).hint).toContain('"keytap code --device ID"');
  });

  it('has tray words of its own where the tray differs from a terminal', () => {
    expect(explainForTray(sample(SAMPLES.locked.detail)).hint).toContain('"Unlock…"');
    expect(explainForTray(sample(SAMPLES['no-key'].detail)).hint).toBe('Plug in your key.');
    // Without a detail, both edges show the error's own words.
    const plain = new KeytapError('TIMEOUT', 'The key did not answer.', { hint: 'Plug it in again.' });
    expect(explainForTray(plain)).toEqual({ message: 'The key did not answer.', hint: 'Plug it in again.' });
    expect(describeError(plain, BY_PATH.get('code'))).toEqual(['keytap: The key did not answer.', '  Plug it in again.']);
  });
});

/** A PSKC file with one token, encrypted with PASSPHRASE or with the key PSK_HEX. */
function encryptedPskc(protection: 'passphrase' | 'psk'): Buffer {
  const token: SeedToken = { serial: 'E1', secret: base32Decode(SECRET_B32), type: 'TOTP', algorithm: 'SHA1', digits: 6, period: 30, counter: 0 };
  return pskcFormat.write([token], {
    pskc: protection === 'passphrase' ? { kind: 'passphrase', passphrase: PASSPHRASE, iterations: 1000 } : { kind: 'psk', key: Buffer.from(PSK_HEX, 'hex') },
  });
}

describe('errors from real input carry no secret', () => {
  const SECRETS = [SECRET_B32, PASSPHRASE, WRONG_PASSPHRASE, PSK_HEX, 'ffeeddccbbaa99887766554433221100'];
  const cases: [string, () => unknown, ErrorDetailKind][] = [
    ['no passphrase', () => pskcFormat.read(encryptedPskc('passphrase')), 'pskc-secret-needed'],
    ['a wrong passphrase', () => pskcFormat.read(encryptedPskc('passphrase'), { passphrase: WRONG_PASSPHRASE }), 'pskc-secret-wrong'],
    ['no key', () => pskcFormat.read(encryptedPskc('psk')), 'pskc-secret-needed'],
    ['a passphrase for a key', () => pskcFormat.read(encryptedPskc('psk'), { passphrase: WRONG_PASSPHRASE }), 'pskc-secret-needed'],
    ['a wrong key', () => pskcFormat.read(encryptedPskc('psk'), { key: Buffer.from('ffeeddccbbaa99887766554433221100', 'hex') }), 'pskc-secret-wrong'],
    ['a short secret', () => checkSecretLength(base32Decode('JBSWY3DPEHPK3PXP')), 'short-secret'],
  ];
  for (const [what, run, kind] of cases) {
    it(`${what}: ${kind}, and no secret in its words or its detail`, async () => {
      const error = await rejection(Promise.resolve().then(run));
      expect(error.detail?.kind).toBe(kind);
      const words = [error.message, JSON.stringify(error.detail), ...COMMANDS.map((c) => explainForCli(error, c).hint ?? ''), explainForTray(error).hint ?? ''].join('\n');
      for (const secret of SECRETS) expect(words).not.toContain(secret);
    });
  }
});

describe('the CLI words an encrypted seed file for the command that reads it', () => {
  it('seeds codes ENCRYPTED.pskcxml says --passphrase; program --from ENCRYPTED.pskcxml says --from-passphrase', async () => {
    const dir = tempDir();
    const file = join(dir, 'ENCRYPTED.pskcxml');
    writeFileSync(file, encryptedPskc('passphrase'));
    const env = { KEYTAP_PSKC_PASSPHRASE: undefined, KEYTAP_FROM_PASSPHRASE: undefined, KEYTAP_PSKC_KEY: undefined, KEYTAP_FROM_KEY: undefined };
    const codes = await runKeytap(['seeds', 'codes', file], { env });
    expect(codes.code).toBe(2);
    expect(codes.stderr).toContain('protected by a passphrase');
    expect(codes.stderr).toContain('--passphrase');
    expect(codes.stderr).not.toContain('--pskc-passphrase');
    const program = await runKeytap(['program', '--virtual', join(dir, 'k.json'), '--yes', '--from', file, '--out', join(dir, 'out')], { env });
    expect(program.code).toBe(2);
    expect(program.stderr).toContain('protected by a passphrase');
    expect(program.stderr).toContain('--from-passphrase');
    expect(program.stderr).not.toMatch(/--pskc-passphrase|[^-]--passphrase/u);
    expect(`${codes.stderr}${program.stderr}`).not.toContain(SECRET_B32);
  });
});
