/** Test-side access to the run's S3 server (started by global-setup.ts). */
import { inject } from 'vitest';
import type { S3TestServer } from './s3-server.js';

/** The server's endpoint and keys; throws why there is none, failing the calling test. */
export function s3TestServer(): S3TestServer {
  const provided = inject('s3');
  if (provided === undefined) throw new Error('no S3 test server: vitest.config.ts must list test-support/global-setup.ts in globalSetup');
  if (!provided.ok) throw new Error(`no S3 test server: ${provided.error}`);
  const { endpoint, accessKeyId, secretAccessKey } = provided;
  return { endpoint, accessKeyId, secretAccessKey };
}

/**
 * Options for an S3ObjectStore on the run's server, in `bucket`. `env: {}` keeps a
 * developer's own AWS_* settings out of the tests.
 */
export function s3StoreOptions<T extends object>(bucket: string, overrides: T = {} as T) {
  const server = s3TestServer();
  return {
    bucket,
    endpoint: server.endpoint,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    env: {},
    ...overrides,
  };
}
