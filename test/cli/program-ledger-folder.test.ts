// A `keytap program` that is refused, or ends before a token is written, leaves no ledger folder
// behind (it used to leave a new folder with a header-only ledger.jsonl): what can be checked is
// checked before the folder is made, and a folder keytap made and left unused is removed again.
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runKeytap, tempDir } from '../support/cli.js';
import { Programmer, VirtualKeys } from '../provision/support.js';

let keys: VirtualKeys | undefined;
afterEach(async () => {
  await keys?.unplugAll();
  keys = undefined;
});

describe('the ledger folder of a refused or empty run', () => {
  it('a comma in the manufacturer for the Entra CSV (--yes) is refused before the folder is made', async () => {
    const dir = tempDir();
    const out = join(dir, 'new', 'seeds');
    const result = await runKeytap(['program', '--virtual', join(dir, 'key.json'), '--yes', '--upn', 'ann@contoso.example', '--formats', 'entra', '--manufacturer', 'Acme, Inc.', '--out', out]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/manufacturer contains a comma or a quote/u);
    expect(existsSync(join(dir, 'new'))).toBe(false);
  });

  it('two keys connected off a terminal: refused before the folder is made', async () => {
    keys = new VirtualKeys();
    await keys.plug('A');
    await keys.plug('B');
    const out = join(tempDir(), 'seeds');
    const result = await keys.keytap(['program', '--yes', '--out', out]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/2 keys are connected/u);
    expect(existsSync(out)).toBe(false);
  });

  it('a batch stopped before its first key removes the folder it made, and leaves one that was there', async () => {
    keys = new VirtualKeys();
    for (const existed of [false, true]) {
      const out = join(tempDir(), 'seeds');
      if (existed) mkdirSync(out, { mode: 0o700 });
      const programmer = new Programmer(['program', '--batch', '--yes', '--formats', 'pskc', '--out', out], keys.env);
      await programmer.waitFor(/Insert key 1 /u);
      expect(existsSync(join(out, 'ledger.jsonl'))).toBe(true);
      programmer.child.kill('SIGINT');
      expect((await programmer.exited).code).toBe(0);
      expect(existsSync(out)).toBe(existed);
      if (existed) expect(readdirSync(out)).toEqual([]);
    }
  });
});
