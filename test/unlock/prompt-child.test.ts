/**
 * The secret prompts' child processes: the scripted pinentry (test/support/secret-peers.ts) and a
 * scripted zenity show what each was given (environment, arguments) and how it was ended.
 */
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fallbackPrompt } from '../../src/desktop/secret-prompt/fallback.js';
import { pinentryPrompt } from '../../src/desktop/secret-prompt/pinentry.js';
import type { SecretRequest } from '../../src/desktop/secret-prompt/types.js';
import { tempDir } from '../support/cli.js';
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
  return existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { argv: string[]; env: string[]; pid: number; signal?: string }) : [];
}

describe('the environment of a prompt program', () => {
  it('a pinentry gets none of KEYTAP_PASSWORD, KEYTAP_NEW_PASSWORD, KEYTAP_PIN; other variables stay', async () => {
    const pinentry = scriptedPinentry(['246810']);
    const prompt = pinentryPrompt({ program: join(pinentry.dir, 'pinentry-gnome3'), env: { ...process.env, ...SECRETS_IN_ENV } });
    expect(await prompt.ask(REQUEST)).toBe('246810');
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
    expect(pinentry.envs()[0]).not.toEqual(expect.arrayContaining(['KEYTAP_PIN']));
    expect(pinentry.envs()[0]).not.toEqual(expect.arrayContaining(['KEYTAP_PASSWORD']));
  });

  it('zenity gets none of them either', async () => {
    const zenity = scriptedZenity('typed');
    expect(await fallbackPrompt('zenity', zenity.program, { env: { ...process.env, ...SECRETS_IN_ENV } }).ask(REQUEST)).toBe('typed');
    expect(records(zenity.log).map((r) => r.env)).toEqual([['KEYTAP_CONFIG_DIR']]);
  });
});
