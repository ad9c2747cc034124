/**
 * One fingerprint store's index in memory: the chunker's FingerprintIndex (fingerprint ->
 * where the blob lives) plus the table of pack names its values point into. Built from
 * the store's index segments on open; a cache of the bucket (invariant 3), so it can
 * always be rebuilt from the segments (and they from the pack trailers).
 *
 * Value words (3 x u32):
 *   [0] pack ordinal (position in this process's pack table, not stored anywhere)
 *   [1] blob offset in the pack (packs are at most 128 MiB)
 *   [2] stored length (bits 0-24; chunks are at most 16 MiB, + 28 bytes of GCM framing)
 *       | payload kind (bits 25-30) | encrypted (bit 31)
 */
import { FingerprintIndex } from '@hoard/chunker';
import { CODEC_ENCRYPTED } from '../blob/codec.js';
import { decodeIndexSegment, packKeyFromHash } from '../index-segment/index-segment.js';
import type { PackEntry } from '../pack/pack-format.js';
import { ObjectNotFoundError } from '../store/errors.js';
import { listAll, type ObjectStore } from '../store/object-store.js';
import { mapConcurrent } from './concurrency.js';

export interface BlobLocation {
  pack: number;
  offset: number;
  storedLength: number;
  /** The codec byte (payload kind | CODEC_ENCRYPTED). */
  codec: number;
}

const LENGTH_BITS = 25;
const LENGTH_MASK = (1 << LENGTH_BITS) - 1;
const KIND_MASK = 0x3f;

export class StoreIndex {
  readonly fingerprints = new FingerprintIndex({ valueWords: 3 });
  private readonly packHashes: (Uint8Array | undefined)[] = [];
  private readonly ordinals = new Map<string, number>();
  private readonly value = new Uint32Array(3);
  /**
   * Packs garbage collection condemned after this index was loaded (bit per ordinal).
   * Their entries stay in the table but count as absent, so backups stop deduplicating
   * against them; a later copy of the same blob (a repacked pack) replaces the entry.
   */
  private dead = new Uint8Array(0);
  private deadPacks = 0;

  packOrdinal(hash: Uint8Array): number {
    const hex = Buffer.from(hash.buffer, hash.byteOffset, hash.byteLength).toString('hex');
    let ordinal = this.ordinals.get(hex);
    if (ordinal === undefined) {
      ordinal = this.packHashes.push(Uint8Array.from(hash)) - 1;
      this.ordinals.set(hex, ordinal);
    }
    return ordinal;
  }

  packKey(ordinal: number): string {
    const hash = this.packHashes[ordinal];
    if (!hash) throw new Error(`pack ${ordinal} has no name yet (still being written)`);
    return packKeyFromHash(hash);
  }

  has(fingerprint: Uint8Array): boolean {
    if (this.deadPacks === 0) return this.fingerprints.has(fingerprint);
    const v = this.fingerprints.get(fingerprint);
    return v !== undefined && !this.isDead(v[0]);
  }

  /** Records a blob unless the fingerprint is already known (the first copy wins). */
  add(fingerprint: Uint8Array, location: BlobLocation): boolean {
    if (location.storedLength > LENGTH_MASK || (location.codec & ~CODEC_ENCRYPTED) > KIND_MASK) {
      throw new RangeError(`blob of ${location.storedLength} bytes with codec ${location.codec} does not fit the index`);
    }
    const v = this.value;
    v[0] = location.pack;
    v[1] = location.offset;
    v[2] = (location.storedLength | ((location.codec & KIND_MASK) << LENGTH_BITS) | (location.codec & CODEC_ENCRYPTED ? 0x80000000 : 0)) >>> 0;
    if (this.deadPacks > 0) {
      const existing = this.fingerprints.get(fingerprint);
      if (existing !== undefined && this.isDead(existing[0])) this.fingerprints.delete(fingerprint);
    }
    return this.fingerprints.add(fingerprint, v);
  }

  /** Number of packs currently dropped (condemned by GC since load). */
  get droppedPacks(): number {
    return this.deadPacks;
  }

  /**
   * Stops using the blobs of these packs (GC condemned them): lookups miss them from now
   * on. Packs this index does not know are ignored. Returns how many were newly dropped.
   */
  dropPacks(hashes: Iterable<Uint8Array>): number {
    let dropped = 0;
    for (const hash of hashes) {
      const ordinal = this.ordinals.get(Buffer.from(hash.buffer, hash.byteOffset, hash.byteLength).toString('hex'));
      if (ordinal === undefined || this.isDead(ordinal)) continue;
      if (ordinal >= this.dead.length * 8) {
        const grown = new Uint8Array(Math.max(this.dead.length * 2, (ordinal >> 3) + 1, 64));
        grown.set(this.dead);
        this.dead = grown;
      }
      this.dead[ordinal >> 3]! |= 1 << (ordinal & 7);
      this.deadPacks++;
      dropped++;
    }
    return dropped;
  }

  /**
   * Reads the store's index segments again and adds every pack this index does not list
   * (packs a GC wrote while repacking, packs it revived). Entries of dropped packs are
   * replaced by the new copies. Returns the number of packs added.
   */
  async refresh(store: ObjectStore, storeId: string, concurrency = 8): Promise<number> {
    const keys: string[] = [];
    for await (const info of listAll(store, 'index/')) keys.push(info.key);
    let added = 0;
    await mapConcurrent(
      keys,
      concurrency,
      async (key) => {
        try {
          return decodeIndexSegment(key, await store.get(key));
        } catch (err) {
          // Replaced by a GC between listing and reading: its replacement is listed too.
          if (err instanceof ObjectNotFoundError) return undefined;
          throw err;
        }
      },
      (segment) => {
        if (!segment || Buffer.from(segment.storeId).toString('hex') !== storeId) return;
        for (const p of segment.packs) {
          const ordinal = this.ordinals.get(Buffer.from(p.packHash).toString('hex'));
          if (ordinal !== undefined && !this.isDead(ordinal)) continue;
          this.addPackEntries(p.packHash, p.entries);
          added++;
        }
      },
    );
    return added;
  }

  private isDead(ordinal: number): boolean {
    return ordinal < this.dead.length * 8 && (this.dead[ordinal >> 3]! & (1 << (ordinal & 7))) !== 0;
  }

  addPackEntries(packHash: Uint8Array, entries: readonly PackEntry[]): void {
    const pack = this.packOrdinal(packHash);
    if (this.isDead(pack)) {
      // Listed again (revived, or uploaded again with the same bytes): in use again.
      this.dead[pack >> 3]! &= ~(1 << (pack & 7));
      this.deadPacks--;
    }
    for (const e of entries) this.add(e.fingerprint, { pack, offset: e.offset, storedLength: e.storedLength, codec: e.codec });
  }

  /** Ordinal of the pack holding the blob (no allocation: the backup asks this per dedup hit). */
  packOf(fingerprint: Uint8Array): number | undefined {
    const ordinal = this.fingerprints.get(fingerprint)?.[0];
    return ordinal !== undefined && this.deadPacks > 0 && this.isDead(ordinal) ? undefined : ordinal;
  }

  /** The BLAKE3 name of pack `ordinal`. */
  packHash(ordinal: number): Uint8Array {
    const hash = this.packHashes[ordinal];
    if (!hash) throw new Error(`pack ${ordinal} has no name yet (still being written)`);
    return hash;
  }

  locate(fingerprint: Uint8Array): BlobLocation | undefined {
    const v = this.fingerprints.get(fingerprint);
    if (!v || (this.deadPacks > 0 && this.isDead(v[0]))) return undefined;
    const w = v[2];
    return {
      pack: v[0],
      offset: v[1],
      storedLength: w & LENGTH_MASK,
      codec: ((w >>> LENGTH_BITS) & KIND_MASK) | (w & 0x80000000 ? CODEC_ENCRYPTED : 0),
    };
  }

  /** Reads every index segment of the store with id `storeId` (hex). */
  static async load(store: ObjectStore, storeId: string, concurrency = 8): Promise<StoreIndex> {
    // GC replaces segments by writing the new ones before deleting the old (docs/gc.md):
    // a segment that vanishes between listing and reading means a newer listing has its
    // replacement, so the load starts over.
    for (let attempt = 1; ; attempt++) {
      try {
        return await StoreIndex.loadOnce(store, storeId, concurrency);
      } catch (err) {
        if (!(err instanceof ObjectNotFoundError) || attempt >= 5) throw err;
      }
    }
  }

  private static async loadOnce(store: ObjectStore, storeId: string, concurrency: number): Promise<StoreIndex> {
    const index = new StoreIndex();
    const keys: string[] = [];
    for await (const info of listAll(store, 'index/')) keys.push(info.key);
    // Decoding is synchronous and cheap next to the reads, so reads run ahead and the
    // segments are applied in listing order: the same store always loads the same way.
    await mapConcurrent(keys, concurrency, async (key) => decodeIndexSegment(key, await store.get(key)), (segment) => {
      if (Buffer.from(segment.storeId).toString('hex') !== storeId) return;
      for (const p of segment.packs) index.addPackEntries(p.packHash, p.entries);
    });
    return index;
  }
}
