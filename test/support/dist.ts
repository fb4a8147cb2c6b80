/**
 * The artifacts `npm run dist` makes (build/dist.mjs), by name. The tests in test/dist/ and the
 * "executable" test project (vitest.config.ts) use them; a missing one is an error that says how
 * to make it, never a skipped test.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..', '..');
export const DIST = join(ROOT, 'dist');
export const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

const FILES = {
  'linux-x64': `keytap-${VERSION}-linux-x64`,
  'linux-arm64': `keytap-${VERSION}-linux-arm64`,
  'win-x64': `keytap-${VERSION}-win-x64.exe`,
  'darwin-x64': `keytap-${VERSION}-darwin-x64`,
  deb: `keytap_${VERSION}_amd64.deb`,
  sums: 'SHA256SUMS',
} as const;

export type Artifact = keyof typeof FILES;

export function artifactPath(artifact: Artifact): string {
  return join(DIST, FILES[artifact]);
}

/** The artifact's path; throws when it has not been built. */
export function artifact(artifact: Artifact): string {
  const path = artifactPath(artifact);
  if (!existsSync(path)) throw new Error(`${path} is missing: run npm run dist first (npm test does)`);
  return path;
}
