/**
 * The watcher keeps one entry for a key whose interfaces come and go (issue 13), with a fake
 * `enumerate` listing KeyDescriptors built by keyOver from fake interfaces.
 */
import { setTimeout as realSleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { KeyDescriptor, KeyInterface } from '../../src/device/discovery/enumerate.js';
import { keyOver } from '../../src/device/discovery/interfaces.js';
import type { RunningVirtualKey } from '../../src/device/discovery/virtual-keys.js';
import { KeyWatcher } from '../../src/device/discovery/watcher.js';
import type { ApduTransport } from '../../src/device/transport/types.js';

const linux = { platform: 'linux' as const, isElevated: () => Promise.resolve(false) };

function running(pid: number, startedAt: string): RunningVirtualKey {
  return { id: 'vk', file: '/tmp/vk.json', socket: '/tmp/vk.sock', pid, dialect: 'nitrokey3', serial: '0a0b0c0d', startedAt };
}

function socketInterface(pid = 100, startedAt = '2026-12-03T10:00:00.000Z'): KeyInterface {
  return { kind: 'virtual', id: 'virtual:vk', name: 'virtual key vk.json', path: '/tmp/vk.sock', virtual: running(pid, startedAt), open: () => Promise.resolve({} as ApduTransport) };
}

function pcscInterface(reader = 'Virtual PCD 00 00'): KeyInterface {
  return { kind: 'pcsc', id: `pcsc:${reader}`, name: reader, path: reader, open: () => Promise.resolve({} as ApduTransport) };
}

const key = (...interfaces: KeyInterface[]): KeyDescriptor => keyOver(interfaces, linux, 'serial:0A0B0C0D');

let watcher: KeyWatcher | undefined;
afterEach(async () => {
  await watcher?.stop();
  watcher = undefined;
});

/** A watcher listing whatever `listing` holds at each scan; `step` changes it and waits for `expected` events in all. */
async function watch(first: KeyDescriptor[]) {
  let listing = first;
  const events: string[] = [];
  watcher = new KeyWatcher({ virtual: false, pcsc: false, hidTrigger: 'poll', pollIntervalMs: 60_000, debounceMs: 1, enumerate: () => Promise.resolve(listing) });
  watcher.on('added', (k) => events.push(`+${k.id} [${k.interfaces.map((i) => i.id).join(', ')}]`));
  watcher.on('removed', (k) => events.push(`-${k.id}`));
  watcher.on('changed', (k) => events.push(`~${k.id} [${k.interfaces.map((i) => i.id).join(', ')}]`));
  await watcher.start();
  const w = watcher;
  return {
    events,
    step: async (next: KeyDescriptor[], expected: number): Promise<void> => {
      listing = next;
      w.rescan();
      const started = Date.now();
      while (events.length < expected) {
        if (Date.now() - started > 2_000) throw new Error(`timed out waiting for event ${expected}: ${events.join('; ')}`);
        await realSleep(5);
      }
      await realSleep(30); // nothing more may follow
    },
  };
}

describe('KeyWatcher continuity across interfaces', () => {
  it('a pcsc interface joining and leaving is a change of one key; the key going is one removal', async () => {
    const { events, step } = await watch([key(socketInterface())]);
    expect(events).toEqual(['+virtual:vk [virtual:vk]']);
    await step([key(socketInterface(), pcscInterface())], 2);
    expect(events[1]).toBe('~virtual:vk [virtual:vk, pcsc:Virtual PCD 00 00]');
    expect(watcher!.keys.map((k) => k.id)).toEqual(['virtual:vk']);
    await step([key(socketInterface())], 3);
    expect(events[2]).toBe('~virtual:vk [virtual:vk]');
    await step([], 4);
    expect(events.slice(3)).toEqual(['-virtual:vk']);
    expect(watcher!.keys).toEqual([]);
  });

  it('an unchanged listing emits nothing', async () => {
    const { events, step } = await watch([key(socketInterface(), pcscInterface())]);
    await step([key(socketInterface(), pcscInterface())], 1);
    expect(events).toEqual(['+virtual:vk [virtual:vk, pcsc:Virtual PCD 00 00]']);
  });

  it('a virtual interface restarted (new pid and start time) is another key: removed, then added', async () => {
    const { events, step } = await watch([key(socketInterface(100, '2026-12-03T10:00:00.000Z'))]);
    await step([key(socketInterface(200, '2026-12-03T10:05:00.000Z'))], 3);
    expect(events.slice(1)).toEqual(['-virtual:vk', '+virtual:vk [virtual:vk]']);
  });

  it('a key first seen over pcsc keeps its pcsc id once its HID interface joins', async () => {
    const { events, step } = await watch([key(pcscInterface())]);
    expect(events).toEqual(['+pcsc:Virtual PCD 00 00 [pcsc:Virtual PCD 00 00]']);
    await step([key(socketInterface(), pcscInterface())], 2);
    expect(events[1]).toBe('~pcsc:Virtual PCD 00 00 [virtual:vk, pcsc:Virtual PCD 00 00]');
    expect(watcher!.keys.map((k) => k.id)).toEqual(['pcsc:Virtual PCD 00 00']);
    await step([], 3);
    expect(events[2]).toBe('-pcsc:Virtual PCD 00 00');
  });
});
