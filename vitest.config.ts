import { defineConfig } from 'vitest/config';

// One config for the whole workspace: every package keeps its tests in test/.
// Tests import packages by name, which resolves to their built dist/ (the test
// script builds first), so worker threads run the same JS that users run.
export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'apps/*/test/**/*.test.ts', 'benchmarks/**/test/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
