/**
 * The artifacts `npm run dist` makes (build/dist.mjs), by name. The tests in test/dist/ and the
 * "executable" test project (vitest.config.ts) use them; a missing one is an error that says how
 * to make it, never a skipped test.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { debFileName } from '../../build/deb.mjs';
import { TARGETS, runtimeBinaryPath } from '../../build/dist.mjs';

export const ROOT = join(import.meta.dirname, '..', '..');
export const DIST = join(ROOT, 'dist');
export const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

// The names build/dist.mjs and build/deb.mjs give what they make.
const FILES = {
  'linux-x64': TARGETS['linux-x64'].file,
  'linux-arm64': TARGETS['linux-arm64'].file,
  'win-x64': TARGETS['win-x64'].file,
  'darwin-x64': TARGETS['darwin-x64'].file,
  deb: debFileName(VERSION),
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

/** The Node inside the Linux x64 executable, as npm run dist unpacked it; throws when it is not there. */
export function embeddedNode(): string {
  const node = runtimeBinaryPath('linux-x64');
  if (!existsSync(node)) throw new Error(`${node} is missing: run npm run dist first (npm test does)`);
  return node;
}
