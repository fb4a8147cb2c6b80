// runBatch against a scripted key source: keys present at the start are left alone, a key that
// cannot be opened is skipped and the batch goes on, stop ends it while waiting for a key.
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { OpenKey } from '../../src/device/open.js';
import { openOathSession } from '../../src/device/open.js';
import { virtualFileKey } from '../../src/emulator/virtual-file.js';
import type { KeyDescriptor } from '../../src/device/discovery/enumerate.js';
import type { KeyWatcherEvents } from '../../src/device/discovery/watcher.js';
import { KeytapError } from '../../src/errors.js';
import type { BatchEvent } from '../../src/provision/batch.js';
import { runBatch } from '../../src/provision/batch.js';
import { ProvisionRun } from '../../src/provision/run.js';
import { DEFAULT_PARAMETERS, buildToken, generateSecret } from '../../src/provision/token.js';
import { seedFormat } from '../../src/seeds/index.js';
import { tempDir } from '../support/cli.js';
import { keyOverOne } from '../support/key-descriptor.js';

class ScriptedSource extends EventEmitter<KeyWatcherEvents> {
  keys: KeyDescriptor[] = [];
  stopped = false;
  constructor(private readonly initial: KeyDescriptor[]) {
    super();
  }
  start(): Promise<void> {
    this.keys = [...this.initial];
    return Promise.resolve();
  }
  stop(): Promise<void> {
    this.stopped = true;
    return Promise.resolve();
  }
  plug(key: KeyDescriptor): void {
    this.keys.push(key);
    this.emit('added', key);
  }
  unplug(key: KeyDescriptor): void {
    this.keys = this.keys.filter((k) => k !== key);
    this.emit('removed', key);
  }
}

function descriptor(id: string): KeyDescriptor {
  return keyOverOne({ id, kind: 'virtual', name: `key ${id}`, path: id, open: () => Promise.reject(new Error('not used')) });
}

describe('runBatch', () => {
  it('ignores keys already there, skips a key it cannot open, programs the next, and stops while waiting', async () => {
    const dir = tempDir();
    const run = await ProvisionRun.start({ outDir: join(dir, 'out'), formats: [seedFormat('pskc')] });
    const present = descriptor('present');
    const broken = descriptor('broken');
    const good = descriptor('good');
    const source = new ScriptedSource([present]);
    const stop = new AbortController();
    const events: BatchEvent['kind'][] = [];
    const opened: OpenKey[] = [];
    const summary = await runBatch({
      source,
      run,
      open: async (d) => {
        if (d === broken) throw new KeytapError('PERMISSION_DENIED', 'no access');
        const key = await openOathSession(virtualFileKey({ file: join(dir, `${d.id}.json`) }));
        opened.push(key);
        return key;
      },
      nextToken: () => buildToken(DEFAULT_PARAMETERS, generateSecret('SHA1'), run.serials.next()),
      stop: stop.signal,
      abort: new AbortController().signal,
      report: (event) => {
        events.push(event.kind);
        // The "human" reacts to what the batch says.
        if (event.kind === 'insert' && event.number === 1) setImmediate(() => source.plug(broken));
        if (event.kind === 'remove' && event.key === broken) setImmediate(() => source.unplug(broken));
        if (event.kind === 'insert' && event.number === 2) setImmediate(() => source.plug(good));
        if (event.kind === 'remove' && event.key === good) setImmediate(() => source.unplug(good));
        if (event.kind === 'insert' && event.number === 3) setImmediate(() => stop.abort());
      },
    });
    await run.close();
    expect(summary).toEqual({ programmed: 1, failed: 0, skipped: 1 });
    expect(events).toEqual(['ignored-present', 'insert', 'key-added', 'error', 'remove', 'insert', 'key-added', 'result', 'remove', 'insert']);
    expect(source.stopped).toBe(true);
    expect(source.listenerCount('added')).toBe(0);
    // The key present at the start got nothing; the good one got its token.
    expect(opened).toHaveLength(1);
    const again = await openOathSession(virtualFileKey({ file: join(dir, 'good.json') }));
    expect((await again.session.list()).map((c) => c.account)).toEqual([run.ledger.entries[0]!.token.serial]);
    await again.close();
  });

  it('calls afterProgrammed with the key still open, reports its KeytapError and goes on; no token ends the batch', async () => {
    const dir = tempDir();
    const run = await ProvisionRun.start({ outDir: join(dir, 'out'), formats: [seedFormat('pskc')] });
    const first = descriptor('first');
    const second = descriptor('second');
    const third = descriptor('third');
    const source = new ScriptedSource([]);
    const events: BatchEvent[] = [];
    const codesReadInHook: string[] = [];
    const summary = await runBatch({
      source,
      run,
      open: (d) => openOathSession(virtualFileKey({ file: join(dir, `${d.id}.json`) })),
      // Two tokens, then none: the third key is opened but gets nothing.
      nextToken: ({ number }) => (number <= 2 ? buildToken(DEFAULT_PARAMETERS, generateSecret('SHA1'), run.serials.next()) : undefined),
      afterProgrammed: async ({ key, token, number }) => {
        // The session is still usable here: the hook can read a code from the key.
        const credential = (await key.session.list()).find((c) => c.account === token.serial)!;
        codesReadInHook.push((await key.session.calculate(credential, { time: Date.now() / 1000 })).code);
        if (number === 1) throw new KeytapError('TIMEOUT', 'the identity provider is unreachable');
      },
      stop: new AbortController().signal,
      abort: new AbortController().signal,
      report: (event) => {
        events.push(event);
        if (event.kind === 'insert') setImmediate(() => source.plug([first, second, third][event.number - 1]!));
        if (event.kind === 'remove') setImmediate(() => source.unplug(event.key));
      },
    });
    await run.close();
    expect(summary).toEqual({ programmed: 2, failed: 0, skipped: 0 });
    expect(codesReadInHook).toHaveLength(2);
    for (const code of codesReadInHook) expect(code).toMatch(/^\d{6}$/u);
    const hookError = events.find((e) => e.kind === 'after-programmed-error');
    expect(hookError).toMatchObject({ number: 1, error: { message: 'the identity provider is unreachable' } });
    expect(events.map((e) => e.kind)).toEqual(['insert', 'key-added', 'result', 'after-programmed-error', 'remove', 'insert', 'key-added', 'result', 'remove', 'insert', 'key-added']);
    const third_ = await openOathSession(virtualFileKey({ file: join(dir, 'third.json') }));
    expect(await third_.session.list()).toEqual([]);
    await third_.close();
  });
});
