/**
 * The secret prompts' child processes: the scripted pinentry (test/support/secret-peers.ts) and a
 * scripted zenity show what each was given (environment, arguments) and how it was ended.
 */
import { spawn } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fallbackPrompt } from '../../src/desktop/secret-prompt/fallback.js';
import { pinentryPrompt } from '../../src/desktop/secret-prompt/pinentry.js';
import type { SecretRequest } from '../../src/desktop/secret-prompt/types.js';
import { tempDir } from '../support/cli.js';
import { completeJsonLines } from '../support/json-lines.js';
import { scriptedPinentry } from '../support/secret-peers.js';

const REQUEST: SecretRequest = { title: 'keytap', description: 'Enter the PIN of <Nitrokey 3> & co.', prompt: 'PIN:' };
/** What a user may have exported for the CLI: none of it is for a dialog program. */
const SECRETS_IN_ENV = { KEYTAP_PASSWORD: 'pw-given', KEYTAP_NEW_PASSWORD: 'pw-new', KEYTAP_PIN: '123456', KEYTAP_CONFIG_DIR: '/tmp/keytap-config' };

/** A zenity that logs its arguments and the KEYTAP_* variables it got, then answers `answer` (or sleeps: 'hang'). */
function scriptedZenity(answer: string): { program: string; log: string } {
  const dir = tempDir('keytap-zenity-');
  const log = join(dir, 'log.jsonl');
  const program = join(dir, 'zenity');
  writeFileSync(
    program,
    `#!${process.execPath}
const fs = require('fs');
const env = Object.keys(process.env).filter((k) => k.startsWith('KEYTAP_'));
const save = (extra) => fs.appendFileSync(${JSON.stringify(log)}, JSON.stringify({ argv: process.argv.slice(2), env, pid: process.pid, ...extra }) + '\\n');
process.on('SIGTERM', () => { save({ signal: 'SIGTERM' }); process.exit(143); });
save({});
if (${JSON.stringify(answer)} === 'hang') setInterval(() => undefined, 1000);
else process.stdout.write(${JSON.stringify(`${answer}\n`)});
`,
  );
  chmodSync(program, 0o755);
  return { program, log };
}

function records(log: string): { argv: string[]; env: string[]; pid: number; signal?: string }[] {
  return completeJsonLines<{ argv: string[]; env: string[]; pid: number; signal?: string }>(log);
}

describe('the environment of a prompt program', () => {
  it('a pinentry gets none of KEYTAP_PASSWORD, KEYTAP_NEW_PASSWORD, KEYTAP_PIN; other variables stay', async () => {
    const pinentry = scriptedPinentry(['246810']);
    const prompt = pinentryPrompt({ program: join(pinentry.dir, 'pinentry-gnome3'), env: { ...process.env, ...SECRETS_IN_ENV } });
    expect(await prompt.ask(REQUEST)).toBe('246810');
    await eventually(() => pinentry.envs().length === 1, 'the pinentry to leave');
    expect(pinentry.envs()).toEqual([['KEYTAP_CONFIG_DIR']]);
  });

  it('without an env given, the process environment, filtered the same way', async () => {
    const pinentry = scriptedPinentry(['246810']);
    const saved = { ...process.env };
    Object.assign(process.env, SECRETS_IN_ENV);
    try {
      expect(await pinentryPrompt({ program: join(pinentry.dir, 'pinentry-gnome3') }).ask(REQUEST)).toBe('246810');
    } finally {
      for (const name of Object.keys(SECRETS_IN_ENV)) if (!(name in saved)) delete process.env[name];
    }
    await eventually(() => pinentry.envs().length === 1, 'the pinentry to leave');
    expect(pinentry.envs()[0]).not.toEqual(expect.arrayContaining(['KEYTAP_PIN']));
    expect(pinentry.envs()[0]).not.toEqual(expect.arrayContaining(['KEYTAP_PASSWORD']));
  });

  it('zenity gets none of them either', async () => {
    const zenity = scriptedZenity('typed');
    expect(await fallbackPrompt('zenity', zenity.program, { env: { ...process.env, ...SECRETS_IN_ENV } }).ask(REQUEST)).toBe('typed');
    expect(records(zenity.log).map((r) => r.env)).toEqual([['KEYTAP_CONFIG_DIR']]);
  });
});

/** Waits until `check` is true, polling; fails with `what` after `ms` (a bound on a hang, not a timing). */
async function eventually(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('a question withdrawn stops its prompt program', () => {
  const pinentryProgram = (answers: string[]): { pinentry: ReturnType<typeof scriptedPinentry>; program: string } => {
    const pinentry = scriptedPinentry(answers);
    return { pinentry, program: join(pinentry.dir, 'pinentry-gnome3') };
  };

  it.each([
    ['hang', 'aborted while its dialog is open: the pinentry gets SIGTERM at once (it reads no BYE then)'],
    ['stubborn', 'one that stays after SIGTERM is killed all the same'],
  ])('%s: %s', async (mode) => {
    const { pinentry, program } = pinentryProgram([mode]);
    const abort = new AbortController();
    const asked = pinentryPrompt({ program }).ask(REQUEST, abort.signal);
    await eventually(() => pinentry.runs()[0]?.includes('GETPIN') === true, 'GETPIN');
    abort.abort();
    await expect(asked).rejects.toMatchObject({ code: 'CANCELLED' });
    await eventually(() => pinentry.runs()[0]?.includes('<SIGTERM>') === true, 'the pinentry to get SIGTERM');
    await eventually(() => !alive(pinentry.pids()[0]!), `the ${mode} pinentry to be gone`);
  });

  it('a timeout is told to the pinentry (SETTIMEOUT, seconds); past it the pinentry is stopped and the question is TIMEOUT', async () => {
    const { pinentry, program } = pinentryProgram(['hang']);
    await expect(pinentryPrompt({ program, timeoutMs: 1_000 }).ask(REQUEST)).rejects.toMatchObject({ code: 'TIMEOUT' });
    expect(pinentry.runs()[0]).toContain('SETTIMEOUT 1');
    await eventually(() => pinentry.runs()[0]?.includes('<SIGTERM>') === true, 'the pinentry to get SIGTERM');
  });

  it('an answered question still ends with BYE, no signal', async () => {
    const { pinentry, program } = pinentryProgram(['246810']);
    expect(await pinentryPrompt({ program }).ask(REQUEST)).toBe('246810');
    await eventually(() => pinentry.runs().length === 1, 'the pinentry to leave');
    expect(pinentry.runs()[0]).toContain('BYE');
    expect(pinentry.runs()[0]).not.toContain('<SIGTERM>');
    expect(pinentry.runs()[0]).toContain('SETTIMEOUT 300');
  });

  it('keytap exiting with a question open takes the pinentry with it', async () => {
    const { pinentry, program } = pinentryProgram(['hang']);
    const script = join(tempDir('keytap-exit-'), 'ask-then-exit.ts');
    writeFileSync(
      script,
      `import { pinentryPrompt } from ${JSON.stringify(join(import.meta.dirname, '..', '..', 'src', 'desktop', 'secret-prompt', 'pinentry.ts'))};
void pinentryPrompt({ program: ${JSON.stringify(program)} }).ask({ title: 't', description: 'd', prompt: 'p' });
setInterval(() => { if (require('node:fs').readFileSync(${JSON.stringify(join(pinentry.dir, 'log.jsonl'))}, { encoding: 'utf8', flag: 'a+' }).includes('GETPIN')) process.exit(0); }, 50);
`,
    );
    const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: 'ignore', cwd: join(import.meta.dirname, '..', '..') });
    await new Promise((resolve) => child.once('exit', resolve));
    try {
      await eventually(() => pinentry.runs()[0]?.includes('<SIGTERM>') === true, 'the pinentry to get SIGTERM');
    } finally {
      const pid = pinentry.pids()[0];
      if (pid !== undefined && alive(pid)) process.kill(pid, 'SIGKILL');
    }
  });
});

describe('the fallback dialogs', () => {
  it('zenity is given --no-markup (a key name with < or & is text)', async () => {
    const zenity = scriptedZenity('typed');
    await fallbackPrompt('zenity', zenity.program).ask(REQUEST);
    expect(records(zenity.log)[0]!.argv).toContain('--no-markup');
    expect(records(zenity.log)[0]!.argv).toContain(`--text=${REQUEST.description}`);
  });

  it('an already aborted question starts no dialog', async () => {
    const zenity = scriptedZenity('typed');
    const abort = new AbortController();
    abort.abort();
    await expect(fallbackPrompt('zenity', zenity.program).ask(REQUEST, abort.signal)).rejects.toMatchObject({ code: 'CANCELLED' });
    await new Promise((r) => setTimeout(r, 300));
    expect(records(zenity.log)).toEqual([]);
  });

  it('aborted while open: zenity gets SIGTERM, and is gone', async () => {
    const zenity = scriptedZenity('hang');
    const abort = new AbortController();
    const asked = fallbackPrompt('zenity', zenity.program).ask(REQUEST, abort.signal);
    await eventually(() => records(zenity.log).length === 1, 'zenity to start');
    abort.abort();
    await expect(asked).rejects.toMatchObject({ code: 'CANCELLED' });
    await eventually(() => records(zenity.log).some((r) => r.signal === 'SIGTERM'), 'zenity to get SIGTERM');
    await eventually(() => !alive(records(zenity.log)[0]!.pid), 'zenity to be gone');
  });
});
