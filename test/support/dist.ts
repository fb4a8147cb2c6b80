/**
 * The artifacts `npm run dist` makes in dist/, named by package.json's version. A test that needs
 * one fails with what to do when it is not there, rather than testing something else.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { debFileName } from '../../build/deb.mjs';
import packageJson from '../../package.json' with { type: 'json' };

export const DIST = join(import.meta.dirname, '..', '..', 'dist');
export const VERSION: string = packageJson.version;

export const ARTIFACTS = {
  linuxX64: `keytap-${VERSION}-linux-x64`,
  deb: debFileName(VERSION),
} as const;

/** The path of an artifact; throws "run npm run dist first" when it is missing. */
export function artifact(name: keyof typeof ARTIFACTS): string {
  const path = join(DIST, ARTIFACTS[name]);
  if (!existsSync(path)) throw new Error(`${path} is missing: run npm run dist first.`);
  return path;
}
