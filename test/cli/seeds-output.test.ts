// What `keytap seeds` prints from a seed file reaches the terminal escaped: a serial, a file name
// or a message holding ESC ] 0; … BEL (which retitles the terminal) or a bidi override is shown as
// \u001b / \u202e, and a control character in a text field is a problem `seeds check` reports.
// Seed files above the size limit are refused before they are read.
import { closeSync, openSync, ftruncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { KEYTAP, runKeytap, runProgram, tempDir } from '../support/cli.js';

const HEADER = 'upn,serial number,secret key,time interval,manufacturer,model';
const SECRET = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
const OSC_TITLE = '\u001b]0;pwned\u0007';
// eslint-disable-next-line no-control-regex -- what must not reach the terminal
const RAW = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/u;

describe('keytap seeds: output from a file is escaped', () => {
  it('check: a serial with a terminal escape is an error on its line, printed escaped; exit 4', async () => {
    const dir = tempDir();
    const file = join(dir, 'tseeds.csv');
    writeFileSync(file, `${HEADER}\nalice@contoso.com,1001${OSC_TITLE},${SECRET},30,A,B\n`);
    const result = await runKeytap(['seeds', 'check', file]);
    expect(result.code).toBe(4);
    expect(result.stdout).toMatch(/^tseeds\.csv:2: error: the serial number contains a control character \(U\+001B\)/mu);
    expect(result.stdout).not.toMatch(/OK/u);
    expect(`${result.stdout}${result.stderr}`).not.toMatch(RAW);
  });

  it('codes: a bidi override in a serial (which readers take) is printed as \\u202e', async () => {
    const dir = tempDir();
    const file = join(dir, 'tseeds.csv');
    writeFileSync(file, `${HEADER}\nalice@contoso.com,1001\u202e9999,${SECRET},30,A,B\n`);
    const result = await runKeytap(['seeds', 'codes', file, '--time', '59']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('1001\\u202e9999');
    expect(result.stdout).toMatch(/ 287082 /u);
    expect(`${result.stdout}${result.stderr}`).not.toMatch(RAW);
  });

  it('codes: a control character in a file name or the file is never printed raw; exit 2', async () => {
    const dir = tempDir();
    const file = join(dir, `seeds${OSC_TITLE}.csv`);
    writeFileSync(file, `${HEADER}\nalice@contoso.com${OSC_TITLE},1001,${SECRET},30,A,B\n`);
    const result = await runKeytap(['seeds', 'codes', file]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/line 2: the upn contains a control character \(U\+001B\)/u);
    expect(`${result.stdout}${result.stderr}`).not.toMatch(RAW);
    const check = await runKeytap(['seeds', 'check', file]);
    expect(check.stdout).toContain('seeds\\u001b]0;pwned\\u0007.csv:2: error:');
    expect(`${check.stdout}${check.stderr}`).not.toMatch(RAW);
  });
});

describe('keytap seeds: a 32 MB line of commas with a small heap', () => {
  it.each([['hexcsv'], ['entra']])('codes --format %s: the problem on line 1, exit 2 (not an abort)', async (format) => {
    const dir = tempDir();
    const file = join(dir, 'commas.csv');
    writeFileSync(file, Buffer.alloc(32 * 2 ** 20 - 64, ','));
    const result = await runProgram(process.execPath, ['--max-old-space-size=96', KEYTAP, 'seeds', 'codes', '--format', format, file], { timeoutMs: 60_000 });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/line 1: the line has 33554369 fields/u);
  });
});

describe('keytap seeds: the size limit', () => {
  it.each([['check'], ['codes']])('%s refuses a 1 GB file from its size, without reading it; exit 2', async (command) => {
    const dir = tempDir();
    const file = join(dir, 'huge.csv');
    const fd = openSync(file, 'w');
    ftruncateSync(fd, 2 ** 30);
    closeSync(fd);
    const started = Date.now();
    const result = await runKeytap(['seeds', command, file]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/huge\.csv is 1024\.0 MB; keytap reads seed files of up to 32 MB/u);
    // Reading a gigabyte would take seconds and a gigabyte of memory; the size alone decides.
    expect(Date.now() - started).toBeLessThan(20_000);
  });
});
