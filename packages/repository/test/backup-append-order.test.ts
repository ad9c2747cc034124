/**
 * The embedded backup's append queue (repo/backup.ts): new chunks are encoded in the encode
 * workers and may come back in any order, but their blobs go into packs in stream order;
 * an encode that fails fails the backup with nothing committed. The store's codec is
 * wrapped to reorder or fail encodes: the workers themselves answer in order and do not fail.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { backup, FsObjectStore, listAll, readPackTrailer, Repository, type BlobCodec } from '../dist/index.js';
import { restored } from './restored.js';

const MiB = 1024 * 1024;
/** Three 4 MiB packs' worth of incompressible data: over the backup's 4 MiB of encodes in flight, so the loop waits too. */
const SOURCE_BYTES = 10 * MiB;

let root: string | undefined;
afterEach(async () => {
  if (root) await rm(root, { recursive: true, force: true });
  root = undefined;
});

async function newRepo(): Promise<{ repo: Repository; objects: FsObjectStore }> {
  root = await mkdtemp(join(tmpdir(), 'hoard-append-order-'));
  const objects = await FsObjectStore.open(root, { create: true });
  return { repo: await Repository.init(objects, { packBytes: 4 * MiB }), objects };
}

async function* pieces(data: Buffer): AsyncGenerator<Uint8Array> {
  for (let o = 0; o < data.length; o += 256 * 1024) yield data.subarray(o, o + 256 * 1024);
}

/** Wraps the store codec's encodeOffThread: `wrap(call, result)` decides when (or whether) each result arrives. */
function wrapEncodes(
  codec: BlobCodec,
  wrap: (call: number, fingerprint: Uint8Array, result: ReturnType<BlobCodec['encodeOffThread']>) => ReturnType<BlobCodec['encodeOffThread']>,
): () => void {
  const original = codec.encodeOffThread.bind(codec);
  let calls = 0;
  codec.encodeOffThread = (raw, fingerprint) => wrap(calls++, Uint8Array.from(fingerprint), original(raw, fingerprint));
  return () => {
    codec.encodeOffThread = original;
  };
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('embedded backup: the append queue', () => {
  it('blobs go into packs in stream order when encodes finish out of order', async () => {
    const { repo, objects } = await newRepo();
    const codec = (await repo.storeForJob('order')).codec;
    const started: string[] = [];
    // Every third encode arrives late (after later ones), every fifth a turn of the loop late.
    const unwrap = wrapEncodes(codec, (call, fingerprint, result) => {
      started.push(hex(fingerprint));
      if (call % 3 === 0) return result.then((blob) => new Promise((resolve) => setTimeout(() => resolve(blob), 2)));
      if (call % 5 === 0) return result.then((blob) => new Promise((resolve) => setImmediate(() => resolve(blob))));
      return result;
    });
    const data = randomBytes(SOURCE_BYTES);
    let result;
    try {
      result = await backup(repo, { stream: pieces(data), name: 'order', kind: 'stream' }, { job: 'order' });
    } finally {
      unwrap();
    }
    expect(result.chunksNew).toBe(started.length);
    expect(result.packs).toBeGreaterThanOrEqual(3);

    // The packs' entries, pack after pack in the order the writer sealed them, are the new
    // chunks in the order the backup met them. Sealing order: each pack's first blob.
    const trailers = [];
    for await (const info of listAll(objects, 'packs/')) trailers.push(await readPackTrailer(objects, info.key));
    const position = new Map(started.map((f, i) => [f, i]));
    trailers.sort((a, b) => position.get(hex(a.entries[0].fingerprint))! - position.get(hex(b.entries[0].fingerprint))!);
    expect(trailers.flatMap((t) => t.entries.map((e) => hex(e.fingerprint)))).toEqual(started);
    expect((await restored(objects, result.snapshot)).equals(data)).toBe(true);
  });

  it('every new chunk keeps its own fingerprint in the packs, past the first 1,024 (the backup copies fingerprints into shared slabs)', async () => {
    const { repo, objects } = await newRepo();
    const data = randomBytes(12 * MiB);
    // 4 KiB chunks: ~3,000 new ones, three slabs' worth.
    const result = await backup(repo, { stream: pieces(data), name: 'slabs', kind: 'stream' }, { job: 'slabs', avgChunkSize: 4096 });
    expect(result.chunksNew).toBeGreaterThan(2 * 1024);
    const fingerprints = new Set<string>();
    for await (const info of listAll(objects, 'packs/'))
      for (const e of (await readPackTrailer(objects, info.key)).entries) fingerprints.add(hex(e.fingerprint));
    expect(fingerprints.size).toBe(result.chunksNew);
    // The restore finds every chunk by its fingerprint and checks its bytes against it.
    expect((await restored(objects, result.snapshot)).equals(data)).toBe(true);
  });

  it('a progress callback that throws as blobs are appended fails the backup (nothing committed), not the process', async () => {
    const { repo } = await newRepo();
    let thrown = false;
    // The first report with stored bytes comes from the appends (an encode's reaction).
    const onProgress = (p: { bytesStored: number }) => {
      if (p.bytesStored === 0 || thrown) return;
      thrown = true;
      throw new Error('progress display broke');
    };
    const data = randomBytes(SOURCE_BYTES);
    await expect(backup(repo, { stream: pieces(data), name: 'progress', kind: 'stream' }, { job: 'progress', onProgress })).rejects.toThrow(
      'progress display broke',
    );
    expect(await repo.snapshots('progress')).toEqual([]);
  });

  it('an encode that fails fails the backup and commits nothing; the next backup of the same data succeeds', async () => {
    const { repo, objects } = await newRepo();
    const codec = (await repo.storeForJob('fails')).codec;
    const unwrap = wrapEncodes(codec, (call, _fingerprint, result) =>
      call === 300 ? result.then(() => Promise.reject(new Error('encode 300 broke'))) : result,
    );
    const data = randomBytes(SOURCE_BYTES);
    try {
      await expect(backup(repo, { stream: pieces(data), name: 'fails', kind: 'stream' }, { job: 'fails' })).rejects.toThrow('encode 300 broke');
    } finally {
      unwrap();
    }
    expect(await repo.snapshots('fails')).toEqual([]);

    const again = await backup(repo, { stream: pieces(data), name: 'fails', kind: 'stream' }, { job: 'fails' });
    expect(again.bytesRead).toBe(SOURCE_BYTES);
    expect((await restored(objects, again.snapshot)).equals(data)).toBe(true);
  });
});
