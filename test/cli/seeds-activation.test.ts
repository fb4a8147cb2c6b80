// `keytap seeds codes --activation` / `--watch`: serial, user, current code, seconds left and next
// code per token, from a seed file or a ledger, checked against oathtool at a fixed time.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hexEncode } from '../../src/otp/encoding.js';
import { readLedger } from '../../src/provision/ledger.js';
import { keytapCommand, oathtool, runKeytap, tempDir } from '../support/cli.js';
import { HAVE_SCRIPT, startOnTerminal } from '../support/terminal.js';

const RFC_HEX = '3132333435363738393031323334353637383930';

describe('keytap seeds codes --activation', () => {
  it('a seed file: one row per token with user, the current code, seconds left and the next code, as oathtool computes them', async () => {
    const dir = tempDir();
    const file = join(dir, 'tseeds.csv');
    writeFileSync(
      file,
      'upn,serial number,secret key,time interval,manufacturer,model\nalice@contoso.com,10001001,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,30,A,B\nbob@contoso.com,10001002,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,60,A,B\n',
    );
    const time = 1111111109;
    const result = await runKeytap(['seeds', 'codes', file, '--activation', '--time', String(time)]);
    expect(result.code).toBe(0);
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^SERIAL\s+USER\s+CODE\s+LEFT\s+NEXT$/u);
    const rows = lines.slice(1).map((line) => line.split(/\s{2,}/u));
    expect(rows).toEqual([
      ['10001001', 'alice@contoso.com', await oathtool({ hexSecret: RFC_HEX, type: 'TOTP', time, period: 30 }), '1 s', await oathtool({ hexSecret: RFC_HEX, type: 'TOTP', time: time + 1, period: 30 })],
      ['10001002', 'bob@contoso.com', await oathtool({ hexSecret: RFC_HEX, type: 'TOTP', time, period: 60 }), '31 s', await oathtool({ hexSecret: RFC_HEX, type: 'TOTP', time: time + 31, period: 60 })],
    ]);
    // The code changes at the end of its step: the next code really is another one.
    expect(rows[0]![2]).not.toBe(rows[0]![4]);
    // Not on a terminal, --watch prints the same view once and ends.
    const watched = await runKeytap(['seeds', 'codes', file, '--watch']);
    expect(watched.code).toBe(0);
    expect(watched.stdout.trimEnd().split('\n')).toHaveLength(3);
    expect(watched.stdout).not.toContain('\x1b');
    expect((await runKeytap(['seeds', 'codes', file, '--watch', '--time', '1'])).code).toBe(2);
    expect((await runKeytap(['seeds', 'codes'])).stderr).toMatch(/Give a seed file or --ledger DIR/u);
  });

  it('--ledger DIR: the verified tokens, HOTP at the counter the key is at, so the code shown is the one the key gives next', async () => {
    const dir = tempDir();
    const out = join(dir, 'seeds');
    const key = join(dir, 'key.json');
    expect((await runKeytap(['program', '--virtual', key, '--yes', '--type', 'hotp', '--serial', 'H1', '--upn', 'carol@contoso.com', '--formats', 'pskc', '--out', out])).code).toBe(0);
    const [entry] = (await readLedger(out)).entries;
    const hex = hexEncode(entry!.token.secret);
    const result = await runKeytap(['seeds', 'codes', '--ledger', out, '--activation']);
    expect(result.code).toBe(0);
    const [, row] = result.stdout.trimEnd().split('\n');
    expect(row!.split(/\s{2,}/u)).toEqual(['H1', 'carol@contoso.com', await oathtool({ hexSecret: hex, type: 'HOTP', counter: 1 }), '-', await oathtool({ hexSecret: hex, type: 'HOTP', counter: 2 })]);
    expect((await runKeytap(['code', '--virtual', key, 'carol'])).stdout.trim()).toBe(row!.split(/\s{2,}/u)[2]);
  });

  // On a pseudo-terminal, Ctrl+C reaches keytap as SIGINT through the terminal.
  it.skipIf(!HAVE_SCRIPT)('--watch on a terminal redraws the view until Ctrl+C', async () => {
    const dir = tempDir();
    const file = join(dir, 'tseeds.csv');
    writeFileSync(file, 'upn,serial number,secret key,time interval,manufacturer,model\nalice@contoso.com,10001001,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,30,A,B\n');
    const self = keytapCommand(['seeds', 'codes', file, '--watch']);
    let interrupted = false;
    const { output, code } = await startOnTerminal(self.command, self.args, {
      onOutput: (text, terminal) => {
        if (!interrupted && text.split('Ctrl+C to stop').length > 2) {
          interrupted = true;
          terminal.type('\x03');
        }
      },
    }).ended;
    expect(code).toBe(0);
    const frames = output.split('\x1b[H\x1b[2J').filter((frame) => frame !== '');
    expect(frames.length).toBeGreaterThanOrEqual(2);
    for (const frame of frames.slice(0, 2)) expect(frame).toMatch(/^SERIAL\s+USER\s+CODE\s+LEFT\s+NEXT\r?\n10001001\s+alice@contoso\.com\s+\d{6}\s+\d+ s\s+\d{6}\r?\n/u);
  });
});
