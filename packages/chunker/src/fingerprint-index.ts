import { ChunkerParameterError } from './errors.js';
import { readIndexFile, writeIndexFile, type IndexSink, type IndexSource } from './fingerprint-index-file.js';

/**
 * In-memory fingerprint store: 128-bit key (the first 16 bytes of a BLAKE3-256 digest)
 * -> `valueWords` uint32 words. Layout and memory math: docs/chunker-index.md.
 *
 * 4096 shards, each a Robin Hood linear-probing table in one Int32Array. Sharding keeps
 * every resize down to one small shard (no multi-second pause at 10M entries); Robin
 * Hood keeps probes short at a 0.95 load factor, which is what keeps the media server's
 * entries (3 value words, 28-byte slots) under 32 bytes each.
 *
 * Equality is exact on all 128 key bits: the shard is k0's top 12 bits, the tag holds its
 * other 20, and k1..k3 are compared in full, so no shorter prefix ever answers "present"
 * (the server tells agents not to send a chunk on that answer).
 *
 * Slot = `4 + valueWords` int32 words: [tag, k1, k2, k3, value...]. The shard already
 * implies the top 12 bits of k0, so the tag stores only its low 20 bits plus an
 * "occupied" bit and the entry's probe distance:
 *
 *   bit 31: 0 | bits 30..21: probe distance | bit 20: occupied | bits 19..0: k0 & 0xFFFFF
 *
 * An empty slot is tag 0, and every occupied tag is > 0 whatever the key, so the
 * all-zero key needs no special case. Keeping bit 31 clear lets one signed comparison
 * answer "empty, or resident closer to home than we are" (the Robin Hood early exit).
 */

export interface FingerprintIndexOptions {
  /** uint32 words of value per entry, 1..4 (default 2). */
  valueWords?: number;
  /** Expected number of entries; pre-sizes the shards so that loading grows each at most a step or two. */
  initialCapacity?: number;
}

const KEY_BYTES = 16;
const SHARD_BITS = 12;
const SHARDS = 1 << SHARD_BITS;
const LOW_BITS = 32 - SHARD_BITS;
const LOW_MASK = (1 << LOW_BITS) - 1;
const OCCUPIED = 1 << LOW_BITS;
const DIST_SHIFT = LOW_BITS + 1;
const DIST_ONE = 1 << DIST_SHIFT;
const DIST_MASK = 0x3ff << DIST_SHIFT;
const MAX_DIST = 0x3ff;
/**
 * Robin Hood keeps lookups short up to a 0.95 load factor (mean probe distance measured at
 * 0.95: see docs/chunker-index.md); the batched lookup touches the next cache lines anyway.
 */
const MAX_LOAD = 0.95;
/**
 * Small growth steps keep the load factor between 0.86 and 0.95 (~0.91 on average), so
 * the media server's entries (16-byte key + 3 value words = 28 bytes a slot) cost at most
 * 32 bytes each; each step costs one shard rehash.
 */
const GROWTH = 1.1;
/**
 * Shards up to this many slots fill completely before they grow: a probe in them reads at
 * most a few cache lines anyway, and small indexes (a few entries per shard) would
 * otherwise spend a third of their slots on the rounding of a 0.95 load limit.
 */
const FULL_LOAD_SLOTS = 32;
const MIN_SLOTS = 1;
/** grow() skips a rung of the ladder that would grow a shard by less than this (a presized shard sits between rungs). */
const MIN_STEP = 1.05;
/** Beyond 2^21 slots, `k1 * slots` no longer fits a double's 53-bit mantissa exactly. */
const MAX_SLOTS = 1 << 21;
/** A hint beyond this is surely a mistake (it would pre-allocate ~100 GiB). */
const MAX_INITIAL_CAPACITY = 2 ** 32;
const TWO_TO_MINUS_32 = 2 ** -32;
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const RECORDS_PER_SAVE_CHUNK = 4096;
/** A prime above MAX_SLOTS, so i -> i * step mod slots is a permutation for every shard size. */
const SCATTER_STEP = 2_654_435_761;
/** Keys whose home slots are touched together before probing (see missing()). */
const PREFETCH_GROUP = 16;
/** lookupMany() batches up to this many keys reuse one result buffer (16 KiB); bigger ones get their own. */
const MAX_REUSED_RESULT = 1 << 12;
/** Unaligned lookupMany() input is re-packed this many keys at a time. */
const GATHER_KEYS = 1024;

/** Reads a little-endian word from any byte offset (no alignment needed, no allocation). */
function wordAt(b: Uint8Array, o: number): number {
  return b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24);
}

/**
 * Multiply-shift range reduction of k1 onto [0, slots) (k1 is already uniformly random,
 * so no hashing): the top bits of k1 * slots, exact in float64 because slots <= 2^21.
 * Unlike `k1 % slots` it needs no division, and slots need not be a power of two.
 */
function homeSlot(k1: number, slots: number): number {
  return ((k1 >>> 0) * slots * TWO_TO_MINUS_32) | 0;
}

/** Word index of key (k0..k3) in shard table t (`slots` slots of S words), or -1. */
function probe(t: Int32Array, S: number, slots: number, k0: number, k1: number, k2: number, k3: number): number {
  const end = slots * S;
  const low = k0 & LOW_MASK;
  let base = homeSlot(k1, slots) * S;
  // `floor` is the smallest tag a resident at our probe distance can have; any tag
  // below it is an empty slot or an entry closer to its home, so the key is absent.
  let floor = OCCUPIED;
  for (;;) {
    const w = t[base];
    if (w < floor) return -1;
    if (w === (floor | low) && t[base + 1] === k1 && t[base + 2] === k2 && t[base + 3] === k3) return base;
    floor += DIST_ONE;
    base += S;
    if (base === end) base = 0;
  }
}

/** A point-in-time view for save(): shard arrays are copied on write while it lives. */
interface Snapshot {
  readonly tables: Int32Array[];
  readonly count: number;
}

export class FingerprintIndex {
  readonly valueWords: number;
  /** int32 words per slot. */
  private readonly stride: number;
  private readonly tables: Int32Array[];
  private readonly slots = new Int32Array(SHARDS);
  private readonly counts = new Int32Array(SHARDS);
  /** Growth generation per shard; see slotsFor(). */
  private readonly generations = new Uint8Array(SHARDS);
  /** 1 while a running save() still references the shard's current array. */
  private readonly frozen = new Uint8Array(SHARDS);
  /** Shared by every never-written shard: one all-empty slot, so lookups need no branch. */
  private readonly emptyTable: Int32Array;
  /** The entry being moved by a Robin Hood insert. */
  private readonly carry: Int32Array;
  private missScratch = new Uint32Array(0);
  /** Allocated by the first unaligned lookupMany(). */
  private gatherScratch = new Int32Array(0);
  /** Written only so that lookupMany()'s touching loads cannot be optimised away. */
  private touched = 0;
  private count = 0;
  private tableBytes = 0;
  private activeSaves = 0;

  constructor(options: FingerprintIndexOptions = {}) {
    const valueWords = options.valueWords ?? 2;
    if (!Number.isInteger(valueWords) || valueWords < 1 || valueWords > 4) {
      throw new ChunkerParameterError('valueWords', valueWords, 'an integer from 1 to 4');
    }
    const initialCapacity = options.initialCapacity ?? 0;
    if (!Number.isSafeInteger(initialCapacity) || initialCapacity < 0 || initialCapacity > MAX_INITIAL_CAPACITY) {
      throw new ChunkerParameterError('initialCapacity', initialCapacity, `an integer number of entries from 0 to ${MAX_INITIAL_CAPACITY}`);
    }
    this.valueWords = valueWords;
    this.stride = 4 + valueWords;
    this.emptyTable = new Int32Array(this.stride);
    this.carry = new Int32Array(this.stride);
    this.tables = new Array<Int32Array>(SHARDS).fill(this.emptyTable);
    this.slots.fill(1);
    if (initialCapacity > 0) this.presize(initialCapacity);
  }

  get size(): number {
    return this.count;
  }

  /** Bytes of typed arrays this index holds (shard tables plus per-shard bookkeeping). */
  get memoryBytes(): number {
    return (
      this.tableBytes +
      this.emptyTable.byteLength +
      this.carry.byteLength +
      this.missScratch.byteLength +
      this.gatherScratch.byteLength +
      this.slots.byteLength +
      this.counts.byteLength +
      this.generations.byteLength +
      this.frozen.byteLength
    );
  }

  has(fingerprint: Uint8Array, offset = 0): boolean {
    checkKey(fingerprint, offset);
    return this.find(wordAt(fingerprint, offset), wordAt(fingerprint, offset + 4), wordAt(fingerprint, offset + 8), wordAt(fingerprint, offset + 12)) >= 0;
  }

  get(fingerprint: Uint8Array, offset = 0): Uint32Array | undefined {
    checkKey(fingerprint, offset);
    const k0 = wordAt(fingerprint, offset);
    const base = this.find(k0, wordAt(fingerprint, offset + 4), wordAt(fingerprint, offset + 8), wordAt(fingerprint, offset + 12));
    if (base < 0) return undefined;
    const t = this.tables[k0 >>> LOW_BITS];
    const out = new Uint32Array(this.valueWords);
    for (let j = 0; j < this.valueWords; j++) out[j] = t[base + 4 + j];
    return out;
  }

  /**
   * Word `word` of the key's value, or undefined when absent: `get` without the Uint32Array
   * it allocates, for a lookup per chunk (the embedded backup asks each chunk's pack).
   */
  getWord(fingerprint: Uint8Array, word = 0, offset = 0): number | undefined {
    checkKey(fingerprint, offset);
    if (!Number.isInteger(word) || word < 0 || word >= this.valueWords) {
      throw new ChunkerParameterError('word', word, `a value word from 0 to ${this.valueWords - 1}`);
    }
    const k0 = wordAt(fingerprint, offset);
    const base = this.find(k0, wordAt(fingerprint, offset + 4), wordAt(fingerprint, offset + 8), wordAt(fingerprint, offset + 12));
    return base < 0 ? undefined : this.tables[k0 >>> LOW_BITS][base + 4 + word] >>> 0;
  }

  /** Inserts if absent (true); a present key keeps its first value (false). */
  add(fingerprint: Uint8Array, value: ArrayLike<number>, offset = 0): boolean {
    checkKey(fingerprint, offset);
    if (value == null || value.length !== this.valueWords) {
      throw new ChunkerParameterError('value', value == null ? value : `${value.length} words`, `${this.valueWords} uint32 words`);
    }
    for (let j = 0; j < this.valueWords; j++) {
      const v = value[j];
      if (v >>> 0 !== v) throw new ChunkerParameterError(`value[${j}]`, v, 'an integer from 0 to 2^32-1');
    }
    const k0 = wordAt(fingerprint, offset);
    const k1 = wordAt(fingerprint, offset + 4);
    const k2 = wordAt(fingerprint, offset + 8);
    const k3 = wordAt(fingerprint, offset + 12);
    if (this.find(k0, k1, k2, k3) >= 0) return false;
    const s = k0 >>> LOW_BITS;
    this.makeRoom(s);
    const c = this.carry;
    c[0] = OCCUPIED | (k0 & LOW_MASK);
    c[1] = k1;
    c[2] = k2;
    c[3] = k3;
    for (let j = 0; j < this.valueWords; j++) c[4 + j] = value[j];
    this.placeCarry(s);
    return true;
  }

  delete(fingerprint: Uint8Array, offset = 0): boolean {
    checkKey(fingerprint, offset);
    const k0 = wordAt(fingerprint, offset);
    let base = this.find(k0, wordAt(fingerprint, offset + 4), wordAt(fingerprint, offset + 8), wordAt(fingerprint, offset + 12));
    if (base < 0) return false;
    const s = k0 >>> LOW_BITS;
    this.thaw(s);
    const t = this.tables[s];
    const S = this.stride;
    const end = this.slots[s] * S;
    // Backward-shift deletion: pull the following run back one slot, so no tombstones
    // accumulate and the Robin Hood invariant (and its early exit) still holds.
    for (;;) {
      let next = base + S;
      if (next === end) next = 0;
      const w = t[next];
      if (w === 0 || (w & DIST_MASK) === 0) break;
      t[base] = w - DIST_ONE;
      for (let j = 1; j < S; j++) t[base + j] = t[next + j];
      base = next;
    }
    t.fill(0, base, base + S);
    this.counts[s]--;
    this.count--;
    return true;
  }

  /**
   * Fingerprints packed every `stride` bytes (the first 16 of each are the key). Returns
   * the indices, ascending, of those not in the index: the "which do you lack?" query.
   */
  lookupMany(fingerprints: Uint8Array, stride = 32): Uint32Array {
    if (!Number.isInteger(stride) || stride < KEY_BYTES) {
      throw new ChunkerParameterError('stride', stride, `an integer >= ${KEY_BYTES} (bytes from one fingerprint to the next)`);
    }
    if (!(fingerprints instanceof Uint8Array) || fingerprints.length % stride !== 0) {
      throw new ChunkerParameterError('fingerprints', fingerprints, `a Uint8Array whose length is a multiple of stride (${stride})`);
    }
    const n = fingerprints.length / stride;
    // Reuse one result buffer for ordinary batches; a huge one-off batch gets its own
    // rather than pinning that much memory for the index's lifetime.
    if (this.missScratch.length < n && n <= MAX_REUSED_RESULT) this.missScratch = new Uint32Array(n);
    const out = n <= MAX_REUSED_RESULT ? this.missScratch : new Uint32Array(n);
    let m = 0;
    if (LITTLE_ENDIAN && fingerprints.byteOffset % 4 === 0 && stride % 4 === 0) {
      // Aligned: read key words straight from the caller's buffer.
      const words = new Int32Array(fingerprints.buffer, fingerprints.byteOffset, fingerprints.length / 4);
      m = this.missing(words, stride >>> 2, n, out, m);
    } else {
      // Unaligned (or big-endian): gather the keys into aligned words one block at a time.
      if (this.gatherScratch.length === 0) this.gatherScratch = new Int32Array(4 * GATHER_KEYS);
      const keys = this.gatherScratch;
      for (let first = 0; first < n; first += GATHER_KEYS) {
        const count = Math.min(GATHER_KEYS, n - first);
        for (let i = 0, o = first * stride; i < count; i++, o += stride) {
          keys[4 * i] = wordAt(fingerprints, o);
          keys[4 * i + 1] = wordAt(fingerprints, o + 4);
          keys[4 * i + 2] = wordAt(fingerprints, o + 8);
          keys[4 * i + 3] = wordAt(fingerprints, o + 12);
        }
        const before = m;
        m = this.missing(keys, 4, count, out, m);
        for (let j = before; j < m; j++) out[j] += first;
      }
    }
    return out.slice(0, m);
  }

  /**
   * Appends to `out` (from position m) the indices of the n keys in `words` (4 words
   * every `ws`) that are absent; returns the new m.
   *
   * A random probe into a table far larger than the CPU caches waits ~150-200 ns on DRAM
   * and a TLB walk, and a probe loop's unpredictable branches keep the CPU from running
   * ahead into the next key, so probing keys one by one pays that latency in full. So
   * keys go in groups: a first pass with no data-dependent branches touches each key's
   * home cache lines, letting the CPU overlap those misses; the second pass probes
   * lines that are by then in cache. Measured at 10M entries: 1.7x the lookups/s.
   */
  private missing(words: Int32Array, ws: number, n: number, out: Uint32Array, m: number): number {
    const tables = this.tables;
    const slots = this.slots;
    const S = this.stride;
    let acc = 0;
    for (let g = 0, go = 0; g < n; g += PREFETCH_GROUP, go += PREFETCH_GROUP * ws) {
      const groupEnd = Math.min(n, g + PREFETCH_GROUP);
      for (let i = g, o = go; i < groupEnd; i++, o += ws) {
        const s = words[o] >>> LOW_BITS;
        const t = tables[s];
        const base = homeSlot(words[o + 1], slots[s]) * S;
        // The home cache line and the next three (~7 slots of 28 bytes, past the mean
        // probe run at a 0.95 load), clamped: tables have no slack after them.
        const last = t.length - 1;
        acc ^= t[base] ^ t[Math.min(base + 16, last)] ^ t[Math.min(base + 32, last)] ^ t[Math.min(base + 48, last)];
      }
      for (let i = g, o = go; i < groupEnd; i++, o += ws) {
        const k0 = words[o];
        const s = k0 >>> LOW_BITS;
        if (probe(tables[s], S, slots[s], k0, words[o + 1], words[o + 2], words[o + 3]) < 0) out[m++] = i;
      }
    }
    this.touched ^= acc;
    return m;
  }

  /** Live view: do not add or delete while iterating (use save() for a stable snapshot). */
  *entries(): IterableIterator<{ key: Uint8Array; value: Uint32Array }> {
    const S = this.stride;
    for (let s = 0; s < SHARDS; s++) {
      const t = this.tables[s];
      for (let base = 0, end = t.length; base < end; base += S) {
        if (t[base] === 0) continue;
        const key = new Uint8Array(KEY_BYTES);
        const view = new DataView(key.buffer);
        view.setInt32(0, (s << LOW_BITS) | (t[base] & LOW_MASK), true);
        view.setInt32(4, t[base + 1], true);
        view.setInt32(8, t[base + 2], true);
        view.setInt32(12, t[base + 3], true);
        const value = new Uint32Array(this.valueWords);
        for (let j = 0; j < this.valueWords; j++) value[j] = t[base + 4 + j];
        yield { key, value };
      }
    }
  }

  [Symbol.iterator](): IterableIterator<{ key: Uint8Array; value: Uint32Array }> {
    return this.entries();
  }

  /**
   * Streams the index in the format of docs/chunker-index.md, ~100 KiB at a time,
   * waiting for 'drain' on Node writables. Writes a consistent snapshot even if the
   * index changes meanwhile. Does not end the sink.
   */
  async save(sink: IndexSink): Promise<void> {
    const snapshot = this.beginSnapshot();
    try {
      await writeIndexFile(sink, { valueWords: this.valueWords, count: snapshot.count }, this.recordChunks(snapshot));
    } finally {
      this.endSnapshot();
    }
  }

  /**
   * Reads a saved index, verifying it as it streams; any damage throws IndexFormatError
   * naming `name`. The result is returned only after the checksum matched.
   */
  static async load(source: IndexSource, name = 'stream'): Promise<FingerprintIndex> {
    let index: FingerprintIndex | undefined;
    let claimed = 0;
    let reserved = 0;
    let duplicates = 0;
    await readIndexFile(source, name, {
      header(valueWords, count) {
        index = new FingerprintIndex({ valueWords });
        claimed = count;
      },
      records(bytes, n) {
        const idx = index!;
        // Pre-size from the header's count, but never beyond twice the entries actually
        // read: the count is unverified until the checksum, and a flipped high bit must
        // not allocate terabytes. Doubling steps also rehash each entry at most ~twice.
        if (idx.size + n > reserved) {
          reserved = Math.min(claimed, Math.max(2 * reserved, idx.size + n, 1 << 16));
          idx.presize(reserved);
        }
        const value = new Uint32Array(idx.valueWords);
        const recordBytes = KEY_BYTES + 4 * idx.valueWords;
        const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        for (let r = 0, o = 0; r < n; r++, o += recordBytes) {
          for (let j = 0; j < value.length; j++) value[j] = view.getUint32(o + KEY_BYTES + 4 * j, true);
          if (!idx.add(bytes, value, o)) duplicates++;
        }
      },
      verified() {
        return duplicates === 0 ? undefined : `${duplicates} duplicate keys (not written by FingerprintIndex.save)`;
      },
    });
    return index!;
  }

  /** Word index of the key's slot in its shard's table, or -1. */
  private find(k0: number, k1: number, k2: number, k3: number): number {
    const s = k0 >>> LOW_BITS;
    return probe(this.tables[s], this.stride, this.slots[s], k0, k1, k2, k3);
  }

  /** Makes shard s writable with room for one more entry (call before filling `carry`). */
  private makeRoom(s: number): void {
    if (this.tables[s] === this.emptyTable || this.counts[s] >= capacityOf(this.slots[s])) this.grow(s);
    else this.thaw(s);
  }

  /** Places `carry` (a key known to be absent) in shard s, which makeRoom() prepared. */
  private placeCarry(s: number): void {
    while (!this.place(this.tables[s], this.slots[s])) {
      // A probe distance overflowed the tag (astronomically unlikely at load 0.9): the
      // entry still in flight is in `carry`, which resize() reuses; grow and retry.
      const pending = this.carry.slice();
      this.grow(s);
      this.carry.set(pending);
    }
    this.counts[s]++;
    this.count++;
  }

  /**
   * Robin Hood insert of `carry` into table t: walk from its home slot and swap it with
   * any resident nearer to its own home ("take from the rich"), carrying the evicted
   * entry onward. False if a distance would not fit the tag; `carry` then holds the one
   * entry not in the table.
   */
  private place(t: Int32Array, slots: number): boolean {
    const c = this.carry;
    const S = this.stride;
    const end = slots * S;
    let base = homeSlot(c[1], slots) * S;
    let dist = 0;
    for (;;) {
      const w = t[base];
      if (w === 0) {
        t[base] = c[0] | (dist << DIST_SHIFT);
        for (let j = 1; j < S; j++) t[base + j] = c[j];
        return true;
      }
      const residentDist = (w & DIST_MASK) >>> DIST_SHIFT;
      if (residentDist < dist) {
        t[base] = c[0] | (dist << DIST_SHIFT);
        c[0] = w & ~DIST_MASK;
        for (let j = 1; j < S; j++) {
          const x = t[base + j];
          t[base + j] = c[j];
          c[j] = x;
        }
        dist = residentDist;
      }
      if (++dist > MAX_DIST) return false;
      base += S;
      if (base === end) base = 0;
    }
  }

  /** Grows shard s one step along its capacity ladder (see slotsFor()). */
  private grow(s: number): void {
    if (this.tables[s] === this.emptyTable) {
      this.resize(s, slotsFor(0, s));
      return;
    }
    // A presized shard sits between two rungs: skip a rung that would be a tiny step.
    let g = this.generations[s] + 1;
    while (slotsFor(g, s) < this.slots[s] * MIN_STEP) g++;
    this.resize(s, slotsFor(g, s));
  }

  /**
   * Room for the keys of a batch of adds about to come (32-byte fingerprints, or at least
   * their first 16 bytes), where shards are small: a shard of up to FULL_LOAD_SLOTS slots
   * fills completely and grows by one slot per add, a table copy each (a first backup's
   * 27,000 new blobs indexed at its end were 27,000 copies, on the last stretch of the
   * backup). Each such shard is resized once, to exactly its entries plus the batch's keys
   * that fall in it: the table ends as large as the adds alone would leave it (sizing
   * shards for a mean share plus slack put 37 instead of 29 bytes per entry on the media
   * server's index in `bench network`). A key already present is counted anyway (one slot
   * more). Larger shards grow geometrically already and are left alone. Never shrinks.
   */
  reserve(keys: Iterable<Uint8Array>): void {
    // A batch is a segment of packs (thousands of keys): 16 KiB of counts per call is nothing.
    const incoming = new Int32Array(SHARDS);
    for (const key of keys) {
      checkKey(key, 0);
      incoming[wordAt(key, 0) >>> LOW_BITS]++;
    }
    for (let s = 0; s < SHARDS; s++) {
      const want = this.counts[s] + incoming[s];
      if (incoming[s] > 1 && want <= FULL_LOAD_SLOTS && this.slots[s] < want) this.resize(s, want);
    }
  }

  /** Rehashes shard s into a fresh table of at least `slots` slots. */
  private resize(s: number, slots: number): void {
    const S = this.stride;
    const old = this.tables[s];
    const oldInUse = old !== this.emptyTable;
    for (;;) {
      if (slots > MAX_SLOTS) throw new RangeError(`fingerprint index shard ${s} cannot grow beyond ${MAX_SLOTS} slots`);
      const t = new Int32Array(slots * S);
      let ok = true;
      if (oldInUse) {
        for (let base = 0, end = old.length; base < end && ok; base += S) {
          if (old[base] === 0) continue;
          this.carry[0] = old[base] & ~DIST_MASK;
          for (let j = 1; j < S; j++) this.carry[j] = old[base + j];
          ok = this.place(t, slots);
        }
      }
      if (!ok) {
        slots = Math.ceil(slots * GROWTH);
        continue;
      }
      if (oldInUse) this.tableBytes -= old.byteLength;
      this.tableBytes += t.byteLength;
      this.tables[s] = t;
      this.slots[s] = slots;
      // The rung at or below this size, so the next grow() is a step up the ladder. Shards
      // only grow, so the search starts at the shard's current rung, not at 0: from 0 it
      // cost a Math.pow per rung on every resize, most of adding entries to a fresh index
      // (small shards resize once per entry).
      let g = slotsFor(this.generations[s], s) <= slots ? this.generations[s] : 0;
      while (slotsFor(g + 1, s) <= slots) g++;
      this.generations[s] = g;
      this.frozen[s] = 0;
      return;
    }
  }

  /** Grows every shard (none shrinks) to hold `entries` in all without further growth. */
  private presize(entries: number): void {
    // Shards receive binomial shares of the keys, but slack for the fuller ones would be
    // paid by all of them (two standard deviations put a 1M-entry index at 36 bytes per
    // entry): size each for the mean, and let the half that receives more grow a step.
    const perShard = Math.ceil(entries / SHARDS);
    // Small shards fill completely and grow by a slot at a time, cheaply: left alone, they
    // end up fuller than sized for a mean they mostly miss.
    if (perShard <= FULL_LOAD_SLOTS) return;
    const slots = Math.min(MAX_SLOTS, Math.ceil(perShard / MAX_LOAD) + 1);
    for (let s = 0; s < SHARDS; s++) if (this.slots[s] < slots) this.resize(s, slots);
  }

  /** Copy-on-write: the first mutation of a shard a save() is still reading copies it. */
  private thaw(s: number): void {
    if (this.frozen[s] === 0) return;
    const t = this.tables[s];
    if (t !== this.emptyTable) this.tables[s] = t.slice();
    this.frozen[s] = 0;
  }

  private beginSnapshot(): Snapshot {
    this.activeSaves++;
    this.frozen.fill(1);
    return { tables: this.tables.slice(), count: this.count };
  }

  private endSnapshot(): void {
    if (--this.activeSaves === 0) this.frozen.fill(0);
  }

  /** The snapshot's entries as file records (docs/chunker-index.md), a fresh buffer per chunk. */
  private *recordChunks(snapshot: Snapshot): Generator<Uint8Array> {
    const S = this.stride;
    const recordBytes = KEY_BYTES + 4 * this.valueWords;
    let remaining = snapshot.count;
    let chunk = new Uint8Array(Math.min(remaining, RECORDS_PER_SAVE_CHUNK) * recordBytes);
    let view = new DataView(chunk.buffer);
    let o = 0;
    for (let s = 0; s < SHARDS && remaining > 0; s++) {
      const t = snapshot.tables[s];
      const slots = t.length / S;
      // Visit the slots in a scattered order (a prime step, coprime to any slot count):
      // in slot order the keys would come out sorted by home, and inserting sorted keys
      // makes load() walk one ever-longer cluster per shard (10x slower at 10M entries).
      for (let i = 0; i < slots; i++) {
        const base = ((i * SCATTER_STEP) % slots) * S;
        if (t[base] === 0) continue;
        view.setInt32(o, (s << LOW_BITS) | (t[base] & LOW_MASK), true);
        for (let j = 1; j < S; j++) view.setInt32(o + 4 * j, t[base + j], true);
        o += recordBytes;
        remaining--;
        if (o === chunk.length) {
          yield chunk;
          chunk = new Uint8Array(Math.min(remaining, RECORDS_PER_SAVE_CHUNK) * recordBytes);
          view = new DataView(chunk.buffer);
          o = 0;
        }
      }
    }
  }
}

/**
 * Capacity of shard s at growth generation g: MIN_SLOTS * GROWTH^(g + s/SHARDS). The
 * fractional s/SHARDS staggers the shards across one growth step, so they do not all
 * grow at the same moment and the overall load factor stays near its mean (~0.82)
 * instead of sawing between 0.75 and 0.9 in step.
 */
function slotsFor(g: number, s: number): number {
  return Math.max(MIN_SLOTS, Math.round(MIN_SLOTS * Math.pow(GROWTH, g + s / SHARDS)));
}

/** Entries a shard of `slots` slots holds before it grows (see FULL_LOAD_SLOTS). */
function capacityOf(slots: number): number {
  return slots <= FULL_LOAD_SLOTS ? slots : Math.floor(slots * MAX_LOAD);
}

function checkKey(fingerprint: Uint8Array, offset: number): void {
  if (!(fingerprint instanceof Uint8Array)) {
    throw new ChunkerParameterError('fingerprint', fingerprint, 'a Uint8Array');
  }
  if (!Number.isInteger(offset) || offset < 0) {
    throw new ChunkerParameterError('offset', offset, 'a non-negative integer');
  }
  if (fingerprint.length < offset + KEY_BYTES) {
    throw new ChunkerParameterError('fingerprint', fingerprint, `at least offset + ${KEY_BYTES} = ${offset + KEY_BYTES} bytes`);
  }
}
