// Two projects:
// - "source": every test, with the CLI run from the bundle (bin/keytap.cjs → dist/keytap*.cjs,
//   built by test/global-setup.ts);
// - "executable": the tests that run keytap as a whole program against the virtual key, and the
//   tray end to end, again with the Linux single executable from `npm run dist` as the program
//   under test (test/support/cli.ts reads KEYTAP_UNDER_TEST). npm test builds it first.
import { readFileSync } from 'node:fs';
import { defineConfig } from 'vitest/config';

const { version } = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8')) as { version: string };

export const EXECUTABLE_TESTS = [
  'test/cli/cli-virtual.test.ts',
  'test/cli/add-qr.test.ts',
  'test/cli/cli-served.test.ts',
  'test/cli/closed-output.test.ts',
  'test/cli/program.test.ts',
  'test/cli/program-batch.test.ts',
  'test/cli/program-users.test.ts',
  'test/cli/explain.test.ts',
  'test/cli/version.test.ts',
  'test/cli/ipc.test.ts',
  'test/pcsc/pcsc.test.ts',
  'test/e2e/tray.test.ts',
  'test/unlock/cli-unlock.test.ts',
  'test/e2e/tray-unlock.test.ts',
  'test/e2e/typing.test.ts',
];

export const shared = {
  // Vitest's default exclude has **/dist/**, which would hide test/dist/ (the artifact tests).
  exclude: ['**/node_modules/**'],
  testTimeout: 60_000,
  hookTimeout: 60_000,
  // Peer and CLI tests spawn processes; two cores, so keep parallelism modest.
  pool: 'forks' as const,
  poolOptions: { forks: { maxForks: 2 } },
};

export default defineConfig({
  test: {
    ...shared,
    globalSetup: ['test/global-setup.ts'],
    projects: [
      { extends: true, test: { name: 'source', include: ['test/**/*.test.ts'] } },
      { extends: true, test: { name: 'executable', include: EXECUTABLE_TESTS, env: { KEYTAP_UNDER_TEST: `dist/keytap-${version}-linux-x64` } } },
    ],
  },
});
