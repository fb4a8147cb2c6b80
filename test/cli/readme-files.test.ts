/**
 * The README's own commands, run in a checkout, leave nothing there that git would offer to
 * commit: the files they create (a virtual key, seed files, a recording) hold secrets.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { keytapCommand, tempDir } from '../support/cli.js';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');

interface ReadmeCommand {
  env: Record<string, string>;
  args: string[];
}

/** Every keytap command line in the README's sh blocks, with its environment assignments. */
function readmeCommands(): ReadmeCommand[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const commands: ReadmeCommand[] = [];
  for (const block of readme.matchAll(/```sh\n([\s\S]*?)```/gu)) {
    for (const line of block[1]!.split('\n')) {
      const words = line.replace(/#.*$/u, '').trim().split(/\s+/u).filter(Boolean);
      const env: Record<string, string> = {};
      while (words[0] !== undefined && /^[A-Z_]+=/u.test(words[0])) {
        const [name, value] = words.shift()!.split('=') as [string, string];
        env[name] = value;
      }
      if (words[0] === 'node' && words[1] === 'bin/keytap.cjs') words.splice(0, 2);
      else if (words[0] === 'keytap') words.shift();
      else continue;
      commands.push({ env, args: words });
    }
  }
  return commands;
}

describe("the files the README's commands create are ignored by git", () => {
  it('running them in a checkout leaves no untracked file', async () => {
    const checkout = tempDir();
    await run('git', ['init', '-q', checkout]);
    copyFileSync(join(ROOT, '.gitignore'), join(checkout, '.gitignore'));
    const commands = readmeCommands();
    const ran: string[] = [];
    for (const { env, args } of commands) {
      // Left out: the tray (it stays), a batch (it waits for keys), and what writes nothing.
      if (args.length === 0 || args[0] === 'tray' || args.includes('--batch') || args[0] === '--version') continue;
      const withKey = args.includes('--virtual') || args.includes('--device') ? args : [...args, '--virtual', 'demo-key.json', '--demo'];
      const { command, args: argv } = keytapCommand(args[0] === 'program' ? [...withKey, '--yes'] : withKey);
      await run(command, argv, { cwd: checkout, env: { ...process.env, ...env, KEYTAP_NO_INSTANCE: '1' } }).catch(() => undefined);
      ran.push(args.join(' '));
    }
    expect(ran).toContain('code Demo --virtual demo-key.json --demo');
    expect(ran.some((c) => c.startsWith('program '))).toBe(true);
    // What they wrote is there (so the check below is not vacuous) …
    for (const file of ['demo-key.json', 'keytap-seeds/ledger.jsonl', 'session.txt']) expect(existsSync(join(checkout, file)), file).toBe(true);
    // … and git does not offer any of it.
    const { stdout } = await run('git', ['status', '--porcelain', '--untracked-files=all'], { cwd: checkout });
    expect(stdout.split('\n').filter(Boolean)).toEqual(['?? .gitignore']);
    // The batch's --out folder is not run (it waits for keys) but is ignored as well.
    const outs = commands.flatMap(({ args }) => (args.includes('--out') ? [args[args.indexOf('--out') + 1]!] : []));
    expect(outs.length).toBeGreaterThan(0);
    for (const out of outs) await run('git', ['check-ignore', '-q', join(out, 'ledger.jsonl')], { cwd: checkout });
  });
});
