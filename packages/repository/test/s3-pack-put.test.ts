/**
 * Packs on S3 are one conditional PUT each, never a multipart upload (docs/storage.md,
 * "Packs on S3: one PUT, not multipart"), so a pack upload that fails mid-way leaves
 * nothing: not the pack, not a snapshot, and no incomplete multipart upload for anyone to
 * clean up. Checked on the real Ceph RGW, through the fault proxy, with one attempt per
 * request so the store cannot retry the fault away. The fs store's streamed packs are
 * checked alongside: a failed backup leaves no temp file there once it has failed.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backup, FsObjectStore, Repository } from '../dist/index.js';
import { S3ObjectStore } from '../dist/s3.js';
import { S3FaultProxy } from '../../../test-support/s3-fault-proxy.js';
import { s3StoreOptions, s3TestServer } from '../../../test-support/s3-test-env.js';

const MiB = 1024 * 1024;
const PACK_BYTES = 4 * MiB;
/** Three packs: the second one's PUT fails. */
const SOURCE_BYTES = 9 * MiB;
const BUCKET = `hoard-pack-put-${randomUUID().slice(0, 8)}`;

let proxy: S3FaultProxy;
const opened: S3ObjectStore[] = [];

beforeAll(async () => {
  proxy = await S3FaultProxy.start(s3TestServer().endpoint);
  const store = await S3ObjectStore.open({ ...s3StoreOptions(BUCKET), create: true });
  store.close();
});
afterAll(async () => {
  for (const store of opened.splice(0)) store.close();
  await proxy?.close();
});

async function* pieces(bytes: Buffer): AsyncGenerator<Uint8Array> {
  for (let o = 0; o < bytes.length; o += 256 * 1024) yield bytes.subarray(o, o + 256 * 1024);
}

describe('a pack upload that fails mid-way', () => {
  it('on S3: commits nothing, stores no part of the pack, and leaves no incomplete multipart upload', async () => {
    const prefix = `p-${randomUUID().slice(0, 8)}`;
    const direct = new S3ObjectStore(s3StoreOptions(BUCKET, { prefix }));
    const faulty = new S3ObjectStore(s3StoreOptions(BUCKET, { prefix, endpoint: proxy.url, retry: { maxAttempts: 1 } }));
    opened.push(direct, faulty);
    await Repository.init(direct, { packBytes: PACK_BYTES });
    const repo = await Repository.open(faulty);
    proxy.setRules([{ method: 'PUT', key: /(^|\/)packs\//, nth: 2, action: { kind: 'status', status: 500 } }]);
    const failed = await backup(
      repo,
      { stream: pieces(randomBytes(SOURCE_BYTES)), name: 'src', kind: 'stream' },
      { job: 'db', chunking: 'db-dump', workers: 0 },
    ).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(proxy.fired(), 'the fault was not injected').toEqual([1]);
    expect(failed).toBeInstanceOf(Error);
    proxy.setRules([]);

    const checked = await Repository.open(direct);
    expect(await checked.snapshots('db')).toEqual([]);
    const failedKey = proxy.log.filter((r) => r.method === 'PUT' && /packs\//.test(r.key) && r.outcome === 'status').map((r) => r.key)[0];
    expect(failedKey).toBeDefined();
    expect(await direct.head(failedKey!.slice(failedKey!.indexOf('packs/')))).toBeUndefined();
    // Every pack request was a plain PUT: no multipart upload was started, none is left.
    expect(proxy.log.filter((r) => /uploads|uploadId/.test(r.query))).toEqual([]);
    const server = s3TestServer();
    const client = new S3Client({
      endpoint: server.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    });
    try {
      const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: `${prefix}/` }));
      expect(uploads.Uploads ?? []).toEqual([]);
    } finally {
      client.destroy();
    }
  }, 120_000);

  it('on a local store: the streamed pack is discarded, no temp file stays and nothing is committed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hoard-pack-put-'));
    try {
      const objects = await FsObjectStore.open(join(dir, 'repo'), { create: true });
      await Repository.init(objects, { packBytes: PACK_BYTES });
      const repo = await Repository.open(objects);
      const controller = new AbortController();
      let read = 0;
      async function* cancelled(bytes: Buffer): AsyncGenerator<Uint8Array> {
        for await (const piece of pieces(bytes)) {
          read += piece.length;
          // Past the first pack, inside the second: it is being streamed into a temp file.
          if (read > 6 * MiB) controller.abort(new Error('cancelled by the test'));
          yield piece;
        }
      }
      const failed = await backup(
        repo,
        { stream: cancelled(randomBytes(SOURCE_BYTES)), name: 'src', kind: 'stream' },
        { job: 'db', chunking: 'db-dump', workers: 0, signal: controller.signal },
      ).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(failed).toBeInstanceOf(Error);
      expect(await repo.snapshots('db')).toEqual([]);
      expect(await objects.leftoverTemps()).toEqual([]);
      expect(await readdir(join(dir, 'repo', 'tmp~'))).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
