import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { recentStore } from '../../src/app/recent-store.js';
import { tempDir } from '../support/cli.js';

describe('the recent accounts file', () => {
  it('saves atomically with mode 0600 (creating the folder) and loads what it saved', async () => {
    const folder = join(tempDir(), 'data');
    const store = recentStore(folder);
    expect(await store.load()).toEqual([]);
    await store.save([{ keyId: '1234ABCD', credentialId: 'GitHub:alice' }]);
    expect(statSync(join(folder, 'recent.json')).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(join(folder, 'recent.json'), 'utf8'))).toEqual({ recent: [{ keyId: '1234ABCD', credentialId: 'GitHub:alice' }] });
    expect(await recentStore(folder).load()).toEqual([{ keyId: '1234ABCD', credentialId: 'GitHub:alice' }]);
  });

  it('a broken file is an empty list and a problem named, not a failed start; stray entries are dropped', async () => {
    const folder = tempDir();
    const problems: string[] = [];
    writeFileSync(join(folder, 'recent.json'), '{"recent": [');
    expect(await recentStore(folder, (m) => problems.push(m)).load()).toEqual([]);
    expect(problems).toEqual([expect.stringMatching(/recent\.json is not a list of recent accounts .*; "Recent" starts empty$/u)]);
    writeFileSync(join(folder, 'recent.json'), JSON.stringify({ recent: [{ keyId: 'a', credentialId: 'b', extra: 1 }, { keyId: 3 }, 'x'] }));
    expect(await recentStore(folder).load()).toEqual([{ keyId: 'a', credentialId: 'b' }]);
    mkdirSync(join(folder, 'sub', 'recent.json'), { recursive: true });
    problems.length = 0;
    expect(await recentStore(join(folder, 'sub'), (m) => problems.push(m)).load()).toEqual([]);
    expect(problems[0]).toContain('cannot read');
  });

  it('an account written twice is loaded once (the first, latest, entry), and the count is taken after that', async () => {
    const folder = tempDir();
    const twice = [
      { keyId: 'S1', credentialId: 'A:a' },
      { keyId: 'S1', credentialId: 'A:a' },
      { keyId: 'S1', credentialId: 'B:b' },
      { keyId: 'S1', credentialId: 'A:a' },
      { keyId: 'S1', credentialId: 'C:c' },
      { keyId: 'S1', credentialId: 'D:d' },
      { keyId: 'S1', credentialId: 'E:e' },
    ];
    writeFileSync(join(folder, 'recent.json'), JSON.stringify({ recent: twice }));
    expect((await recentStore(folder).load()).map((r) => r.credentialId)).toEqual(['A:a', 'B:b', 'C:c', 'D:d', 'E:e']);
  });

  it('a failed save does not fail the saves after it', async () => {
    const folder = join(tempDir(), 'data');
    writeFileSync(folder, 'not a folder');
    const store = recentStore(folder);
    await expect(store.save([{ keyId: 'A', credentialId: 'first' }])).rejects.toThrow();
    rmSync(folder);
    await store.save([{ keyId: 'A', credentialId: 'second' }]);
    expect(JSON.parse(readFileSync(join(folder, 'recent.json'), 'utf8'))).toEqual({ recent: [{ keyId: 'A', credentialId: 'second' }] });
  });
});
