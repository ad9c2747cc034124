import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type BlobCompression,
  backup,
  FileSink,
  FsObjectStore,
  listAll,
  type ObjectStore,
  PAYLOAD_LZ4,
  PAYLOAD_RAW,
  PAYLOAD_ZSTD,
  RecordFormatError,
  Repository,
  readPackTrailer,
  restore,
} from '../dist/index.js';
import { generate, pieces } from './fixtures/test-data.mjs';

const SCRYPT = { N: 1024, r: 8, p: 1 };
const SIZE = 6 << 20;

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hoard-compression-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/**
 * Backs up `data`, restores it to a file (through the decode workers) and returns the
 * payload kinds of the blobs in the store's packs (read from the pack trailers).
 */
async function roundTrip(repo: Repository, data: Uint8Array, job: string, store?: string): Promise<{ kinds: Set<number>; storedPerNew: number }> {
  const result = await backup(repo, { stream: pieces(data), name: job, kind: 'file', expectedBytes: data.length }, { job, store, workers: 1 });
  const out = join(dir, `${job}.out`);
  await restore(repo, result.snapshot, await FileSink.create(out));
  expect(Buffer.compare(await readFile(out), Buffer.from(data))).toBe(0);
  // Per new byte: stores of an encrypted repository cut chunks differently (their own seeds), so dedup inside `data` differs.
  return { kinds: await blobKinds(repo.objects, result.snapshot.meta.store), storedPerNew: result.bytesStored / result.bytesNew };
}

/** The test data mixes compressible and random chunks: the store's kind, and raw for the rest. */
function expectKinds(kinds: Set<number>, kind: number): void {
  expect(kinds.has(kind)).toBe(true);
  expect([...kinds].filter((k) => k !== kind && k !== PAYLOAD_RAW)).toEqual([]);
}

async function blobKinds(objects: ObjectStore, storeId: string): Promise<Set<number>> {
  const kinds = new Set<number>();
  for await (const info of listAll(objects, 'packs/')) {
    const trailer = await readPackTrailer(objects, info.key);
    if (Buffer.from(trailer.storeId).toString('hex') !== storeId) continue;
    for (const entry of trailer.entries) kinds.add(entry.codec & 0x7f);
  }
  return kinds;
}

describe('store compression setting', () => {
  it('new repositories and their stores record zstd:3; blobs are zstd and restore through the decode workers', async () => {
    const objects = await FsObjectStore.open(join(dir, 'repo'), { create: true });
    const repo = await Repository.init(objects, { packBytes: 4 << 20 });
    expect(repo.config.compression).toBe('zstd:3');
    expect((await repo.storeRecord('global'))?.compression).toBe('zstd:3');
    const reopened = await Repository.open(objects);
    expect((await reopened.storeByName('global')).compression).toEqual({ kind: 'zstd', level: 3 });
    const { kinds } = await roundTrip(reopened, generate(1, SIZE), 'vm');
    expectKinds(kinds, PAYLOAD_ZSTD);
  });

  for (const encrypted of [false, true]) {
    it(`a repository's setting applies to its stores, a store's own overrides it, each is kept on reopen${encrypted ? ' (encrypted)' : ''}`, async () => {
      const objects = await FsObjectStore.open(join(dir, 'repo'), { create: true });
      const passphrase = encrypted ? 'compression passphrase' : undefined;
      const repo = await Repository.init(objects, { packBytes: 4 << 20, compression: { kind: 'lz4' }, passphrase, scryptCost: SCRYPT });
      await repo.createStore('dense', { kind: 'job', job: 'db' }, { compression: { kind: 'zstd', level: 9 } });
      await repo.createStore('plain', { kind: 'job', job: 'media' }, { compression: { kind: 'none' } });
      const reopened = await Repository.open(objects, { passphrase, scryptCost: SCRYPT });
      const expected: [string, string, BlobCompression, number][] = [
        ['global', 'vm', { kind: 'lz4' }, PAYLOAD_LZ4],
        ['dense', 'db', { kind: 'zstd', level: 9 }, PAYLOAD_ZSTD],
        ['plain', 'media', { kind: 'none' }, PAYLOAD_RAW],
      ];
      const data = generate(2, SIZE);
      const stored: Record<string, number> = {};
      for (const [name, job, compression, kind] of expected) {
        expect((await reopened.storeByName(name)).compression).toEqual(compression);
        const { kinds, storedPerNew } = await roundTrip(reopened, data, job, name);
        expectKinds(kinds, kind);
        stored[name] = storedPerNew;
      }
      expect(stored.dense).toBeLessThan(stored.global);
      expect(stored.global).toBeLessThan(stored.plain);
    });
  }

  it('a store record from before the setting keeps lz4; a record with an unknown setting is refused, naming it', async () => {
    const objects = await FsObjectStore.open(join(dir, 'repo'), { create: true });
    await Repository.init(objects, { packBytes: 4 << 20 });
    const legacy = JSON.parse(Buffer.from(await objects.get('stores/global')).toString('utf8'));
    delete legacy.compression;
    await objects.deleteMany(['stores/global']);
    await objects.putIfAbsent('stores/global', Buffer.from(JSON.stringify(legacy)));
    const repo = await Repository.open(objects);
    expect((await repo.storeByName('global')).compression).toEqual({ kind: 'lz4' });
    const { kinds } = await roundTrip(repo, generate(3, SIZE), 'vm');
    expectKinds(kinds, PAYLOAD_LZ4);

    await objects.deleteMany(['stores/global']);
    await objects.putIfAbsent('stores/global', Buffer.from(JSON.stringify({ ...legacy, compression: 'gzip:9' })));
    await expect(Repository.open(objects).then((r) => r.storeByName('global'))).rejects.toThrow(RecordFormatError);
    await expect(Repository.open(objects).then((r) => r.storeByName('global'))).rejects.toThrow(
      /compression is "gzip:9", expected zstd\[:LEVEL\] \(LEVEL 1-19, default 3\), lz4 or none/,
    );
  });
});
