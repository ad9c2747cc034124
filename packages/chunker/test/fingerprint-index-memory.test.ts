import { randomFillSync } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FingerprintIndex } from '@hoard/chunker';

/**
 * The media server's configuration of the index (StoreIndex: 3 value words, 28-byte slots)
 * against its memory bound of 32 bytes per entry, and its correctness where that bound is
 * earned: shards that fill completely while small, 0.95-full shards, growth in 1.1x steps
 * and pre-sizing on load.
 */

const SERVER_VALUE_WORDS = 3;
/** Below this the 4096 shards' fixed bookkeeping (10 bytes each) alone is over 3 bytes per entry. */
const BOUND_FROM = 16_000;

const hex = (key: Uint8Array): string => Buffer.from(key.subarray(0, 16)).toString('hex');

function key(words: readonly number[]): Uint8Array {
  const out = new Uint8Array(16);
  const view = new DataView(out.buffer);
  words.forEach((w, i) => view.setUint32(4 * i, w >>> 0, true));
  return out;
}

function randomKeys(n: number, stride = 16): Uint8Array {
  const buf = new Uint8Array(n * stride);
  for (let o = 0; o < buf.length; o += 1 << 24) randomFillSync(buf, o, Math.min(1 << 24, buf.length - o));
  return buf;
}

async function reload(index: FingerprintIndex): Promise<FingerprintIndex> {
  const chunks: Uint8Array[] = [];
  await index.save({ write: (chunk: Uint8Array) => chunks.push(Uint8Array.from(chunk)) });
  return FingerprintIndex.load(
    (async function* () {
      yield* chunks;
    })(),
    'memory',
  );
}

// Keys crowded into two shards (k0's top 12 bits) so that a few hundred operations take a
// shard from 1 slot through the full-load sizes and well past 32 slots; k1 (the home slot)
// drawn from few values makes long Robin Hood runs, and the tag's 20 bits of k0 and k2..k3
// from few values make keys that differ in one word only.
const crowdedKey = fc
  .tuple(
    fc.constantFrom(0, 0xfff),
    fc.oneof(fc.constantFrom(0, 1, 0xfffff), fc.integer({ min: 0, max: 0xfffff })),
    fc.oneof(fc.constantFrom(0, 0x7fffffff, 0xffffffff), fc.integer({ min: 0, max: 0xffffffff })),
    fc.oneof(fc.constantFrom(0, 1), fc.integer({ min: 0, max: 0xffffffff })),
    fc.oneof(fc.constantFrom(0, 1), fc.integer({ min: 0, max: 0xffffffff })),
  )
  .map(([shard, low, k1, k2, k3]) => key([(shard << 20) | low, k1, k2, k3]));

type Op = { kind: 'add'; key: number; value: number } | { kind: 'delete' | 'has'; key: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('add' as const), key: fc.nat(), value: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), key: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('has' as const), key: fc.nat() }) },
);

describe('FingerprintIndex (3 value words) against a Map, through growth', () => {
  it('inserts, lookups, deletes and lookupMany agree with the Map while shards grow, and survive save/load', async () => {
    // size 'max': fast-check otherwise keeps arrays to about ten elements, far too few to grow a shard.
    const poolArb = fc.array(crowdedKey, { minLength: 1, maxLength: 400, size: 'max' });
    const opsArb = fc.array(opArb, { minLength: 100, maxLength: 1500, size: 'max' });
    let largest = 0;
    await fc.assert(
      fc.asyncProperty(poolArb, opsArb, async (pool, ops) => {
        const index = new FingerprintIndex({ valueWords: SERVER_VALUE_WORDS });
        const model = new Map<string, number[]>();
        for (const op of ops) {
          const k = pool[op.key % pool.length];
          const id = hex(k);
          if (op.kind === 'add') {
            const value = [op.value, ~op.value >>> 0, op.value ^ 0x5a5a5a5a];
            const fresh = !model.has(id);
            if (index.add(k, value) !== fresh) throw new Error(`add(${id}) said ${!fresh}`);
            if (fresh) model.set(id, value);
          } else if (op.kind === 'delete') {
            if (index.delete(k) !== model.delete(id)) throw new Error(`delete(${id}) disagrees`);
          } else if (index.has(k) !== model.has(id)) {
            throw new Error(`has(${id}) disagrees`);
          }
        }
        expect(index.size).toBe(model.size);
        largest = Math.max(largest, model.size);

        // Every pool key (present or not) through lookupMany, and each value through get().
        const batch = new Uint8Array(pool.length * 32);
        pool.forEach((k, i) => batch.set(k, 32 * i));
        const expectedMissing = pool.flatMap((k, i) => (model.has(hex(k)) ? [] : [i]));
        expect([...index.lookupMany(batch)]).toEqual(expectedMissing);
        for (const [id, value] of model) expect([...(index.get(Buffer.from(id, 'hex')) ?? [])]).toEqual(value);

        const again = await reload(index);
        expect(again.size).toBe(model.size);
        const seen = new Map<string, number[]>();
        for (const { key: k, value } of again.entries()) seen.set(hex(k), [...value]);
        expect(seen).toEqual(model);
        expect([...again.lookupMany(batch)]).toEqual(expectedMissing);
      }),
      { numRuns: 60 },
    );
    // The runs did take shards (two of them) well past the 32 slots that fill completely.
    expect(largest).toBeGreaterThan(200);
  });

  it('answers "absent" for a key that differs from a present one in any single bit of its 128', () => {
    // The server tells an agent not to upload a chunk when the index has it: no prefix
    // shorter than the whole 16-byte key may decide that.
    const index = new FingerprintIndex({ valueWords: SERVER_VALUE_WORDS });
    const present = randomKeys(2000);
    for (let i = 0; i < 2000; i++) index.add(present, [i, 0, 0], 16 * i);
    const probe = present.slice(0, 16);
    const neighbours = new Uint8Array(128 * 16);
    for (let bit = 0; bit < 128; bit++) {
      const k = Uint8Array.from(probe);
      k[bit >>> 3] ^= 1 << (bit & 7);
      neighbours.set(k, 16 * bit);
      expect(index.has(k)).toBe(false);
      expect(index.get(k)).toBeUndefined();
    }
    expect(index.lookupMany(neighbours, 16).length).toBe(128);
    expect(index.has(probe)).toBe(true);
  });
});

describe('memory per entry of the media server index', () => {
  it(`stays at or under 32 bytes from ${BOUND_FROM} entries on, through growth and after save/load`, async () => {
    const n = 600_000;
    const keys = randomKeys(n);
    const index = new FingerprintIndex({ valueWords: SERVER_VALUE_WORDS });
    const value = new Uint32Array(SERVER_VALUE_WORDS);
    let worst = 0;
    let worstAt = 0;
    for (let i = 0; i < n; i++) {
      value[0] = i;
      index.add(keys, value, 16 * i);
      // memoryBytes adds up the index's typed arrays: cheap enough to read every 256 entries.
      if (i + 1 >= BOUND_FROM && (i & 255) === 255) {
        const perEntry = index.memoryBytes / index.size;
        if (perEntry > worst) {
          worst = perEntry;
          worstAt = i + 1;
        }
      }
    }
    expect(index.size).toBe(n);
    expect(worst, `worst at ${worstAt} entries`).toBeLessThanOrEqual(32);
    // Slots are 28 bytes: the table cannot be smaller than that per entry.
    expect(index.memoryBytes / n).toBeGreaterThan(28);

    const loaded = await reload(index);
    expect(loaded.size).toBe(n);
    expect(loaded.memoryBytes / n).toBeLessThanOrEqual(32);
    expect(loaded.lookupMany(keys, 16).length).toBe(0);

    const hinted = new FingerprintIndex({ valueWords: SERVER_VALUE_WORDS, initialCapacity: n });
    for (let i = 0; i < n; i++) hinted.add(keys, value, 16 * i);
    expect(hinted.memoryBytes / n).toBeLessThanOrEqual(32);
  });

  it('counts every slot it allocates: memoryBytes grows with the entries, an empty index is small', () => {
    const empty = new FingerprintIndex({ valueWords: SERVER_VALUE_WORDS });
    // 4096 shards of 10 bytes of bookkeeping plus one shared empty slot.
    expect(empty.memoryBytes).toBeLessThan(48 * 1024);
    const index = new FingerprintIndex({ valueWords: SERVER_VALUE_WORDS });
    const keys = randomKeys(50_000);
    for (let i = 0; i < 50_000; i++) index.add(keys, [i, 0, 0], 16 * i);
    // At least one 28-byte slot per entry on top of the empty index's bookkeeping.
    expect(index.memoryBytes).toBeGreaterThanOrEqual(empty.memoryBytes + 50_000 * 28 - 28);
    expect(index.memoryBytes / index.size).toBeLessThanOrEqual(32);
  });
});
