// An interactive batch with the default seed files (no --formats): Enter at "User for key N" is no
// user, as the issue has it ("Enter = no user, where the chosen formats allow it"). That key's
// token goes into the files that need no user (DualShield, PSKC); the Entra CSV, which the vendor
// tool writes only for tokens with a user, leaves it out with the reason, said once.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readLedger } from '../../src/provision/ledger.js';
import { seedFormat } from '../../src/seeds/index.js';
import { keytapCommand, tempDir } from '../support/cli.js';
import { HAVE_SCRIPT, startOnTerminal } from '../support/terminal.js';
import { VirtualKeys } from '../provision/support.js';

let keys: VirtualKeys | undefined;
afterEach(async () => {
  await keys?.unplugAll();
  keys = undefined;
});

describe('keytap program --batch on a terminal with the default seed files', () => {
  it.skipIf(!HAVE_SCRIPT)('takes Enter as no user: DualShield and PSKC get the token, the Entra CSV leaves it out and says why once', async () => {
    keys = new VirtualKeys();
    const out = join(tempDir(), 'seeds');
    const self = keytapCommand(['program', '--batch', '--count', '2', '--out', out]);
    // Key 1: Enter (no user); key 2: a user.
    const users = ['', 'zoe@contoso.com'];
    // readline draws each question as ESC[1G ESC[0J <label>: ESC[<column>G; each is answered once.
    // eslint-disable-next-line no-control-regex -- the terminal's own escape sequences are what is matched
    const questions = /\x1b\[1G\x1b\[0J([^\x1b]*?): \x1b\[\d+G/gu;
    let answered = 0;
    let asked = 0;
    const work: Array<Promise<void>> = [];
    const steps = new Set<string>();
    const once = (name: string, run: () => Promise<void>): void => {
      if (steps.has(name)) return;
      steps.add(name);
      work.push(Promise.all(work).then(run));
    };
    const session = startOnTerminal(self.command, self.args, {
      env: keys.env,
      onOutput: (text, terminal) => {
        const labels = [...text.matchAll(questions)].map((m) => m[1]!);
        for (; answered < labels.length; answered++) {
          terminal.type(labels[answered]!.startsWith('User for key') ? `${users[asked++]!}\r` : '\r');
        }
        if (/Insert key 1 /u.test(text)) once('plug 1', () => keys!.plug('k1'));
        if (/Remove virtual key k1\.json/u.test(text)) once('unplug 1', () => keys!.unplug('k1'));
        if (/Insert key 2 /u.test(text)) once('plug 2', () => keys!.plug('k2'));
      },
    });
    const { output, code } = await session.ended;
    await Promise.all(work);
    // eslint-disable-next-line no-control-regex -- strips the terminal's escape sequences
    const plain = output.replace(/\x1b\[[0-9;]*[A-Za-z]/gu, '');
    expect(code).toBe(0);
    expect(asked).toBe(2);
    expect(plain).toMatch(/User for key 1 \(UPN, user@domain; Enter for none\)/u);
    expect(plain).not.toMatch(/A user is required/u);
    expect(plain).toMatch(/Key 1: programmed serial KT\d{8}/u);

    const ledger = await readLedger(out);
    expect(ledger.entries.map((e) => [e.token.upn, e.state])).toEqual([[undefined, 'done'], ['zoe@contoso.com', 'done']]);
    const [noUser, zoe] = ledger.entries.map((e) => e.token.serial);
    expect(readdirSync(out).sort()).toEqual(['ledger.jsonl', 'tseeds.csv', 'tseeds.pskcxml', 'tseeds.xml']);
    expect(seedFormat('dualshield').read(readFileSync(join(out, 'tseeds.xml'))).map((t) => t.serial)).toEqual([noUser, zoe]);
    expect(seedFormat('pskc').read(readFileSync(join(out, 'tseeds.pskcxml'))).map((t) => t.serial)).toEqual([noUser, zoe]);
    expect(seedFormat('entra').read(readFileSync(join(out, 'tseeds.csv'))).map((t) => [t.serial, t.upn])).toEqual([[zoe, 'zoe@contoso.com']]);
    // The reason the Entra CSV leaves key 1's token out is said once, not again after key 2.
    expect(plain.match(new RegExp(`${noUser}[^\\n]*a UPN is required`, 'gu'))).toHaveLength(1);
    expect(existsSync(out)).toBe(true);
  });
});
