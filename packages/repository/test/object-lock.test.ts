/**
 * S3 Object Lock on the run's Ceph RGW (docs/storage.md, "Object Lock"): a repository
 * created with a lock writes its immutable objects with a retention date and its control
 * objects without; the same credentials cannot delete a locked version (the attacker's
 * view); GC and prune keep what is locked and say until when; once the lock has passed
 * they delete every version; a repository without a lock is unchanged; and asking for a
 * lock where there can be none is refused.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  HeadObjectCommand,
  ListObjectVersionsCommand,
  PutObjectRetentionCommand,
  S3Client,
  type HeadObjectCommandOutput,
} from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import {
  backup,
  collectGarbage,
  FsObjectStore,
  hiddenObjects,
  listAll,
  ObjectLockUnavailableError,
  pruneJob,
  Repository,
  restore,
  StreamSink,
  undeleteObjects,
  type ObjectLockConfig,
  type ObjectStore,
} from '../dist/index.js';
import { S3ObjectStore } from '../dist/s3.js';
import { s3StoreOptions, s3TestServer } from '../../../test-support/s3-test-env.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const DAY_MS = 24 * 3600_000;

const stores: S3ObjectStore[] = [];
const dirs: string[] = [];
let client: S3Client | undefined;
afterAll(async () => {
  for (const s of stores.splice(0)) s.close();
  client?.destroy();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

/** A plain SDK client with the repository's own credentials: what a thief of them holds. */
function sdk(): S3Client {
  const server = s3TestServer();
  client ??= new S3Client({
    region: 'us-east-1',
    endpoint: server.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return client;
}

const bucketName = (what: string) => `hoard-lock-${what}-${randomUUID().slice(0, 8)}`;

async function lockedStore(bucket = bucketName('t')): Promise<S3ObjectStore> {
  const store = await S3ObjectStore.open({ ...s3StoreOptions(bucket), create: true, objectLock: true });
  stores.push(store);
  return store;
}

async function lockedRepo(lock: ObjectLockConfig): Promise<{ store: S3ObjectStore; repo: Repository }> {
  const store = await lockedStore();
  return { store, repo: await Repository.init(store, { packBytes: 4 * MiB, objectLock: lock }) };
}

function block(n: number, size = 128 * KiB): Buffer {
  const out = Buffer.alloc(size);
  let x = (n * 2654435761) >>> 0 || 1;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.writeUInt32LE(x >>> 0, i);
  }
  return out;
}
const data = (...blocks: number[]) => Buffer.concat(blocks.map((b) => block(b)));

async function* pieces(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  for (let o = 0; o < bytes.length; o += 64 * KiB) yield bytes.subarray(o, o + 64 * KiB);
}

const run = (repo: Repository, job: string, bytes: Buffer) =>
  backup(repo, { stream: pieces(bytes), name: 'src', kind: 'stream' }, { job, chunking: 'db-dump', workers: 0 });

async function restored(repo: Repository, job: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      parts.push(Buffer.from(chunk));
      done();
    },
  });
  await restore(repo, await repo.findSnapshot(job), new StreamSink(sink));
  return Buffer.concat(parts);
}

async function keys(store: ObjectStore, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of listAll(store, prefix)) out.push(o.key);
  return out;
}

const head = (bucket: string, key: string): Promise<HeadObjectCommandOutput> => sdk().send(new HeadObjectCommand({ Bucket: bucket, Key: key }));

async function versions(bucket: string, prefix = ''): Promise<{ versions: { key: string; id: string }[]; markers: { key: string; id: string }[] }> {
  const r = await sdk().send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: prefix }));
  return {
    versions: (r.Versions ?? []).map((v) => ({ key: v.Key!, id: v.VersionId! })),
    markers: (r.DeleteMarkers ?? []).map((v) => ({ key: v.Key!, id: v.VersionId! })),
  };
}

/** Resolves once nothing among `keys` is locked any more (short test locks). */
async function waitUnlocked(store: S3ObjectStore, keys: string[]): Promise<void> {
  for (;;) {
    const dates = await Promise.all(keys.map((k) => store.lockedUntil(k)));
    const last = Math.max(0, ...dates.map((d) => d?.getTime() ?? 0));
    if (last === 0) return;
    await new Promise((resolve) => setTimeout(resolve, Math.max(50, last - Date.now() + 50)));
  }
}

describe('S3 Object Lock', () => {
  it('locks packs, index segments, chunk-list pages, manifests and records, and leaves control objects unlocked', async () => {
    const { store, repo } = await lockedRepo({ mode: 'COMPLIANCE', days: 1 });
    expect(repo.config.objectLock).toEqual({ mode: 'COMPLIANCE', days: 1 });
    const before = Date.now();
    await run(repo, 'web', data(1, 2, 3, 4));
    const immutable = [
      ...(await keys(store, 'packs/')),
      ...(await keys(store, 'index/')),
      ...(await keys(store, 'chunklists/')),
      ...(await keys(store, 'snapshots/')),
      'config',
      ...(await keys(store, 'stores/')),
    ];
    expect(immutable.filter((k) => k.startsWith('packs/')).length).toBeGreaterThan(0);
    expect(immutable.filter((k) => k.startsWith('snapshots/')).length).toBe(1);
    for (const key of immutable) {
      const h = await head(store.bucket, key);
      expect(h.ObjectLockMode, key).toBe('COMPLIANCE');
      // About a day after the write (the server's clock and ours may differ a little).
      expect(h.ObjectLockRetainUntilDate!.getTime(), key).toBeGreaterThan(before + DAY_MS - 60_000);
      expect(h.ObjectLockRetainUntilDate!.getTime(), key).toBeLessThan(Date.now() + DAY_MS + 60_000);
    }
    // Protection markers come and go: never locked.
    const snapshot = await repo.findSnapshot('web');
    await repo.protectSnapshot(snapshot.key);
    const [marker] = await keys(store, 'protected/');
    expect((await head(store.bucket, marker)).ObjectLockMode).toBeUndefined();
    await repo.unprotectSnapshot(snapshot.key);
    expect(await keys(store, 'protected/')).toEqual([]);
    // Deleting an unlocked object removes every version, not just hides it.
    expect(await versions(store.bucket, 'protected/')).toEqual({ versions: [], markers: [] });
    // Reopened (another writer): the config says to lock, so its objects are locked too.
    const again = await Repository.open(new S3ObjectStore(s3StoreOptions(store.bucket)));
    await run(again, 'db', data(9, 10));
    const [manifest] = await keys(store, 'snapshots/db/');
    expect((await head(store.bucket, manifest)).ObjectLockMode).toBe('COMPLIANCE');
  });

  it('a thief with the same credentials cannot delete a locked version; hiding it behind a delete marker is undone', async () => {
    const { store, repo } = await lockedRepo({ mode: 'COMPLIANCE', days: 1 });
    const original = data(5, 6, 7);
    await run(repo, 'web', original);
    const [pack] = await keys(store, 'packs/');
    const [manifest] = await keys(store, 'snapshots/');
    const { VersionId: packVersion } = await head(store.bucket, pack);
    // Deleting the version itself, alone or in a batch, is refused.
    await expect(sdk().send(new DeleteObjectCommand({ Bucket: store.bucket, Key: pack, VersionId: packVersion }))).rejects.toMatchObject({
      name: 'AccessDenied',
    });
    await expect(
      sdk().send(new DeleteObjectCommand({ Bucket: store.bucket, Key: pack, VersionId: packVersion, BypassGovernanceRetention: true })),
    ).rejects.toMatchObject({ name: 'AccessDenied' });
    const batch = await sdk().send(new DeleteObjectsCommand({ Bucket: store.bucket, Delete: { Objects: [{ Key: pack, VersionId: packVersion }] } }));
    expect(batch.Errors?.map((e) => e.Code)).toEqual(['AccessDenied']);
    // Nor can the lock be shortened.
    await expect(
      sdk().send(
        new PutObjectRetentionCommand({
          Bucket: store.bucket,
          Key: pack,
          VersionId: packVersion,
          Retention: { Mode: 'COMPLIANCE', RetainUntilDate: new Date(Date.now() + 60_000) },
        }),
      ),
    ).rejects.toMatchObject({ name: 'AccessDenied' });
    // hoard's own delete (what `--break-lock`-style misuse or a compromised writer would run) does not remove it either.
    await store.deleteMany([pack, manifest]);
    expect((await versions(store.bucket, pack)).versions.map((v) => v.id)).toEqual([packVersion]);
    // A plain DELETE hides the objects behind delete markers: the snapshot is gone from view.
    await expect(repo.findSnapshot('web')).rejects.toThrow(/no snapshots/);
    // Recovery: remove the delete markers (docs/storage.md; `hoard repair --undelete`), and everything is back.
    const hidden = await versions(store.bucket);
    expect(hidden.markers.map((m) => m.key).sort()).toEqual([manifest, pack].sort());
    expect(await hiddenObjects(repo)).toEqual([manifest, pack].sort());
    await undeleteObjects(repo, await hiddenObjects(repo));
    expect((await versions(store.bucket)).markers).toEqual([]);
    expect(await hiddenObjects(repo)).toEqual([]);
    expect(Buffer.compare(await restored(repo, 'web'), original)).toBe(0);
  });

  it('prune and GC keep what is locked and say until when', async () => {
    const { store, repo } = await lockedRepo({ mode: 'COMPLIANCE', days: 1 });
    await run(repo, 'web', data(1, 2, 3));
    await new Promise((resolve) => setTimeout(resolve, 1100)); // manifests are named by the second
    await run(repo, 'web', data(4, 5, 6));
    const packsBefore = await keys(store, 'packs/');
    const manifests = await keys(store, 'snapshots/');
    const pruned = await pruneJob(repo, 'web', { keepLast: 1 });
    expect(pruned.forgotten).toBe(0);
    expect(pruned.kept).toBe(2);
    const lockedDecision = pruned.decisions.find((d) => d.reasons.some((r) => r.startsWith('locked until ')))!;
    expect(lockedDecision).toBeDefined();
    const until = Date.parse(lockedDecision.reasons[0].slice('locked until '.length));
    expect(until).toBeGreaterThan(Date.now() + DAY_MS - 120_000);
    expect(await keys(store, 'snapshots/')).toEqual(manifests);

    // Data nothing references any more (its manifest hidden, as a forget by hand does): GC keeps it while locked.
    await store.deleteMany([lockedDecision.snapshot.key]);
    const report = await collectGarbage(repo, { graceMs: 0 });
    expect(report.locked.packs).toBeGreaterThan(0);
    expect(report.locked.pages).toBeGreaterThan(0);
    expect(Date.parse(report.locked.lastUnlock!)).toBeGreaterThan(Date.now() + DAY_MS - 120_000);
    expect(report.packs.condemned).toBe(0);
    expect(report.pages.condemned).toBe(0);
    const second = await collectGarbage(repo, { graceMs: 0 });
    expect(second.packs.deleted).toBe(0);
    expect(await keys(store, 'packs/')).toEqual(packsBefore);
    expect((await restored(repo, 'web')).length).toBe(3 * 128 * KiB);
  });

  it('once the lock has passed, prune forgets and GC deletes every version', async () => {
    // A few seconds of lock, so that the test sees it pass.
    const { store, repo } = await lockedRepo({ mode: 'COMPLIANCE', days: 3 / 86_400 });
    await run(repo, 'web', data(1, 2, 3));
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await run(repo, 'web', data(4, 5, 6));
    const old = (await repo.snapshots('web'))[1];
    const all = [
      ...(await keys(store, 'snapshots/')),
      ...(await keys(store, 'packs/')),
      ...(await keys(store, 'chunklists/')),
      ...(await keys(store, 'index/')),
    ];
    await waitUnlocked(store, all);
    const pruned = await pruneJob(repo, 'web', { keepLast: 1 });
    expect(pruned.forgotten).toBe(1);
    expect(await keys(store, 'snapshots/')).not.toContain(old.key);
    const first = await collectGarbage(repo, { graceMs: 0 });
    expect(first.packs.condemned).toBeGreaterThan(0);
    expect(first.locked).toMatchObject({ packs: 0, pages: 0 });
    const second = await collectGarbage(repo, { graceMs: 0 });
    expect(second.packs.deleted).toBe(first.packs.condemned);
    // Nothing of the deleted objects stays behind as a hidden version or a delete marker.
    const left = await versions(store.bucket);
    const current = new Set([...(await keys(store, ''))]);
    expect(left.markers).toEqual([]);
    expect(left.versions.filter((v) => !current.has(v.key))).toEqual([]);
    expect((await restored(repo, 'web')).length).toBe(3 * 128 * KiB);
  });

  it('governance mode locks each object too, and only a bypass (which compliance does not know) lifts it', async () => {
    const { store, repo } = await lockedRepo({ mode: 'GOVERNANCE', days: 1 });
    await run(repo, 'web', data(1));
    const [manifest] = await keys(store, 'snapshots/');
    const h = await head(store.bucket, manifest);
    expect(h.ObjectLockMode).toBe('GOVERNANCE');
    await expect(sdk().send(new DeleteObjectCommand({ Bucket: store.bucket, Key: manifest, VersionId: h.VersionId }))).rejects.toMatchObject({
      name: 'AccessDenied',
    });
    await sdk().send(new DeleteObjectCommand({ Bucket: store.bucket, Key: manifest, VersionId: h.VersionId, BypassGovernanceRetention: true }));
    expect((await versions(store.bucket, manifest)).versions).toEqual([]);
  });

  it('GC extends the lock of packs and pages that snapshots still reference, not of manifests or segments', async () => {
    const days = 8 / 86_400; // 8 s: a pass is due once objects are older than 2 s
    const { store, repo } = await lockedRepo({ mode: 'COMPLIANCE', days });
    await run(repo, 'web', data(1, 2, 3));
    const [pack] = await keys(store, 'packs/');
    const [page] = await keys(store, 'chunklists/');
    const [manifest] = await keys(store, 'snapshots/');
    const [segment] = await keys(store, 'index/');
    const written = await Promise.all([pack, page, manifest, segment].map(async (k) => (await head(store.bucket, k)).ObjectLockRetainUntilDate!.getTime()));
    // Young objects still have most of their lock: no pass.
    expect((await collectGarbage(repo, { graceMs: 0 })).locked.extended).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 2500));
    const started = Date.now();
    const report = await collectGarbage(repo, { graceMs: 0 });
    expect(report.locked.extended).toBe((await keys(store, 'packs/')).length + (await keys(store, 'chunklists/')).length);
    const [packUntil, pageUntil, manifestUntil, segmentUntil] = await Promise.all(
      [pack, page, manifest, segment].map(async (k) => (await head(store.bucket, k)).ObjectLockRetainUntilDate!.getTime()),
    );
    expect(packUntil).toBeGreaterThanOrEqual(started + 8000 - 1000);
    expect(packUntil).toBeGreaterThan(written[0]);
    expect(pageUntil).toBeGreaterThan(written[1]);
    expect(manifestUntil).toBe(written[2]);
    expect(segmentUntil).toBe(written[3]);
    // The pass is recorded: the next GC within a quarter period does not repeat it.
    expect((await head(store.bucket, 'gc/lock-extension')).ObjectLockMode).toBeUndefined();
    expect((await collectGarbage(repo, { graceMs: 0 })).locked.extended).toBe(0);
  });

  it('control objects still have one winner in the versioned bucket (RGW ignores If-None-Match there)', async () => {
    const { store } = await lockedRepo({ mode: 'COMPLIANCE', days: 1 });
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => store.putIfAbsent('gc/lock', Buffer.from(`holder ${i}`))));
    expect(results.filter(Boolean).length).toBe(1);
    expect(await store.putIfAbsent('gc/lock', Buffer.from('late'))).toBe(false);
    const winner = Buffer.from(await store.get('gc/lock')).toString();
    expect(winner).toBe(`holder ${results.indexOf(true)}`);
    expect((await versions(store.bucket, 'gc/lock')).versions.length).toBe(1);
    await store.deleteMany(['gc/lock']);
    expect(await store.putIfAbsent('gc/lock', Buffer.from('next'))).toBe(true);
    // An immutable object is written once: a second put of it answers false and adds no version.
    const key = `packs/00/${'0'.repeat(64)}`;
    expect(await store.putIfAbsent(key, Buffer.from('x'))).toBe(true);
    expect(await store.putIfAbsent(key, Buffer.from('x'))).toBe(false);
    expect((await versions(store.bucket, key)).versions.length).toBe(1);
  });

  it('a repository without object lock writes and deletes as before', async () => {
    const bucket = bucketName('plain');
    const store = await S3ObjectStore.open({ ...s3StoreOptions(bucket), create: true });
    stores.push(store);
    const repo = await Repository.init(store, { packBytes: 4 * MiB });
    expect(repo.config.objectLock).toBeUndefined();
    await run(repo, 'web', data(1, 2));
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await run(repo, 'web', data(3, 4));
    const [pack] = await keys(store, 'packs/');
    expect((await head(bucket, pack)).ObjectLockMode).toBeUndefined();
    expect(await repo.lockedObjects([pack])).toEqual(new Map());
    expect((await pruneJob(repo, 'web', { keepLast: 1 })).forgotten).toBe(1);
    const first = await collectGarbage(repo, { graceMs: 0 });
    expect(first.locked).toEqual({ packs: 0, pages: 0, extended: 0 });
    expect(first.packs.condemned).toBeGreaterThan(0);
    expect((await collectGarbage(repo, { graceMs: 0 })).packs.deleted).toBe(first.packs.condemned);
  });

  it('a copy of a locked repository in a directory or a bucket without Object Lock opens with a warning, restores, and takes backups (unlocked)', async () => {
    const { store, repo } = await lockedRepo({ mode: 'COMPLIANCE', days: 1 });
    const original = data(7, 8);
    await run(repo, 'web', original);
    const dir = await mkdtemp(join(tmpdir(), 'hoard-lock-copy-'));
    dirs.push(dir);
    const copy = await FsObjectStore.open(dir, { create: true });
    for (const key of await keys(store, '')) await copy.putIfAbsent(key, await store.get(key));
    const warnings: string[] = [];
    const opened = await Repository.open(copy, { onWarning: (m) => warnings.push(m) });
    expect(warnings).toEqual([expect.stringMatching(/was created with S3 Object Lock, but a directory cannot lock objects \(a copy\?\): it is read as usual/)]);
    expect(Buffer.compare(await restored(opened, 'web'), original)).toBe(0);
    await run(opened, 'db', data(9));
    expect(await opened.lockedObjects(await keys(copy, 'packs/'))).toEqual(new Map());

    // The same in a bucket without Object Lock: a backup there would fail if it sent lock headers.
    const plain = await S3ObjectStore.open({ ...s3StoreOptions(bucketName('copy')), create: true });
    stores.push(plain);
    for (const key of await keys(store, '')) await plain.putIfAbsent(key, await store.get(key));
    const inBucket: string[] = [];
    const fromBucket = await Repository.open(plain, { onWarning: (m) => inBucket.push(m) });
    expect(inBucket).toEqual([expect.stringMatching(/but its bucket does not have Object Lock enabled \(a copy\?\)/)]);
    await run(fromBucket, 'db', data(10));
    expect(Buffer.compare(await restored(fromBucket, 'web'), original)).toBe(0);
    const [pack] = await keys(plain, 'packs/');
    expect((await head(plain.bucket, pack)).ObjectLockMode).toBeUndefined();
  });

  it('refuses object lock on a bucket without it and on a directory, writing nothing', async () => {
    const bucket = bucketName('nolock');
    const plain = await S3ObjectStore.open({ ...s3StoreOptions(bucket), create: true });
    stores.push(plain);
    const attempt = Repository.init(plain, { objectLock: { mode: 'COMPLIANCE', days: 30 } });
    await expect(attempt).rejects.toBeInstanceOf(ObjectLockUnavailableError);
    await expect(attempt).rejects.toMatchObject({ code: 'invalid_storage', message: expect.stringMatching(/does not have Object Lock enabled/) });
    expect(await keys(plain, '')).toEqual([]);

    const dir = await mkdtemp(join(tmpdir(), 'hoard-lock-'));
    dirs.push(dir);
    const fs = await FsObjectStore.open(dir, { create: true });
    await expect(Repository.init(fs, { objectLock: { mode: 'COMPLIANCE', days: 30 } })).rejects.toThrow(/cannot lock objects: Object Lock needs an S3 bucket/);
    expect(await keys(plain, '')).toEqual([]);

    const locked = await lockedStore();
    await expect(Repository.init(locked, { objectLock: { mode: 'COMPLIANCE', days: 0 } })).rejects.toThrow(/number of days above 0/);
    await expect(Repository.init(locked, { objectLock: { mode: 'FOREVER' as 'COMPLIANCE', days: 1 } })).rejects.toThrow(/COMPLIANCE or GOVERNANCE/);
  });
});
