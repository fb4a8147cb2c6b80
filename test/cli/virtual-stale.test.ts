/**
 * Item 8 of issue 9: an announcement left behind by a crashed virtual key, whose pid now belongs
 * to a live process (here: this test), is not a running key.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { virtualKeyId } from '../../src/emulator/registry.js';
import { runKeytap, tempDir } from '../support/cli.js';

describe.runIf(process.platform !== 'win32')('a stale announcement with a live pid', () => {
  let env: NodeJS.ProcessEnv = {};
  afterEach(async () => {
    await runKeytap(['virtual', 'stop'], { env });
  });

  it('keytap keys does not list it, and keytap virtual start starts the key instead of saying "already running"', async () => {
    const dir = tempDir();
    const runtime = join(dir, 'run');
    mkdirSync(runtime, { mode: 0o700 });
    env = { KEYTAP_RUNTIME_DIR: runtime, KEYTAP_NO_INSTANCE: '1', XDG_CONFIG_HOME: join(dir, 'config') };
    const file = resolve(dir, 'key.json');
    const id = virtualKeyId(file);
    const stale = { id, file, socket: join(runtime, `${id}.sock`), pid: process.pid, dialect: 'yubikey', startedAt: new Date().toISOString() };
    writeFileSync(join(runtime, `${id}.json`), JSON.stringify(stale));

    const keys = await runKeytap(['keys', '--json'], { env });
    expect(keys.code, keys.stderr).toBe(0);
    expect(JSON.parse(keys.stdout)).toEqual([]);

    writeFileSync(join(runtime, `${id}.json`), JSON.stringify(stale));
    const start = await runKeytap(['virtual', 'start', file, '--touch', 'auto'], { env });
    expect(start.stderr).not.toContain('already running');
    expect(start.code, start.stderr).toBe(0);
    expect(start.stderr).toContain(`Virtual key ${file} is plugged in`);
    const status = JSON.parse((await runKeytap(['virtual', 'status', '--json'], { env })).stdout) as { pid: number }[];
    expect(status).toHaveLength(1);
    expect(status[0]!.pid).not.toBe(process.pid);
  });
});
