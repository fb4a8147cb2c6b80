// The CLI tests run the bundled program (bin/keytap.cjs → dist/keytap.cjs) as a user would, so
// build it once before any test file runs.
import { execFileSync } from 'node:child_process';

export default function setup(): void {
  execFileSync(process.execPath, ['build/bundle.mjs'], { stdio: 'inherit' });
}
