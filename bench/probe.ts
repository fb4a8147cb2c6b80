/**
 * Figures for `keytap doctor --probe` (issue 12 part 2): how long the probe of one HID link takes
 * against each virtual-key dialect in this process (INIT, U2F VERSION, getInfo, OATH over 0x70,
 * the Feitian SELECT and CHECK), and against the devices that answer nothing: one silent from the
 * start (one INIT deadline) and one that answers INIT only (a deadline per question). Those two are
 * what bound a probe run on a machine with a wedged device; the question deadline is 1.5 s.
 *
 * Run: npm run bench -- probe
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
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
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
