// An interactive batch (on a pseudo-terminal, no --users, no --yes) asks each key's user once the
// key is in: a bad UPN is asked again at once with the reason, Enter is refused when the Entra CSV
// needs a user, and the answer is the user of that key's token.
import { existsSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readLedger } from '../../src/provision/ledger.js';
import { keytapCommand, tempDir } from '../support/cli.js';
import { VirtualKeys } from '../provision/support.js';

let keys: VirtualKeys | undefined;
afterEach(async () => {
  await keys?.unplugAll();
  keys = undefined;
});

describe('keytap program --batch on a terminal', () => {
  it.skipIf(!existsSync('/usr/bin/script'))('asks for each key’s user after the key is inserted, and asks again at once when the answer is wrong', async () => {
    keys = new VirtualKeys();
    const out = join(tempDir(), 'seeds');
    const self = keytapCommand(['program', '--batch', '--formats', 'entra,pskc', '--out', out]);
    // Key 1: a bad UPN, then none (Entra needs one), then zoe. Key 2: zoe again (she has a token), then Ctrl+C.
    const answers = ['not-a-upn', '', 'zoe@contoso.com', 'zoe@contoso.com', '\x03'];
    let text = '';
    let asked = 0;
    let plugged = false;
    let unplugged = false;
    let interrupted = false;
    const child = spawn('script', ['-qfec', `${[self.command, ...self.args].join(' ')}; echo batch-ended=$?`, '/dev/null'], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...keys.env },
    });
    const work: Array<Promise<void>> = [];
    const exited = new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('exit', resolve);
    });
    // readline draws each question as ESC[1G ESC[0J <label>: ESC[<column>G; each is answered once.
    // eslint-disable-next-line no-control-regex -- the terminal's own escape sequences are what is matched
    const questions = /\x1b\[1G\x1b\[0J([^\x1b]*?): \x1b\[\d+G/gu;
    let answered = 0;
    child.stdout.on('data', (d: Buffer) => {
      text += d.toString();
      const labels = [...text.matchAll(questions)].map((m) => m[1]!);
      for (; answered < labels.length; answered++) {
        // Every question that is not the key's user takes its default.
        if (!labels[answered]!.startsWith('User for key')) child.stdin.write('\r');
        else {
          const answer = answers[asked++]!;
          child.stdin.write(answer === '\x03' ? answer : `${answer}\r`);
        }
      }
      if (!plugged && /Insert key 1 /u.test(text)) {
        plugged = true;
        work.push(keys!.plug('k1'));
      }
      if (!unplugged && /Remove virtual key k1\.json/u.test(text)) {
        unplugged = true;
        work.push(Promise.all(work).then(() => keys!.unplug('k1')));
      }
      if (!interrupted && /Insert key 2 /u.test(text)) {
        interrupted = true;
        work.push(Promise.all(work).then(() => keys!.plug('k2')));
      }
      if (/batch-ended=\d+/u.test(text)) child.stdin.end();
    });
    const code = await exited;
    await Promise.all(work);
    expect(code).toBe(0);
    expect(text).toMatch(/batch-ended=0/u);
    expect(asked).toBe(5);
    // The reason comes right after the bad answer, then the same question again.
    // eslint-disable-next-line no-control-regex -- strips the terminal's escape sequences
    const plain = text.replace(/\x1b\[[0-9;]*[A-Za-z]/gu, '');
    expect(plain).toMatch(/not-a-upn\r*\n\s+The UPN must have exactly one "@"[^\n]*\r*\nUser for key 1/u);
    expect(plain).toMatch(/A user is required[^\n]*\r*\nUser for key 1/u);
    expect(plain).toMatch(/Key 1: programmed serial KT\d{8} as "zoe@contoso\.com"/u);
    expect(plain).toMatch(/User for key 2[^\n]*zoe@contoso\.com\r*\n\s+zoe@contoso\.com already has a token in the ledger/u);
    // Ctrl+C at the question finishes the batch: nothing was written to key 2.
    expect([...keys.stored('k2').keys()]).toEqual([]);
    const ledger = await readLedger(out);
    expect(ledger.entries.map((e) => [e.token.upn, e.state])).toEqual([['zoe@contoso.com', 'done']]);
  });
});

describe('keytap program on a terminal, with a bad value on the command line', () => {
  it.skipIf(!existsSync('/usr/bin/script'))('refuses it before the first question, so that no answer is lost', async () => {
    const self = keytapCommand(['program', '--virtual', join(tempDir(), 'key.json'), '--secret', 'not-base32!', '--out', join(tempDir(), 'seeds')]);
    const child = spawn('script', ['-qfec', `${[self.command, ...self.args].join(' ')}; echo program-ended=$?`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (d: Buffer) => {
      text += d.toString();
      // Any question would be answered with Enter; there must be none.
      if (/: \x1b\[\d+G$/u.test(text)) child.stdin.write('\r'); // eslint-disable-line no-control-regex -- readline's cursor move ends a question
      if (/program-ended=\d+/u.test(text)) child.stdin.end();
    });
    await new Promise((resolve) => child.on('exit', resolve));
    expect(text).toMatch(/program-ended=2/u);
    expect(text).not.toMatch(/Type \(totp\/hotp\)/u);
    expect(text).toMatch(/secret/iu);
  });
});
