/**
 * Figures for the virtual key's CTAPHID channel table (issue 9 item 9): memory after 300,000 INITs
 * on the broadcast channel, once from one HID open and once from 300,000 opens that each close
 * after their INIT. Before channels were freed and bounded, the first grew the process from 48 to
 * 102 MB.
 *
 * Run: npm run bench -- ctaphid-channels
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { BROADCAST_CID, CtapHidCommand, framePackets } from '../src/device/transport/ctaphid-frames.js';
import { VirtualKey } from '../src/emulator/virtual-key.js';

const INITS = 300_000;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function memory(): { heapMb: number; rssMb: number } {
  gc();
  const { heapUsed, rss } = process.memoryUsage();
  return { heapMb: heapUsed / 2 ** 20, rssMb: rss / 2 ** 20 };
}

function initReport(i: number): Uint8Array {
  const nonce = new Uint8Array(8);
  new DataView(nonce.buffer).setUint32(4, i);
  return framePackets(BROADCAST_CID, CtapHidCommand.INIT, nonce)[0]!;
}

export async function benchCtapHidChannels(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'keytap-bench-'));
  try {
    const key = await VirtualKey.open({ file: join(dir, 'key.json'), dialect: 'yubikey' });
    const scenarios: Array<[string, (i: number) => Promise<void>]> = [];
    const flood = key.openLink();
    scenarios.push([
      'one open',
      async (i) => {
        await flood.write(initReport(i));
        // Read the answer (it is already queued), as a client does, so no unread reports pile up.
        await flood.read(1000);
      },
    ]);
    scenarios.push([
      'one open per INIT, closed after it',
      async (i) => {
        const link = key.openLink();
        await link.write(initReport(i));
        await link.close();
      },
    ]);
    for (const [name, step] of scenarios) {
      const before = memory();
      const started = performance.now();
      for (let i = 0; i < INITS; i++) await step(i);
      const seconds = (performance.now() - started) / 1000;
      const after = memory();
      console.log(
        `${INITS.toLocaleString('en')} INITs, ${name}: ${key.device.channelCount} channels allocated; ` +
          `heap ${before.heapMb.toFixed(1)} → ${after.heapMb.toFixed(1)} MB, RSS ${before.rssMb.toFixed(1)} → ${after.rssMb.toFixed(1)} MB; ` +
          `${Math.round(INITS / seconds).toLocaleString('en')} INITs/s`,
      );
    }
    await key.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
