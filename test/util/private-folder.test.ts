import { chmodSync, closeSync, lstatSync, mkdirSync, readFileSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Ledger } from '../../src/provision/ledger.js';
import { ConfigStore } from '../../src/app/config.js';
import { openFreshPrivateFile } from '../../src/util/private-folder.js';
import { tempDir } from '../support/cli.js';

const unix = process.platform !== 'win32';

describe.runIf(unix)('folders keytap trusts besides the runtime folder', () => {
  it('a ledger folder others may write in is refused, naming it and the fix; one they may only read is used', async () => {
    const dir = join(tempDir(), 'seeds');
    mkdirSync(dir);
    chmodSync(dir, 0o777);
    await expect(Ledger.open(dir)).rejects.toMatchObject({
      code: 'PERMISSION_DENIED',
      message: `The ledger folder ${dir} is open to other users (mode 0777); keytap does not use it.`,
      hint: `Close it to others with: chmod go-w ${dir}`,
    });
    chmodSync(dir, 0o755);
    const ledger = await Ledger.open(dir);
    await ledger.close();
  });

  it('a ledger folder that is a symbolic link is refused', async () => {
    const base = tempDir();
    mkdirSync(join(base, 'real'));
    symlinkSync(join(base, 'real'), join(base, 'seeds'));
    await expect(Ledger.open(join(base, 'seeds'))).rejects.toMatchObject({ code: 'PERMISSION_DENIED', message: expect.stringContaining('is a symbolic link') });
  });

  it('a settings folder others may write in: a settings problem that names it, and the defaults', () => {
    const dir = join(tempDir(), 'config');
    mkdirSync(dir);
    chmodSync(dir, 0o777);
    const store = ConfigStore.open({ dir });
    expect(store.problem).toMatchObject({ code: 'PERMISSION_DENIED', message: expect.stringContaining(`keytap's settings folder ${dir} is open to other users`) });
    expect(store.current.clipboardClearSeconds).toBe(20);
    store.close();
  });
});

describe.runIf(unix)('openFreshPrivateFile (logs in the runtime folder)', () => {
  it('replaces a symbolic link at the path instead of writing through it, and the new file is 0600', () => {
    const dir = tempDir();
    const target = join(dir, 'precious');
    writeFileSync(target, 'mine');
    const log = join(dir, 'vk.log');
    symlinkSync(target, log);
    const fd = openFreshPrivateFile(log);
    writeSync(fd, 'log line');
    closeSync(fd);
    expect(readFileSync(target, 'utf8')).toBe('mine');
    expect(lstatSync(log).isFile()).toBe(true);
    expect(lstatSync(log).mode & 0o777).toBe(0o600);
    expect(readFileSync(log, 'utf8')).toBe('log line');
  });
});
