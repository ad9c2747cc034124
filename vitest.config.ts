import { defineConfig } from 'vitest/config';
import type { Reporter, TestModule } from 'vitest/node';

/** Ends the run with a plain "N passed, N failed, N skipped" line that any CI can read. */
const summaryLine: Reporter = {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>) {
    const counts = { passed: 0, failed: 0, skipped: 0 };
    for (const module of testModules) {
      let failedTests = 0;
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') counts.passed++;
        else if (state === 'failed') failedTests++;
        else counts.skipped++;
      }
      // A failing beforeAll/afterAll (a server that did not start) fails the file while its
      // tests show as skipped: count it, so the line never says 0 failed for a red run.
      counts.failed += failedTests > 0 ? failedTests : module.state() === 'failed' ? 1 : 0;
    }
    process.stdout.write(`\n${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped\n`);
  },
};

const INCLUDE = ['packages/*/test/**/*.test.ts', 'apps/*/test/**/*.test.ts', 'benchmarks/**/test/**/*.test.ts'];
const EXCLUDE = ['**/node_modules/**', '**/dist/**'];

/**
 * Files whose checks race the clock or measure the process: they run after all the
 * others, one at a time, with no other test file beside them.
 */
const ALONE = [
  // SIGKILLs a backup child at random moments of its first backups.
  'packages/repository/test/crash.test.ts',
  // Peak memory of chunking GiBs with two chunker workers.
  'packages/chunker/test/memory.test.ts',
  // 6 s run leases against CLI start-up times (3-4 s on a loaded 2-core machine).
  'apps/cli/test/liveness.test.ts',
  // 0.4-0.6 s run leases renewed every 100 ms.
  'apps/media-server/test/run-leases.test.ts',
  // A 1 s session idle time that requests every 250 ms must keep from expiring.
  'apps/media-server/test/batches.test.ts',
];

const common = {
  testTimeout: 120_000,
  hookTimeout: 120_000,
  pool: 'forks',
} as const;

// One config for the whole workspace: every package keeps its tests in test/.
// Tests import built packages (the test script builds first), so worker processes run the
// same JS that users run.
//
// Two test files run at once (maxWorkers 2, also on a 2-core machine, where the default
// would be 1): most files spend much of their time waiting on the processes, servers and
// disks they drive, not on the CPU. Every file keeps to its own temp directories, buckets,
// ports and servers, so two never share state. The files in ALONE run afterwards, one at
// a time (a later sequence.groupOrder).
export default defineConfig({
  test: {
    // One Ceph RGW (a real S3 server) for the whole run, for every project; see
    // test-support/global-setup.ts.
    globalSetup: ['./test-support/global-setup.ts'],
    reporters: ['default', summaryLine],
    projects: [
      { test: { ...common, name: 'parallel', include: INCLUDE, exclude: [...EXCLUDE, ...ALONE], maxWorkers: 2 } },
      { test: { ...common, name: 'alone', include: ALONE, exclude: EXCLUDE, maxWorkers: 1, sequence: { groupOrder: 1 } } },
    ],
  },
});
