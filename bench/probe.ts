/**
 * Figures for `keytap doctor --probe` (issue 12 part 2): how long the probe of one HID link takes
 * against each virtual-key dialect in this process (INIT, U2F VERSION, getInfo, OATH over 0x70,
 * the Feitian SELECT and CHECK), and against the devices that answer nothing: one silent from the
 * start (one INIT deadline) and one that answers INIT only (a deadline per question). Those two are
 * what bound a probe run on a machine with a wedged device; the question deadline is 1.5 s.
 *
 * And discovery's identification of unknown FIDO devices (review item 2): one listing with one
 * Nitrokey-vendor device answering OATH over 0x70 and three that answer INIT only, asked at once
 * within one budget, against the same listing once the answers are kept.
 *
 * Run: npm run bench -- probe
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { forgetUnknownFidoDevices, IDENTIFY_BUDGET_MS, unknownFidoKeys } from '../src/device/discovery/enumerate.js';
import type { HidDeviceInfo } from '../src/device/discovery/hid-devices.js';
import { probeHidLink } from '../src/device/probe/hid.js';
import { PROBE_QUESTION_TIMEOUT_MS } from '../src/device/probe/types.js';
import type { KeyDialect } from '../src/device/key-dialect.js';
import { VirtualKey } from '../src/emulator/virtual-key.js';
import { FakeLink, scriptedKey } from '../test/transport/fake-link.js';
import { ms, summarize } from './stats.js';

const ROUNDS = 50;

export async function benchProbe(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'keytap-bench-'));
  try {
    for (const dialect of ['yubikey', 'nitrokey3', 'feitian'] as KeyDialect[]) {
      const key = await VirtualKey.open({ file: join(dir, `${dialect}.json`), dialect, touch: { mode: 'auto', delayMs: 0 } });
      const samples: number[] = [];
      for (let i = 0; i < ROUNDS; i++) {
        const started = performance.now();
        await probeHidLink(key.openLink());
        samples.push(performance.now() - started);
      }
      await key.close();
      const s = summarize(samples);
      console.log(`probe of a virtual ${dialect} key (${ROUNDS} rounds): median ${ms(s.median)}, p99 ${ms(s.p99)}`);
    }
    let started = performance.now();
    await probeHidLink(new FakeLink());
    console.log(`a device that never answers: ${ms(performance.now() - started)} (question deadline ${PROBE_QUESTION_TIMEOUT_MS} ms)`);
    started = performance.now();
    await probeHidLink(scriptedKey(() => undefined).link);
    console.log(`a device that answers INIT only: ${ms(performance.now() - started)} (4 questions, each up to ${PROBE_QUESTION_TIMEOUT_MS} ms)`);
    await benchDiscovery(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function benchDiscovery(dir: string): Promise<void> {
  const key = await VirtualKey.open({ file: join(dir, 'unknown.json'), dialect: 'nitrokey3', touch: { mode: 'auto', delayMs: 0 } });
  try {
    const fido = { usagePage: 0xf1d0, usage: 1, interface: 1 };
    const devices: HidDeviceInfo[] = [0x4300, 0x4301, 0x4302, 0x4303].map((productId, i) => ({ vendorId: 0x20a0, productId, path: `/dev/hidraw${40 + i}`, ...fido }));
    const open = (path: string) => Promise.resolve(path === '/dev/hidraw40' ? key.openLink() : scriptedKey(() => undefined).link);
    forgetUnknownFidoDevices();
    let started = performance.now();
    const found = await unknownFidoKeys(devices, open);
    console.log(
      `discovery, 1 unknown key + 3 devices answering INIT only: ${ms(performance.now() - started)}, ${found.length} listed (budget ${IDENTIFY_BUDGET_MS} ms for all)`,
    );
    started = performance.now();
    await unknownFidoKeys(devices.slice(0, 1), open);
    console.log(`the next listing, the key's answer kept: ${ms(performance.now() - started)}`);
    forgetUnknownFidoDevices();
  } finally {
    await key.close();
  }
}
