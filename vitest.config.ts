import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // vitest leaves out every folder named dist; only the build output at the root is not tests
    // (test/dist/ holds the tests of what `npm run dist` makes).
    exclude: [...configDefaults.exclude.filter((pattern) => pattern !== '**/dist/**'), 'dist/**'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Peer and CLI tests spawn processes; two cores, so keep parallelism modest.
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2 } },
  },
});
