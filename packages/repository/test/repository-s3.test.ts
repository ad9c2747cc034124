import { randomUUID } from 'node:crypto';
import { afterAll } from 'vitest';
import { listAll } from '../dist/index.js';
import { S3ObjectStore, type S3ObjectStoreOptions } from '../dist/s3.js';
import { s3StoreOptions } from '../../../test-support/s3-test-env.js';
import { repositorySuite } from './repository-suite.js';

// repository.test.ts's suite against the run's Ceph RGW (test-support/global-setup.ts), as
// in s3-store.test.ts: one bucket for this file, a fresh prefix per test.
const BUCKET = `hoard-repo-test-${randomUUID().slice(0, 8)}`;
let prefixes = 0;

function s3Options(overrides: Partial<S3ObjectStoreOptions> = {}): S3ObjectStoreOptions {
  return s3StoreOptions(BUCKET, overrides);
}

let bucketReady: Promise<void> | undefined;
const opened: S3ObjectStore[] = [];
afterAll(() => {
  for (const store of opened.splice(0)) store.close();
});

repositorySuite('S3ObjectStore (Ceph RGW)', async () => {
  bucketReady ??= S3ObjectStore.open({ ...s3Options(), create: true }).then((store) => store.close());
  await bucketReady;
  const store = new S3ObjectStore(s3Options({ prefix: `r${prefixes++}-${randomUUID().slice(0, 8)}` }));
  opened.push(store);
  return {
    store,
    cleanup: async () => {
      const keys: string[] = [];
      for await (const object of listAll(store, '')) keys.push(object.key);
      await store.deleteMany(keys);
    },
  };
});
