/**
 * Figures for the Debian package (issue 8): how long build/deb.mjs takes to package the Linux
 * executable, how long lintian takes to check the package, and the sizes. Needs the executable
 * (npm run dist); builds into a temporary folder, so dist/ is left as it is.
 *
 * Run: npm run bench -- deb   (export: benchDeb)
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { buildDeb } from '../build/deb.mjs';
import packageJson from '../package.json' with { type: 'json' };

const MB = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`;

export async function benchDeb(): Promise<void> {
  const executable = join(import.meta.dirname, '..', 'dist', `keytap-${packageJson.version}-linux-x64`);
  if (!existsSync(executable)) {
    console.log(`skipped: ${executable} is missing (run npm run dist first)`);
    return;
  }
  const out = mkdtempSync(join(tmpdir(), 'keytap-bench-deb-'));
  try {
    let started = performance.now();
    const deb = await buildDeb({ executable, outDir: out });
    const buildSeconds = (performance.now() - started) / 1000;
    started = performance.now();
    const lintian = spawnSync('lintian', ['--display-info', '--no-cfg', deb], { encoding: 'utf8' });
    const lintianSeconds = (performance.now() - started) / 1000;
    const installed = spawnSync('dpkg-deb', ['-f', deb, 'Installed-Size'], { encoding: 'utf8' }).stdout.trim();
    console.log(`executable          ${MB(statSync(executable).size)}`);
    console.log(`package             ${MB(statSync(deb).size)} (Installed-Size ${installed} KiB)`);
    console.log(`build/deb.mjs       ${buildSeconds.toFixed(1)} s`);
    console.log(`lintian             ${lintianSeconds.toFixed(1)} s (exit ${lintian.status}, ${lintian.stdout.trim().split('\n').filter(Boolean).length} tags)`);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}
