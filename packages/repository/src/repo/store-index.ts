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
  private table = new FingerprintIndex({ valueWords: 3 });
  private readonly packHashes: (Uint8Array | undefined)[] = [];
  private readonly ordinals = new Map<string, number>();
  private readonly value = new Uint32Array(3);
  /** While rebuild() reads the segments: packs added meanwhile, replayed into the new table. */
  private journal: { packHash: Uint8Array; entries: readonly PackEntry[] }[] | undefined;

  /** fingerprint -> (pack ordinal, offset, length | kind) */
  get fingerprints(): FingerprintIndex {
    return this.table;
  }

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
    return this.table.has(fingerprint);
  }

  /** Records a blob unless the fingerprint is already known (the first copy wins). */
  add(fingerprint: Uint8Array, location: BlobLocation): boolean {
    return StoreIndex.put(this.table, this.value, fingerprint, location);
  }

  private static put(table: FingerprintIndex, v: Uint32Array, fingerprint: Uint8Array, location: BlobLocation): boolean {
    if (location.storedLength > LENGTH_MASK || (location.codec & ~CODEC_ENCRYPTED) > KIND_MASK) {
      throw new RangeError(`blob of ${location.storedLength} bytes with codec ${location.codec} does not fit the index`);
    }
    v[0] = location.pack;
    v[1] = location.offset;
    v[2] = (location.storedLength | ((location.codec & KIND_MASK) << LENGTH_BITS) | (location.codec & CODEC_ENCRYPTED ? 0x80000000 : 0)) >>> 0;
    return table.add(fingerprint, v);
  }

  addPackEntries(packHash: Uint8Array, entries: readonly PackEntry[]): void {
    const pack = this.packOrdinal(packHash);
    for (const e of entries) this.add(e.fingerprint, { pack, offset: e.offset, storedLength: e.storedLength, codec: e.codec });
    this.journal?.push({ packHash, entries });
  }

  /**
   * Replaces the fingerprint table with one read from the store's index segments now, as
   * StoreIndex.load would build it: after a garbage collection, condemned packs are gone
   * from it and repacked or revived ones are in it. Pack ordinals stay what they were (a
   * backup or restore in flight may hold one); packs added while the segments are read are
   * kept. Call it only while no GC is rewriting the segments (docs/gc.md).
   */
  async rebuild(store: ObjectStore, storeId: string, concurrency = 8): Promise<void> {
    const journal: { packHash: Uint8Array; entries: readonly PackEntry[] }[] = [];
    this.journal = journal;
    try {
      let table = new FingerprintIndex({ valueWords: 3 });
      const v = new Uint32Array(3);
      const load = (packHash: Uint8Array, entries: readonly PackEntry[]): void => {
        const pack = this.packOrdinal(packHash);
        for (const e of entries) StoreIndex.put(table, v, e.fingerprint, { pack, offset: e.offset, storedLength: e.storedLength, codec: e.codec });
      };
      await StoreIndex.readSegments(store, storeId, concurrency, () => {
        table = new FingerprintIndex({ valueWords: 3 });
        return load;
      });
      for (const j of journal) load(j.packHash, j.entries);
      this.table = table;
    } finally {
      this.journal = undefined;
    }
  }

  /** Ordinal of the pack holding the blob (no allocation: the backup asks this per dedup hit). */
  packOf(fingerprint: Uint8Array): number | undefined {
    return this.table.get(fingerprint)?.[0];
  }

  /** The BLAKE3 name of pack `ordinal`. */
  packHash(ordinal: number): Uint8Array {
    const hash = this.packHashes[ordinal];
    if (!hash) throw new Error(`pack ${ordinal} has no name yet (still being written)`);
    return hash;
  }

  locate(fingerprint: Uint8Array): BlobLocation | undefined {
    const v = this.table.get(fingerprint);
    if (!v) return undefined;
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
    let index = new StoreIndex();
    await StoreIndex.readSegments(store, storeId, concurrency, () => {
      index = new StoreIndex();
      return (packHash, entries) => index.addPackEntries(packHash, entries);
    });
    return index;
  }

  /**
   * Hands every pack of the store's segments to the consumer `begin()` returns, in listing
   * order (the same store always loads the same way), applying as it reads. GC replaces
   * segments by writing the new ones before deleting the old (docs/gc.md): a segment that
   * vanishes between listing and reading means a newer listing has its replacement, so the
   * read starts over with a fresh consumer.
   */
  private static async readSegments(
    store: ObjectStore,
    storeId: string,
    concurrency: number,
    begin: () => (packHash: Uint8Array, entries: readonly PackEntry[]) => void,
  ): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const use = begin();
      const keys: string[] = [];
      for await (const info of listAll(store, 'index/')) keys.push(info.key);
      try {
        // Decoding is synchronous and cheap next to the reads, so reads run ahead.
        await mapConcurrent(keys, concurrency, async (key) => decodeIndexSegment(key, await store.get(key)), (segment) => {
          if (Buffer.from(segment.storeId).toString('hex') !== storeId) return;
          for (const p of segment.packs) use(p.packHash, p.entries);
        });
        return;
      } catch (err) {
        if (!(err instanceof ObjectNotFoundError) || attempt >= 5) throw err;
      }
    }
  }
}
