/**
 * Benchmarks: `npm run bench` runs all, `npm run bench -- NAME` one. They print figures; nothing
 * here asserts a time (machines differ; the figures go into the issue notes). Each bench is imported
 * when it runs: one bench's imports (program-entra's reach vitest through test/provision) do not
 * stop the others.
 */

const BENCHES: Record<string, () => Promise<void>> = {
  'code-read': () => import('./code-read.js').then((m) => m.benchCodeRead()),
  seeds: () => import('./seeds.js').then((m) => m.benchSeeds()),
  'seeds-hostile': () => import('./seeds-hostile.js').then((m) => m.benchSeedsHostile()),
  'pskc-kdf': () => import('./pskc-kdf.js').then((m) => m.benchPskcKdf()),
  program: () => import('./program.js').then((m) => m.benchProgram()),
  'program-entra': () => import('./program-entra.js').then((m) => m.benchProgramEntra()),
  tray: () => import('./tray.js').then((m) => m.benchTray()),
  dist: () => import('./dist.js').then((m) => m.benchDist()),
  wine: () => import('./wine.js').then((m) => m.benchWine()),
  'pcsc-code': () => import('./pcsc-code.js').then((m) => m.benchPcscCode()),
  deb: () => import('./deb.js').then((m) => m.benchDeb()),
  'ctaphid-channels': () => import('./ctaphid-channels.js').then((m) => m.benchCtapHidChannels()),
  'qr-scan': () => import('./qr-scan.js').then((m) => m.benchQrScan()),
  probe: () => import('./probe.js').then((m) => m.benchProbe()),
  wayland: () => import('./wayland.js').then((m) => m.benchWayland()),
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
