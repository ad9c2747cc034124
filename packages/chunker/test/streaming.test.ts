import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Blake3Hasher, blake3 } from '@napi-rs/blake-hash';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { Chunker, ChunkerParameterError, chunkStream, fileSource, findCutPoints, readFileReusing, type Chunk, type ChunkerSpec } from '../dist/index.js';
import { collect, inReads, randomBytes } from './helpers.js';

const summary = (chunks: Chunk[]) => chunks.map((c) => [c.offset, c.length, Buffer.from(c.fingerprint).toString('hex'), c.zero]);

/** Data with zero runs and repeats, like a disk image. */
function imageLike(length: number, seed: number): Uint8Array {
  const out = randomBytes(length, seed);
  let x = seed;
  for (let i = 0; i < 6; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    const at = x % Math.max(1, length);
    out.fill(0, at, Math.min(length, at + (x % 70_000)));
  }
  return out;
}

const specs = fc.oneof(
  fc.record({
    kind: fc.constant('fastcdc' as const),
    avgSize: fc.constantFrom(4096, 8192, 16384),
    variant: fc.constantFrom('2016' as const, '2020' as const),
    normalization: fc.integer({ min: 0, max: 3 }),
  }),
  fc.record({ kind: fc.constant('fixed' as const), size: fc.constantFrom(4096, 12288) }),
) as fc.Arbitrary<ChunkerSpec>;

const readSizes = fc.oneof(
  fc.array(fc.integer({ min: 1, max: 70_000 }), { minLength: 1, maxLength: 20 }),
  fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 5 }),
  fc.constant([1]),
);

describe('streaming chunker', () => {
  const open: Chunker[] = [];
  afterAll(async () => Promise.all(open.map((c) => c.close())));

  it('cut points are identical however the input is split into reads (including 1-byte reads)', async () => {
    await fc.assert(
      fc.asyncProperty(specs, fc.integer({ min: 0, max: 120_000 }), fc.integer(), readSizes, async (spec, length, seed, sizes) => {
        const data = imageLike(length, seed);
        const expected = findCutPoints(data, spec);
        const chunks = await collect(new Chunker({ chunker: spec, workers: 0 }).chunk(inReads(data, sizes)));
        expect(chunks.map((c) => c.offset + c.length)).toEqual(expected);
      }),
      { numRuns: 60 },
    );
  });

  it('worker segments reproduce the in-thread chunks exactly, whatever the segment size and reads', async () => {
    const pools = new Map<string, Chunker>();
    await fc.assert(
      fc.asyncProperty(
        specs,
        fc.integer({ min: 0, max: 600_000 }),
        fc.integer(),
        readSizes.filter((s) => s.some((n) => n > 100)),
        fc.integer({ min: 1, max: 2 }),
        fc.integer({ min: 1, max: 200_000 }),
        async (spec, length, seed, sizes, workers, segmentBytes) => {
          const data = imageLike(length, seed);
          const reference = summary(await collect(new Chunker({ chunker: spec, workers: 0 }).chunk(inReads(data, [65536]))));
          const key = JSON.stringify([spec, workers, segmentBytes]);
          let chunker = pools.get(key);
          if (!chunker) {
            chunker = new Chunker({ chunker: spec, workers, pipeline: { segmentBytes } });
            pools.set(key, chunker);
            open.push(chunker);
          }
          expect(summary(await collect(chunker.chunk(inReads(data, sizes))))).toEqual(reference);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('yields offset, length, bytes, BLAKE3 fingerprint and the zero flag for each chunk', async () => {
    const data = imageLike(3_000_000, 99);
    data.fill(0, 100_000, 600_000);
    for (const workers of [0, 2]) {
      const chunks = await collect(chunkStream(inReads(data, [100_000]), { chunker: { kind: 'fastcdc', avgSize: 16384 }, workers }));
      let offset = 0;
      for (const c of chunks) {
        expect(c.offset).toBe(offset);
        expect(c.bytes.length).toBe(c.length);
        expect(Buffer.from(c.bytes).equals(Buffer.from(data.subarray(c.offset, c.offset + c.length)))).toBe(true);
        expect(Buffer.from(c.fingerprint).equals(blake3(c.bytes))).toBe(true);
        expect(c.zero).toBe(c.bytes.every((b) => b === 0));
        offset += c.length;
      }
      expect(offset).toBe(data.length);
      expect(chunks.filter((c) => c.zero).length).toBeGreaterThan(3);
    }
  });

  it('chunks stay valid after later chunks are produced (buffers are never reused)', async () => {
    const data = randomBytes(30 << 20, 5);
    for (const workers of [0, 1]) {
      const chunks = await collect(chunkStream(inReads(data, [1 << 20]), { chunker: { kind: 'fastcdc', avgSize: 65536 }, workers }));
      for (const c of chunks) expect(Buffer.from(blake3(c.bytes)).equals(Buffer.from(c.fingerprint))).toBe(true);
    }
  });

  it('with reuseBuffers, every chunk is right when it is received (in-thread and workers)', async () => {
    await fc.assert(
      fc.asyncProperty(specs, fc.integer({ min: 0, max: 3_000_000 }), fc.integer(), fc.integer({ min: 0, max: 2 }), async (spec, length, seed, workers) => {
        const data = imageLike(length, seed);
        const chunker = new Chunker({ chunker: spec, workers, reuseBuffers: true, pipeline: { segmentBytes: 100_000 } });
        let offset = 0;
        try {
          for await (const c of chunker.chunk(inReads(data, [40_000]))) {
            expect(c.offset).toBe(offset);
            expect(Buffer.compare(Buffer.from(c.bytes.buffer, c.bytes.byteOffset, c.length), data.subarray(offset, offset + c.length))).toBe(0);
            expect(Buffer.from(c.fingerprint).equals(blake3(c.bytes))).toBe(true);
            offset += c.length;
          }
        } finally {
          await chunker.close();
        }
        expect(offset).toBe(data.length);
      }),
      { numRuns: 25 },
    );
  });

  it('chunkBatches gives the chunks of chunk() in batches; with reuseBuffers every chunk of a batch is right until the next batch', async () => {
    await fc.assert(
      fc.asyncProperty(specs, fc.integer({ min: 0, max: 2_000_000 }), fc.integer(), fc.integer({ min: 0, max: 2 }), async (spec, length, seed, workers) => {
        const data = imageLike(length, seed);
        const reference = summary(await collect(new Chunker({ chunker: spec, workers: 0 }).chunk(inReads(data, [65536]))));
        const chunker = new Chunker({ chunker: spec, workers, reuseBuffers: true, pipeline: { segmentBytes: 100_000 } });
        const got: Chunk[] = [];
        let batches = 0;
        try {
          for await (const batch of chunker.chunkBatches(inReads(data, [40_000]))) {
            batches++;
            expect(batch.length).toBeGreaterThan(0);
            // Checked only once the whole batch is here: its views must all still hold their bytes.
            for (const c of batch) {
              expect(Buffer.compare(Buffer.from(c.bytes.buffer, c.bytes.byteOffset, c.length), data.subarray(c.offset, c.offset + c.length))).toBe(0);
              expect(Buffer.from(c.fingerprint).equals(blake3(c.bytes))).toBe(true);
            }
            got.push(...batch.map((c) => ({ ...c, fingerprint: Uint8Array.from(c.fingerprint) })));
          }
        } finally {
          await chunker.close();
        }
        expect(summary(got)).toEqual(reference);
        // With workers, a batch is a segment's chunks, not one chunk each.
        if (workers > 0 && reference.length > 20) expect(batches).toBeLessThan(reference.length);
      }),
      { numRuns: 25 },
    );
  });

  it('keyed BLAKE3 and SHA-256 fingerprints are what their specs say', async () => {
    const data = randomBytes(200_000, 3);
    const key = new Uint8Array(32).fill(7);
    const keyed = await collect(
      chunkStream(inReads(data, [50_000]), { chunker: { kind: 'fixed', size: 65536 }, fingerprint: { algorithm: 'blake3', key }, workers: 1 }),
    );
    const sha = await collect(
      chunkStream(inReads(data, [50_000]), { chunker: { kind: 'fixed', size: 65536 }, fingerprint: { algorithm: 'sha256' }, workers: 0 }),
    );
    for (const c of keyed) {
      expect(Buffer.from(c.fingerprint)).toEqual(Blake3Hasher.newKeyed(Buffer.from(key)).update(c.bytes).digestBuffer());
      expect(Buffer.from(c.fingerprint)).not.toEqual(blake3(c.bytes));
    }
    for (const c of sha) expect(Buffer.from(c.fingerprint)).toEqual(createHash('sha256').update(c.bytes).digest());
  });

  it('reads a Node Readable; refuses a stream in string mode with a clear error', async () => {
    const data = randomBytes(500_000, 4);
    const chunks = await collect(chunkStream(Readable.from([Buffer.from(data)]), { chunker: { kind: 'fixed', size: 65536 }, workers: 0 }));
    expect(chunks.reduce((n, c) => n + c.length, 0)).toBe(data.length);
    const text = Readable.from(['hello']);
    await expect(collect(chunkStream(text, { chunker: { kind: 'fixed', size: 65536 }, workers: 0 }))).rejects.toThrow(ChunkerParameterError);
    await expect(collect(chunkStream(42 as never, { chunker: { kind: 'fixed', size: 65536 }, workers: 0 }))).rejects.toThrow(/source/);
  });

  it('start() runs the workers before any stream: the same chunks, twice over one pool; close() without a stream ends it', async () => {
    const spec: ChunkerSpec = { kind: 'fastcdc', avgSize: 4096 };
    const data = imageLike(700_000, 7);
    const reference = summary(await collect(new Chunker({ chunker: spec, workers: 0 }).chunk(inReads(data, [65536]))));
    const started = new Chunker({ chunker: spec, workers: 1, pipeline: { segmentBytes: 100_000 } });
    started.start();
    started.start();
    try {
      expect(summary(await collect(started.chunk(inReads(data, [30_000]))))).toEqual(reference);
      const batches: Chunk[] = [];
      for await (const batch of started.chunkBatches(inReads(data, [30_000]))) batches.push(...batch);
      expect(summary(batches)).toEqual(reference);
    } finally {
      await started.close();
    }
    const idle = new Chunker({ chunker: spec, workers: 2 });
    idle.start();
    await idle.close();
    await idle.close();
  });

  it('a fileSource is read straight into the segments: the chunks of the same file read piece by piece; closed at the end and when the consumer stops', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hoard-file-source-'));
    try {
      const path = join(dir, 'data');
      const data = imageLike(900_000, 11);
      await writeFile(path, data);
      const spec: ChunkerSpec = { kind: 'fastcdc', avgSize: 4096 };
      const reference = summary(await collect(new Chunker({ chunker: spec, workers: 0 }).chunk(readFileReusing(path))));
      for (const workers of [0, 1]) {
        const chunker = new Chunker({ chunker: spec, workers, reuseBuffers: true, pipeline: { segmentBytes: 100_000 } });
        try {
          const source = fileSource(path);
          let reads = 0;
          let closes = 0;
          const readInto = source.readInto.bind(source);
          const close = source.close.bind(source);
          source.readInto = (target, offset, length) => (reads++, readInto(target, offset, length));
          source.close = () => (closes++, close());
          const got: Chunk[] = [];
          for await (const batch of chunker.chunkBatches(source))
            got.push(...batch.map((c) => ({ ...c, bytes: Uint8Array.from(c.bytes), fingerprint: Uint8Array.from(c.fingerprint) })));
          expect(summary(got)).toEqual(reference);
          for (const c of got) expect(Buffer.compare(c.bytes, data.subarray(c.offset, c.offset + c.length))).toBe(0);
          // In-thread, the chunker iterates the source (its own reused read buffer); with workers it reads into segments.
          expect(reads > 0).toBe(workers > 0);
          expect(closes).toBe(workers > 0 ? 1 : 0);

          // A consumer that stops after the first batch: the file is closed all the same.
          const early = fileSource(path);
          let earlyCloses = 0;
          const earlyClose = early.close.bind(early);
          early.close = () => (earlyCloses++, earlyClose());
          for await (const batch of chunker.chunkBatches(early)) {
            expect(batch.length).toBeGreaterThan(0);
            break;
          }
          expect(earlyCloses).toBe(workers > 0 ? 1 : 0);
        } finally {
          await chunker.close();
        }
      }
      // A missing file fails the first read with the file system's error.
      const missing = new Chunker({ chunker: spec, workers: 1 });
      try {
        await expect(collect(missing.chunk(fileSource(join(dir, 'missing'))))).rejects.toThrow('ENOENT');
      } finally {
        await missing.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('an empty stream yields no chunks', async () => {
    for (const workers of [0, 1]) {
      expect(await collect(chunkStream(inReads(new Uint8Array(0), [1]), { chunker: { kind: 'fastcdc', avgSize: 4096 }, workers }))).toEqual([]);
    }
  });

  it('a failing source fails the chunk stream with the source error', async () => {
    async function* broken() {
      yield new Uint8Array(100_000);
      throw new Error('disk read error at 100000');
    }
    for (const workers of [0, 1]) {
      await expect(collect(chunkStream(broken(), { chunker: { kind: 'fastcdc', avgSize: 4096 }, workers }))).rejects.toThrow('disk read error');
    }
  });
});
