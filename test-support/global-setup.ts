/**
 * vitest globalSetup: one Ceph RGW for the whole run (it starts in a second or two), its
 * endpoint and keys handed to the tests with provide(). If it cannot start (Ceph not
 * installed: run scripts/ensure-test-deps.sh as root), the run goes on and only the
 * tests that need S3 fail, with the reason.
 */
import type { TestProject } from 'vitest/node';
import { startS3, type RunningS3 } from './s3-server.js';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let server: RunningS3 | undefined;
  const started = Date.now();
  try {
    server = await startS3();
    const { endpoint, accessKeyId, secretAccessKey } = server;
    project.provide('s3', { ok: true, endpoint, accessKeyId, secretAccessKey });
    process.stderr.write(`test S3: Ceph RGW at ${endpoint}, started in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  } catch (err) {
    project.provide('s3', { ok: false, error: (err as Error).message });
  }
  return async () => {
    await server?.stop();
  };
}
