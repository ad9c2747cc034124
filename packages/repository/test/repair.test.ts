/**
 * Damage stays local (invariant 9) and repair (docs/repair.md), on real files: a damaged or
 * missing index segment no longer fails the whole store (its packs are read from their
 * trailers), and `repair` rebuilds segments from pack trailers, lists the snapshots whose
 * data is gone and forgets them on request.
 */
import { createHash, randomUUID } from 'node:crypto';
import { chmod, mkdtemp, open, readFile, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  FileSink,
  FsObjectStore,
  GcLockedError,
  IntegrityError,
  MetadataDamagedError,
  Repository,
  backup,
  decodeIndexSegment,
  listAll,
  repair,
  restore,
  verify,
  type BackupResult,
} from '../dist/index.js';
import { S3ObjectStore } from '../dist/s3.js';
import { s3StoreOptions } from '../../../test-support/s3-test-env.js';
import { generate, pieces } from './fixtures/test-data.mjs';

const PACK_BYTES = 4 << 20;

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hoard-repair-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const repoDir = () => join(dir, 'repo');
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function newRepo(): Promise<Repository> {
  return Repository.init(await FsObjectStore.open(repoDir(), { create: true }), { packBytes: PACK_BYTES });
}

async function reopen(warnings?: string[]): Promise<Repository> {
  return Repository.open(await FsObjectStore.open(repoDir()), { onWarning: (m) => warnings?.push(m) });
}

async function backUp(repo: Repository, seed: number, size: number, job: string): Promise<{ result: BackupResult; data: Uint8Array }> {
  const data = generate(seed, size);
  const result = await backup(repo, { stream: pieces(data), name: `disk-${seed}`, kind: 'file', expectedBytes: size }, { job, workers: 1 });
  return { result, data };
}

async function keys(repo: Repository, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const info of listAll(repo.objects, prefix)) out.push(info.key);
  return out.sort();
}

/** Index segments written by `work` (each backup writes its own). */
async function newSegments(repo: Repository, work: () => Promise<unknown>): Promise<string[]> {
  const before = new Set(await keys(repo, 'index/'));
  await work();
  return (await keys(repo, 'index/')).filter((k) => !before.has(k));
}

async function packsOf(repo: Repository, segment: string): Promise<string[]> {
  const decoded = decodeIndexSegment(segment, await repo.objects.get(segment));
  return decoded.packs.map((p) => `packs/${Buffer.from(p.packHash).toString('hex').slice(0, 2)}/${Buffer.from(p.packHash).toString('hex')}`);
}

async function flipBit(key: string, offset: number): Promise<void> {
  const path = join(repoDir(), key);
  await chmod(path, 0o644);
  const file = await open(path, 'r+');
  try {
    const b = Buffer.alloc(1);
    await file.read(b, 0, 1, offset);
    b[0] ^= 0x10;
    await file.write(b, 0, 1, offset);
  } finally {
    await file.close();
  }
}

async function restored(repo: Repository, result: BackupResult): Promise<string> {
  const target = join(dir, `restore-${result.snapshot.id}`);
  await restore(repo, result.snapshot, await FileSink.create(target));
  const bytes = await readFile(target);
  await rm(target);
  return sha256(bytes);
}

/** Two jobs with their own data, packs and segments. */
async function twoJobs(repo: Repository) {
  let vm!: { result: BackupResult; data: Uint8Array };
  let db!: { result: BackupResult; data: Uint8Array };
  const vmSegments = await newSegments(repo, async () => (vm = await backUp(repo, 1, 10 << 20, 'vm')));
  const dbSegments = await newSegments(repo, async () => (db = await backUp(repo, 2, 6 << 20, 'db')));
  expect(vmSegments).toHaveLength(1);
  expect(dbSegments).toHaveLength(1);
  return { vm, db, vmSegment: vmSegments[0], dbSegment: dbSegments[0] };
}

describe('a damaged or missing index segment stays local', () => {
  it('a damaged segment: every snapshot still restores (its packs are read from their trailers), with a warning naming it', async () => {
    const repo = await newRepo();
    const { vm, db, vmSegment } = await twoJobs(repo);
    const vmPacks = await packsOf(repo, vmSegment);
    await flipBit(vmSegment, 40);

    const warnings: string[] = [];
    const after = await reopen(warnings);
    // Before: the store's index failed to load, and with it every restore of the store.
    expect(await restored(after, db.result)).toBe(sha256(db.data));
    expect(await restored(after, vm.result)).toBe(sha256(vm.data));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(`index segment ${vmSegment} is damaged`);
    expect(warnings[0]).toMatch(/read from their own trailers/);
    expect(warnings[0]).toMatch(/hoard repair/);

    // Backups go on: with a damaged segment, its packs are offered for dedup too.
    const store = await after.storeForJob('vm');
    const index = await store.index();
    expect(index.damage.damagedSegments.map((d) => d.key)).toEqual([vmSegment]);
    expect([...index.damage.recoveredPacks].sort()).toEqual([...vmPacks].sort());
    const again = await backUp(after, 1, 10 << 20, 'vm');
    expect(again.result.bytesNew).toBe(0);
    expect(await restored(await reopen(), again.result)).toBe(sha256(vm.data));
  });

  it('a missing segment: its snapshots restore from the pack trailers; a snapshot whose pack is gone fails naming the chunk, the others restore', async () => {
    const repo = await newRepo();
    const { vm, db, vmSegment, dbSegment } = await twoJobs(repo);
    const dbPacks = await packsOf(repo, dbSegment);
    await unlink(join(repoDir(), vmSegment));
    // And db's data is really gone: its segment and one of its packs.
    await unlink(join(repoDir(), dbSegment));
    await unlink(join(repoDir(), dbPacks[0]));

    const warnings: string[] = [];
    const after = await reopen(warnings);
    expect(await restored(after, vm.result)).toBe(sha256(vm.data));
    const error = await restored(after, db.result).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(IntegrityError);
    expect((error as IntegrityError).snapshot).toBe(db.result.snapshot.key);
    expect((error as Error).message).toMatch(/chunk [0-9a-f]{64} is in no index segment/);
    // Nothing says a segment is missing (unlisted packs are also what interrupted backups
    // leave), so no warning, and backups do not deduplicate against unlisted packs: the vm
    // data is stored again, and indexed.
    expect(warnings).toEqual([]);
    const again = await backUp(after, 1, 10 << 20, 'vm');
    expect(again.result.bytesNew).toBe(vm.result.bytesNew);
    expect((await verify(await reopen(), { job: 'vm' })).ok).toBe(true);
  });
});

describe('repair', () => {
  it('rebuilds a damaged segment from the pack trailers, lists and forgets the snapshot whose pack is gone, and says what it did', async () => {
    const repo = await newRepo();
    const { vm, db, vmSegment, dbSegment } = await twoJobs(repo);
    const vmPacks = await packsOf(repo, vmSegment);
    const dbPacks = await packsOf(repo, dbSegment);
    await flipBit(vmSegment, 40);
    await unlink(join(repoDir(), dbPacks[0]));
    const indexBefore = await keys(repo, 'index/');

    // Dry run: the plan, nothing changed.
    const dry = await repair(await reopen(), { dryRun: true, forgetBroken: true });
    expect(dry.dryRun).toBe(true);
    expect(dry.segments.damaged).toEqual([{ key: vmSegment, problem: expect.stringMatching(/does not match its name/), removed: false }]);
    expect(dry.packs.reindexed.sort()).toEqual([...vmPacks].sort());
    expect(dry.segments.written).toHaveLength(1);
    expect(dry.segments.written[0]).toMatchObject({ store: 'global', packs: vmPacks.length });
    expect(dry.packs.missing).toEqual([{ key: dbPacks[0], segment: dbSegment }]);
    expect(dry.snapshots.checked).toBe(2);
    expect(dry.snapshots.broken).toHaveLength(1);
    expect(dry.snapshots.broken[0]).toMatchObject({ key: db.result.snapshot.key, job: 'db', missingPacks: [dbPacks[0]] });
    expect(dry.snapshots.broken[0].missingChunks).toBeGreaterThan(0);
    expect(dry.snapshots.broken[0].problem).toContain(dbPacks[0]);
    expect(dry.snapshots.forgotten).toEqual([db.result.snapshot.key]);
    expect(dry.ok).toBe(false);
    expect(await keys(repo, 'index/')).toEqual(indexBefore);
    expect((await (await reopen()).snapshots()).length).toBe(2);

    // For real, without forgetting: the segment is replaced, the broken snapshot listed.
    const fixed = await repair(await reopen());
    expect(fixed.segments.damaged).toEqual([{ key: vmSegment, problem: expect.any(String), removed: true }]);
    const written = fixed.segments.written[0].key;
    expect(await keys(repo, 'index/')).toEqual([dbSegment, written].sort());
    expect((await packsOf(repo, written)).sort()).toEqual([...vmPacks].sort());
    expect(fixed.snapshots.broken.map((b) => b.key)).toEqual([db.result.snapshot.key]);
    expect(fixed.snapshots.forgotten).toEqual([]);
    expect(fixed.ok).toBe(false);
    expect(await keys(repo, 'gc/')).toEqual([]); // the lock is released

    // Verify agrees: the only damage left is db's missing pack.
    const report = await verify(await reopen());
    expect(report.unreferencedPacks).toEqual([]);
    expect(report.findings.every((f) => f.object === dbPacks[0] || f.snapshot === db.result.snapshot.key)).toBe(true);
    expect(await restored(await reopen(), vm.result)).toBe(sha256(vm.data));

    // Forget what is gone: exactly the db snapshot.
    const forgot = await repair(await reopen(), { forgetBroken: true });
    expect(forgot.segments.written).toEqual([]);
    expect(forgot.snapshots.forgotten).toEqual([db.result.snapshot.key]);
    expect(forgot.ok).toBe(true);
    expect((await (await reopen()).snapshots()).map((s) => s.key)).toEqual([vm.result.snapshot.key]);
    const clean = await repair(await reopen(), { dryRun: true });
    expect(clean.ok).toBe(true);
    expect(clean.snapshots.broken).toEqual([]);
  });

  it('a rebuilt segment with the bytes (so the name) of the damaged one replaces it', async () => {
    const repo = await newRepo();
    let small!: { result: BackupResult; data: Uint8Array };
    const [segment] = await newSegments(repo, async () => (small = await backUp(repo, 7, 1 << 20, 'small')));
    expect(await packsOf(repo, segment)).toHaveLength(1);
    const original = await readFile(join(repoDir(), segment));
    await flipBit(segment, 40);

    const run = await repair(await reopen());
    expect(run.segments.written.map((w) => w.key)).toEqual([segment]);
    expect(run.segments.damaged).toEqual([{ key: segment, problem: expect.any(String), removed: true }]);
    expect(run.ok).toBe(true);
    expect(await keys(repo, 'index/')).toEqual([segment]);
    expect(Buffer.compare(await readFile(join(repoDir(), segment)), original)).toBe(0);
    expect((await verify(await reopen())).ok).toBe(true);
    expect(await restored(await reopen(), small.result)).toBe(sha256(small.data));
  });

  it('keeps protected broken snapshots, and refuses to run while gc/lock is held', async () => {
    const repo = await newRepo();
    const { db, dbSegment } = await twoJobs(repo);
    await repo.protectSnapshot(db.result.snapshot.key);
    await unlink(join(repoDir(), (await packsOf(repo, dbSegment))[0]));

    await repo.objects.putIfAbsent('gc/lock', Buffer.from(JSON.stringify({ version: 1, startedAt: '2026-12-01T00:00:00.000Z', host: 'gc-host', pid: 42 })));
    const locked = await repair(await reopen(), { forgetBroken: true }).catch((err: unknown) => err);
    expect(locked).toBeInstanceOf(GcLockedError);
    expect((locked as Error).message).toMatch(/gc-host \(pid 42\)/);
    const dry = await repair(await reopen(), { dryRun: true });
    expect(dry.notes.join('\n')).toMatch(/gc\/lock is held/);

    const run = await repair(await reopen(), { forgetBroken: true, breakLock: true });
    expect(run.snapshots.broken.map((b) => [b.key, b.protected])).toEqual([[db.result.snapshot.key, true]]);
    expect(run.snapshots.forgotten).toEqual([]);
    expect(run.snapshots.kept).toEqual([{ key: db.result.snapshot.key, reason: expect.stringMatching(/protected/) }]);
    expect(run.ok).toBe(false);
    expect(await keys(repo, 'gc/')).toEqual([]);
  });
});

describe('damaged metadata is damage, not "not found"', () => {
  it('a job whose only manifest is damaged, a newest manifest that is damaged, a store record that is gone', async () => {
    const repo = await newRepo();
    const first = await backUp(repo, 3, 1 << 20, 'vm');
    await new Promise((r) => setTimeout(r, 1100)); // another finish second
    const second = await backUp(repo, 4, 1 << 20, 'vm');
    await flipBit(second.result.snapshot.key, 30);

    // The newest is damaged: not silently the older one instead.
    const newest = await (await reopen()).findSnapshot('vm').catch((err: unknown) => err);
    expect(newest).toBeInstanceOf(MetadataDamagedError);
    expect((newest as Error).message).toContain(second.result.snapshot.key);
    // By id the older one is still there.
    expect((await (await reopen()).findSnapshot('vm', { id: first.result.snapshot.id })).key).toBe(first.result.snapshot.key);

    await flipBit(first.result.snapshot.key, 30);
    const none = await (await reopen()).findSnapshot('vm').catch((err: unknown) => err);
    expect(none).toBeInstanceOf(MetadataDamagedError);
    expect((none as Error).message).toMatch(/no readable snapshot, 2 damaged manifest/);

    const other = await backUp(repo, 5, 1 << 20, 'db');
    await unlink(join(repoDir(), 'stores', 'global'));
    const gone = await restore(await reopen(), other.result.snapshot, await FileSink.create(join(dir, 'x'))).catch((err: unknown) => err);
    expect(gone).toBeInstanceOf(MetadataDamagedError);
    expect((gone as Error).message).toMatch(/has no readable record/);
  });
});

describe('on S3 (Ceph RGW)', () => {
  it('a damaged segment: both jobs restore; repair rebuilds it from ranged trailer reads; --forget-broken forgets the snapshot whose pack is gone', async () => {
    const bucket = `hoard-repair-test-${randomUUID().slice(0, 8)}`;
    (await S3ObjectStore.open({ ...s3StoreOptions(bucket), create: true })).close();
    const objects = new S3ObjectStore(s3StoreOptions(bucket, { prefix: 'r' }));
    try {
      const repo = await Repository.init(objects, { packBytes: PACK_BYTES });
      const { vm, db, vmSegment, dbSegment } = await twoJobs(repo);
      const damaged = Buffer.from(await objects.get(vmSegment));
      damaged[40] ^= 0x10;
      await objects.deleteMany([vmSegment]);
      expect(await objects.putIfAbsent(vmSegment, damaged)).toBe(true);
      const dbPack = (await packsOf(repo, dbSegment))[0];
      await objects.deleteMany([dbPack]);

      const warnings: string[] = [];
      const open = () => Repository.open(objects, { onWarning: (m) => warnings.push(m) });
      expect(await restored(await open(), vm.result)).toBe(sha256(vm.data));
      expect(warnings.join('\n')).toContain(vmSegment);
      expect(await restored(await open(), db.result).catch((err: unknown) => err)).toBeInstanceOf(IntegrityError);

      const run = await repair(await open(), { forgetBroken: true });
      expect(run.segments.damaged.map((d) => [d.key, d.removed])).toEqual([[vmSegment, true]]);
      expect(run.segments.written).toHaveLength(1);
      expect(run.snapshots.forgotten).toEqual([db.result.snapshot.key]);
      expect(run.ok).toBe(true);
      // What is left is GC's: db's segment still names the pack that is gone.
      const report = await verify(await open());
      expect(report.findings.map((f) => f.object)).toEqual([dbPack]);
      expect(await restored(await open(), vm.result)).toBe(sha256(vm.data));
    } finally {
      const keys: string[] = [];
      for await (const object of listAll(objects, '')) keys.push(object.key);
      await objects.deleteMany(keys);
      objects.close();
    }
  });
});
