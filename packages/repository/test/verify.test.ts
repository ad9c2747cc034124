import { createHash } from 'node:crypto';
import { chmod, mkdtemp, open, readFile, rm, stat, truncate, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  FileSink,
  FsObjectStore,
  IntegrityError,
  PackWriter,
  Repository,
  backup,
  listAll,
  readPackTrailer,
  restore,
  verify,
  type BackupResult,
  type VerifyReport,
} from '../dist/index.js';
import { generate, pieces } from './fixtures/test-data.mjs';

const SCRYPT = { N: 1024, r: 8, p: 1 };
const PACK_BYTES = 4 << 20;
const PASSPHRASE = 'correct horse battery staple';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hoard-verify-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const repoDir = () => join(dir, 'repo');

async function newRepo(passphrase?: string): Promise<Repository> {
  const objects = await FsObjectStore.open(repoDir(), { create: true });
  return Repository.init(objects, { passphrase, packBytes: PACK_BYTES, scryptCost: SCRYPT });
}

async function reopen(passphrase?: string): Promise<Repository> {
  return Repository.open(await FsObjectStore.open(repoDir()), { passphrase, scryptCost: SCRYPT });
}

async function backUp(repo: Repository, seed: number, size: number, job = 'vm'): Promise<{ result: BackupResult; data: Uint8Array }> {
  const data = generate(seed, size);
  const result = await backup(repo, { stream: pieces(data), name: `disk-${seed}`, kind: 'file', expectedBytes: size }, { job, workers: 1 });
  return { result, data };
}

async function packKeys(repo: Repository): Promise<string[]> {
  const keys: string[] = [];
  for await (const info of listAll(repo.objects, 'packs/')) keys.push(info.key);
  return keys;
}

/** Files of an fs store are read-only; tests that damage them make them writable first. */
async function writable(key: string): Promise<string> {
  const path = join(repoDir(), key);
  await chmod(path, 0o644);
  return path;
}

async function flipBit(key: string, offset: number): Promise<void> {
  const file = await open(await writable(key), 'r+');
  try {
    const b = Buffer.alloc(1);
    await file.read(b, 0, 1, offset);
    b[0] ^= 0x10;
    await file.write(b, 0, 1, offset);
  } finally {
    await file.close();
  }
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function expectClean(report: VerifyReport): void {
  expect(report.findings).toEqual([]);
  expect(report.ok).toBe(true);
}

describe('verify', () => {
  it('passes a clean repository, structure and data, and counts what it checked', async () => {
    const repo = await newRepo();
    const a = await backUp(repo, 1, 10 << 20);
    const b = await backUp(repo, 2, 6 << 20, 'db');
    const packs = await packKeys(repo);
    expect(packs.length).toBeGreaterThanOrEqual(3);

    const phases = new Set<string>();
    const structure = await verify(await reopen(), { onProgress: (p) => phases.add(p.phase) });
    expectClean(structure);
    expect(structure.snapshots).toBe(2);
    expect(structure.packs).toBe(packs.length);
    expect(structure.segments).toBeGreaterThanOrEqual(2);
    expect(structure.pages).toBe(2);
    expect(structure.unreferencedPacks).toEqual([]);
    expect(structure.bytesRead).toBe(0);
    expect(structure.blobsChecked).toBe(0);
    expect([...phases]).toEqual(['stores', 'segments', 'packs', 'snapshots']);

    const data = await verify(await reopen(), { readData: true });
    expectClean(data);
    expect(data.packsRead).toBe(packs.length);
    expect(data.blobsChecked).toBe(a.result.chunksNew + b.result.chunksNew);
    expect(data.bytesRead).toBe(a.result.bytesStored + b.result.bytesStored);
    expect(data.notes).toEqual([]);

    const subset = await verify(await reopen(), { readData: true, subsetPercent: 1 });
    expectClean(subset);
    expect(subset.packsRead).toBe(1);
    expect(subset.notes.join('\n')).toMatch(new RegExp(`1 of ${packs.length} packs \\(1%\\) chosen at random`));

    // The job filter: only that job's snapshots.
    const db = await verify(await reopen(), { job: 'db' });
    expectClean(db);
    expect(db.snapshots).toBe(1);
  });

  it('a flipped bit in a blob passes the structure check, is found by --read-data (pack and offset) and fails restore naming the pack', async () => {
    const repo = await newRepo();
    const { result } = await backUp(repo, 3, 8 << 20);
    const [packKey] = await packKeys(repo);
    const trailer = await readPackTrailer(repo.objects, packKey);
    const victim = trailer.entries[Math.floor(trailer.entries.length / 2)];
    await flipBit(packKey, victim.offset + Math.floor(victim.storedLength / 2));

    expectClean(await verify(await reopen()));

    const report = await verify(await reopen(), { readData: true });
    expect(report.ok).toBe(false);
    const blob = report.findings.filter((f) => f.snapshot === undefined);
    expect(blob).toHaveLength(1);
    expect(blob[0]).toMatchObject({ object: packKey, offset: victim.offset });
    expect(blob[0].problem).toMatch(/checksum check/);
    // ...and the snapshot that needs the blob is named too, at a logical offset.
    const affected = report.findings.filter((f) => f.snapshot !== undefined);
    expect(affected).toHaveLength(1);
    expect(affected[0]).toMatchObject({ snapshot: result.snapshot.key, object: packKey });
    expect(affected[0].offset).toBeGreaterThanOrEqual(0);
    expect(affected[0].offset).toBeLessThan(8 << 20);
    expect(affected[0].problem).toContain(`pack offset ${victim.offset}`);

    const target = join(dir, 'restored');
    const error = await restore(await reopen(), result.snapshot, await FileSink.create(target)).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(IntegrityError);
    expect((error as IntegrityError).object).toBe(packKey);
    expect((error as IntegrityError).snapshot).toBe(result.snapshot.key);
    expect((error as IntegrityError).offset).toBe(affected[0].offset);
  });

  it('a truncated pack is a structural finding, for the pack and for the snapshot that needs it', async () => {
    const repo = await newRepo();
    const { result } = await backUp(repo, 4, 8 << 20);
    const [packKey] = await packKeys(repo);
    const path = await writable(packKey);
    await truncate(path, (await stat(path)).size - 100);

    const report = await verify(await reopen());
    expect(report.ok).toBe(false);
    expect(report.findings.find((f) => f.snapshot === undefined)).toMatchObject({ object: packKey });
    const snap = report.findings.find((f) => f.snapshot !== undefined);
    expect(snap).toMatchObject({ snapshot: result.snapshot.key, object: packKey });
    expect(snap!.problem).toMatch(/chunks from this offset on are affected/);
    expect(report.findings).toHaveLength(2);
  });

  it('a deleted pack is found and the snapshots that need it are named', async () => {
    const repo = await newRepo();
    const a = await backUp(repo, 5, 6 << 20);
    const b = await backUp(repo, 5, 6 << 20, 'copy'); // same data: needs the same packs
    const [packKey] = await packKeys(repo);
    await unlink(join(repoDir(), packKey));

    const report = await verify(await reopen());
    expect(report.ok).toBe(false);
    const packFinding = report.findings.find((f) => f.snapshot === undefined);
    expect(packFinding).toMatchObject({ object: packKey });
    expect(packFinding!.problem).toMatch(/pack is missing \(named by index segment index\//);
    const snapshots = report.findings.filter((f) => f.snapshot !== undefined).map((f) => f.snapshot);
    expect(snapshots.sort()).toEqual([a.result.snapshot.key, b.result.snapshot.key].sort());
    // A missing pack is not "unreferenced": that list is for packs nobody names.
    expect(report.unreferencedPacks).toEqual([]);
  });

  it('a deleted chunk-list page is a finding naming the snapshot', async () => {
    const repo = await newRepo();
    const { result } = await backUp(repo, 6, 4 << 20);
    const pages: string[] = [];
    for await (const info of listAll(repo.objects, 'chunklists/')) pages.push(info.key);
    expect(pages).toHaveLength(1);
    await unlink(join(repoDir(), pages[0]));

    const report = await verify(await reopen());
    expect(report.ok).toBe(false);
    expect(report.findings).toEqual([{ snapshot: result.snapshot.key, object: pages[0], offset: 0, problem: 'chunk-list page 0 is missing' }]);
  });

  it('a damaged manifest or index segment is a finding, and the run goes on', async () => {
    const repo = await newRepo();
    const a = await backUp(repo, 7, 5 << 20);
    await backUp(repo, 8, 5 << 20, 'other');
    await flipBit(a.result.snapshot.key, 20);
    const segments: string[] = [];
    for await (const info of listAll(repo.objects, 'index/')) segments.push(info.key);
    await flipBit(segments[0], 40);

    const report = await verify(await reopen());
    expect(report.ok).toBe(false);
    expect(report.findings.find((f) => f.object === a.result.snapshot.key)?.problem).toMatch(/does not match its name/);
    expect(report.findings.find((f) => f.object === segments[0])?.problem).toMatch(/does not match its name/);
    // The segment's packs are now named by nobody; the other job's snapshot may need them.
    expect(report.unreferencedPacks.length).toBeGreaterThan(0);
    expect(report.snapshots).toBe(1);
  });

  it('reports a pack no segment names (an interrupted backup) as unreferenced, not as a finding', async () => {
    const repo = await newRepo();
    await backUp(repo, 9, 5 << 20);
    const store = await repo.storeByName('global');
    const writer = new PackWriter(store.idBytes, PACK_BYTES);
    const chunk = generate(99, 100_000);
    writer.add(store.fingerprinter.digest(chunk), await store.codec.encode(chunk, store.fingerprinter.digest(chunk)));
    const sealed = writer.seal();
    await repo.objects.putIfAbsent(sealed.key, sealed.bytes);

    const report = await verify(await reopen(), { readData: true });
    expectClean(report);
    expect(report.unreferencedPacks).toEqual([sealed.key]);
  });

  it('checks an encrypted repository without its passphrase: structure fully, data by checksum only', async () => {
    const repo = await newRepo(PASSPHRASE);
    const { result } = await backUp(repo, 10, 9 << 20);
    const packs = await packKeys(repo);

    const structure = await verify(await reopen());
    expectClean(structure);
    expect(structure.packs).toBe(packs.length);

    const checksums = await verify(await reopen(), { readData: true });
    expectClean(checksums);
    expect(checksums.blobsChecked).toBe(result.chunksNew);
    expect(checksums.notes.join('\n')).toMatch(
      /store global is encrypted and no passphrase was given: its blobs were checked against their xxh64 checksums only/,
    );

    const full = await verify(await reopen(PASSPHRASE), { readData: true });
    expectClean(full);
    expect(full.notes).toEqual([]);

    // Damage without the passphrase is still found by checksum.
    const trailer = await readPackTrailer(repo.objects, packs[0]);
    await flipBit(packs[0], trailer.entries[0].offset + 5);
    const damaged = await verify(await reopen(), { readData: true });
    expect(damaged.ok).toBe(false);
    expect(damaged.findings[0]).toMatchObject({ object: packs[0], offset: 0 });

    // A wrong passphrase is a finding about the store's key file, the data still gets its checksums checked.
    const wrong = await verify(await reopen('wrong'), { readData: true });
    expect(wrong.findings.some((f) => f.object === 'stores/global' && /cannot open the store's keys/.test(f.problem))).toBe(true);
    expect(wrong.findings.some((f) => f.object === packs[0])).toBe(true);
  });

  it('restores what verify passed', async () => {
    const repo = await newRepo(PASSPHRASE);
    const { result, data } = await backUp(repo, 11, 6 << 20);
    expectClean(await verify(await reopen(PASSPHRASE), { readData: true }));
    const target = join(dir, 'out');
    await restore(await reopen(PASSPHRASE), result.snapshot, await FileSink.create(target));
    expect(sha256(await readFile(target))).toBe(sha256(data));
  });
});
