import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as realSleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { KeyDescriptor } from '../../src/device/discovery/enumerate.js';
import { enumerateKeys } from '../../src/device/discovery/enumerate.js';
import { KeyWatcher } from '../../src/device/discovery/watcher.js';
import { announce, withdraw } from '../../src/emulator/registry.js';
import { announceLive, closeLiveAnnouncements } from './live-announce.js';
import type { RunningVirtualKey } from '../../src/device/discovery/virtual-keys.js';
import { KeytapError } from '../../src/errors.js';
import { keyOverOne } from '../support/key-descriptor.js';

let dir: string;
let previous: string | undefined;

beforeEach(() => {
  previous = process.env.KEYTAP_RUNTIME_DIR;
  dir = mkdtempSync(join(tmpdir(), 'keytap-watch-'));
  process.env.KEYTAP_RUNTIME_DIR = dir;
});

afterEach(async () => {
  await closeLiveAnnouncements();
  if (previous === undefined) delete process.env.KEYTAP_RUNTIME_DIR;
  else process.env.KEYTAP_RUNTIME_DIR = previous;
  rmSync(dir, { recursive: true, force: true });
});

function info(id: string, extra: Partial<RunningVirtualKey> = {}): RunningVirtualKey {
  return {
    id,
    file: `/tmp/${id}.json`,
    socket: join(dir, `${id}.sock`),
    pid: process.pid,
    dialect: 'nitrokey3',
    serial: '0a0b0c0d',
    startedAt: new Date().toISOString(),
    ...extra,
  };
}

function record(watcher: KeyWatcher): string[] {
  const events: string[] = [];
  watcher.on('added', (key) => events.push(`+${key.id}`));
  watcher.on('removed', (key) => events.push(`-${key.id}`));
  return events;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `condition`; works with fake timers too, as node:timers/promises and Date are not faked. */
async function until(condition: () => boolean, timeoutMs = 2_000): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > timeoutMs) throw new Error('timed out waiting');
    await realSleep(5);
  }
}

describe('KeyWatcher, virtual keys', () => {
  it('reports keys present at start, then announced and withdrawn ones, once each', async () => {
    await announceLive(info('vk-a'));
    const watcher = new KeyWatcher({ hid: false });
    const events = record(watcher);
    await watcher.start();
    expect(events).toEqual(['+virtual:vk-a']);
    expect(watcher.keys.map((k) => k.id)).toEqual(['virtual:vk-a']);

    // Fake timers for the debounce: the key is reported one debounce (50 ms) after the runtime
    // folder changed, whatever this machine's speed. The folder's event and the listing are real I/O.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      await announceLive(info('vk-b'));
      await until(() => vi.getTimerCount() > 0); // the folder's event arrived: the debounce runs
      await vi.advanceTimersByTimeAsync(49);
      expect(events).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(1);
      await until(() => events.length === 2);
    } finally {
      vi.useRealTimers();
    }
    expect(events[1]).toBe('+virtual:vk-b');
    const key = watcher.keys.find((k) => k.id === 'virtual:vk-b')!;
    expect(key).toMatchObject({ kind: 'virtual', name: 'virtual key vk-b.json', dialect: 'nitrokey3', serial: '0a0b0c0d' });
    expect(key.path).toBe(join(dir, 'vk-b.sock'));

    await withdraw('vk-a');
    await until(() => events.length === 3);
    expect(events[2]).toBe('-virtual:vk-a');

    await sleep(150); // nothing else trickles in
    expect(events).toEqual(['+virtual:vk-a', '+virtual:vk-b', '-virtual:vk-a']);
    await watcher.stop();
  });

  it('debounces a burst of changes into one re-enumeration', async () => {
    let listings = 0;
    const watcher = new KeyWatcher({
      hid: false,
      debounceMs: 50,
      enumerate: (options) => {
        listings++;
        return enumerateKeys(options);
      },
    });
    const events = record(watcher);
    await watcher.start();
    expect(listings).toBe(1);
    await Promise.all(['vk-1', 'vk-2', 'vk-3'].map((id) => announceLive(info(id))));
    await announceLive(info('vk-1')); // rewritten: still one key
    await until(() => events.length === 3);
    await sleep(150);
    expect(events.sort()).toEqual(['+virtual:vk-1', '+virtual:vk-2', '+virtual:vk-3']);
    expect(listings).toBeLessThanOrEqual(3);
    await watcher.stop();
  });

  it('reports a key restarted within one debounce as removed and added', async () => {
    await announceLive(info('vk-r', { startedAt: '2025-01-01T00:00:00.000Z' }));
    const watcher = new KeyWatcher({ hid: false });
    const events = record(watcher);
    await watcher.start();
    await withdraw('vk-r');
    await announceLive(info('vk-r', { startedAt: '2025-01-01T00:00:05.000Z' }));
    await until(() => events.length === 3);
    expect(events).toEqual(['+virtual:vk-r', '-virtual:vk-r', '+virtual:vk-r']);
    await watcher.stop();
  });

  it('drops the announcement of a process that is gone', async () => {
    await announce(info('vk-dead', { pid: 2 ** 22 + 12345 }));
    const watcher = new KeyWatcher({ hid: false });
    const events = record(watcher);
    await watcher.start();
    expect(events).toEqual([]);
    await watcher.stop();
  });

  it('keeps the keys of a source that failed to list, and reports the failure', async () => {
    let fail = false;
    const key: KeyDescriptor = keyOverOne({ id: '/dev/hidraw9', kind: 'hid', name: 'Nitrokey 3', path: '/dev/hidraw9', open: () => Promise.reject(new Error('no')) });
    const watcher = new KeyWatcher({
      virtual: false,
      hidTrigger: 'none',
      enumerate: (options) => {
        if (fail) {
          options?.onError?.(new KeytapError('UNSUPPORTED', 'node-hid could not be loaded'), 'hid');
          return Promise.resolve([]);
        }
        return Promise.resolve([key]);
      },
    });
    const events = record(watcher);
    const errors: string[] = [];
    watcher.on('error', (error, source) => errors.push(`${source}: ${error.message}`));
    await watcher.start();
    fail = true;
    watcher.rescan();
    await until(() => errors.length === 1);
    await sleep(20);
    expect(events).toEqual(['+/dev/hidraw9']);
    expect(watcher.keys).toHaveLength(1);
    fail = false;
    watcher.rescan();
    await sleep(100);
    expect(events).toEqual(['+/dev/hidraw9']);
    await watcher.stop();
  });

  it('survives a listener that throws, and an error nobody listens to', async () => {
    const watcher = new KeyWatcher({
      virtual: false,
      hidTrigger: 'none',
      enumerate: (options) => {
        options?.onError?.(new KeytapError('UNSUPPORTED', 'x'), 'hid');
        return Promise.resolve([keyOverOne({ id: 'k', kind: 'hid', name: 'n', path: 'p', open: () => Promise.reject(new Error('no')) })]);
      },
    });
    watcher.on('added', () => {
      throw new Error('listener bug');
    });
    await watcher.start();
    expect(watcher.keys).toHaveLength(1);
    await watcher.stop();
  });

  it('polls where there are no events, no faster than asked', async () => {
    let listings = 0;
    const watcher = new KeyWatcher({
      virtual: false,
      hidTrigger: 'poll',
      pollIntervalMs: 100,
      enumerate: () => {
        listings++;
        return Promise.resolve([]);
      },
    });
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
    try {
      await watcher.start();
      expect(listings).toBe(1);
      await vi.advanceTimersByTimeAsync(99);
      expect(listings).toBe(1);
      await vi.advanceTimersByTimeAsync(251);
      await watcher.stop();
      expect(listings).toBe(4); // the first listing, then at 100, 200 and 300 ms
      await vi.advanceTimersByTimeAsync(250);
      expect(listings).toBe(4);
    } finally {
      vi.useRealTimers();
    }
  });

  it('emits nothing after stop()', async () => {
    const watcher = new KeyWatcher({ hid: false });
    const events = record(watcher);
    await watcher.start();
    await watcher.stop();
    await announceLive(info('vk-late'));
    await sleep(150);
    expect(events).toEqual([]);
  });

  it('lets the process exit after stop()', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'fixtures', 'watch-then-exit.ts')], {
      env: { ...process.env, KEYTAP_RUNTIME_DIR: dir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve(null);
      }, 15_000);
      child.on('exit', (exitCode) => {
        clearTimeout(timer);
        resolve(exitCode);
      });
    });
    expect(output.trim()).toBe('added virtual:vk-exit,removed virtual:vk-exit');
    expect(code).toBe(0);
  }, 30_000);
});
