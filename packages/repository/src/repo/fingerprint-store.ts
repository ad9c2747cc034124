/**
 * A fingerprint store opened for use: its record, its secrets (encrypted repositories),
 * the codec and fingerprinting they imply, and its in-memory index (loaded on first use).
 * Dedup happens inside one store only (invariant 5): a chunk's fingerprint, its blob's
 * encryption key and the chunker's gear seed are all the store's own.
 */
import { Blake3Hasher } from '@napi-rs/blake-hash';
import { chunkingFor, createFingerprinter, type ChunkerSpec, type Fingerprinter, type FingerprintSpec, type SourceKind as ChunkingKind } from '@hoard/chunker';
import { BlobCodec } from '../blob/codec.js';
import { type BlobCompression, compressionFrom, LEGACY_COMPRESSION } from '../blob/compression.js';
import type { StoreSecrets } from '../crypto/store-secrets.js';
import type { DecodeKeys } from '../restore/decode-protocol.js';
import type { ObjectStore } from '../store/object-store.js';
import type { StoreRecord } from './records.js';
import { StoreIndex, type IndexDamage } from './store-index.js';

const defaultWarning = (message: string): void => process.emitWarning(message, 'HoardWarning');

/**
 * One line per problem a store's index load worked around. Packs no segment lists are
 * normal while a backup runs or after one was interrupted; they are worth a warning only
 * when a damaged segment may be why.
 */
export function describeIndexDamage(damage: IndexDamage, storeName: string): string[] {
  if (damage.damagedSegments.length === 0) return [];
  const out = damage.damagedSegments.map(
    (s) =>
      `index segment ${s.key} is damaged (${s.problem}): it is skipped, and the ${damage.recoveredPacks.length} pack(s) of store ${storeName} ` +
      'that no other segment lists are read from their own trailers instead; run `hoard repair` to rebuild the index',
  );
  for (const p of damage.unreadablePacks)
    out.push(`pack ${p.key} is listed by no readable index segment and its trailer is damaged (${p.problem}): its chunks cannot be found`);
  return out;
}

/**
 * The whole-stream hash of a store: BLAKE3, keyed with the fingerprint key in encrypted
 * stores. The agent computes it with the key it was handed; restore checks it.
 */
export function streamHasher(fingerprintKey?: Uint8Array): Blake3Hasher {
  return fingerprintKey ? Blake3Hasher.newKeyed(Buffer.from(fingerprintKey)) : new Blake3Hasher();
}

/**
 * The whole-stream hash over the chunk list instead of the bytes (manifest
 * `streamHashOver: "chunks"`): each chunk as u64 LE length + its 32-byte fingerprint (all
 * zero for a zero chunk). Used where the agent refers to chunks it did not read again
 * (unchanged files of a directory archive); every chunk is still checked against its
 * fingerprint on restore, so the chain from manifest to bytes stays unbroken.
 */
export function hashChunkRef(hasher: Blake3Hasher, length: number, fingerprint: Uint8Array): void {
  // One record for every call (a backup hashes one per chunk): update() consumes it at once.
  // The u64 as two u32 words: writeBigUInt64LE allocates several BigInts a call.
  chunkRecord.writeUInt32LE(length >>> 0, 0);
  chunkRecord.writeUInt32LE(Math.floor(length / 0x1_0000_0000), 4);
  chunkRecord.set(fingerprint, 8);
  hasher.update(chunkRecord);
}

const chunkRecord = Buffer.alloc(40);

/** A store record's compression (checked when the record was decoded); lz4 when it predates the setting. */
export function storeCompression(record: StoreRecord): BlobCompression {
  return record.compression === undefined ? LEGACY_COMPRESSION : compressionFrom(record.compression, `store ${record.name}`);
}

/**
 * The secrets two encrypted stores share so that a chunk has one fingerprint in both (and
 * one boundary: the chunker seed): a copy between them then reads only the blobs the
 * target lacks. Each keeps its own data key.
 */
export type StorePairing = Pick<StoreSecrets, 'fingerprintKey' | 'chunkerSeed'>;

export class FingerprintStore {
  readonly idBytes: Uint8Array;
  readonly fingerprintSpec: FingerprintSpec;
  readonly fingerprinter: Fingerprinter;
  private indexLoad: Promise<StoreIndex> | undefined;

  private constructor(
    private readonly objects: ObjectStore,
    readonly record: StoreRecord,
    readonly codec: BlobCodec,
    private readonly secrets: StoreSecrets | undefined,
    private readonly onWarning: (message: string) => void,
  ) {
    this.idBytes = Uint8Array.from(Buffer.from(record.id, 'hex'));
    this.fingerprintSpec = secrets ? { algorithm: 'blake3', key: secrets.fingerprintKey } : { algorithm: 'blake3' };
    this.fingerprinter = createFingerprinter(this.fingerprintSpec);
  }

  /** `onWarning`: told about damage the index load worked around (a damaged index segment). */
  static async open(
    objects: ObjectStore,
    record: StoreRecord,
    secrets: StoreSecrets | undefined,
    options: { onWarning?: (message: string) => void } = {},
  ): Promise<FingerprintStore> {
    const codec = await BlobCodec.create({ dataKey: secrets?.dataKey, compression: storeCompression(record) });
    return new FingerprintStore(objects, record, codec, secrets, options.onWarning ?? defaultWarning);
  }

  /** How new blobs of this store are compressed (its record says; lz4 for records older than the setting). */
  get compression(): BlobCompression {
    return this.codec.compression;
  }

  get name(): string {
    return this.record.name;
  }

  get id(): string {
    return this.record.id;
  }

  get encrypted(): boolean {
    return this.secrets !== undefined;
  }

  /**
   * The keys an agent needs to fingerprint and encrypt for this store (base64), handed only
   * to agents authorised for a job of the store; undefined for an unencrypted store.
   */
  wireSecrets(): { dataKey: string; fingerprintKey: string } | undefined {
    if (!this.secrets) return undefined;
    return { dataKey: Buffer.from(this.secrets.dataKey).toString('base64'), fingerprintKey: Buffer.from(this.secrets.fingerprintKey).toString('base64') };
  }

  /**
   * Chunker parameters for a kind of source. Encrypted stores seed the gear table with
   * their secret seed, so chunk boundaries do not reveal known content.
   */
  chunking(kind: ChunkingKind, avgSize?: number): ChunkerSpec {
    const spec = chunkingFor(kind);
    if (avgSize !== undefined && spec.kind === 'fastcdc') spec.avgSize = avgSize;
    if (this.secrets && spec.kind === 'fastcdc') spec.seed = this.secrets.chunkerSeed;
    return spec;
  }

  /** The keys the restore pipeline's decode workers need (none for an unencrypted store). */
  decodeKeys(): DecodeKeys {
    return this.secrets ? { dataKey: this.secrets.dataKey, fingerprintKey: this.secrets.fingerprintKey } : {};
  }

  /**
   * What a paired store shares with this one (sync.md, "Paired stores"): the fingerprint key
   * and the chunker seed, never the data key. Undefined for an unencrypted store.
   */
  pairing(): StorePairing | undefined {
    return this.secrets ? { fingerprintKey: this.secrets.fingerprintKey, chunkerSeed: this.secrets.chunkerSeed } : undefined;
  }

  /** Whole-stream hash: BLAKE3, keyed in encrypted stores like the fingerprints. */
  streamHasher(): Blake3Hasher {
    return streamHasher(this.secrets?.fingerprintKey);
  }

  /** The store's index, loaded from its segments on first use and then kept up to date. */
  index(): Promise<StoreIndex> {
    this.indexLoad ??= StoreIndex.load(this.objects, this.record.id).then((index) => {
      for (const warning of describeIndexDamage(index.damage, this.record.name)) this.onWarning(warning);
      return index;
    });
    const load = this.indexLoad;
    load.catch(() => {
      if (this.indexLoad === load) this.indexLoad = undefined;
    });
    return load;
  }
}
