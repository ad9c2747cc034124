/**
 * The whole session flow against a real S3 server (the run's Ceph RGW, started by
 * test-support/global-setup.ts) instead of a local directory: two sessions with shared
 * chunks, a refused batch on the way, a restart that reloads the index from the bucket,
 * and byte-identical restores.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listAll } from '@hoard/repository';
import { S3ObjectStore } from '@hoard/repository/s3';
import { s3StoreOptions } from '../../../test-support/s3-test-env.js';
import {
  agentWithJob,
  backup,
  batchBody,
  beginSession,
  chunkFor,
  codecFor,
  commit,
  commitRequest,
  encodeBlobs,
  expectError,
  expectStillServes,
  putBatch,
  queryMissing,
  randomData,
  refsOf,
  restoreBytes,
  sendBatches,
  startServer,
  type TestServer,
} from './helpers.js';

const BUCKET = `hoard-ms-test-${randomUUID().slice(0, 8)}`;

describe('media server on S3 (Ceph RGW)', () => {
  let t: TestServer;
  let objects: S3ObjectStore;

  beforeAll(async () => {
    (await S3ObjectStore.open({ ...s3StoreOptions(BUCKET), create: true })).close();
    objects = new S3ObjectStore(s3StoreOptions(BUCKET, { prefix: `ms-${randomUUID().slice(0, 8)}` }));
    t = await startServer({ objects });
  });
  afterAll(async () => {
    await t?.close();
    if (objects) {
      const keys: string[] = [];
      for await (const o of listAll(objects, '')) keys.push(o.key);
      await objects.deleteMany(keys);
      objects.close();
    }
  });

  it('begin, missing, batches, commit, restore; dedup across sessions; the index survives a restart', async () => {
    const a = await agentWithJob(t);
    const data1 = randomData(700_000, 31);
    const first = await backup(t, a, data1);
    expect(first.totals).toMatchObject({ chunksNew: first.totals.chunks, bytesNew: data1.length });

    // The second stream shares its first 500 kB: those chunks are not missing.
    const data2 = Buffer.concat([data1.subarray(0, 500_000), randomData(300_000, 32)]);
    const session = await beginSession(t, a.token, a.job);
    expect(session.parent).toBe(first.snapshot.key);
    const chunks = await chunkFor(session, data2);
    const missing = await queryMissing(t, a.token, session.session, chunks);
    expect(missing.filter((m) => !m).length).toBeGreaterThan(3);

    // A refused batch on the way (a blob under the wrong fingerprint) changes nothing.
    const blobs = await encodeBlobs(await codecFor(session), chunks.slice(-2));
    const lying = batchBody(refsOf(chunks.slice(-1)), [{ fingerprint: chunks.at(-1)!.fingerprint, blob: blobs[0]!.blob }]);
    expectError(await putBatch(t, a.token, session.session, 0, lying), 422, /does not match its fingerprint/);

    const { batches } = await sendBatches(t, a.token, session, chunks, { perBatch: 8 });
    const done = await commit(t, a.token, session, commitRequest(session, data2, chunks, batches));
    expect(done.status, JSON.stringify(done.json)).toBe(200);
    expect(done.json.totals).toMatchObject({ chunks: chunks.length, chunksNew: missing.filter(Boolean).length });
    const id2 = (done.json.snapshot as { id: string }).id;
    t.committed.push({ job: a.job, token: a.token, snapshot: id2, data: data2 });
    expect((await restoreBytes(t, a.token, a.job, id2)).bytes.equals(data2)).toBe(true);

    // A restarted server knows every chunk from the bucket: the same stream uploads nothing.
    await t.restart();
    const again = await beginSession(t, a.token, a.job);
    expect(await queryMissing(t, a.token, again.session, chunks)).toEqual(chunks.map(() => false));
    // A byte range of a snapshot restores too.
    const range = await fetch(`${t.url}/v1/jobs/${a.job}/restore?id=${id2}&offset=123456&length=300000`, { headers: { authorization: `Bearer ${a.token}` } });
    expect(range.status).toBe(200);
    expect(Buffer.from(await range.arrayBuffer()).equals(data2.subarray(123_456, 423_456))).toBe(true);
    await expectStillServes(t, a);
  });
});
