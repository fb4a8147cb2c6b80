/**
 * `keytap delete QUERY`: the full name deletes; a part of a name asks first on a terminal (as
 * `ykman oath accounts delete` does), and without a terminal needs the full name or --force.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { keytapCommand, runKeytap, tempDir } from '../support/cli.js';

const ENV = { KEYTAP_NO_INSTANCE: '1' };
const DEMO = 'Demo:alice@example.com';

async function accounts(key: string): Promise<string[]> {
  const listed = await runKeytap(['list', '--virtual', key, '--json'], { env: ENV });
  expect(listed.code).toBe(0);
  return (JSON.parse(listed.stdout) as { id: string }[]).map((c) => c.id);
}

const quote = (word: string): string => `'${word.replace(/'/gu, `'\\''`)}'`;

/**
 * Runs keytap on a terminal (util-linux `script` gives it a pty) and types `answer` once the
 * question is on the screen. Resolves with the exit code and everything the terminal showed.
 */
function onTerminal(args: string[], answer: string | undefined): Promise<{ code: number | null; screen: string }> {
  const { command, args: argv } = keytapCommand(args);
  const line = [command, ...argv].map(quote).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qfec', line, '/dev/null'], { env: { ...process.env, ...ENV }, stdio: ['pipe', 'pipe', 'pipe'] });
    let screen = '';
    let answered = false;
    child.stdout.on('data', (d: Buffer) => {
      screen += d.toString();
      if (!answered && answer !== undefined && screen.includes('[y/N]')) {
        answered = true;
        child.stdin.write(`${answer}\r`);
      }
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, screen }));
  });
}

describe('keytap delete', () => {
  let key: string;
  beforeEach(async () => {
    key = join(tempDir(), 'key.json');
    expect((await runKeytap(['list', '--virtual', key, '--demo'], { env: ENV })).code).toBe(0);
  });

  it('without a terminal, a part of a name deletes nothing: exit 2, the full name and --force named', async () => {
    const result = await runKeytap(['delete', 'Demo', '--virtual', key], { env: ENV });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`"Demo" is only a part of the name ${DEMO}`);
    expect(result.stderr).toMatch(/--force/u);
    expect(await accounts(key)).toContain(DEMO);
  });

  it('without a terminal, the full name deletes, and so does a part with --force', async () => {
    const exact = await runKeytap(['delete', DEMO, '--virtual', key], { env: ENV });
    expect(exact.code).toBe(0);
    expect(await accounts(key)).not.toContain(DEMO);
    const forced = await runKeytap(['delete', 'VPN', '--force', '--virtual', key], { env: ENV });
    expect(forced.code).toBe(0);
    expect(forced.stderr).toContain('Deleted VPN:alice');
    expect(await accounts(key)).not.toContain('VPN:alice');
  });

  it('on a terminal, a part of a name asks first: "n" keeps the account (exit 1), "y" deletes it', async () => {
    const kept = await onTerminal(['delete', 'Demo', '--virtual', key], 'n');
    expect(kept.screen).toContain(`Delete ${DEMO} from virtual key ${key}? [y/N]`);
    expect(kept.screen).toContain('Nothing was deleted.');
    expect(kept.code).toBe(1);
    expect(await accounts(key)).toContain(DEMO);

    const deleted = await onTerminal(['delete', 'Demo', '--virtual', key], 'y');
    expect(deleted.code).toBe(0);
    expect(deleted.screen).toContain(`Deleted ${DEMO}`);
    expect(await accounts(key)).not.toContain(DEMO);
  });

  it('on a terminal, --force and the full name do not ask', async () => {
    const forced = await onTerminal(['delete', 'VPN', '--force', '--virtual', key], undefined);
    expect(forced.code).toBe(0);
    expect(forced.screen).not.toContain('[y/N]');
    const exact = await onTerminal(['delete', DEMO, '--virtual', key], undefined);
    expect(exact.code).toBe(0);
    expect(exact.screen).not.toContain('[y/N]');
    expect(await accounts(key)).toEqual(expect.not.arrayContaining([DEMO, 'VPN:alice']));
  });
});
