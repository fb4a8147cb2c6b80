/**
 * "No key": the hint's command for trying keytap without one works as given (it is run here, in
 * a fresh folder, exactly as printed).
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { keytapCommand, runKeytap, tempDir } from '../support/cli.js';

const run = promisify(execFile);

describe('the "no key" hint', () => {
  it.each([['code'], ['list']])('keytap %s with no key names a command that prints a code', async (command) => {
    // A runtime folder of its own: no tray and no served virtual key of another test is found.
    const env = { KEYTAP_NO_INSTANCE: '1', KEYTAP_RUNTIME_DIR: join(tempDir(), 'run') };
    const result = await runKeytap([command], { env });
    expect(result.code).toBe(3);
    const suggested = /To try keytap without one: keytap (.+)$/mu.exec(result.stderr)?.[1];
    expect(suggested, result.stderr).toBeDefined();
    const { command: program, args } = keytapCommand(suggested!.trim().split(/\s+/u));
    const tried = await run(program, args, { cwd: tempDir(), env: { ...process.env, ...env } });
    expect(tried.stdout).toMatch(/^\d{6}\n$/u);
  });
});
