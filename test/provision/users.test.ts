// The users file of a batch: an Entra user export as it is, a plain list, and every problem named
// with its line before the first key.
import { describe, expect, it } from 'vitest';
import type { LedgerEntry } from '../../src/provision/ledger.js';
import { BatchUsers, MAX_USER_PROBLEMS, parseUsersFile } from '../../src/provision/users.js';
import { DEFAULT_PARAMETERS, buildToken } from '../../src/provision/token.js';

const bytes = (text: string): Buffer => Buffer.from(text, 'utf8');

function problemOf(text: string | Buffer): string {
  try {
    parseUsersFile(typeof text === 'string' ? bytes(text) : text);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('the file was accepted');
}

describe('parseUsersFile', () => {
  it('reads an Entra admin-center user export (BOM, CRLF, quoted fields, extra columns)', () => {
    const text =
      '\uFEFFuserPrincipalName,displayName,surname,mail,givenName,id,userType,jobTitle\r\n' +
      'alice@contoso.com,"Wonder, Alice",Wonder,alice@contoso.com,Alice,0c1b-1,Member,Engineer\r\n' +
      'bob@contoso.com,Bob Builder,Builder,,Bob,0c1b-2,Member,\r\n';
    expect(parseUsersFile(bytes(text))).toEqual([
      { upn: 'alice@contoso.com', displayName: 'Wonder, Alice', manufacturer: undefined, model: undefined, line: 2 },
      { upn: 'bob@contoso.com', displayName: 'Bob Builder', manufacturer: undefined, model: undefined, line: 3 },
    ]);
  });

  it('takes "User principal name" / manufacturer / model headers in any case and order', () => {
    const users = parseUsersFile(bytes('Model,User Principal Name,MANUFACTURER\nK1,carol@contoso.com,Acme\n'));
    expect(users).toEqual([{ upn: 'carol@contoso.com', displayName: undefined, manufacturer: 'Acme', model: 'K1', line: 2 }]);
  });

  it('reads a plain list of UPNs, skipping blank lines and # comments', () => {
    const users = parseUsersFile(bytes('# first wave\nalice@contoso.com\n\n  bob@contoso.com  \n'));
    expect(users.map((u) => [u.upn, u.line])).toEqual([
      ['alice@contoso.com', 2],
      ['bob@contoso.com', 4],
    ]);
  });

  it('names a repeated user with both lines, whatever the case', () => {
    expect(problemOf('upn\nalice@contoso.com\nbob@contoso.com\nALICE@contoso.com\n')).toMatch(/line 4: ALICE@contoso\.com repeats line 2/u);
  });

  it('lists every bad line: a bad UPN, an empty one, a control character, an open quote', () => {
    const message = problemOf('upn,displayName\nalice\n,Nobody\n"bob@contoso.com,Bob\neve@contoso.com,Eve\u001b]0;x\u0007\n');
    expect(message).toMatch(/has 4 problem\(s\), so no key was programmed/u);
    expect(message).toMatch(/line 2: "alice": the UPN must have exactly one "@"/u);
    expect(message).toMatch(/line 3: the UPN is empty/u);
    expect(message).toMatch(/line 4: a quoted field is not closed/u);
    expect(message).toMatch(/line 5: .*control character/u);
    expect(message).not.toContain('\u001b');
  });

  it('refuses a CSV without a UPN column, a list line with commas, an empty file', () => {
    expect(problemOf('name,mail\nAlice,alice@contoso.com\n')).toMatch(/has no UPN column: line 1/u);
    expect(problemOf('alice@contoso.com\nbob@contoso.com,Bob\n')).toMatch(/line 2: a list of UPNs has one UPN a line/u);
    expect(problemOf('')).toMatch(/is empty/u);
    expect(problemOf('upn\n\n')).toMatch(/lists no users/u);
  });

  it('names at most MAX_USER_PROBLEMS lines and counts the rest', () => {
    const lines = Array.from({ length: MAX_USER_PROBLEMS + 5 }, (_, i) => `user${i}`);
    const message = problemOf(`upn\n${lines.join('\n')}\n`);
    expect(message).toMatch(new RegExp(`has ${MAX_USER_PROBLEMS + 5} problem\\(s\\)`, 'u'));
    expect(message).toMatch(/and 5 more\.$/u);
  });
});

describe('BatchUsers', () => {
  const users = parseUsersFile(bytes('upn\na@contoso.com\nb@contoso.com\nc@contoso.com\n'));
  const entry = (upn: string, state: LedgerEntry['state'], leftOnKey = false): LedgerEntry => ({
    id: upn,
    state,
    token: buildToken({ ...DEFAULT_PARAMETERS, upn }, new Uint8Array(20), `S-${upn}`),
    key: { id: 'k', name: 'k' },
    credentialId: upn,
    enrolledAt: '',
    updatedAt: '',
    leftOnKey,
    line: 2,
  });

  it('skips users the ledger has a token for (done, or maybe on a key), and gives them another with again', () => {
    const entries = [entry('A@contoso.com', 'done'), entry('b@contoso.com', 'failed', false), entry('c@contoso.com', 'pending')];
    const resumed = new BatchUsers(users, entries);
    expect(resumed.alreadyEnrolled.map((u) => u.upn)).toEqual(['a@contoso.com', 'c@contoso.com']);
    // c's token is only pending: named apart, so the administrator can check that key.
    expect(resumed.unverified.map((u) => u.upn)).toEqual(['c@contoso.com']);
    expect(resumed.take()?.upn).toBe('b@contoso.com');
    expect(resumed.hasNext).toBe(false);
    const again = new BatchUsers(users, entries, { again: true });
    expect(again.withoutKey.map((u) => u.upn)).toEqual(['a@contoso.com', 'b@contoso.com', 'c@contoso.com']);
  });

  it('gives a user back to the front of the line when their key was not programmed', () => {
    const batch = new BatchUsers(users, []);
    const first = batch.take()!;
    batch.giveBack(first);
    expect(batch.withoutKey.map((u) => u.upn)).toEqual(['a@contoso.com', 'b@contoso.com', 'c@contoso.com']);
  });
});
