/**
 * `hoard sync` in the library (issue 15, item 6): snapshots copied between two real
 * repositories, a directory and Ceph RGW, with different codecs and keys; a second sync
 * copies nothing; a later snapshot copies only its new blobs; a sync stopped part-way
 * (a store that fails from some pack on) leaves the target consistent and the next sync
 * completes it; and the copy restores byte for byte after the source is deleted.
 */
import { randomUUID } from 'node:crypto';
import { chmod, mkdtemp, open, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  backup,
  FsObjectStore,
  GLOBAL_STORE,
  listAll,
  Repository,
  syncRepositories,
  verify,
  type BackupResult,
  type ObjectStore,
  type SnapshotInfo,
  type SyncReport,
} from '../dist/index.js';
import { restored } from './restored.js';
import { S3ObjectStore } from '../dist/s3.js';
import { s3StoreOptions } from '../../../test-support/s3-test-env.js';

const MiB = 1024 * 1024;
const PACK_BYTES = 4 * MiB;
const BUCKET = `hoard-sync-${randomUUID().slice(0, 8)}`;
const FAST_KDF = { scryptCost: { N: 1024, r: 8, p: 1 } };

let dir: string;
const opened: S3ObjectStore[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hoard-sync-'));
  const store = await S3ObjectStore.open({ ...s3StoreOptions(BUCKET), create: true });
  store.close();
});
afterAll(async () => {
  for (const store of opened.splice(0)) store.close();
  await rm(dir, { recursive: true, force: true });
});

/** Deterministic incompressible bytes (xorshift32). */
function noise(seed: number, size: number): Buffer {
  const out = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i + 4 <= size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.writeUInt32LE(x >>> 0, i);
  }
  return out;
}

/** Day 2 of `day1`: 1 MiB in the middle rewritten and 2 MiB of zeros appended. */
function nextDay(day1: Buffer): Buffer {
  const day2 = Buffer.concat([day1, Buffer.alloc(2 * MiB)]);
  noise(99, MiB).copy(day2, 4 * MiB);
  return day2;
}

let names = 0;
async function fsRepo(options: { passphrase?: string } = {}): Promise<{ repo: Repository; path: string }> {
  const path = join(dir, `repo-${names++}`);
  const repo = await Repository.init(await FsObjectStore.open(path, { create: true }), { packBytes: PACK_BYTES, ...options, ...FAST_KDF });
  return { repo, path };
}

async function s3Repo(options: { passphrase?: string } = {}): Promise<{ repo: Repository; objects: S3ObjectStore }> {
  const objects = new S3ObjectStore(s3StoreOptions(BUCKET, { prefix: `r${names++}-${randomUUID().slice(0, 8)}` }));
  opened.push(objects);
  const repo = await Repository.init(objects, { packBytes: PACK_BYTES, ...options, ...FAST_KDF });
  return { repo, objects };
}

async function* pieces(bytes: Buffer): AsyncGenerator<Uint8Array> {
  for (let o = 0; o < bytes.length; o += 256 * 1024) yield bytes.subarray(o, o + 256 * 1024);
}

function backupOf(repo: Repository, bytes: Buffer, job = 'db', streamHashOver?: 'bytes'): Promise<BackupResult> {
  return backup(repo, { stream: pieces(bytes), name: 'dump', kind: 'stream' }, { job, chunking: 'db-dump', workers: 0, streamHashOver });
}

/** Until the next second: manifests carry their finish time to the second. */
const nextSecond = () => new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 5));

/** Restores through a repository opened afresh on `objects` (its index read from the bucket now). */
function restoredFrom(objects: ObjectStore, snapshot: SnapshotInfo, passphrase?: string): Promise<Buffer> {
  return restored(objects, snapshot, { passphrase, ...FAST_KDF });
}

async function objectKeys(objects: ObjectStore): Promise<string[]> {
  const keys: string[] = [];
  for await (const info of listAll(objects, '')) keys.push(info.key);
  return keys.sort();
}

function expectSound(report: SyncReport): void {
  expect(report.ok).toBe(true);
  expect(report.verification?.ok).toBe(true);
  expect(report.verification?.checks.every((c) => c.problems.length === 0)).toBe(true);
}

describe('hoard sync: fs -> RGW, different codec and keys', () => {
  it('copies, copies nothing the second time, copies only new blobs later, and restores with the source gone', async () => {
    const source = await fsRepo();
    const target = await s3Repo({ passphrase: 'offsite secret' });
    const day1 = noise(1, 10 * MiB);
    const first = await backupOf(source.repo, day1);

    const r1 = await syncRepositories(source.repo, target.repo, { verifyData: true });
    expectSound(r1);
    expect(r1.copied).toBe(1);
    expect(r1.verification?.dataChecked).toBe(true);
    expect(r1.verification?.bytesChecked).toBe(day1.length);
    // Every chunk of day 1 is distinct: each is one blob in the target.
    expect(r1.blobsWritten).toBe(first.chunksNew);
    const copy1 = (await target.repo.snapshots('db'))[0];
    expect(copy1.meta.origin).toEqual({ repository: source.repo.config.id, snapshot: first.snapshot.key });
    expect(copy1.meta.finishedAt).toBe(first.snapshot.meta.finishedAt);
    expect(copy1.meta.store).not.toBe(first.snapshot.meta.store);
    // Re-fingerprinted with the target's key: another chunk list, another stream hash.
    expect(copy1.meta.streamHash).not.toBe(first.snapshot.meta.streamHash);

    // Again: nothing to copy, not one object written.
    const before = await objectKeys(target.objects);
    const r2 = await syncRepositories(source.repo, target.repo);
    expect(r2.copied).toBe(0);
    expect(r2.present).toBe(1);
    expect(r2.blobsWritten).toBe(0);
    expect(await objectKeys(target.objects)).toEqual(before);

    // Day 2: only what changed is written to the target.
    await nextSecond();
    const day2 = nextDay(day1);
    const second = await backupOf(source.repo, day2);
    expect(second.chunksNew).toBeGreaterThan(0);
    expect(second.chunksNew).toBeLessThan(second.chunks / 4);
    const r3 = await syncRepositories(source.repo, target.repo, { jobs: ['db'] });
    expectSound(r3);
    expect(r3.copied).toBe(1);
    expect(r3.present).toBe(1);
    expect(r3.blobsWritten).toBe(second.chunksNew);
    expect(r3.bytesNew).toBe(second.bytesNew);
    const copies = await target.repo.snapshots('db');
    expect(copies.map((s) => s.meta.origin?.snapshot)).toEqual([second.snapshot.key, first.snapshot.key]);
    // The copy's parent is the copy of the source's parent.
    expect(copies[0].meta.parent).toBe(copies[1].key);

    // The primary is gone: the copies restore byte for byte from the target alone.
    await rm(source.path, { recursive: true, force: true });
    const fresh = new S3ObjectStore(s3StoreOptions(BUCKET, { prefix: target.objects.prefix }));
    opened.push(fresh);
    expect((await restoredFrom(fresh, copies[1], 'offsite secret')).equals(day1)).toBe(true);
    expect((await restoredFrom(fresh, copies[0], 'offsite secret')).equals(day2)).toBe(true);
    const check = await verify(await Repository.open(fresh, { passphrase: 'offsite secret', ...FAST_KDF }), { readData: true });
    expect(check.findings).toEqual([]);
  });
});

describe('hoard sync: RGW -> fs', () => {
  it('between two encrypted repositories of different keys, with a byte-hashed source snapshot', async () => {
    const source = await s3Repo({ passphrase: 'primary' });
    const target = await fsRepo({ passphrase: 'secondary' });
    const data = Buffer.concat([noise(7, 6 * MiB), Buffer.alloc(MiB), noise(8, MiB)]);
    const made = await backupOf(source.repo, data, 'web', 'bytes');
    expect(made.snapshot.meta.streamHashOver).toBeUndefined();
    const report = await syncRepositories(source.repo, target.repo, { verifyData: true });
    expectSound(report);
    const [copy] = await target.repo.snapshots('web');
    // The source's byte hash was checked on the way; the copy is hashed over its chunk list.
    expect(copy.meta.streamHashOver).toBe('chunks');
    expect((await restoredFrom(await FsObjectStore.open(target.path), copy, 'secondary')).equals(data)).toBe(true);
  });

  it('between unencrypted repositories reads only the blobs the target lacks', async () => {
    const { repo: source } = await s3Repo();
    const target = await fsRepo();
    const day1 = noise(3, 8 * MiB);
    await backupOf(source, day1);
    expectSound(await syncRepositories(source, target.repo));
    await nextSecond();
    const day2 = nextDay(day1);
    const second = await backupOf(source, day2);
    const report = await syncRepositories(source, target.repo);
    expectSound(report);
    expect(report.blobsWritten).toBe(second.chunksNew);
    // Only the new chunks were fetched (plus what lies between them in a ranged read),
    // not the 8 MiB the snapshot shares with day 1.
    expect(report.bytesFetched).toBeLessThan(2 * MiB);
    const [copy] = await target.repo.snapshots('db');
    // Same fingerprints, same chunk list: the stream hash is the source's.
    expect(copy.meta.streamHash).toBe(second.snapshot.meta.streamHash);
    expect((await restoredFrom(await FsObjectStore.open(target.path), copy)).equals(day2)).toBe(true);
  });
});

describe('hoard sync: paired encrypted stores (sync.md, "Paired stores")', () => {
  it('read only the blobs the target lacks, in the global store paired at init and in a job store sync creates; the data keys stay apart', async () => {
    const source = await s3Repo({ passphrase: 'primary' });
    const sourceGlobal = await source.repo.storeByName(GLOBAL_STORE);
    const path = join(dir, `repo-${names++}`);
    const target = await Repository.init(await FsObjectStore.open(path, { create: true }), {
      packBytes: PACK_BYTES,
      passphrase: 'secondary',
      globalPairing: sourceGlobal.pairing(),
      ...FAST_KDF,
    });
    const day1 = noise(13, 8 * MiB);
    await backupOf(source.repo, day1);
    // A job with a store of its own: the target has no such store until sync creates it.
    const own = (bytes: Buffer) =>
      backup(source.repo, { stream: pieces(bytes), name: 'dump', kind: 'stream' }, { job: 'mail', store: 'mail-own', chunking: 'db-dump', workers: 0 });
    await own(noise(14, 4 * MiB));
    expectSound(await syncRepositories(source.repo, target));
    await nextSecond();
    const day2 = nextDay(day1);
    const second = await backupOf(source.repo, day2);
    const mail2 = await own(Buffer.concat([noise(14, 4 * MiB), noise(15, MiB)]));
    const report = await syncRepositories(source.repo, target);
    expectSound(report);
    expect(report.snapshots.filter((e) => e.status === 'copied')).toHaveLength(2);
    expect(report.blobsWritten).toBe(second.chunksNew + mail2.chunksNew);
    // Only the new chunks of both were read, not the 12 MiB they share with day 1.
    expect(report.bytesFetched).toBeLessThan(4 * MiB);
    for (const [job, made] of [
      ['db', second],
      ['mail', mail2],
    ] as const) {
      const copy = (await target.snapshots(job)).find((s) => s.meta.origin?.snapshot === made.snapshot.key)!;
      // One fingerprint per chunk on both sides: the chunk list, and so the stream hash, are the source's.
      expect(copy.meta.streamHash).toBe(made.snapshot.meta.streamHash);
      expect(
        (await restoredFrom(await FsObjectStore.open(path), copy, 'secondary')).equals(
          job === 'db' ? day2 : Buffer.concat([noise(14, 4 * MiB), noise(15, MiB)]),
        ),
      ).toBe(true);
    }
    for (const name of [GLOBAL_STORE, 'mail-own']) {
      const a = await source.repo.storeByName(name);
      const b = await target.storeByName(name);
      expect(Buffer.from(b.decodeKeys().fingerprintKey!).equals(Buffer.from(a.decodeKeys().fingerprintKey!))).toBe(true);
      expect(Buffer.from(b.decodeKeys().dataKey!).equals(Buffer.from(a.decodeKeys().dataKey!))).toBe(false);
    }
  });

  it('an unencrypted repository cannot be paired', async () => {
    const source = await s3Repo({ passphrase: 'primary' });
    const pairing = (await source.repo.storeByName(GLOBAL_STORE)).pairing();
    await expect(Repository.init(await FsObjectStore.open(join(dir, `repo-${names++}`), { create: true }), { globalPairing: pairing })).rejects.toThrow(
      /encrypted repositories only/,
    );
  });
});

/** An object store that refuses every put of a pack after the first `packs` (the sync stopped there). */
function failingAfter(inner: ObjectStore, packs: number): ObjectStore {
  let seen = 0;
  return {
    location: inner.location,
    readConcurrency: inner.readConcurrency,
    putIfAbsent: async (key, data) => {
      if (key.startsWith('packs/') && ++seen > packs) throw new Error(`injected failure: put ${key}`);
      return inner.putIfAbsent(key, data);
    },
    get: (key, range) => inner.get(key, range),
    head: (key) => inner.head(key),
    list: (prefix, options) => inner.list(prefix, options),
    deleteMany: (keys) => inner.deleteMany(keys),
  };
}

describe('hoard sync: stopped and resumed', () => {
  it('a sync that fails part-way leaves a consistent target, and the next one completes it', async () => {
    const source = await fsRepo();
    const target = await s3Repo();
    const days = [noise(11, 9 * MiB), noise(12, 9 * MiB), noise(13, 9 * MiB)];
    for (const [i, day] of days.entries()) {
      if (i > 0) await nextSecond();
      await backupOf(source.repo, day);
    }
    // Two snapshots' worth of packs (3 each) and one more: the third copy dies part-way.
    const broken = await Repository.open(failingAfter(target.objects, 7));
    await expect(syncRepositories(source.repo, broken)).rejects.toThrow(/injected failure/);
    const partial = await target.repo.snapshots('db');
    expect(partial.length).toBe(2);
    const midway = await verify(await Repository.open(target.objects));
    expect(midway.findings).toEqual([]);

    const report = await syncRepositories(source.repo, await Repository.open(target.objects), { verifyData: true });
    expectSound(report);
    expect(report.copied).toBe(1);
    expect(report.present).toBe(2);
    const copies = (await target.repo.snapshots('db')).reverse();
    expect(copies.length).toBe(3);
    for (const [i, copy] of copies.entries()) expect((await restoredFrom(target.objects, copy)).equals(days[i])).toBe(true);
  });
});

async function flipByteOfFirstPack(root: string): Promise<void> {
  const packDirs = await readdir(join(root, 'packs'));
  const pack = join(root, 'packs', packDirs[0], (await readdir(join(root, 'packs', packDirs[0])))[0]);
  await chmod(pack, 0o644);
  const file = await open(pack, 'r+');
  try {
    const b = Buffer.alloc(1);
    await file.read(b, 0, 1, 100);
    b[0] ^= 0x01;
    await file.write(b, 0, 1, 100);
  } finally {
    await file.close();
  }
}

describe('hoard sync: what it refuses', () => {
  it('a damaged source blob fails the copy and commits nothing', async () => {
    const source = await fsRepo();
    const target = await fsRepo();
    await backupOf(source.repo, noise(21, 5 * MiB));
    await flipByteOfFirstPack(source.path);
    const reopened = await Repository.open(await FsObjectStore.open(source.path));
    await expect(syncRepositories(reopened, target.repo)).rejects.toMatchObject({ code: 'data_damaged' });
    expect(await target.repo.snapshots()).toEqual([]);
  });

  it('the same repository twice, and an encrypted source into an unencrypted target', async () => {
    const plain = await fsRepo();
    const secret = await fsRepo({ passphrase: 'x' });
    await expect(syncRepositories(plain.repo, plain.repo)).rejects.toMatchObject({
      code: 'invalid_arguments',
      message: expect.stringMatching(/same repository/),
    });
    await expect(syncRepositories(secret.repo, plain.repo)).rejects.toMatchObject({ code: 'invalid_arguments', message: expect.stringMatching(/unencrypted/) });
  });

  it('a dry run writes nothing; a copy of a copy is recognised (A -> B, B -> C, then A -> C copies nothing)', async () => {
    const a = await fsRepo();
    const b = await fsRepo();
    const c = await fsRepo();
    await backupOf(a.repo, noise(31, 2 * MiB), 'x');
    const dry = await syncRepositories(a.repo, b.repo, { dryRun: true });
    expect(dry.snapshots.map((s) => s.status)).toEqual(['to-copy']);
    expect(await b.repo.snapshots()).toEqual([]);
    expectSound(await syncRepositories(a.repo, b.repo));
    expectSound(await syncRepositories(b.repo, c.repo));
    const again = await syncRepositories(a.repo, c.repo);
    expect(again.copied).toBe(0);
    expect(again.present).toBe(1);
    const [copy] = await c.repo.snapshots('x');
    expect(copy.meta.origin?.repository).toBe(a.repo.config.id);
  });
});
