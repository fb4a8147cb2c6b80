// `keytap program`, `keys` and `reset` with a Feitian HOTP key — the virtual key's feitian dialect,
// served by `keytap virtual start` as a plugged-in key would be. Verification is by typed code: the
// test plays the key's keyboard interface, touching the key with `keytap virtual touch` when the
// prompt shows and typing on the pseudo-terminal what the key "typed" (to the file beside it).
// oathtool confirms the codes and the seed files.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { typedCodesFile } from '../../src/emulator/feitian-applet.js';
import { readLedger } from '../../src/provision/ledger.js';
import { TYPED_CODE_PROMPT, readTypedCodeOnTerminal } from '../../src/cli/typed-code.js';
import { typedCodeDigits } from '../../src/provision/feitian.js';
import { keytapCommand, oathtool, runKeytap, tempDir, stopServedKeys } from '../support/cli.js';
import type { TerminalSession } from '../support/terminal.js';
import { HAVE_SCRIPT, startOnTerminal } from '../support/terminal.js';

const SEED_HEX = Buffer.from('12345678901234567890').toString('hex');

let env: NodeJS.ProcessEnv = {};

afterEach(() => stopServedKeys(env));

function newEnvironment(): { dir: string; file: string } {
  const dir = tempDir('keytap-feitian-cli-');
  env = { KEYTAP_RUNTIME_DIR: join(dir, 'run') };
  return { dir, file: join(dir, 'hotp.json') };
}

async function ok(args: string[]): Promise<string> {
  const result = await runKeytap(args, { env });
  if (result.code !== 0) throw new Error(`keytap ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
  return result.stdout;
}

async function keysJson(): Promise<Array<{ serial: string | null; dialect?: string; programmed?: boolean | null }>> {
  return JSON.parse(await ok(['keys', '--json'])) as Array<{ serial: string | null; dialect?: string; programmed?: boolean | null }>;
}

/** The lines the key has typed so far. */
function typedLines(file: string): string[] {
  const path = typedCodesFile(file);
  return existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean) : [];
}

/** Waits until the key has typed its `count`-th line. */
async function nthTyped(file: string, count: number): Promise<string> {
  for (let i = 0; i < 200; i++) {
    const lines = typedLines(file);
    if (lines.length >= count) return lines[count - 1]!;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('the virtual key typed nothing');
}

/**
 * Runs keytap on a terminal; each time the typed-code prompt appears, `atPrompt` decides what the
 * keyboard types there (the touched key's code, or something else).
 */
function runWithKeyboard(args: string[], atPrompt: (promptNumber: number, session: TerminalSession) => Promise<void>) {
  const self = keytapCommand(args);
  let prompts = 0;
  return startOnTerminal(self.command, self.args, {
    env,
    onOutput: (output, session) => {
      const seen = output.split(TYPED_CODE_PROMPT).length - 1;
      while (prompts < seen) {
        prompts++;
        void atPrompt(prompts, session);
      }
    },
  }).ended;
}

/** The key is touched at the prompt and what it types goes to the terminal: what a real key does. */
function touchAndType(file: string) {
  let typed = 0;
  return async (_prompt: number, session: TerminalSession): Promise<void> => {
    await ok(['virtual', 'touch', file]);
    const code = await nthTyped(file, ++typed);
    session.type(`${code}\r`);
  };
}

/** A test's one-shot reactions to terminal output: true the first time `text` shows, never again. */
function firstTimes(): (output: string, text: string) => boolean {
  const seen = new Set<string>();
  return (output, text) => output.includes(text) && !seen.has(text) && (seen.add(text), true);
}

/** `keytap program --batch --count 1 ARGS` on a terminal: the Feitian key in `file` is plugged in when asked for and touched at the prompt, where it types its code. */
function oneKeyBatch(file: string, args: string[]): ReturnType<typeof startOnTerminal>['ended'] {
  const once = firstTimes();
  const self = keytapCommand(['program', '--batch', '--count', '1', ...args]);
  return startOnTerminal(self.command, self.args, {
    env,
    onOutput: (output, session) => {
      if (once(output, 'Insert key 1')) void ok(['virtual', 'start', file, '--dialect', 'feitian', '--touch', 'auto']);
      if (once(output, TYPED_CODE_PROMPT)) void touchAndType(file)(1, session);
    },
  }).ended;
}

describe.skipIf(!HAVE_SCRIPT)('keytap with a Feitian HOTP key', () => {
  it('keys shows it erased; program writes the HOTP token, verified by the code it types; keys shows it programmed; reset erases it', async () => {
    const { dir, file } = newEnvironment();
    const out = join(dir, 'seeds');
    await ok(['virtual', 'start', file, '--dialect', 'feitian', '--touch', 'auto']);
    expect(await keysJson()).toMatchObject([{ serial: null, dialect: 'feitian', programmed: false }]);

    const run = await runWithKeyboard(['program', '--type', 'hotp', '--secret', `hex:${SEED_HEX}`, '--yes', '--out', out], touchAndType(file));
    expect(run.output).toContain(TYPED_CODE_PROMPT);
    expect(run.code).toBe(0);
    const serial = /programmed serial (\S+) on virtual key \S+; verified by the code it typed\./u.exec(run.output)?.[1];
    expect(serial).toMatch(/^\d{8}$/u);
    expect(run.output).toContain('Touch the key while it flashes to program its HOTP token…');
    expect(run.output).not.toContain('Touch your key');

    // What the key typed at the prompt is oathtool's code at counter 0; the ledger says the key is at 1.
    expect(typedLines(file)).toEqual([await oathtool({ hexSecret: SEED_HEX, type: 'HOTP', counter: 0 })]);
    const ledger = await readLedger(out);
    expect(ledger.entries).toHaveLength(1);
    expect(ledger.entries[0]).toMatchObject({ state: 'done', counterAfter: 1, key: { dialect: 'feitian', serial } });
    // The HOTP seed files (hex CSV, DualShield XML, PSKC) carry the token at the counter after verification.
    expect(readFileSync(join(out, 'hseeds.csv'), 'utf8').trim()).toBe(`${serial},${SEED_HEX},1`);
    expect(readFileSync(join(out, 'hseeds.xml'), 'utf8')).toContain(serial);
    expect(existsSync(join(out, 'hseeds.pskcxml'))).toBe(true);

    expect(await keysJson()).toMatchObject([{ serial, dialect: 'feitian', programmed: true }]);
    expect(await ok(['keys'])).toContain(`virtual key hotp.json  serial ${serial}  Feitian HOTP key, programmed (the serial is its token's)  (`);

    // A programmed key is refused before anything is written, with the way out.
    const again = await runKeytap(['program', '--type', 'hotp', '--yes', '--out', out], { env, input: '' });
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain(`holds an HOTP token already (serial ${serial})`);
    expect(again.stderr).toContain(`keytap reset --device ${serial}`);
    expect((await readLedger(out)).entries).toHaveLength(1);

    const reset = await runKeytap(['reset', '--force', '--device', serial!], { env });
    expect(reset.code).toBe(0);
    expect(reset.stderr).toContain(`Touch the key while it flashes to erase its HOTP token ${serial}…`);
    expect(reset.stderr).toContain(`Erased the HOTP token ${serial}`);
    expect(await keysJson()).toMatchObject([{ serial: null, programmed: false }]);
  });

  it('a code that is not the token\'s fails verification and erases the key again; the ledger says failed', async () => {
    const { dir, file } = newEnvironment();
    const out = join(dir, 'seeds');
    await ok(['virtual', 'start', file, '--dialect', 'feitian', '--touch', 'auto']);
    const run = await runWithKeyboard(['program', '--type', 'hotp', '--secret', `hex:${SEED_HEX}`, '--yes', '--out', out], (_n, session) => {
      // Someone else's code: the touch never happened.
      session.type('999999\r');
      return Promise.resolve();
    });
    expect(run.code).not.toBe(0);
    expect(run.output).toContain('Verification failed: what was typed is not a code of token');
    expect(run.output).toContain('Touch the key while it flashes to erase its HOTP token again…');
    expect(run.output).not.toContain(SEED_HEX);
    expect(await keysJson()).toMatchObject([{ programmed: false }]);
    expect((await readLedger(out)).entries[0]).toMatchObject({ state: 'failed', leftOnKey: false });
  });

  it('a key nobody touches: the prompt gives up after KEYTAP_TYPED_CODE_TIMEOUT, erases the key and says what to do', async () => {
    const { dir, file } = newEnvironment();
    const out = join(dir, 'seeds');
    await ok(['virtual', 'start', file, '--dialect', 'feitian', '--touch', 'auto']);
    env = { ...env, KEYTAP_TYPED_CODE_TIMEOUT: '0.5' };
    const run = await runWithKeyboard(['program', '--type', 'hotp', '--yes', '--out', out], () => Promise.resolve());
    expect(run.code).not.toBe(0);
    expect(run.output).toContain('Verification failed: no code arrived within 0.5 s.');
    expect(run.output).toContain('The key was erased again. Program it again and touch the key within 0.5 s of the prompt');
    expect(await keysJson()).toMatchObject([{ programmed: false }]);
    expect((await readLedger(out)).entries[0]).toMatchObject({ state: 'failed', leftOnKey: false });

    // A wait that is not a number of seconds is refused before the key is programmed.
    env = { ...env, KEYTAP_TYPED_CODE_TIMEOUT: 'soon' };
    const refused = await runKeytap(['program', '--type', 'hotp', '--yes', '--out', out], { env, input: '' });
    expect(refused.stderr).toContain('KEYTAP_TYPED_CODE_TIMEOUT must be a number of seconds from more than 0 to 3600, not "soon".');
    expect(await keysJson()).toMatchObject([{ programmed: false }]);
    expect((await readLedger(out)).entries).toHaveLength(1);
  }, 20_000);

  it('program on a terminal asks only what the key can take: digits, a 20-byte seed, an 8-character serial, user, seed files', async () => {
    const { dir, file } = newEnvironment();
    const out = join(dir, 'seeds');
    await ok(['virtual', 'start', file, '--dialect', 'feitian', '--touch', 'auto']);
    // Each answer waits for its question's n-th showing (a refused answer shows it again).
    const script: Array<[string, string]> = [
      ['Digits (6/8)', '8'],
      [`Secret (Base32 or hex:…, exactly 20 bytes)`, `hex:${SEED_HEX}abcd`],
      [`Secret (Base32 or hex:…, exactly 20 bytes)`, `hex:${SEED_HEX}`],
      ['Serial number (exactly 8 characters)', 'HF1234567'],
      ['Serial number (exactly 8 characters)', 'HF123456'],
      ['Seed files', ''],
      ['User (UPN', 'alice@contoso.com'],
      ['Manufacturer', ''],
      ['Model', ''],
      ['Output folder', out],
    ];
    let step = 0;
    let typed = false;
    const self = keytapCommand(['program']);
    const run = await startOnTerminal(self.command, self.args, {
      env,
      onOutput: (output, session) => {
        while (step < script.length) {
          const [label, answer] = script[step]!;
          const shown = output.split(label).length - 1;
          const before = script.slice(0, step).filter(([l]) => l === label).length;
          if (shown <= before) break;
          step++;
          session.type(`${answer}\r`);
        }
        if (output.includes(TYPED_CODE_PROMPT) && !typed) {
          typed = true;
          void touchAndType(file)(1, session);
        }
      },
    }).ended;
    expect(run.code, run.output).toBe(0);
    expect(run.output.split('This key holds one HOTP token (SHA-1, counter from 0).')).toHaveLength(2);
    for (const notAsked of ['Type (totp/hotp)', 'Hash (', 'Time interval', 'Initial counter', 'Issuer on the key', 'Account on the key', 'Require touch']) {
      expect(run.output).not.toContain(notAsked);
    }
    expect(run.output).toContain('This key takes a seed of exactly 20 bytes (40 hex digits), not 22');
    expect(run.output).toContain('This key takes a serial of exactly 8 letters, digits or signs');
    expect(run.output).toContain('programmed serial HF123456 on');
    // hyperhotp documents an 8-digit decimal serial: another is taken, with a warning.
    expect(run.output).toContain('Warning: the serial HF123456 is not all digits');
    expect(typedLines(file)).toEqual([await oathtool({ hexSecret: SEED_HEX, type: 'HOTP', counter: 0, digits: 8 })]);
    expect((await readLedger(out)).entries[0]).toMatchObject({ state: 'done', counterAfter: 1, token: { serial: 'HF123456', digits: 8, upn: 'alice@contoso.com' } });

    // Now programmed: refused before any question, with the way to erase it.
    const again = await startOnTerminal(self.command, self.args, { env, onOutput: (output, session) => output.includes(']: ') && session.type('\x03') }).ended;
    expect(again.code).not.toBe(0);
    expect(again.output).toContain('holds an HOTP token already (serial HF123456)');
    expect(again.output).toContain('keytap reset');
    expect(again.output).not.toContain(']: ');
  });

  it('program on a terminal refuses, before the first question, what given on the command line the key cannot take', async () => {
    const { dir, file } = newEnvironment();
    await ok(['virtual', 'start', file, '--dialect', 'feitian', '--touch', 'auto']);
    const cases: Array<[string[], string, string]> = [
      [['--type', 'totp'], 'it makes HOTP codes only (it has no clock for TOTP)', 'Give --type hotp'],
      [['--algorithm', 'SHA256'], 'it computes SHA-1 codes only, not SHA256', '--algorithm SHA1'],
      [['--period', '60'], 'cannot take a time step: it makes HOTP codes only', 'Leave out --period'],
      [['--counter', '3'], 'starts at 0, not 3', 'Leave out --counter'],
    ];
    for (const [args, reason, hint] of cases) {
      const self = keytapCommand(['program', ...args, '--out', join(dir, 'seeds')]);
      const run = await startOnTerminal(self.command, self.args, { env, onOutput: (output, session) => output.includes(']: ') && session.type('\x03') }).ended;
      expect(run.code, args.join(' ')).not.toBe(0);
      expect(run.output).toContain(reason);
      expect(run.output).toContain(hint);
      expect(run.output, args.join(' ')).not.toContain(']: ');
    }
    expect(await keysJson()).toMatchObject([{ programmed: false }]);
  });

  it('refuses TOTP, SHA-256, a seed of other than 20 bytes and a serial of other than 8 characters, saying what the key needs', async () => {
    const { dir, file } = newEnvironment();
    await ok(['virtual', 'start', file, '--dialect', 'feitian', '--touch', 'auto']);
    const cases: Array<[string[], string, string]> = [
      [[], 'it makes HOTP codes only (it has no clock for TOTP)', 'Give --type hotp'],
      [['--type', 'hotp', '--algorithm', 'SHA256'], 'it computes SHA-1 codes only, not SHA256', '--algorithm SHA1'],
      [['--type', 'hotp', '--secret', `hex:${SEED_HEX}abcd`], 'a seed of exactly 20 bytes, not 22', 'exactly 20 bytes (40 hex digits)'],
      [['--type', 'hotp', '--serial', 'KT1234567'], 'a serial of exactly 8', 'Give --serial with exactly 8'],
      [['--type', 'hotp', '--counter', '5'], 'starts at 0, not 5', 'Leave out --counter'],
    ];
    for (const [args, reason, hint] of cases) {
      const result = await runKeytap(['program', ...args, '--yes', '--out', join(dir, 'seeds')], { env, input: '' });
      expect(result.code, args.join(' ')).not.toBe(0);
      expect(result.stderr).toContain(reason);
      expect(result.stderr).toContain(hint);
    }
    expect(await keysJson()).toMatchObject([{ programmed: false }]);
  });

  it('commands that need OATH accounts say what such a key is and what works with it', async () => {
    const { file } = newEnvironment();
    await ok(['virtual', 'start', file, '--dialect', 'feitian']);
    const list = await runKeytap(['list'], { env });
    expect(list.code).not.toBe(0);
    expect(list.stderr).toContain('is a Feitian HOTP key');
    expect(list.stderr).toContain('"keytap program --type hotp" programs it');
  });

  it('commands that need OATH accounts refuse --dialect feitian before creating the virtual key', async () => {
    const { dir } = newEnvironment();
    const file = join(dir, 'new.json');
    const cases = [
      ['add', 'otpauth://totp/Example:alice?secret=JBSWY3DPEHPK3PXP', '--virtual', file, '--dialect', 'feitian'],
      ['list', '--virtual', file, '--dialect', 'feitian'],
      ['code', '--virtual', file, '--dialect', 'feitian'],
    ];
    for (const args of cases) {
      const result = await runKeytap(args, { env });
      expect(result.code, args[0]).not.toBe(0);
      expect(result.stderr).toContain(`--dialect feitian makes a Feitian HOTP key, which holds one HOTP token and has no OATH accounts; ${file} was not created.`);
      expect(result.stderr).toContain('"keytap program --type hotp" programs it');
      expect(existsSync(file), args[0]).toBe(false);
    }
  });

  it('beside an OATH key, commands that need accounts use the OATH key without being told; keys lists both', async () => {
    const { dir, file } = newEnvironment();
    await ok(['virtual', 'start', file, '--dialect', 'feitian']);
    await ok(['virtual', 'start', join(dir, 'oath.json'), '--demo']);
    const list = await runKeytap(['list'], { env });
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toContain('Demo:alice@example.com');
    expect(list.stderr).not.toContain('Feitian');
    expect((await keysJson()).map((k) => k.dialect ?? 'oath').sort()).toEqual(['feitian', 'oath']);
    // Each key on its line: the OATH key with its serial, the Feitian key saying what it is and that it holds no token.
    const lines = (await ok(['keys'])).trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines.find((l) => l.includes('oath.json'))).toMatch(/virtual key oath\.json {2}serial \d+ {2}\(/u);
    expect(lines.find((l) => l.includes('hotp.json'))).toMatch(/virtual key hotp\.json {2}Feitian HOTP key, erased \(it holds no token\) {2}\(/u);
  });

  it('program --batch programs each inserted Feitian key with an 8-digit serial and verifies it by its typed code', async () => {
    const { dir, file } = newEnvironment();
    const out = join(dir, 'seeds');
    const result = await oneKeyBatch(file, ['--type', 'hotp', '--yes', '--out', out]);
    expect(result.output).toMatch(/Key 1: programmed serial \d{8} on /u);
    expect(result.output).toContain('Touch the key while it flashes to program its HOTP token…');
    expect(result.output).not.toContain('Touch your key');
    expect(result.output).toContain('Summary: 1 programmed, 0 failed, 0 skipped.');
    expect(result.code).toBe(0);
    const ledger = await readLedger(out);
    const token = ledger.entries[0]!.token;
    expect(typedLines(file)).toEqual([await oathtool({ hexSecret: Buffer.from(token.secret).toString('hex'), type: 'HOTP', counter: 0 })]);
    expect(ledger.entries[0]).toMatchObject({ state: 'done', counterAfter: 1 });
  });

  it('program --batch: Ctrl+C at the typed-code prompt erases the key and ends the batch with its summary', async () => {
    const { dir, file } = newEnvironment();
    const out = join(dir, 'seeds');
    const once = firstTimes();
    let stopped: Promise<string> | undefined;
    const self = keytapCommand(['program', '--batch', '--type', 'hotp', '--yes', '--out', out]);
    const result = await startOnTerminal(self.command, self.args, {
      env,
      onOutput: (output, session) => {
        if (once(output, 'Insert key 1')) void ok(['virtual', 'start', file, '--dialect', 'feitian', '--touch', 'auto']);
        if (once(output, TYPED_CODE_PROMPT)) session.type('\x03');
        // Unplugged, so that a batch that goes on asks for key 2 (then a Ctrl+C between keys ends it).
        if (once(output, 'Remove ')) stopped = ok(['virtual', 'stop', file]);
        if (once(output, 'Insert key 2')) session.type('\x03');
      },
    }).ended;
    expect(result.output).toContain('Key 1: failed (erased from the key again): Verification failed: Interrupted.');
    expect(result.output).not.toContain('Insert key 2');
    expect(result.output).toContain('Summary: 0 programmed, 1 failed, 0 skipped.');
    expect((await readLedger(out)).entries[0]).toMatchObject({ state: 'failed', leftOnKey: false });
    // The unplugging may still be under way: plugging in again before it ends would be undone by it.
    await stopped;
    await ok(['virtual', 'start', file]);
    expect(await keysJson()).toMatchObject([{ programmed: false }]);
  });

  it('program --batch --users gives the inserted Feitian key the next user of the file, as for OATH keys', async () => {
    const { dir, file } = newEnvironment();
    const out = join(dir, 'seeds');
    const users = join(dir, 'users.txt');
    writeFileSync(users, 'alice@contoso.com\nbob@contoso.com\n');
    const result = await oneKeyBatch(file, ['--users', users, '--type', 'hotp', '--formats', 'hexcsv,privacyidea', '--yes', '--out', out]);
    expect(result.code, result.output).toBe(0);
    const entry = (await readLedger(out)).entries[0]!;
    expect(entry).toMatchObject({ state: 'done', counterAfter: 1, token: { upn: 'alice@contoso.com' } });
    expect(result.output).toContain('Users still without a key (1): bob@contoso.com');
    expect(readFileSync(join(out, 'hseeds-privacyidea.csv'), 'utf8')).toContain(`${entry.token.serial}, ${Buffer.from(entry.token.secret).toString('hex')}, hotp, 6, 1`);
  });
});

describe('the typed-code prompt', () => {
  function prompt(lines: string[], digits = 6) {
    const input = new PassThrough();
    const output = new PassThrough();
    output.resume();
    const said: string[] = [];
    const read = readTypedCodeOnTerminal({ out: () => {}, err: (line) => said.push(line) }, input, output)({ keyName: 'key', serial: 'HF000001', digits });
    for (const line of lines) input.write(`${line}\n`);
    return { read, said };
  }

  it('asks again, up to 2 more times, for a line that is not a code of the right length; then gives up the last line', async () => {
    const again = prompt(['12', '123 456']);
    expect(await again.read).toBe('123 456');
    expect(again.said.filter((line) => line.includes('not a code of 6 digits'))).toHaveLength(1);
    const giveUp = prompt(['1', '22', '333']);
    expect(await giveUp.read).toBe('333');
    expect(giveUp.said.filter((line) => line.includes('not a code of 6 digits'))).toHaveLength(2);
  });

  it('a wrong code of the right length is returned at once, to be judged against the look-ahead', async () => {
    const { read, said } = prompt(['999999']);
    expect(await read).toBe('999999');
    expect(said.join('\n')).not.toContain('not a code');
  });

  it('reads spaces away and the French AZERTY top row as digits (the key types keycodes; the layout makes them characters)', () => {
    expect(typedCodeDigits(' 755 224 ')).toBe('755224');
    expect(typedCodeDigits('&é"\'(-è_çà')).toBe('1234567890');
    expect(TYPED_CODE_PROMPT).toContain('press Enter if it does not');
  });
});
