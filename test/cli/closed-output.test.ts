/**
 * `keytap … | head -1`: a reader that closes the pipe ends the command quietly (its usual exit
 * code, nothing on stderr), whatever the command and whenever the pipe closes.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runKeytap, spawnKeytap, tempDir } from '../support/cli.js';

interface Ended {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  firstLine: string;
}

/**
 * Runs keytap with stdout into a pipe that is closed after the first line (`| head -1`), or
 * before anything is read (`| head -0`, `when: 'at-once'`); the same for stderr with `stream`.
 */
function runIntoClosedPipe(args: string[], options: { when: 'first-line' | 'at-once'; stream?: 'stdout' | 'stderr' }): Promise<Ended> {
  return new Promise((resolve, reject) => {
    const child = spawnKeytap(args, { stdio: ['ignore', 'pipe', 'pipe'], env: { KEYTAP_NO_INSTANCE: '1' } });
    const closing = options.stream === 'stderr' ? child.stderr! : child.stdout!;
    const other = options.stream === 'stderr' ? child.stdout! : child.stderr!;
    let stderr = '';
    let seen = '';
    let firstLine = '';
    other.on('data', (d: Buffer) => (stderr += d.toString()));
    if (options.when === 'at-once') closing.destroy();
    else {
      closing.on('data', (d: Buffer) => {
        seen += d.toString();
        const end = seen.indexOf('\n');
        if (end >= 0 && firstLine === '') {
          firstLine = seen.slice(0, end);
          closing.destroy();
        }
      });
    }
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stderr: options.stream === 'stderr' ? '' : stderr, firstLine }));
  });
}

describe('a closed stdout ends the command quietly', () => {
  let dir: string;
  let key: string;
  let seedFile: string;

  beforeAll(async () => {
    dir = tempDir();
    key = join(dir, 'key.json');
    const created = await runKeytap(['list', '--virtual', key, '--demo']);
    expect(created.code).toBe(0);
    // More than a pipe holds (64 KiB), so keytap is still writing when the reader goes.
    seedFile = join(dir, 'hseeds.csv');
    const lines: string[] = [];
    for (let i = 0; i < 4000; i++) lines.push(`KT${String(i).padStart(8, '0')},${'3132333435363738393031323334353637383930'},${i}`);
    writeFileSync(seedFile, `${lines.join('\r\n')}\r\n`);
  });

  it.each<[string, () => string[]]>([
    ['list', () => ['list', '--virtual', key]],
    ['list --json', () => ['list', '--virtual', key, '--json']],
    ['code --json', () => ['code', 'Demo', '--virtual', key, '--json']],
    ['seeds codes', () => ['seeds', 'codes', seedFile]],
    ['--help', () => ['--help']],
    ['virtual status', () => ['virtual', 'status']],
  ])('%s into a pipe closed before anything is read: exit 0, no stack trace', async (_name, args) => {
    const ended = await runIntoClosedPipe(args(), { when: 'at-once' });
    expect(ended.stderr).toBe('');
    expect(ended.signal).toBeNull();
    expect(ended.code).toBe(0);
  });

  it('seeds codes | head -1: the first line arrives, then the command ends quietly with 0', async () => {
    const ended = await runIntoClosedPipe(['seeds', 'codes', seedFile], { when: 'first-line' });
    expect(ended.firstLine).toMatch(/^KT00000000 {2}\d{6} /u);
    expect(ended.stderr).toBe('');
    expect(ended.code).toBe(0);
  });

  it('an error message into a closed stderr keeps the exit code of the error', async () => {
    const ended = await runIntoClosedPipe(['code', 'no-such-account', '--virtual', key], { when: 'at-once', stream: 'stderr' });
    expect(ended.signal).toBeNull();
    expect(ended.code).toBe(4);
  });
});
