/**
 * The repository's embedded backup/restore path, end to end, as a vitest suite that runs
 * on any ObjectStore: repository.test.ts calls it for the fs store, repository-s3.test.ts
 * for S3 (the run's Ceph RGW). `makeObjectStore` is called once per test (and once for the
 * large snapshot the restore pipeline's bound tests share) and must return an empty store.
 *
 * All data is seeded (fixtures/data.ts), a few MiB at most, except that one snapshot,
 * which must be larger than the bound it checks; packs are 4 MiB so several appear; the
 * chunker runs with one worker (zero where a test needs chunks to flow before the stream
 * ends).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Blake3Hasher } from '@napi-rs/blake-hash';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  FileSink,
  IntegrityError,
  PassphraseRequiredError,
  Repository,
  RepositoryError,
  RepositoryExistsError,
  RepositoryNotFoundError,
  SnapshotNotFoundError,
  SourceError,
  DecodePool,
  DecodeWorkerError,
  RESTORE_MEMORY,
  RestoreWriteError,
  StoreScopeError,
  StreamSink,
  WrongPassphraseError,
  backup,
  decodePage,
  encodeManifest,
  listAll,
  readPackTrailer,
  restore,
  type BackupProgress,
  type BackupResult,
  type ChunkRef,
  type ObjectStore,
  type RestoreSink,
  type SnapshotInfo,
  type SourceKind,
} from '../dist/index.js';
import { KiB, MiB, contains, failingAfter, gated, image, oddPieces, seededBytes, sentinel } from './fixtures/data.js';
import type { StoreUnderTest } from './store-contract.js';

const SCRYPT = { N: 1024, r: 8, p: 1 };
const PACK_BYTES = 4 * MiB;
const PASSPHRASE = 'correct horse battery staple';

type Mode = 'plain' | 'encrypted';
const MODES: Mode[] = ['plain', 'encrypted'];

interface Source {
  /** Bytes (handed out as one stream of 256 KiB pieces), or a ready-made stream. */
  data?: Uint8Array;
  stream?: AsyncIterable<Uint8Array> | NodeJS.ReadableStream;
  name?: string;
  kind?: SourceKind;
  expectedBytes?: number;
}

async function* pieces(data: Uint8Array, size = 256 * KiB): AsyncGenerator<Uint8Array> {
  for (let offset = 0; offset < data.length; offset += size) yield data.subarray(offset, offset + size);
}

function run(
  repo: Repository,
  job: string,
  source: Source,
  options: { store?: string; workers?: number; onProgress?: (p: BackupProgress) => void; streamHashOver?: 'bytes' | 'chunks' } = {},
): Promise<BackupResult> {
  return backup(
    repo,
    {
      stream: source.stream ?? pieces(source.data ?? new Uint8Array(0)),
      name: source.name ?? 'source',
      kind: source.kind ?? 'file',
      expectedBytes: source.expectedBytes,
    },
    // One chunker worker (low CPU, and the worker path is the one users run); in-thread for
    // small inputs, where starting the worker would cost more than the chunking.
    {
      job,
      store: options.store,
      workers: options.workers ?? (source.data !== undefined && source.data.length < MiB ? 0 : 1),
      onProgress: options.onProgress,
      streamHashOver: options.streamHashOver,
    },
  );
}

/** Collects a restore in memory through StreamSink. */
class Collector extends Writable {
  readonly parts: Buffer[] = [];
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.parts.push(Buffer.from(chunk));
    callback();
  }
  bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}

async function restoreToBuffer(repo: Repository, snapshot: SnapshotInfo, range?: { offset: number; length: number }): Promise<Buffer> {
  const out = new Collector();
  await restore(repo, snapshot, new StreamSink(out), { range });
  return out.bytes();
}

async function keysUnder(objects: ObjectStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const info of listAll(objects, prefix)) keys.push(info.key);
  return keys;
}

/** The snapshot's chunk list, with each chunk's offset in the stream. */
async function chunkList(repo: Repository, snapshot: SnapshotInfo): Promise<(ChunkRef & { offset: number })[]> {
  const manifest = await repo.manifest(snapshot.key);
  const out: (ChunkRef & { offset: number })[] = [];
  for (const page of manifest.pages) {
    const hex = Buffer.from(page.hash).toString('hex');
    const key = `chunklists/${hex.slice(0, 2)}/${hex}`;
    let offset = page.offset;
    for (const ref of decodePage(key, await repo.objects.get(key))) {
      out.push({ ...ref, offset });
      offset += ref.length;
    }
  }
  return out;
}

/** Replaces an object with other bytes, through the ObjectStore interface only. */
async function replaceObject(objects: ObjectStore, key: string, change: (bytes: Buffer) => Buffer): Promise<void> {
  const bytes = Buffer.from(await objects.get(key));
  await objects.deleteMany([key]);
  expect(await objects.putIfAbsent(key, change(bytes))).toBe(true);
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection, but the promise resolved');
}

/** The unkeyed whole-stream hash over a chunk list (docs/format.md): u64 LE length + fingerprint per chunk. */
function chunkListHash(chunks: readonly ChunkRef[]): string {
  const hasher = new Blake3Hasher();
  for (const c of chunks) {
    const record = Buffer.alloc(40);
    record.writeBigUInt64LE(BigInt(c.length), 0);
    if (!c.zero) record.set(c.fingerprint, 8);
    hasher.update(record);
  }
  return hasher.digest('hex');
}

const blake3Hex = (bytes: Uint8Array): string => new Blake3Hasher().update(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)).digest('hex');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function repositorySuite(name: string, makeObjectStore: () => Promise<StoreUnderTest>): void {
  describe(`repository backup/restore: ${name}`, () => {
    let subject: StoreUnderTest | undefined;
    let objects: ObjectStore;
    let scratch: string;
    const extraStores: StoreUnderTest[] = [];

    beforeEach(async () => {
      subject = await makeObjectStore();
      objects = subject.store;
      scratch = await mkdtemp(join(tmpdir(), 'hoard-repo-test-'));
    });
    afterEach(async () => {
      await subject?.cleanup();
      subject = undefined;
      for (const extra of extraStores.splice(0)) await extra.cleanup();
      await rm(scratch, { recursive: true, force: true });
    });

    const init = (mode: Mode, on: ObjectStore = objects) =>
      Repository.init(on, { passphrase: mode === 'encrypted' ? PASSPHRASE : undefined, packBytes: PACK_BYTES, scryptCost: SCRYPT });
    /** The same repository as a new process would see it: nothing cached. */
    const reopen = (mode: Mode) => Repository.open(objects, { passphrase: mode === 'encrypted' ? PASSPHRASE : undefined, scryptCost: SCRYPT });
    const reopenWith = (passphrase: string | undefined) => Repository.open(objects, { passphrase, scryptCost: SCRYPT });
    const anotherStore = async (): Promise<ObjectStore> => {
      const extra = await makeObjectStore();
      extraStores.push(extra);
      return extra.store;
    };

    for (const mode of MODES) {
      describe(`round trips (${mode})`, () => {
        it('a file source over several packs, byte for byte, also after reopening', async () => {
          const data = seededBytes(11, 8 * MiB + 12_345);
          const path = join(scratch, 'source.img');
          await writeFile(path, data);
          const repo = await init(mode);
          const result = await run(repo, 'files', { stream: createReadStream(path), name: path, kind: 'file', expectedBytes: data.length });
          expect(result.bytesRead).toBe(data.length);
          expect(result.snapshot.meta).toMatchObject({
            job: 'files',
            logicalBytes: data.length,
            source: { name: path, kind: 'file' },
            parent: null,
            chunkCount: result.chunks,
          });
          // Random data: nothing compresses, nothing repeats, so 8+ MiB fill at least two packs.
          expect(result.packs).toBeGreaterThanOrEqual(Math.floor(data.length / PACK_BYTES));
          expect(result.packs).toBeGreaterThanOrEqual(2);
          expect(result.chunksNew).toBe(result.chunks);
          expect(await keysUnder(objects, 'packs/')).toHaveLength(result.packs);

          const out = join(scratch, 'restored.img');
          const restored = await restore(await reopen(mode), result.snapshot, await FileSink.create(out));
          expect(restored.streamHashChecked).toBe(true);
          expect(restored.bytesWritten).toBe(data.length);
          expect((await readFile(out)).equals(data)).toBe(true);
          expect((await restoreToBuffer(repo, result.snapshot)).equals(data)).toBe(true);
        });

        it('a stdin-like stream of odd-sized pieces', async () => {
          const data = seededBytes(12, 5 * MiB + 777);
          const repo = await init(mode);
          const result = await run(repo, 'dump', { stream: oddPieces(data), name: 'stdin', kind: 'stream' });
          expect(result.snapshot.meta.logicalBytes).toBe(data.length);
          // Streams use the db-dump preset (16 KiB average): many more chunks than 64 KiB.
          expect(result.chunks).toBeGreaterThan(data.length / (64 * KiB));
          expect((await restoreToBuffer(await reopen(mode), result.snapshot)).equals(data)).toBe(true);
        });

        it('a sparse image: zero runs are not stored and come back as holes', async () => {
          const data = image(13, [
            ['data', 512 * KiB],
            ['zero', 6 * MiB],
            ['data', 300 * KiB + 5],
            ['zero', 3 * MiB + 1],
            ['data', 100 * KiB],
            ['zero', 2 * MiB],
          ]);
          const repo = await init(mode);
          const result = await run(repo, 'vm', { data, name: '/dev/vg/vm', kind: 'block-device', expectedBytes: data.length });
          expect(result.bytesZero).toBeGreaterThan(10 * MiB);
          expect(result.bytesNew).toBeLessThan(2 * MiB);
          expect(result.bytesStored).toBeLessThan(2 * MiB);

          const out = join(scratch, 'vm.img');
          await restore(await reopen(mode), result.snapshot, await FileSink.create(out));
          const info = await stat(out);
          expect(info.size).toBe(data.length);
          // ~0.9 MiB of data in an 11.9 MiB file: allocated blocks well below the size.
          expect(info.blocks * 512).toBeLessThan(data.length / 4);
          expect((await readFile(out)).equals(data)).toBe(true);
        });

        it('an empty stream', async () => {
          const repo = await init(mode);
          const result = await run(repo, 'empty', { stream: pieces(new Uint8Array(0)), name: 'nothing', kind: 'stream', expectedBytes: 0 });
          expect(result.snapshot.meta).toMatchObject({ logicalBytes: 0, chunkCount: 0 });
          expect(result.packs).toBe(0);
          const found = await (await reopen(mode)).findSnapshot('empty');
          expect(found.key).toBe(result.snapshot.key);
          const out = join(scratch, 'empty');
          const restored = await restore(await reopen(mode), found, await FileSink.create(out));
          expect(restored.streamHashChecked).toBe(true);
          expect((await stat(out)).size).toBe(0);
          expect(await restoreToBuffer(repo, found)).toHaveLength(0);
        });

        it.each([1, 1000, 4095])('a stream of %i bytes (less than one chunk)', async (size) => {
          const data = seededBytes(14 + size, size);
          const repo = await init(mode);
          const result = await run(repo, 'tiny', { data, name: 'tiny', kind: 'stream', expectedBytes: size });
          expect(result.chunks).toBe(1);
          expect(result.packs).toBe(1);
          expect((await restoreToBuffer(await reopen(mode), result.snapshot)).equals(data)).toBe(true);
        });
      });

      describe(`dedup (${mode})`, () => {
        it('a second backup of the same data stores nothing; a modified copy stores little; parents chain per source', async () => {
          const data = seededBytes(21, 6 * MiB);
          const repo = await init(mode);
          const first = await run(repo, 'vm', { data, name: 'disk.img', kind: 'block-device' });
          expect(first.snapshot.meta.parent).toBeNull();
          const packs = await keysUnder(objects, 'packs/');
          expect(packs.length).toBeGreaterThanOrEqual(2);

          // A new process: dedup comes from the index segments, not from memory.
          const again = await run(await reopen(mode), 'vm', { data, name: 'disk.img', kind: 'block-device' });
          expect(again).toMatchObject({ chunksNew: 0, bytesNew: 0, bytesStored: 0, packs: 0, chunks: first.chunks });
          expect(again.snapshot.meta.parent).toBe(first.snapshot.key);
          expect(await keysUnder(objects, 'packs/')).toEqual(packs);

          // Overwrite a few spots and insert some bytes in the middle (shifts the rest).
          const modified = Buffer.from(data);
          for (const at of [100_000, 2 * MiB + 3, 5 * MiB]) seededBytes(at, 100).copy(modified, at);
          const shifted = Buffer.concat([modified.subarray(0, 3 * MiB), seededBytes(22, 1000), modified.subarray(3 * MiB)]);
          const changed = await run(repo, 'vm', { data: shifted, name: 'disk.img', kind: 'block-device' });
          expect(changed.chunksNew).toBeGreaterThan(0);
          expect(changed.chunksNew).toBeLessThanOrEqual(12);
          expect(changed.bytesNew).toBeLessThan(1.5 * MiB);
          expect(changed.snapshot.meta.parent).toBe(again.snapshot.key);

          // Another source of the same job has its own chain.
          const other = await run(repo, 'vm', { data: seededBytes(23, 1000), name: 'other.img', kind: 'block-device' });
          expect(other.snapshot.meta.parent).toBeNull();

          const fresh = await reopen(mode);
          expect((await restoreToBuffer(fresh, changed.snapshot)).equals(shifted)).toBe(true);
          expect((await restoreToBuffer(fresh, first.snapshot)).equals(data)).toBe(true);
        });
      });

      it(`partial restores of random byte ranges equal the slice (${mode})`, async () => {
        const data = image(31, [
          ['data', 700 * KiB + 3],
          ['zero', 1 * MiB],
          ['data', 1 * MiB + 11],
          ['zero', 300 * KiB],
          ['data', 200 * KiB],
        ]);
        const repo = await init(mode);
        const { snapshot } = await run(repo, 'vm', { data, name: 'img', kind: 'block-device' });
        const reader = await reopen(mode);
        const check = async (offset: number, length: number) => {
          const out = new Collector();
          const result = await restore(reader, snapshot, new StreamSink(out), { range: { offset, length } });
          expect(result.bytesWritten).toBe(length);
          expect(result.streamHashChecked).toBe(offset === 0 && length === data.length);
          expect(out.bytes().equals(data.subarray(offset, offset + length)), `range ${offset}+${length}`).toBe(true);
        };
        // Edges first: empty ranges, one byte at each end, a range inside a zero run.
        await check(0, 0);
        await check(data.length, 0);
        await check(0, 1);
        await check(data.length - 1, 1);
        await check(800 * KiB, 1000);
        await fc.assert(
          fc.asyncProperty(
            fc.integer({ min: 0, max: data.length }).chain((offset) => fc.tuple(fc.constant(offset), fc.integer({ min: 0, max: data.length - offset }))),
            async ([offset, length]) => check(offset, length),
          ),
          { numRuns: 12, seed: 0x5eed },
        );
      });
    }

    describe('encryption', () => {
      it('encrypted: keyed fingerprints, seeded boundaries, stream hash keyed, no plaintext in any object', async () => {
        // A known 64-byte plaintext in the middle of a chunk-sized stretch, several times.
        const marker = sentinel('enc');
        const data = seededBytes(41, 3 * MiB);
        for (const at of [10_000, 1 * MiB + 7, 2 * MiB + 333]) marker.copy(data, at);

        const plainRepo = await init('plain');
        const plain = await run(plainRepo, 'db', { data, name: 'dump', kind: 'stream' });
        const encObjects = await anotherStore();
        const encRepo = await init('encrypted', encObjects);
        const enc = await run(encRepo, 'db', { data, name: 'dump', kind: 'stream' });
        const enc2Objects = await anotherStore();
        const enc2 = await run(await init('encrypted', enc2Objects), 'db', { data, name: 'dump', kind: 'stream' });

        // The check can fail: the unencrypted packs do hold the plaintext.
        const plainPacks = await keysUnder(objects, 'packs/');
        const plainHits = await Promise.all(plainPacks.map(async (key) => contains(await objects.get(key), marker)));
        expect(plainHits.some(Boolean)).toBe(true);
        // Encrypted: no object of the repository (packs above all) holds it.
        const encKeys = await keysUnder(encObjects, '');
        expect(encKeys.filter((k) => k.startsWith('packs/')).length).toBeGreaterThan(0);
        for (const key of encKeys) expect(contains(await encObjects.get(key), marker), key).toBe(false);

        // Fingerprints: plain BLAKE3 of the chunk unencrypted, never that encrypted.
        const plainChunks = await chunkList(plainRepo, plain.snapshot);
        const encChunks = await chunkList(encRepo, enc.snapshot);
        for (const c of plainChunks) expect(Buffer.from(c.fingerprint).toString('hex')).toBe(blake3Hex(data.subarray(c.offset, c.offset + c.length)));
        for (const c of encChunks) expect(Buffer.from(c.fingerprint).toString('hex')).not.toBe(blake3Hex(data.subarray(c.offset, c.offset + c.length)));
        // The stream hash covers the chunk list, keyed in an encrypted store.
        expect(plain.snapshot.meta.streamHash).toBe(chunkListHash(plainChunks));
        expect(enc.snapshot.meta.streamHash).not.toBe(chunkListHash(encChunks));

        // Boundaries: the gear table is seeded per store, so cut points differ from the
        // unencrypted ones and between two encrypted repositories.
        const cuts = (chunks: { offset: number }[]) => chunks.map((c) => c.offset).join(',');
        expect(cuts(encChunks)).not.toBe(cuts(plainChunks));
        expect(cuts(await chunkList(await Repository.open(enc2Objects, { passphrase: PASSPHRASE, scryptCost: SCRYPT }), enc2.snapshot))).not.toBe(
          cuts(encChunks),
        );
        // The manifest says the chunker was seeded, never the seed.
        expect(enc.snapshot.meta.chunker).toMatchObject({ seeded: true });
        expect(enc.snapshot.meta.chunker).not.toHaveProperty('seed');
        expect(plain.snapshot.meta.chunker).not.toHaveProperty('seeded');

        expect((await restoreToBuffer(encRepo, enc.snapshot)).equals(data)).toBe(true);
      });
    });

    describe('findSnapshot', () => {
      let repo: Repository;
      let snaps: SnapshotInfo[];
      beforeEach(async () => {
        repo = await init('plain');
        snaps = [];
        for (let i = 0; i < 3; i++) {
          if (i > 0) await sleep(15);
          snaps.push((await run(repo, 'nightly', { data: seededBytes(50 + i, 2000), name: 'db', kind: 'stream' })).snapshot);
        }
        await run(repo, 'other-job', { data: seededBytes(59, 2000), name: 'db', kind: 'stream' });
      });

      it('lists snapshots newest first, per job or all', async () => {
        expect((await repo.snapshots('nightly')).map((s) => s.key)).toEqual(snaps.map((s) => s.key).reverse());
        expect(await repo.snapshots()).toHaveLength(4);
        expect(await repo.snapshots('no-such-job')).toEqual([]);
      });

      it('finds by id, full name, unique prefix (at least 4 digits) and newest by default', async () => {
        expect((await repo.findSnapshot('nightly')).key).toBe(snaps[2].key);
        for (const s of snaps) {
          expect((await repo.findSnapshot('nightly', { id: s.id })).key).toBe(s.key);
          expect((await repo.findSnapshot('nightly', { id: s.id.toUpperCase() })).key).toBe(s.key);
          expect((await repo.findSnapshot('nightly', { id: s.key.slice(s.key.lastIndexOf('/') + 1) })).key).toBe(s.key);
          let length = 4;
          while (snaps.some((o) => o !== s && o.id.startsWith(s.id.slice(0, length)))) length++;
          expect((await repo.findSnapshot('nightly', { id: s.id.slice(0, length) })).key).toBe(s.key);
        }
        // Shorter than 4 digits is never a prefix match.
        const short = await rejection(repo.findSnapshot('nightly', { id: snaps[0].id.slice(0, 3) }));
        expect(short).toBeInstanceOf(SnapshotNotFoundError);
      });

      it('an unknown id is an error naming the job; a job without snapshots too', async () => {
        const unknown = ['0000000000000000', 'ffffffffffffffff'].find((id) => !snaps.some((s) => s.id === id))!;
        const err = await rejection(repo.findSnapshot('nightly', { id: unknown }));
        expect(err).toBeInstanceOf(SnapshotNotFoundError);
        expect(err).toBeInstanceOf(RepositoryError);
        expect(err.message).toContain('nightly');
        expect(err.message).toContain(unknown);
        // Another job's snapshot is not found through this job.
        const otherId = (await repo.snapshots('other-job'))[0].id;
        await expect(repo.findSnapshot('nightly', { id: otherId })).rejects.toBeInstanceOf(SnapshotNotFoundError);
        const none = await rejection(repo.findSnapshot('never-ran'));
        expect(none).toBeInstanceOf(SnapshotNotFoundError);
        expect(none.message).toContain('never-ran');
      });

      it('an ambiguous prefix is an error listing the candidates', async () => {
        // Two manifests of a job whose ids share 4 hex digits: vary the times until the
        // content hashes collide on the first 4 digits (birthday: a few hundred tries).
        const base = await repo.manifest(snaps[0].key);
        const seen = new Map<string, { key: string; bytes: Uint8Array }>();
        let pair: [{ key: string; bytes: Uint8Array }, { key: string; bytes: Uint8Array }] | undefined;
        const t0 = Date.parse(base.meta.finishedAt);
        for (let i = 0; !pair && i < 20_000; i++) {
          const time = new Date(t0 + 1000 + i).toISOString();
          const encoded = encodeManifest({ meta: { ...base.meta, job: 'twins', startedAt: time, finishedAt: time, parent: null }, pages: base.pages });
          const prefix = encoded.key.slice(encoded.key.lastIndexOf('-') + 1, encoded.key.lastIndexOf('-') + 5);
          const earlier = seen.get(prefix);
          if (earlier) pair = [earlier, encoded];
          else seen.set(prefix, encoded);
        }
        expect(pair).toBeDefined();
        for (const m of pair!) await objects.putIfAbsent(m.key, m.bytes);
        const ids = pair!.map((m) => m.key.slice(m.key.lastIndexOf('-') + 1));
        const err = await rejection(repo.findSnapshot('twins', { id: ids[0].slice(0, 4) }));
        expect(err).toBeInstanceOf(SnapshotNotFoundError);
        expect(err.message).toContain('ambiguous');
        for (const id of ids) expect(err.message).toContain(id);
        // The full ids still resolve, and the crafted snapshots restore (they reuse real pages).
        for (const id of ids) expect((await repo.findSnapshot('twins', { id })).id).toBe(id);
        expect((await restoreToBuffer(repo, await repo.findSnapshot('twins', { id: ids[1] }))).equals(seededBytes(50, 2000))).toBe(true);
      });

      it('by time: the newest that started at or before; before the first is an error naming its time', async () => {
        const started = snaps.map((s) => Date.parse(s.meta.startedAt));
        expect(started[1]).toBeGreaterThan(started[0]);
        expect((await repo.findSnapshot('nightly', { at: new Date(started[1] - 1) })).key).toBe(snaps[0].key);
        expect((await repo.findSnapshot('nightly', { at: new Date(started[0]) })).key).toBe(snaps[0].key);
        expect((await repo.findSnapshot('nightly', { at: new Date(started[1]) })).key).toBe(snaps[1].key);
        expect((await repo.findSnapshot('nightly', { at: new Date(started[2] + 86_400_000) })).key).toBe(snaps[2].key);
        const err = await rejection(repo.findSnapshot('nightly', { at: new Date(started[0] - 1) }));
        expect(err).toBeInstanceOf(SnapshotNotFoundError);
        expect(err.message).toContain(snaps[0].meta.startedAt);
        expect(err.message).toContain('nightly');
      });
    });

    describe('store isolation (invariant 5)', () => {
      for (const mode of MODES) {
        it(`a job bound to its own store does not dedup against global, and no other job may use that store (${mode})`, async () => {
          const data = seededBytes(61, 3 * MiB);
          const repo = await init(mode);
          const viaGlobal = await run(repo, 'shared', { data, name: 'x', kind: 'file' });
          expect(viaGlobal.store).toBe('global');
          const isolated = await run(repo, 'private', { data, name: 'x', kind: 'file' }, { store: 's1' });
          expect(isolated.store).toBe('s1');
          // Stored again, in full, in packs of its own store.
          expect(isolated.chunksNew).toBe(isolated.chunks);
          expect(isolated.bytesNew).toBe(data.length);
          expect(isolated.packs).toBeGreaterThan(0);
          const s1 = (await repo.storeRecord('s1'))!;
          expect(s1.scope).toEqual({ kind: 'job', job: 'private' });
          expect(isolated.snapshot.meta.store).toBe(s1.id);
          expect(viaGlobal.snapshot.meta.store).not.toBe(s1.id);
          const packStores = await Promise.all(
            (await keysUnder(objects, 'packs/')).map(async (key) => Buffer.from((await readPackTrailer(objects, key)).storeId).toString('hex')),
          );
          expect(packStores.filter((id) => id === s1.id)).toHaveLength(isolated.packs);
          expect(packStores.filter((id) => id === viaGlobal.snapshot.meta.store)).toHaveLength(viaGlobal.packs);

          // The bound job keeps using its store by default (and dedups there).
          const fresh = await reopen(mode);
          const again = await run(fresh, 'private', { data, name: 'x', kind: 'file' });
          expect(again).toMatchObject({ store: 's1', chunksNew: 0 });

          // Another job naming s1 is refused, before anything is written.
          const before = await keysUnder(objects, '');
          const refused = await rejection(run(fresh, 'intruder', { data, name: 'x', kind: 'file' }, { store: 's1' }));
          expect(refused).toBeInstanceOf(StoreScopeError);
          expect(refused.message).toContain('s1');
          expect(refused.message).toContain('intruder');
          await expect(fresh.storeForJob('intruder', 's1')).rejects.toBeInstanceOf(StoreScopeError);
          expect(await keysUnder(objects, '')).toEqual(before);
          // ... while global stays open to it.
          expect(await run(fresh, 'intruder', { data, name: 'x', kind: 'file' })).toMatchObject({ store: 'global', chunksNew: 0 });

          expect((await restoreToBuffer(fresh, isolated.snapshot)).equals(data)).toBe(true);
        });
      }
    });

    describe('bad input', () => {
      it('opening a store without a repository: RepositoryNotFoundError naming the location', async () => {
        const err = await rejection(Repository.open(objects, { scryptCost: SCRYPT }));
        expect(err).toBeInstanceOf(RepositoryNotFoundError);
        expect(err).toBeInstanceOf(RepositoryError);
        expect(err.message).toContain(objects.location);
      });

      it('init twice: RepositoryExistsError, and the first repository is untouched', async () => {
        const repo = await init('plain');
        const config = Buffer.from(await objects.get('config'));
        const stores = await keysUnder(objects, 'stores/');
        for (const mode of MODES) {
          const err = await rejection(init(mode));
          expect(err).toBeInstanceOf(RepositoryExistsError);
          expect(err.message).toContain(objects.location);
        }
        expect(Buffer.from(await objects.get('config')).equals(config)).toBe(true);
        expect(await keysUnder(objects, 'stores/')).toEqual(stores);
        expect((await Repository.open(objects)).config.id).toBe(repo.config.id);
      });

      it('encrypted without a passphrase: PassphraseRequiredError on backup and restore; listing still works', async () => {
        const data = seededBytes(71, 100_000);
        const { snapshot } = await run(await init('encrypted'), 'db', { data, name: 'dump', kind: 'stream' });
        const locked = await reopenWith(undefined);
        expect(locked.encrypted).toBe(true);
        await expect(run(locked, 'db', { data, name: 'dump', kind: 'stream' })).rejects.toBeInstanceOf(PassphraseRequiredError);
        const out = new Collector();
        await expect(restore(locked, snapshot, new StreamSink(out))).rejects.toBeInstanceOf(PassphraseRequiredError);
        expect(out.bytes()).toHaveLength(0);
        expect((await locked.snapshots('db')).map((s) => s.key)).toEqual([snapshot.key]);
        expect(await locked.snapshots('db')).toHaveLength(1);
      });

      it('a wrong passphrase: WrongPassphraseError on backup and restore, nothing written', async () => {
        const data = seededBytes(72, 100_000);
        const { snapshot } = await run(await init('encrypted'), 'db', { data, name: 'dump', kind: 'stream' });
        const before = await keysUnder(objects, '');
        const wrong = await reopenWith('not the passphrase');
        await expect(run(wrong, 'db', { data, name: 'dump', kind: 'stream' })).rejects.toBeInstanceOf(WrongPassphraseError);
        await expect(restore(wrong, snapshot, new StreamSink(new Collector()))).rejects.toBeInstanceOf(WrongPassphraseError);
        expect(await keysUnder(objects, '')).toEqual(before);
        expect((await restoreToBuffer(await reopen('encrypted'), snapshot)).equals(data)).toBe(true);
      });

      for (const mode of MODES) {
        it(`a source shorter or longer than expectedBytes: SourceError, no snapshot, and the next backup works (${mode})`, async () => {
          // More than a pack, so the failed run has uploaded a pack before it fails.
          const data = seededBytes(73, 5 * MiB + 99);
          const repo = await init(mode);
          const earlier = await run(repo, 'stdin-job', { data: seededBytes(74, 10_000), name: 'stdin', kind: 'stream' });

          const short = await rejection(run(repo, 'stdin-job', { stream: oddPieces(data), name: 'stdin', kind: 'stream', expectedBytes: data.length + 4096 }));
          expect(short).toBeInstanceOf(SourceError);
          expect(short.message).toContain('ended early');
          expect(short.message).toContain(String(data.length));
          const long = await rejection(run(repo, 'stdin-job', { data, name: 'stdin', kind: 'stream', expectedBytes: data.length - 1 }));
          expect(long).toBeInstanceOf(SourceError);
          expect(long.message).toContain('ran long');
          expect((await repo.snapshots('stdin-job')).map((s) => s.key)).toEqual([earlier.snapshot.key]);

          // Same repository object (its in-memory index saw the failed runs) and a new one.
          const next = await run(repo, 'stdin-job', { data, name: 'stdin', kind: 'stream', expectedBytes: data.length });
          expect(next.snapshot.meta.parent).toBe(earlier.snapshot.key);
          expect((await restoreToBuffer(repo, next.snapshot)).equals(data)).toBe(true);
          const fresh = await reopen(mode);
          expect((await restoreToBuffer(fresh, next.snapshot)).equals(data)).toBe(true);
          const again = await run(fresh, 'stdin-job', { data, name: 'stdin', kind: 'stream' });
          expect(again.chunksNew).toBe(0);
        });
      }

      it('a source that fails midway: its error surfaces, no snapshot, and the next backup works', async () => {
        const data = seededBytes(75, 5 * MiB);
        const repo = await init('plain');
        const boom = new Error('disk read error at sector 4242');
        const err = await rejection(run(repo, 'vm', { stream: failingAfter(data, boom), name: 'img', kind: 'block-device' }));
        expect(err.message).toContain('disk read error at sector 4242');
        expect(await repo.snapshots()).toEqual([]);
        const ok = await run(repo, 'vm', { data, name: 'img', kind: 'block-device' });
        expect(ok.snapshot.meta.parent).toBeNull();
        expect((await restoreToBuffer(await reopen('plain'), ok.snapshot)).equals(data)).toBe(true);
      });

      for (const mode of MODES) {
        it(`a bit flipped in a pack: IntegrityError naming the snapshot, the pack and the offset (${mode})`, async () => {
          const data = seededBytes(76, 5 * MiB);
          const repo = await init(mode);
          const { snapshot } = await run(repo, 'vm', { data, name: 'img', kind: 'block-device' });
          const packKey = (await keysUnder(objects, 'packs/'))[0];
          const trailer = await readPackTrailer(objects, packKey);
          const victim = trailer.entries[Math.floor(trailer.entries.length / 2)];
          // The chunk that blob holds, and so the offset the error must name.
          const chunk = (await chunkList(repo, snapshot)).find((c) => Buffer.from(c.fingerprint).equals(Buffer.from(victim.fingerprint)))!;
          expect(chunk).toBeDefined();
          await replaceObject(objects, packKey, (bytes) => {
            bytes[victim.offset + Math.floor(victim.storedLength / 2)] ^= 0x10;
            return bytes;
          });

          for (const reader of [repo, await reopen(mode)]) {
            const out = join(scratch, `flipped-${reader === repo ? 'same' : 'fresh'}`);
            const err = await rejection(restore(reader, snapshot, await FileSink.create(out)));
            expect(err).toBeInstanceOf(IntegrityError);
            expect(err.message).toContain(snapshot.key);
            expect(err.message).toContain(packKey);
            expect(err.message).toContain(`offset ${chunk.offset}`);
            expect(err).toMatchObject({ snapshot: snapshot.key, object: packKey, offset: chunk.offset });
          }
          // A range that avoids the damaged chunk still restores.
          expect((await restoreToBuffer(repo, snapshot, { offset: 0, length: chunk.offset })).equals(data.subarray(0, chunk.offset))).toBe(true);
        });
      }

      it('a truncated pack: IntegrityError naming the pack', async () => {
        const data = seededBytes(77, 5 * MiB);
        const repo = await init('plain');
        const { snapshot } = await run(repo, 'vm', { data, name: 'img', kind: 'block-device' });
        const packKey = (await keysUnder(objects, 'packs/'))[0];
        // Cut into the blob region (the trailer alone is not read by restore).
        await replaceObject(objects, packKey, (bytes) => bytes.subarray(0, Math.floor(bytes.length / 2)));
        const err = await rejection(restoreToBuffer(await reopen('plain'), snapshot));
        expect(err).toBeInstanceOf(IntegrityError);
        expect(err.message).toContain(snapshot.key);
        expect(err.message).toContain(packKey);
      });

      it('a missing pack: IntegrityError naming the pack', async () => {
        const data = seededBytes(78, 5 * MiB);
        const repo = await init('plain');
        const { snapshot } = await run(repo, 'vm', { data, name: 'img', kind: 'block-device' });
        const packKey = (await keysUnder(objects, 'packs/')).at(-1)!;
        await objects.deleteMany([packKey]);
        const err = await rejection(restoreToBuffer(await reopen('plain'), snapshot));
        expect(err).toBeInstanceOf(IntegrityError);
        expect(err.message).toContain(packKey);
      });

      it('a restore range outside the snapshot: RepositoryError naming the snapshot and its size', async () => {
        const data = seededBytes(79, 50_000);
        const repo = await init('plain');
        const { snapshot } = await run(repo, 'db', { data, name: 'dump', kind: 'stream' });
        for (const range of [
          { offset: 0, length: data.length + 1 },
          { offset: data.length + 1, length: 0 },
          { offset: data.length - 10, length: 11 },
          { offset: -1, length: 5 },
          { offset: 0, length: -1 },
          { offset: 1.5, length: 1 },
          { offset: Number.MAX_SAFE_INTEGER, length: 1 },
        ]) {
          const err = await rejection(restoreToBuffer(repo, snapshot, range));
          expect(err, JSON.stringify(range)).toBeInstanceOf(RepositoryError);
          expect(err.message).toContain(snapshot.id);
          expect(err.message).toContain(String(data.length));
        }
        expect((await restoreToBuffer(repo, snapshot, { offset: 10, length: data.length - 10 })).equals(data.subarray(10))).toBe(true);
      });

      it('a failed restore releases its sink (abort, never finish), also when it fails before the first byte', async () => {
        const data = seededBytes(80, 300_000);
        const repo = await init('encrypted');
        const { snapshot } = await run(repo, 'db', { data, name: 'dump', kind: 'stream' });
        const recording = () => {
          const calls = { written: 0, finished: 0, aborted: 0 };
          const sink: RestoreSink = {
            write: async (bytes) => void (calls.written += bytes.length),
            zeros: async (length) => void (calls.written += length),
            finish: async () => void calls.finished++,
            abort: async () => void calls.aborted++,
          };
          return { calls, sink };
        };
        const failures: [string, (sink: RestoreSink) => Promise<unknown>, new (...args: never[]) => Error][] = [
          ['range outside', (sink) => restore(repo, snapshot, sink, { range: { offset: 1, length: data.length } }), RepositoryError],
          ['no passphrase', async (sink) => restore(await reopenWith(undefined), snapshot, sink), PassphraseRequiredError],
          ['wrong passphrase', async (sink) => restore(await reopenWith('nope'), snapshot, sink), WrongPassphraseError],
        ];
        // The happy path finishes exactly once.
        const ok = recording();
        await restore(repo, snapshot, ok.sink, { range: { offset: 0, length: 1000 } });
        expect(ok.calls).toEqual({ written: 1000, finished: 1, aborted: 0 });
        for (const [label, attempt, type] of failures) {
          const { calls, sink } = recording();
          expect(await rejection(attempt(sink)), label).toBeInstanceOf(type);
          expect(calls, label).toEqual({ written: 0, finished: 0, aborted: 1 });
        }
        // Damage found midway: some bytes may be out, the sink is aborted, not finished.
        const packKey = (await keysUnder(objects, 'packs/'))[0];
        await replaceObject(objects, packKey, (bytes) => {
          bytes[100] ^= 1;
          return bytes;
        });
        const { calls, sink } = recording();
        expect(await rejection(restore(await reopen('encrypted'), snapshot, sink))).toBeInstanceOf(IntegrityError);
        expect(calls).toMatchObject({ finished: 0, aborted: 1 });
      });
    });

    describe('the restore pipeline', () => {
      for (const mode of MODES) {
        it(`a snapshot whose stream hash covers the bytes (written before the pipeline) restores, to a file and a stream (${mode})`, async () => {
          const data = image(90, [
            ['data', 700 * KiB],
            ['zero', 2 * MiB],
            ['data', 3 * MiB + 3],
          ]);
          const repo = await init(mode);
          const result = await run(repo, 'legacy', { data, name: 'img', kind: 'block-device' }, { streamHashOver: 'bytes' });
          expect(result.snapshot.meta.streamHashOver).toBeUndefined();
          if (mode === 'plain') expect(result.snapshot.meta.streamHash).toBe(blake3Hex(data));
          const out = join(scratch, 'legacy.img');
          const restored = await restore(await reopen(mode), result.snapshot, await FileSink.create(out));
          expect(restored.streamHashChecked).toBe(true);
          expect((await readFile(out)).equals(data)).toBe(true);
          expect((await restoreToBuffer(repo, result.snapshot)).equals(data)).toBe(true);
        });

        it(`repeated content, a range into a file, and an existing file overwritten in place (${mode})`, async () => {
          // One 64 KiB block 150 times between random data: one blob, many pieces per window.
          const block = seededBytes(91, 64 * KiB);
          const data = Buffer.concat([seededBytes(92, 1 * MiB), ...Array.from({ length: 150 }, () => block), seededBytes(93, 2 * MiB + 17)]);
          const repo = await init(mode);
          const { snapshot } = await run(repo, 'rep', { data, name: 'img', kind: 'file' });
          expect(snapshot.meta.streamHashOver).toBe('chunks');
          const whole = join(scratch, 'rep.img');
          expect((await restore(repo, snapshot, await FileSink.create(whole))).streamHashChecked).toBe(true);
          expect((await readFile(whole)).equals(data)).toBe(true);
          const range = { offset: 1 * MiB - 12_345, length: 5 * MiB };
          const part = join(scratch, 'rep.part');
          expect((await restore(repo, snapshot, await FileSink.create(part), { range })).streamHashChecked).toBe(false);
          expect((await readFile(part)).equals(data.subarray(range.offset, range.offset + range.length))).toBe(true);
          // In place (a device's case): zeros are written, not skipped, over old bytes.
          const sparse = image(94, [
            ['data', 100 * KiB],
            ['zero', 3 * MiB],
            ['data', 100 * KiB],
          ]);
          const { snapshot: holes } = await run(repo, 'holes', { data: sparse, name: 'img', kind: 'block-device' });
          const device = join(scratch, 'device.img');
          await writeFile(device, Buffer.alloc(sparse.length, 0xee));
          await restore(repo, holes, await FileSink.overwrite(device));
          expect((await readFile(device)).equals(sparse)).toBe(true);
        });
      }

      // One snapshot larger than the restore pipeline's bound, backed up once for the two
      // tests below (they only read it). Larger than the bound so that a pipeline that read
      // ahead without limit would fail the slow consumer's check (a 48 MiB stream could
      // never exceed the 72 MiB bound, whatever the pipeline did), and more windows than
      // are ever in flight (6 on S3), so work is left when a decode worker dies.
      describe('a snapshot larger than the pipeline bound', () => {
        const bound = RESTORE_MEMORY.windowsInFlight * (RESTORE_MEMORY.windowBytes + RESTORE_MEMORY.batchMaxBytes);
        let data: Buffer;
        let large: StoreUnderTest | undefined;
        let repo: Repository;
        let snapshot: SnapshotInfo;
        beforeAll(async () => {
          data = seededBytes(96, bound + 2 * RESTORE_MEMORY.windowBytes);
          large = await makeObjectStore();
          repo = await init('plain', large.store);
          ({ snapshot } = await run(repo, 'large', { data, name: 'dump', kind: 'stream' }));
        });
        afterAll(async () => {
          await large?.cleanup();
        });

        it('a decode worker that dies fails the restore cleanly (the sink aborted); the pool replaces it', async () => {
          expect(data.length).toBeGreaterThan((RESTORE_MEMORY.windowsInFlight + 1) * RESTORE_MEMORY.windowBytes);
          const pool = new DecodePool(1);
          try {
            const calls = { written: 0, finished: 0, aborted: 0 };
            let killed = false;
            const sink: RestoreSink = {
              write: async (bytes) => {
                calls.written += bytes.length;
                if (!killed) {
                  killed = true;
                  // Its worker dies and is not replaced: the restore cannot finish.
                  await pool.terminate();
                }
              },
              zeros: async (length) => void (calls.written += length),
              finish: async () => void calls.finished++,
              abort: async () => void calls.aborted++,
            };
            const err = await rejection(restore(repo, snapshot, sink, { decodePool: pool }));
            expect(err).toBeInstanceOf(DecodeWorkerError);
            expect(err.message).toMatch(/decode (worker|pool)/);
            expect(calls.finished).toBe(0);
            expect(calls.aborted).toBe(1);
            expect(calls.written).toBeLessThan(data.length);
          } finally {
            await pool.terminate();
          }
          // A worker that dies in a pool that goes on is replaced, and the next restore works.
          const lasting = new DecodePool(1);
          try {
            await lasting.terminate({ restart: true });
            const out = new Collector();
            await restore(repo, snapshot, new StreamSink(out), { decodePool: lasting });
            expect(out.bytes().equals(data)).toBe(true);
          } finally {
            await lasting.terminate();
          }
        });

        it('a slow consumer: bytes fetched but not yet written stay within the pipeline bound', async () => {
          // The check below can fail: the stream is longer than the bound.
          expect(data.length).toBeGreaterThan(bound);
          const hash = createHash('sha256');
          const slow = new Writable({
            highWaterMark: 64 * KiB,
            write(chunk: Buffer, _encoding, done) {
              hash.update(chunk);
              setTimeout(done, 1);
            },
          });
          let ahead = 0;
          const result = await restore(repo, snapshot, new StreamSink(slow), {
            onProgress: (p) => void (ahead = Math.max(ahead, p.bytesFetched - p.bytesWritten)),
          });
          expect(hash.digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
          expect(result.bytesFetched).toBeGreaterThanOrEqual(data.length);
          // Random data stores at its size: what is read ahead is at most the windows in flight.
          expect(ahead).toBeGreaterThan(0);
          expect(ahead).toBeLessThanOrEqual(bound);
        });
      });

      it('a target that cannot take the bytes (ENOSPC on /dev/full): RestoreWriteError naming the cause, not damaged data', async () => {
        const data = seededBytes(97, 3 * MiB);
        const repo = await init('plain');
        const { snapshot } = await run(repo, 'full', { data, name: 'img', kind: 'file' });
        const err = await rejection(restore(repo, snapshot, await FileSink.overwrite('/dev/full')));
        expect(err).toBeInstanceOf(RestoreWriteError);
        expect(err).toMatchObject({ code: 'ENOSPC' });
        expect(err.message).toMatch(/no space/i);
      });
    });

    describe('concurrent backups', () => {
      it('two jobs backing up into the same repository at once both restore', async () => {
        const shared = seededBytes(81, 2 * MiB);
        const a = Buffer.concat([shared, seededBytes(82, 3 * MiB)]);
        const b = Buffer.concat([seededBytes(83, 3 * MiB), shared]);
        const repo = await init('plain');
        const [ra, rb] = await Promise.all([run(repo, 'job-a', { data: a, name: 'a' }), run(repo, 'job-b', { data: b, name: 'b' })]);
        for (const reader of [repo, await reopen('plain')]) {
          expect((await restoreToBuffer(reader, ra.snapshot)).equals(a)).toBe(true);
          expect((await restoreToBuffer(reader, rb.snapshot)).equals(b)).toBe(true);
        }
      });

      it("a backup that finishes first never depends on another backup's unwritten pack (invariant 1)", async () => {
        // Job A reads shared data, then stalls and finally fails. Job B backs up the same
        // data meanwhile and commits. B's snapshot must be complete on its own: readable by
        // a new process while A is stalled, and after A has failed.
        // In-thread chunking cuts once its 8 MiB window is full, so A shares a bit more than
        // that: A then has one pack uploaded (no segment yet) and one open when B runs.
        const shared = seededBytes(84, 8 * MiB + 256 * KiB);
        const own = seededBytes(85, 512 * KiB);
        const repo = await init('plain');
        let release!: () => void;
        const gate = new Promise<void>((resolve) => (release = resolve));
        let stalled!: () => void;
        const aHasStored = new Promise<void>((resolve) => (stalled = resolve));
        async function* stallThenFail(): AsyncGenerator<Uint8Array> {
          yield* gated(shared, gate, new Uint8Array(0));
          throw new Error('job A source failed');
        }
        const jobA = run(
          repo,
          'job-a',
          { stream: stallThenFail(), name: 'a', kind: 'stream' },
          {
            workers: 0,
            onProgress: (p) => {
              if (p.bytesStored >= 7 * MiB && p.packs >= 1) stalled();
            },
          },
        );
        jobA.catch(() => undefined);
        await Promise.race([
          aHasStored,
          jobA.then(() => {
            throw new Error('job A finished before stalling');
          }),
        ]);
        await sleep(50);
        const b = Buffer.concat([shared, own]);
        const rb = await run(repo, 'job-b', { data: b, name: 'b', kind: 'stream' });
        try {
          expect((await restoreToBuffer(await reopen('plain'), rb.snapshot)).equals(b)).toBe(true);
          expect((await restoreToBuffer(repo, rb.snapshot)).equals(b)).toBe(true);
        } finally {
          release();
        }
        await expect(jobA).rejects.toThrow('job A source failed');
        expect(await repo.snapshots('job-a')).toEqual([]);
        expect((await restoreToBuffer(await reopen('plain'), rb.snapshot)).equals(b)).toBe(true);
        expect((await restoreToBuffer(repo, rb.snapshot)).equals(b)).toBe(true);
      });
    });
  });
}
