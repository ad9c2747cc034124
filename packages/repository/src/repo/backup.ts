/**
 * One backup: a byte stream becomes a snapshot.
 *
 *   stream -> Chunker (FastCDC + fingerprints, worker threads)
 *          -> zero chunks: recorded, never stored
 *          -> known fingerprints (store index, or encoding right now): recorded only
 *          -> new chunks: BlobCodec (lz4 on the libuv pool, AES-GCM) -> PackWriter
 *          -> full packs uploaded -> index segments for uploaded packs
 *   chunk refs -> chunk-list pages (uploaded as they fill)
 *   end -> last pack, last segment, last page -> manifest (invariant 1: last of all)
 *
 * Memory is bounded by constants, never by the stream (invariant 6): ENCODES_IN_FLIGHT
 * chunks being encoded, one open pack, UPLOADS_IN_FLIGHT sealed packs, one page of refs.
 */
import { Chunker, MAX_CHUNK_SIZE, resolveChunker, type ChunkerSpec, type ChunkSource, type SourceKind as ChunkingKind } from '@hoard/chunker';
import type { EncodedBlob } from '../blob/codec.js';
import { hashOfContentKey } from '../content-key.js';
import { encodeIndexSegment, type SegmentPack } from '../index-segment/index-segment.js';
import { PackWriter } from '../pack/pack-writer.js';
import { encodePage, PAGE_CHUNKS, type ChunkRef } from '../snapshot/chunk-list.js';
import { encodeManifest, validateJobName, type PageRef, type SourceKind } from '../snapshot/manifest.js';
import { SourceError } from './errors.js';
import type { FingerprintStore } from './fingerprint-store.js';
import { snapshotId, type Repository, type SnapshotInfo } from './repository.js';
import type { StoreIndex } from './store-index.js';

const ENCODES_IN_FLIGHT = 8;
const UPLOADS_IN_FLIGHT = 1;
/**
 * Chunker segments: 8 MiB (the chunker's default is 16) x 4 in flight. Each pack and
 * segment buffer is resident memory; this keeps a backup's peak RSS near 150 MiB.
 */
const CHUNKER_PIPELINE = { segmentBytes: 8 * 1024 * 1024 };
/** Packs per index segment: a crash loses at most this many packs' worth of dedup. */
const PACKS_PER_SEGMENT = 16;

export interface BackupSource {
  stream: ChunkSource;
  /** What the operator would recognise: a path, `stdin`, a command. */
  name: string;
  kind: SourceKind;
  /** If known (a regular file, `--size`): a stream that ends early or runs long fails the backup. */
  expectedBytes?: number;
}

export interface BackupOptions {
  job: string;
  /** Fingerprint store name; default: the job's own store, else `global`. */
  store?: string;
  /** Chunking preset; default from the source kind (stream -> db-dump, else vm-image). */
  chunking?: ChunkingKind;
  /** Override the preset's average chunk size. */
  avgChunkSize?: number;
  /** Chunker worker threads (default: the chunker's). */
  workers?: number;
  onProgress?: (progress: BackupProgress) => void;
  /** Cancels the backup; nothing is committed. */
  signal?: AbortSignal;
}

export interface BackupProgress {
  /** Bytes read from the source so far. */
  bytesRead: number;
  /** Raw bytes of chunks the store did not have. */
  bytesNew: number;
  /** Bytes written to packs (after compression). */
  bytesStored: number;
  /** Bytes in all-zero chunks (not stored). */
  bytesZero: number;
  chunks: number;
  chunksNew: number;
  packs: number;
}

export interface BackupResult extends BackupProgress {
  snapshot: SnapshotInfo;
  store: string;
  durationMs: number;
}

export async function backup(repo: Repository, source: BackupSource, options: BackupOptions): Promise<BackupResult> {
  validateJobName(options.job);
  const store = await repo.storeForJob(options.job, options.store);
  const index = await store.index();
  // The shared index learns this run's blobs only once their pack and segment are durable,
  // so a failed run leaves nothing in it that the bucket lacks.
  return new BackupRun(repo, store, index, options).run(source);
}

class BackupRun {
  private readonly progress: BackupProgress = { bytesRead: 0, bytesNew: 0, bytesStored: 0, bytesZero: 0, chunks: 0, chunksNew: 0, packs: 0 };
  private readonly pack: PackWriter;
  /**
   * Fingerprints (hex) this run stores that are not in the store's index yet: being
   * encoded, in the open pack, uploading, or in a pack whose index segment is not written.
   * They must not be stored twice by this run. The shared index only learns a blob once
   * its pack and segment are durable, so a concurrent backup of the same store never
   * dedups against a pack that may never be written (invariant 1). At most
   * PACKS_PER_SEGMENT + UPLOADS_IN_FLIGHT + 1 packs' worth of entries.
   */
  private readonly pending = new Set<string>();
  private readonly encodes: Promise<void>[] = [];
  private lastAppend: Promise<void> = Promise.resolve();
  private readonly uploads: Promise<void>[] = [];
  /** Packs uploaded but not yet in an index segment. */
  private readonly unindexed: SegmentPack[] = [];
  private readonly pageWrites: Promise<void>[] = [];
  private readonly pages: PageRef[] = [];
  private page: ChunkRef[] = [];
  /** Reused buffers that hold a new chunk's bytes while it is encoded. */
  private readonly slots: Buffer[] = [];
  private maxChunk = MAX_CHUNK_SIZE;
  private pageOffset = 0;
  private failure: unknown;

  constructor(
    private readonly repo: Repository,
    private readonly store: FingerprintStore,
    private readonly index: StoreIndex,
    private readonly options: BackupOptions,
  ) {
    this.pack = new PackWriter(store.idBytes, repo.config.packBytes);
  }

  async run(source: BackupSource): Promise<BackupResult> {
    const startedAt = new Date();
    const parent = await this.repo.latestSnapshot(this.options.job, (s) => s.meta.source.name === source.name);
    const spec = this.store.chunking(this.options.chunking ?? (source.kind === 'stream' ? 'db-dump' : 'vm-image'), this.options.avgChunkSize);
    // reuseBuffers: chunk bytes are only valid until the next chunk, so new chunks are
    // copied into an encode slot; known chunks (most of a later day) are never copied.
    this.maxChunk = resolveChunker(spec).maxSize;
    const chunker = new Chunker({ chunker: spec, fingerprint: this.store.fingerprintSpec, workers: this.options.workers, reuseBuffers: true, pipeline: CHUNKER_PIPELINE });
    const streamHash = this.store.streamHasher();
    const p = this.progress;
    try {
      for await (const chunk of chunker.chunk(source.stream)) {
        this.options.signal?.throwIfAborted();
        this.rethrow();
        streamHash.update(chunk.bytes);
        p.bytesRead += chunk.length;
        p.chunks++;
        const fingerprint = this.addRef(chunk.length, chunk.zero, chunk.fingerprint);
        if (chunk.zero) p.bytesZero += chunk.length;
        else await this.storeChunk(fingerprint, chunk.bytes);
        this.options.onProgress?.(p);
      }
    } catch (err) {
      await this.settle();
      throw err;
    } finally {
      await chunker.close();
    }
    if (source.expectedBytes !== undefined && p.bytesRead !== source.expectedBytes) {
      await this.settle();
      throw new SourceError(
        `${source.name} ${p.bytesRead < source.expectedBytes ? 'ended early' : 'ran long'}: read ${p.bytesRead} bytes, expected ${source.expectedBytes}; no snapshot was committed`,
      );
    }
    await this.finish();
    const meta = {
      job: this.options.job,
      source: { name: source.name, kind: source.kind },
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      logicalBytes: p.bytesRead,
      streamHash: streamHash.digest('hex'),
      parent: parent?.key ?? null,
      store: this.store.id,
      // The seed of an encrypted store is a secret: the manifest only says it was seeded.
      chunker: manifestChunker(spec),
      chunkCount: p.chunks,
    };
    const manifest = encodeManifest({ meta, pages: this.pages });
    await this.repo.objects.putIfAbsent(manifest.key, manifest.bytes);
    this.options.onProgress?.(p);
    return { ...p, snapshot: { id: snapshotId(manifest.key), key: manifest.key, meta }, store: this.store.name, durationMs: Date.now() - startedAt.getTime() };
  }

  private rethrow(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  /** A chunk with data: stored unless the store has it or is storing it right now. */
  private async storeChunk(fingerprint: Uint8Array, bytes: Uint8Array): Promise<void> {
    if (this.index.has(fingerprint)) return;
    const hex = Buffer.from(fingerprint.buffer, fingerprint.byteOffset, fingerprint.byteLength).toString('hex');
    if (this.pending.has(hex)) return;
    this.pending.add(hex);
    this.progress.chunksNew++;
    this.progress.bytesNew += bytes.length;
    const slot = this.slots.pop() ?? Buffer.allocUnsafeSlow(this.maxChunk);
    const raw = slot.subarray(0, bytes.length);
    raw.set(bytes);
    // Encodes finish out of order (libuv pool); blobs still go into the pack in stream
    // order, so a restore reads a run of new chunks as one contiguous range.
    const previous = this.lastAppend;
    const encoded = this.store.codec.encode(raw, fingerprint, { borrow: true });
    encoded.catch(() => undefined);
    const encode = previous
      .then(() => encoded)
      .then(
        (blob) => this.append(fingerprint, blob),
        (err) => {
          this.failure ??= err;
        },
      )
      .finally(() => this.slots.push(slot));
    this.lastAppend = encode;
    this.encodes.push(encode);
    if (this.encodes.length >= ENCODES_IN_FLIGHT) await this.encodes.shift();
    while (this.uploads.length > UPLOADS_IN_FLIGHT) await this.uploads.shift();
  }

  private append(fingerprint: Uint8Array, blob: EncodedBlob): void {
    this.pack.add(fingerprint, blob);
    this.progress.bytesStored += blob.stored.length;
    if (this.pack.full) this.sealPack();
  }

  private sealPack(): void {
    const sealed = this.pack.seal();
    const packHash = hashOfContentKey(sealed.key);
    this.progress.packs++;
    const upload = this.repo.objects.putIfAbsent(sealed.key, sealed.bytes).then(
      async () => {
        this.pack.recycle(sealed.bytes);
        // Only a durable pack may appear in a segment (invariant 1).
        this.unindexed.push({ packHash, entries: sealed.entries });
        if (this.unindexed.length >= PACKS_PER_SEGMENT) await this.writeSegment();
      },
    ).catch((err: unknown) => {
      this.failure ??= err;
    });
    this.uploads.push(upload);
  }

  private async writeSegment(): Promise<void> {
    if (this.unindexed.length === 0) return;
    const packs = this.unindexed.splice(0);
    const segment = encodeIndexSegment({ storeId: this.store.idBytes, packs });
    await this.repo.objects.putIfAbsent(segment.key, segment.bytes);
    // Pack and segment are durable: now other backups (and restores) may use the blobs.
    for (const p of packs) {
      this.index.addPackEntries(p.packHash, p.entries);
      for (const e of p.entries) this.pending.delete(Buffer.from(e.fingerprint.buffer, e.fingerprint.byteOffset, e.fingerprint.byteLength).toString('hex'));
    }
  }

  /** Records the chunk in the current page; returns the fingerprint copy it keeps. */
  private addRef(length: number, zero: boolean, fingerprint: Uint8Array): Uint8Array {
    // The chunker may reuse the fingerprint's memory, and encoding outlives this chunk.
    const copy = zero ? EMPTY : Uint8Array.from(fingerprint);
    this.page.push({ length, zero, fingerprint: copy });
    if (this.page.length === PAGE_CHUNKS) this.flushPage();
    return copy;
  }

  private flushPage(): void {
    if (this.page.length === 0 && this.pages.length > 0) return;
    const encoded = encodePage(this.page);
    this.pages.push({ offset: this.pageOffset, logicalBytes: encoded.logicalBytes, chunks: this.page.length, hash: hashOfContentKey(encoded.key) });
    this.pageOffset += encoded.logicalBytes;
    this.page = [];
    this.pageWrites.push(
      this.repo.objects.putIfAbsent(encoded.key, encoded.bytes).then(
        () => undefined,
        (err: unknown) => {
          this.failure ??= err;
        },
      ),
    );
  }

  /** Waits for everything started, ignoring outcomes (the backup is failing anyway). */
  private async settle(): Promise<void> {
    await Promise.allSettled([...this.encodes, ...this.uploads, ...this.pageWrites]);
  }

  /** Everything durable before the manifest (invariant 1). */
  private async finish(): Promise<void> {
    await Promise.all(this.encodes.splice(0));
    this.rethrow();
    if (this.pack.count > 0) this.sealPack();
    // Uploads can still be queued behind the backpressure below; wait for all of them.
    await Promise.all(this.uploads.splice(0));
    this.rethrow();
    await this.writeSegment();
    if (this.page.length > 0 || this.pages.length === 0) this.flushPage();
    await Promise.all(this.pageWrites.splice(0));
    this.rethrow();
  }
}

const EMPTY = new Uint8Array(32);

/** The chunker spec as the manifest records it: an encrypted store's seed is a secret. */
function manifestChunker(spec: ChunkerSpec): ChunkerSpec {
  if (spec.kind !== 'fastcdc' || spec.seed === undefined) return spec;
  const { seed: _secret, ...rest } = spec;
  return { ...rest, seeded: true } as ChunkerSpec;
}
