import { randomFillSync } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ChunkerParameterError, FingerprintIndex, IndexFormatError } from '@hoard/chunker';

// Keys are built from a few "interesting" words so that many land in the same shard
// (top 12 bits of word 0) and on the same home slot (word 1): long Robin Hood chains,
// wrap-around at the end of a shard, keys sharing prefixes, and the all-zero key.
const interestingWord = fc.oneof(fc.constantFrom(0, 1, 0xffffffff, 0x80000000, 0x000fffff, 0x00100000), fc.integer({ min: 0, max: 0xffffffff }));
const keyArb = fc.tuple(interestingWord, interestingWord, interestingWord, interestingWord).map((words) => {
  const key = new Uint8Array(16);
  const view = new DataView(key.buffer);
  words.forEach((w, i) => view.setUint32(4 * i, w, true));
  return key;
});
const ALL_ZERO = new Uint8Array(16);
const keyPoolArb = fc.array(keyArb, { minLength: 1, maxLength: 40 }).map((keys) => [ALL_ZERO, ...keys]);
const uint32 = fc.integer({ min: 0, max: 0xffffffff });

const hex = (key: Uint8Array): string => Buffer.from(key.subarray(0, 16)).toString('hex');

/** The key at a random offset inside random padding, to exercise unaligned reads. */
function embed(key: Uint8Array, offset: number, trailing: number): Uint8Array {
  const buf = new Uint8Array(offset + 16 + trailing);
  randomFillSync(buf);
  buf.set(key, offset);
  return buf;
}

function randomKeys(n: number): Uint8Array {
  const buf = new Uint8Array(n * 32);
  for (let o = 0; o < buf.length; o += 1 << 24) randomFillSync(buf, o, Math.min(1 << 24, buf.length - o));
  return buf;
}

async function saveToBytes(index: FingerprintIndex): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  await index.save({ write: (chunk: Uint8Array) => chunks.push(Uint8Array.from(chunk)) });
  return Buffer.concat(chunks);
}

/** Replays `bytes` in chunks of the given sizes (cycled), as a stream would. */
async function* chunked(bytes: Uint8Array, sizes: number[] = [bytes.length || 1]): AsyncGenerator<Uint8Array> {
  for (let o = 0, i = 0; o < bytes.length; i++) {
    const n = Math.max(1, sizes[i % sizes.length]);
    yield bytes.slice(o, o + n);
    o += n;
  }
}

function contents(index: FingerprintIndex): Map<string, number[]> {
  const map = new Map<string, number[]>();
  for (const { key, value } of index.entries()) {
    // Plain checks: expect() per entry would dominate the run time.
    if (key.length !== 16 || map.has(hex(key))) throw new Error(`bad or repeated key ${hex(key)}`);
    map.set(hex(key), [...value]);
  }
  return map;
}

async function expectFormatError(promise: Promise<unknown>, name: string, reason?: RegExp): Promise<IndexFormatError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(IndexFormatError);
  const e = error as IndexFormatError;
  expect(e.source).toBe(name);
  expect(e.message).toContain(name);
  if (reason) expect(e.reason).toMatch(reason);
  return e;
}

function expectParameterError(fn: () => unknown, parameter: string): void {
  let error: unknown;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(ChunkerParameterError);
  expect((error as ChunkerParameterError).parameter).toBe(parameter);
}

type Op = { kind: 'add'; key: number; value: number[]; offset: number } | { kind: 'has' | 'get' | 'delete'; key: number; offset: number };

describe('FingerprintIndex against a Map', () => {
  it('add/has/get/delete behave like Map<string, number[]> (duplicates, shared prefixes, zero key, unaligned)', () => {
    const opArb = (valueWords: number): fc.Arbitrary<Op> =>
      fc.oneof(
        fc.record({
          kind: fc.constant('add' as const),
          key: fc.nat(),
          value: fc.array(uint32, { minLength: valueWords, maxLength: valueWords }),
          offset: fc.nat({ max: 7 }),
        }),
        fc.record({ kind: fc.constantFrom('has' as const, 'get' as const, 'delete' as const), key: fc.nat(), offset: fc.nat({ max: 7 }) }),
      );
    const scenario = fc
      .integer({ min: 1, max: 4 })
      .chain((valueWords) => fc.tuple(fc.constant(valueWords), keyPoolArb, fc.array(opArb(valueWords), { maxLength: 300 })));
    fc.assert(
      fc.property(scenario, ([valueWords, pool, ops]) => {
        const index = new FingerprintIndex({ valueWords });
        const reference = new Map<string, number[]>();
        for (const op of ops) {
          const key = pool[op.key % pool.length];
          const buf = embed(key, op.offset, op.offset % 3);
          const id = hex(key);
          switch (op.kind) {
            case 'add': {
              const fresh = !reference.has(id);
              expect(index.add(buf, op.value, op.offset)).toBe(fresh);
              if (fresh) reference.set(id, op.value);
              break;
            }
            case 'has':
              expect(index.has(buf, op.offset)).toBe(reference.has(id));
              break;
            case 'get': {
              const got = index.get(buf, op.offset);
              expect(got === undefined ? undefined : [...got]).toEqual(reference.get(id));
              // getWord agrees with get, word by word (no allocation, same uint32 values).
              for (let w = 0; w < valueWords; w++) expect(index.getWord(buf, w, op.offset)).toBe(reference.get(id)?.[w]);
              break;
            }
            case 'delete':
              expect(index.delete(buf, op.offset)).toBe(reference.delete(id));
              break;
          }
          expect(index.size).toBe(reference.size);
        }
        expect(contents(index)).toEqual(reference);
        for (const [id, value] of reference) expect([...index.get(Buffer.from(id, 'hex'))!]).toEqual(value);
      }),
      { numRuns: 300 },
    );
  });

  it('stores the all-zero key like any other', () => {
    const index = new FingerprintIndex();
    expect(index.has(ALL_ZERO)).toBe(false);
    expect(index.get(ALL_ZERO)).toBeUndefined();
    expect(index.add(ALL_ZERO, [0, 0])).toBe(true);
    expect(index.add(ALL_ZERO, [1, 2])).toBe(false);
    expect(index.has(ALL_ZERO)).toBe(true);
    expect([...index.get(ALL_ZERO)!]).toEqual([0, 0]);
    expect([...index.lookupMany(new Uint8Array(64))]).toEqual([]);
    expect(contents(index)).toEqual(new Map([[hex(ALL_ZERO), [0, 0]]]));
    expect(index.delete(ALL_ZERO)).toBe(true);
    expect(index.has(ALL_ZERO)).toBe(false);
    expect(index.size).toBe(0);
  });

  it('keys only by the first 16 bytes of a fingerprint', () => {
    const index = new FingerprintIndex({ valueWords: 1 });
    const a = randomKeys(1);
    const b = Uint8Array.from(a);
    b[20] ^= 0xff;
    expect(index.add(a, [7])).toBe(true);
    expect(index.add(b, [8])).toBe(false);
    expect([...index.get(b)!]).toEqual([7]);
  });

  it('returns value copies, and keeps values as uint32', () => {
    const index = new FingerprintIndex({ valueWords: 3 });
    const key = randomKeys(1);
    index.add(key, [0xffffffff, 0x80000000, 0]);
    const v = index.get(key)!;
    expect([...v]).toEqual([0xffffffff, 0x80000000, 0]);
    v[0] = 1;
    expect(index.get(key)![0]).toBe(0xffffffff);
  });
});

describe('lookupMany', () => {
  it('agrees with has() for any stride and alignment', () => {
    fc.assert(
      fc.property(
        keyPoolArb,
        fc.array(fc.boolean(), { maxLength: 42 }),
        fc.array(fc.nat(), { maxLength: 200 }),
        fc.constantFrom(16, 17, 20, 32, 33, 48),
        fc.nat({ max: 3 }),
        (pool, inserted, queries, stride, misalign) => {
          const index = new FingerprintIndex({ valueWords: 1 });
          pool.forEach((key, i) => {
            if (inserted[i]) index.add(key, [i]);
          });
          const backing = new Uint8Array(misalign + queries.length * stride);
          randomFillSync(backing);
          const packed = backing.subarray(misalign);
          queries.forEach((q, i) => packed.set(pool[q % pool.length], i * stride));
          const expected = queries.flatMap((_, i) => (index.has(packed, i * stride) ? [] : [i]));
          expect([...index.lookupMany(packed, stride)]).toEqual(expected);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('gives the same answer for unaligned input spanning several re-packing blocks', () => {
    const index = new FingerprintIndex();
    const keys = randomKeys(5000);
    for (let i = 0; i < 5000; i += 3) index.add(keys, [i, 0], 32 * i);
    const shifted = new Uint8Array(keys.length + 1).subarray(1);
    shifted.set(keys);
    const aligned = [...index.lookupMany(keys)];
    expect(aligned.length).toBe(5000 - 1667);
    expect([...index.lookupMany(shifted)]).toEqual(aligned);
  });

  it('handles an empty batch and the default 32-byte stride', () => {
    const index = new FingerprintIndex();
    const keys = randomKeys(3);
    index.add(keys, [1, 1], 32);
    expect([...index.lookupMany(new Uint8Array(0))]).toEqual([]);
    expect([...index.lookupMany(keys)]).toEqual([0, 2]);
  });
});

describe('save and load', () => {
  const entryArb = fc.tuple(keyArb, fc.array(uint32, { minLength: 4, maxLength: 4 }));

  it('round-trips entries, size and values, whatever the chunking', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 4 }),
        fc.array(entryArb, { maxLength: 150 }),
        fc.array(fc.integer({ min: 1, max: 97 }), { minLength: 1, maxLength: 5 }),
        async (valueWords, entries, sizes) => {
          const index = new FingerprintIndex({ valueWords });
          for (const [key, value] of entries) index.add(key, value.slice(0, valueWords));
          const bytes = await saveToBytes(index);
          expect(bytes.length).toBe(24 + index.size * (16 + 4 * valueWords) + 32);
          const loaded = await FingerprintIndex.load(chunked(bytes, sizes), 'mem');
          expect(loaded.valueWords).toBe(valueWords);
          expect(loaded.size).toBe(index.size);
          expect(contents(loaded)).toEqual(contents(index));
          for (const [key] of entries) expect(loaded.get(key)).toEqual(index.get(key));
        },
      ),
      { numRuns: 150 },
    );
  });

  it('any damage (truncation, bit flips, trailing garbage) throws IndexFormatError', async () => {
    const index = new FingerprintIndex({ valueWords: 2 });
    const keys = randomKeys(40);
    for (let i = 0; i < 40; i++) index.add(keys, [i, 2 * i], 32 * i);
    const good = await saveToBytes(index);
    const damageArb = fc.oneof(
      fc.record({ kind: fc.constant('truncate' as const), at: fc.nat({ max: good.length - 1 }) }),
      fc.record({ kind: fc.constant('flip' as const), at: fc.nat({ max: good.length * 8 - 1 }) }),
      fc.record({ kind: fc.constant('append' as const), garbage: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
    );
    await fc.assert(
      fc.asyncProperty(damageArb, fc.integer({ min: 1, max: 300 }), async (damage, chunkSize) => {
        let bad: Uint8Array;
        if (damage.kind === 'truncate') bad = good.slice(0, damage.at);
        else if (damage.kind === 'append') bad = Buffer.concat([good, damage.garbage]);
        else {
          bad = Uint8Array.from(good);
          bad[damage.at >> 3] ^= 1 << (damage.at & 7);
        }
        await expectFormatError(FingerprintIndex.load(chunked(bad, [chunkSize]), 'damaged.idx'), 'damaged.idx');
      }),
      { numRuns: 400 },
    );
  });

  it('says what is wrong', async () => {
    const index = new FingerprintIndex();
    const keys = randomKeys(5);
    for (let i = 0; i < 5; i++) index.add(keys, [i, i], 32 * i);
    const good = await saveToBytes(index);
    const load = (bytes: Uint8Array) => FingerprintIndex.load(chunked(bytes), 'x.idx');
    const patched = (at: number, byte: number) => {
      const b = Uint8Array.from(good);
      b[at] = byte;
      return b;
    };
    await expectFormatError(load(patched(0, 0x41)), 'x.idx', /magic/);
    await expectFormatError(load(patched(8, 2)), 'x.idx', /version 2/);
    await expectFormatError(load(patched(10, 5)), 'x.idx', /value words/);
    await expectFormatError(load(patched(12, 1)), 'x.idx', /reserved/);
    await expectFormatError(load(good.slice(0, 10)), 'x.idx', /truncated/);
    await expectFormatError(load(good.slice(0, good.length - 1)), 'x.idx', /truncated/);
    await expectFormatError(load(new Uint8Array(0)), 'x.idx', /truncated/);
    await expectFormatError(load(Buffer.concat([good, new Uint8Array(1)])), 'x.idx', /after the checksum/);
    await expectFormatError(load(patched(30, good[30] ^ 4)), 'x.idx', /checksum mismatch/);
    await expectFormatError(load(patched(good.length - 1, good[good.length - 1] ^ 1)), 'x.idx', /checksum mismatch/);
  });

  it('streams through real files and names the path in errors', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hoard-fpi-'));
    try {
      const index = new FingerprintIndex();
      const keys = randomKeys(20_000);
      for (let i = 0; i < 20_000; i++) index.add(keys, [i, 0], 32 * i);
      const path = join(dir, 'store.idx');
      // A tiny highWaterMark forces save() to wait for 'drain' on every chunk.
      const out = createWriteStream(path, { highWaterMark: 16 });
      await index.save(out);
      out.end();
      await finished(out);
      const loaded = await FingerprintIndex.load(createReadStream(path, { highWaterMark: 1000 }), path);
      expect(loaded.size).toBe(20_000);
      expect(loaded.lookupMany(keys).length).toBe(0);

      const bytes = await saveToBytes(index);
      bytes[1000] ^= 0x10;
      const damaged = join(dir, 'damaged.idx');
      await writeFile(damaged, bytes);
      await expectFormatError(FingerprintIndex.load(createReadStream(damaged), damaged), damaged, /checksum/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('respects backpressure and writes a consistent snapshot while the index changes', async () => {
    const index = new FingerprintIndex({ valueWords: 1 });
    const keys = randomKeys(30_000);
    for (let i = 0; i < 20_000; i++) index.add(keys, [i], 32 * i);
    const before = contents(index);
    const chunks: Uint8Array[] = [];
    let mutated = false;
    const slow = new Writable({
      highWaterMark: 1,
      write(chunk: Uint8Array, _enc, done) {
        chunks.push(Uint8Array.from(chunk));
        if (!mutated) {
          // Mid-save: add new keys, delete and re-add old ones in every shard.
          mutated = true;
          for (let i = 20_000; i < 30_000; i++) index.add(keys, [i], 32 * i);
          for (let i = 0; i < 5_000; i++) index.delete(keys, 32 * i);
        }
        setImmediate(done);
      },
    });
    await index.save(slow);
    expect(mutated).toBe(true);
    const loaded = await FingerprintIndex.load(chunked(Buffer.concat(chunks), [4096]), 'snapshot');
    expect(contents(loaded)).toEqual(before);
    expect(index.size).toBe(25_000);
    expect(index.has(keys, 0)).toBe(false);
    expect(index.has(keys, 32 * 29_999)).toBe(true);
    // A save after the first one sees the changes.
    const again = await FingerprintIndex.load(chunked(await saveToBytes(index)), 'again');
    expect(contents(again)).toEqual(contents(index));
  });

  it('accepts sinks whose write() returns a promise', async () => {
    const index = new FingerprintIndex();
    index.add(randomKeys(1), [1, 2]);
    const chunks: Uint8Array[] = [];
    await index.save({
      write: async (chunk: Uint8Array) => {
        await new Promise((r) => setTimeout(r, 1));
        chunks.push(chunk);
      },
    });
    const loaded = await FingerprintIndex.load(Readable.from(chunks.map((c) => Buffer.from(c))), 'promises');
    expect(loaded.size).toBe(1);
  });

  it('round-trips an empty index', async () => {
    const bytes = await saveToBytes(new FingerprintIndex({ valueWords: 4 }));
    expect(bytes.length).toBe(24 + 32);
    const loaded = await FingerprintIndex.load(chunked(bytes), 'empty');
    expect(loaded.size).toBe(0);
    expect(loaded.valueWords).toBe(4);
  });
});

describe('getWord', () => {
  it('refuses a word outside the value', () => {
    const index = new FingerprintIndex({ valueWords: 2 });
    const key = new Uint8Array(32).fill(7);
    index.add(key, [1, 0xffffffff]);
    expect(index.getWord(key, 1)).toBe(0xffffffff);
    expect(() => index.getWord(key, 2)).toThrow(ChunkerParameterError);
    expect(() => index.getWord(key, -1)).toThrow(/word/);
  });
});

describe('parameter errors', () => {
  const index = new FingerprintIndex();
  const key = randomKeys(1);

  it('name the parameter at fault', async () => {
    expectParameterError(() => new FingerprintIndex({ valueWords: 0 }), 'valueWords');
    expectParameterError(() => new FingerprintIndex({ valueWords: 5 }), 'valueWords');
    expectParameterError(() => new FingerprintIndex({ valueWords: 1.5 }), 'valueWords');
    expectParameterError(() => new FingerprintIndex({ initialCapacity: -1 }), 'initialCapacity');
    expectParameterError(() => new FingerprintIndex({ initialCapacity: 2 ** 40 }), 'initialCapacity');
    expectParameterError(() => index.add(key, [1]), 'value');
    expectParameterError(() => index.add(key, [1, 2, 3]), 'value');
    expectParameterError(() => index.add(key, [1, -1]), 'value[1]');
    expectParameterError(() => index.add(key, [2 ** 32, 0]), 'value[0]');
    expectParameterError(() => index.add(key, [1.5, 0]), 'value[0]');
    expectParameterError(() => index.add(key, [Number.NaN, 0]), 'value[0]');
    expectParameterError(() => index.has(new Uint8Array(15)), 'fingerprint');
    expectParameterError(() => index.get(key, 17), 'fingerprint');
    expectParameterError(() => index.delete(key, 32), 'fingerprint');
    expectParameterError(() => index.add(new Uint8Array(8), [1, 2]), 'fingerprint');
    expectParameterError(() => index.has(key, -1), 'offset');
    expectParameterError(() => index.has(key, 0.5), 'offset');
    expectParameterError(() => index.lookupMany(key, 8), 'stride');
    expectParameterError(() => index.lookupMany(key, 24), 'fingerprints');
    expect(index.size).toBe(0);
    await expect(FingerprintIndex.load(Readable.from(['not bytes']), 's')).rejects.toBeInstanceOf(ChunkerParameterError);
  });
});

describe('growth', () => {
  it('reserve() sizes small shards once for a batch: the entries, values, lookups and memory of plain adds', () => {
    const n = 30_000;
    const keys = randomKeys(n);
    const keyAt = (i: number) => keys.subarray(32 * i, 32 * i + 32);
    const plain = new FingerprintIndex({ valueWords: 3 });
    const reserved = new FingerprintIndex({ valueWords: 3 });
    // Some entries first: reserve counts those present.
    for (let i = 0; i < 1000; i++) {
      plain.add(keys, [i, 1, 2], 32 * i);
      reserved.add(keys, [i, 1, 2], 32 * i);
    }
    const before = reserved.memoryBytes;
    reserved.reserve(Array.from({ length: n - 1000 }, (_, j) => keyAt(1000 + j)));
    // Every shard got room for its keys at once.
    expect(reserved.memoryBytes).toBeGreaterThan(before);
    const sized = reserved.memoryBytes;
    for (let i = 1000; i < n; i++) {
      expect(plain.add(keys, [i, 1, 2], 32 * i)).toBe(true);
      expect(reserved.add(keys, [i, 1, 2], 32 * i)).toBe(true);
    }
    expect(reserved.size).toBe(n);
    expect(reserved.lookupMany(keys).length).toBe(0);
    for (let i = 0; i < n; i += 101) expect([...reserved.get(keys, 32 * i)!]).toEqual([...plain.get(keys, 32 * i)!]);
    // Sized exactly: only shards past FULL_LOAD_SLOTS (left to geometric growth) grew after
    // the reservation, and the table is no larger than plain adds made it (plain growth
    // steps along a ladder of rounded sizes, so it ends a slot above the count in some shards).
    expect(reserved.memoryBytes).toBeLessThan(sized * 1.01);
    expect(reserved.memoryBytes).toBeLessThanOrEqual(plain.memoryBytes);
    // A larger index (shards past FULL_LOAD_SLOTS grow geometrically): nothing to do.
    const large = new FingerprintIndex({ initialCapacity: 300_000 });
    const largeBytes = large.memoryBytes;
    const more = randomKeys(50_000);
    large.reserve(Array.from({ length: 50_000 }, (_, i) => more.subarray(32 * i, 32 * i + 32)));
    expect(large.memoryBytes).toBe(largeBytes);
    expect(() => reserved.reserve(['x' as unknown as Uint8Array])).toThrow(ChunkerParameterError);
  });

  it('keeps every entry through growth to 1.5M entries, with and without a capacity hint', () => {
    const n = 1_500_000;
    const keys = randomKeys(n);
    for (const hint of [0, n]) {
      const index = new FingerprintIndex({ initialCapacity: hint });
      let added = 0;
      for (let i = 0; i < n; i++) if (index.add(keys, [i, ~i >>> 0], 32 * i)) added++;
      expect(added).toBe(n);
      expect(index.size).toBe(n);
      expect(index.lookupMany(keys).length).toBe(0);
      for (let i = 0; i < n; i += 997) expect([...index.get(keys, 32 * i)!]).toEqual([i, ~i >>> 0]);
      expect(index.memoryBytes / index.size).toBeLessThan(32);

      let deleted = 0;
      for (let i = 0; i < n; i += 2) if (index.delete(keys, 32 * i)) deleted++;
      expect(deleted).toBe(n / 2);
      expect(index.size).toBe(n / 2);
      const missing = index.lookupMany(keys);
      expect(missing.length).toBe(n / 2);
      expect(missing.every((i) => i % 2 === 0)).toBe(true);
    }
  });
});
