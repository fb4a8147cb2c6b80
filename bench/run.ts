/**
 * Benchmarks: `npm run bench` runs all, `npm run bench -- NAME` one. They print figures; nothing
 * here asserts a time (machines differ; the figures go into the issue notes).
 */
import { benchCodeRead } from './code-read.js';
import { benchCtapHidChannels } from './ctaphid-channels.js';
import { benchDist } from './dist.js';
import { benchPcscCode } from './pcsc-code.js';
import { benchDeb } from './deb.js';
import { benchProbe } from './probe.js';
import { benchProgram } from './program.js';
import { benchProgramEntra } from './program-entra.js';
import { benchPskcKdf } from './pskc-kdf.js';
import { benchQrScan } from './qr-scan.js';
import { benchSeeds } from './seeds.js';
import { benchSeedsHostile } from './seeds-hostile.js';
import { benchTray } from './tray.js';
import { benchWine } from './wine.js';

const BENCHES: Record<string, () => Promise<void>> = {
  'code-read': benchCodeRead,
  seeds: benchSeeds,
  'seeds-hostile': benchSeedsHostile,
  'pskc-kdf': benchPskcKdf,
  program: benchProgram,
  'program-entra': benchProgramEntra,
  tray: benchTray,
  dist: benchDist,
  wine: benchWine,
  'pcsc-code': benchPcscCode,
  deb: benchDeb,
  'ctaphid-channels': benchCtapHidChannels,
  'qr-scan': benchQrScan,
  probe: benchProbe,
};

const wanted = process.argv.slice(2);
for (const name of wanted.length > 0 ? wanted : Object.keys(BENCHES)) {
  const bench = BENCHES[name];
  if (!bench) {
    console.error(`Unknown benchmark "${name}"; known: ${Object.keys(BENCHES).join(', ')}`);
    process.exitCode = 2;
    break;
  }
  console.log(`== ${name}`);
  await bench();
}
