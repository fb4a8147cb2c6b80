// The fast tier (`npm run test:unit`): pure and in-process tests, well under a minute. Left out, by
// where they live and so also every test added there later:
// - the folders below: tests that run keytap (the bundle, the CLI from source, or what
//   `npm run dist` makes), or peers
//   (python-fido2, ykman, other PSKC implementations, oathtool), or need pcscd, a D-Bus daemon or
//   an X server, a Wayland session (wayland/: sway as its own user, with the single executable),
//   or Wine (windows/: the Windows executable and the Wine harness);
// - `*-fuzz.test.ts`: long property runs against the session and the CTAPHID client.
// `npm test` runs everything (vitest.config.ts).
import { defineConfig } from 'vitest/config';
import { shared } from './vitest.config.js';

export const SLOW_FOLDERS = ['cli', 'dist', 'e2e', 'peers', 'pcsc', 'platform', 'wayland', 'windows'];

export default defineConfig({
  test: {
    ...shared,
    include: ['test/**/*.test.ts'],
    exclude: [...SLOW_FOLDERS.map((folder) => `test/${folder}/**`), 'test/**/*-fuzz.test.ts'],
    // Nothing here runs dist/, so no bundle to build first.
  },
});
