/**
 * One backup: a byte stream becomes a snapshot.
 *
 *   stream -> Chunker (FastCDC + fingerprints, worker threads)
 *          -> zero chunks: recorded, never stored
 *          -> known fingerprints (store index, or encoding right now): recorded only
 *          -> new chunks: BlobCodec (the store's compression and AES-GCM, in the encode workers) -> PackWriter
 *          -> full packs uploaded -> index segments for uploaded packs
 *   chunk refs -> chunk-list pages (uploaded as they fill)
 *   end -> last pack, last segment, last page -> manifest (invariant 1: last of all)
 *
 * Memory is bounded by constants, never by the stream (invariant 6): ENCODE_BYTES_IN_FLIGHT
 * of chunks being encoded, the chunker's segments, one open pack (streamed into a temp file
 * on a local store, whole in memory for S3), UPLOADS_IN_FLIGHT sealed packs, one page of refs.
 */
import { Chunker, FingerprintIndex, type ChunkerSpec, type ChunkSource, type SourceKind as ChunkingKind } from '@hoard/chunker';
import type { EncodedBlob } from '../blob/codec.js';
import { validateJobName, type SourceKind } from '../snapshot/manifest.js';
import { SourceError } from './errors.js';
import { hashChunkRef, type FingerprintStore } from './fingerprint-store.js';
import type { Repository, SnapshotInfo } from './repository.js';
import { SnapshotWriter } from './snapshot-writer.js';
import type { StoreIndex } from './store-index.js';
import { StoreWriter } from './store-writer.js';

/**
 * New chunks being encoded (bytes, and a count for tiny chunks): enough groups for the
 * encode workers that they never wait for the main thread (docs/operations.md, "Memory budget").
 * 3 MiB against 4: 4-10 MiB less peak RSS on a 512 MiB dump's first backup, the same wall
 * time over alternating runs; 2 MiB was ~7% slower.
 */
const ENCODE_BYTES_IN_FLIGHT = 3 * 1024 * 1024;
const ENCODES_IN_FLIGHT = 1024;
const UPLOADS_IN_FLIGHT = 1;
/**
 * Chunker segments: 2 MiB (the chunker's default is 16) x 3 in flight plus the one
 * filling. Every segment is resident memory: against 4 MiB, 2 MiB held the first backup of
 * a 512 MiB dump at 147 instead of 167 MiB peak RSS (a 2 GiB VM image: 141 against 155)
 * for the same CPU; 1 MiB saved nothing more (docs/operations.md, "Memory budget").
 */
const CHUNKER_PIPELINE = { segmentBytes: 2 * 1024 * 1024 };
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
  /**
   * What the whole-stream hash covers: the chunk list (default since the parallel
   * restore, which checks it without a second pass over the bytes) or, as snapshots
   * written before it, the bytes. Both are checked by every full restore; 'bytes' is
   * kept to write such snapshots in tests.
   */
  streamHashOver?: 'chunks' | 'bytes';
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
  // The worker threads start first, both at once: their start-ups (tens of ms each, on the
  // other core) overlap each other instead of delaying the first chunks, then the first new
  // chunk's encode (idle encode workers do not keep the process alive).
  const workersStarted = store.codec.startOffThread();
  const spec = store.chunking(options.chunking ?? (source.kind === 'stream' ? 'db-dump' : 'vm-image'), options.avgChunkSize);
  const chunker = new Chunker({
    chunker: spec,
    fingerprint: store.fingerprintSpec,
    workers: options.workers,
    // reuseBuffers: chunk bytes are only valid until the next chunk; encodeOffThread copies
    // a new chunk at once, and known chunks (most of a later day) are never copied.
    reuseBuffers: true,
    pipeline: CHUNKER_PIPELINE,
  });
  try {
    // The index loads once they run. Each worker's heap setup puts V8's young-generation
    // growth factor back to 2 (the `hoard` CLI holds it at 1, docs/operations.md, "Memory
    // budget"), and the CLI sets it again only when the worker runs; meanwhile the index
    // load, which allocates per entry, grew the main thread's young generation to 8-32 MiB
    // (a later day of the 512 MiB dump peaked at 123-138 MiB instead of 117-118).
    await Promise.all([workersStarted, chunker.start()]);
    const index = await store.index();
    // The shared index learns this run's blobs only once their pack and segment are durable,
    // so a failed run leaves nothing in it that the bucket lacks.
    return await new BackupRun(repo, store, index, chunker, spec, options).run(source);
  } finally {
    // (run() closes it as soon as the stream is chunked; closing twice is harmless.)
    await chunker.close();
  }
}

/** A new chunk from the start of its encode until it is appended to a pack (or dropped). */
interface Encode {
  fingerprint: Uint8Array;
  bytes: number;
  /** Set when the encode succeeded. */
  blob?: EncodedBlob;
  /** Set when the encode failed (the error is the run's `failure`). */
  failed?: boolean;
}

class BackupRun {
  private readonly progress: BackupProgress = { bytesRead: 0, bytesNew: 0, bytesStored: 0, bytesZero: 0, chunks: 0, chunksNew: 0, packs: 0 };
  private readonly writer: StoreWriter;
  private readonly snapshot: SnapshotWriter;
  /**
   * Fingerprints of `encodes`: not in the writer yet, but they must not be encoded twice.
   * At most ENCODES_IN_FLIGHT entries. A FingerprintIndex, as the writer's pending blobs:
   * no string, Buffer or map entry per new chunk.
   */
  private readonly encoding = new FingerprintIndex({ valueWords: 1 });
  /**
   * Encodes started and not yet appended to a pack, oldest first. Blobs are appended in
   * this order whatever order the encodes finish in (several workers), so a restore reads
   * a run of new chunks as one contiguous range. One object and one reaction per chunk:
   * a promise chain per chunk cost the main thread several promises and closures each.
   */
  private readonly encodes: Encode[] = [];
  private encodeBytes = 0;
  /** True while appending waits for the writer (backpressure); the appends resume after. */
  private appendWaiting = false;
  /** Resolved whenever `encodes` shrinks (or a failure is recorded): the loop's and the end's waits. */
  private waiters: (() => void)[] = [];
  private failure: unknown;
  /** Where copyFingerprint puts the next fingerprint (a fresh slab when this one is full). */
  private slab = new Uint8Array(FINGERPRINT_SLAB_BYTES);
  private slabUsed = 0;
  /** Ordinals (in the store index) of packs this run deduplicated against: the commit check needs them. */
  private readonly reusedPacks = new Set<number>();

  constructor(
    private readonly repo: Repository,
    private readonly store: FingerprintStore,
    private readonly index: StoreIndex,
    /** Started by backup(), which also closes it. */
    private readonly chunker: Chunker,
    /** What the manifest records of the chunking. */
    private readonly spec: ChunkerSpec,
    private readonly options: BackupOptions,
  ) {
    this.writer = new StoreWriter(repo.objects, store, index, {
      packBytes: repo.config.packBytes,
      uploadsInFlight: UPLOADS_IN_FLIGHT,
      packsPerSegment: PACKS_PER_SEGMENT,
      recordPacks: true,
    });
    this.snapshot = new SnapshotWriter(repo.objects);
  }

  async run(source: BackupSource): Promise<BackupResult> {
    const startedAt = new Date();
    const parent = await this.repo.latestSnapshot(this.options.job, (s) => s.meta.source.name === source.name);
    const { chunker, spec } = this;
    const streamHash = this.store.streamHasher();
    const hashChunks = this.options.streamHashOver !== 'bytes';
    const p = this.progress;
    try {
      // A segment's chunks at a time (Chunker.chunkBatches): no promise per chunk here.
      for await (const batch of chunker.chunkBatches(source.stream)) {
        for (const chunk of batch) {
          this.options.signal?.throwIfAborted();
          this.rethrow();
          p.bytesRead += chunk.length;
          p.chunks++;
          // The chunker's view: the page copies it, and storeChunk copies it for a new chunk
          // (whose encode outlives this chunk); a known chunk needs no copy.
          const fingerprint = chunk.zero ? EMPTY : chunk.fingerprint;
          if (hashChunks) hashChunkRef(streamHash, chunk.length, fingerprint);
          else streamHash.update(chunk.bytes);
          this.snapshot.add(chunk.length, chunk.zero, fingerprint);
          if (chunk.zero) p.bytesZero += chunk.length;
          else {
            const wait = this.storeChunk(fingerprint, chunk.bytes);
            if (wait) await wait;
          }
          this.options.onProgress?.(this.snapshotProgress());
        }
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
    // Everything durable before the manifest (invariant 1).
    try {
      await this.appended(0);
      this.rethrow();
      await this.writer.flush();
    } catch (err) {
      await this.settle();
      throw err;
    }
    const snapshot = await this.snapshot.commit(
      {
        job: this.options.job,
        source: { name: source.name, kind: source.kind },
        startedAt: startedAt.toISOString(),
        finishedAt: new Date().toISOString(),
        streamHash: streamHash.digest('hex'),
        ...(hashChunks ? { streamHashOver: 'chunks' as const } : {}),
        parent: parent?.key ?? null,
        store: this.store.id,
        chunker: spec,
      },
      { packs: () => this.referencedPacks() },
    );
    const result = this.snapshotProgress();
    this.options.onProgress?.(result);
    return { ...result, snapshot, store: this.store.name, durationMs: Date.now() - startedAt.getTime() };
  }

  private snapshotProgress(): BackupProgress {
    const p = this.progress;
    p.bytesStored = this.writer.stats.storedBytes;
    p.packs = this.writer.stats.packs;
    return p;
  }

  /**
   * Every pack the snapshot's blobs are in: those deduplicated against, and those this run
   * wrote. A blob this run stored is never also counted as reused (it was pending, not
   * indexed, when it was looked up).
   */
  private *referencedPacks(): Generator<Uint8Array> {
    for (const ordinal of this.reusedPacks) yield this.index.packHash(ordinal);
    yield* this.writer.writtenPacks;
  }

  private rethrow(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  /**
   * A chunk with data: stored unless the store has it or is storing it right now. Returns
   * a promise only when too many encodes are in flight and the caller must wait.
   */
  private storeChunk(fingerprint: Uint8Array, bytes: Uint8Array): Promise<void> | undefined {
    const reused = this.index.packOf(fingerprint);
    if (reused !== undefined) {
      this.reusedPacks.add(reused);
      return undefined;
    }
    if (this.writer.has(fingerprint) || this.encoding.has(fingerprint)) return undefined;
    // Our own copy: the chunker may reuse its memory, and the encode and the pack outlive this chunk.
    fingerprint = this.copyFingerprint(fingerprint);
    this.encoding.add(fingerprint, NO_VALUE);
    this.progress.chunksNew++;
    this.progress.bytesNew += bytes.length;
    const encode: Encode = { fingerprint, bytes: bytes.length };
    this.encodes.push(encode);
    this.encodeBytes += bytes.length;
    this.store.codec.encodeOffThread(bytes, fingerprint).then(
      (blob) => {
        encode.blob = blob;
        this.appendReady();
      },
      (err: unknown) => {
        encode.failed = true;
        this.failure ??= err;
        this.appendReady();
      },
    );
    if (this.encodeBytes <= ENCODE_BYTES_IN_FLIGHT && this.encodes.length <= ENCODES_IN_FLIGHT) return undefined;
    // Over the bound: wait until half is appended, not just the oldest chunk. Waiting yields
    // to the event loop, which sends the encode pool's open group; waiting per chunk would
    // send groups of one chunk each.
    return this.appended(ENCODE_BYTES_IN_FLIGHT / 2, ENCODES_IN_FLIGHT / 2);
  }

  /**
   * A view of the fingerprint slab: the pack keeps each new chunk's fingerprint until its
   * segment is written (on a first backup, to the end), and a typed array with a buffer of
   * its own per chunk was several MiB the young generation copied and promoted.
   */
  private copyFingerprint(fingerprint: Uint8Array): Uint8Array {
    if (this.slabUsed === FINGERPRINT_SLAB_BYTES) {
      this.slab = new Uint8Array(FINGERPRINT_SLAB_BYTES);
      this.slabUsed = 0;
    }
    const copy = this.slab.subarray(this.slabUsed, this.slabUsed + 32);
    copy.set(fingerprint);
    this.slabUsed += 32;
    return copy;
  }

  /**
   * Appends the encodes at the head of the queue whose blobs are ready, in stream order,
   * until one is still encoding or the writer asks to wait. Synchronous unless it must
   * wait: it runs in each encode's reaction, and an async function there would cost a
   * promise per chunk. After a failure, blobs are dropped instead (nothing will commit).
   */
  private appendReady(): void {
    if (this.appendWaiting) return;
    let head: Encode | undefined;
    while ((head = this.encodes[0]) !== undefined && (head.blob !== undefined || head.failed)) {
      this.encodes.shift();
      this.encodeBytes -= head.bytes;
      this.encoding.delete(head.fingerprint);
      const blob = head.blob;
      if (!blob) continue;
      try {
        // The fingerprint is this run's own copy (storeChunk's): the pack keeps it.
        if (this.failure === undefined) this.writer.append(head.fingerprint, blob, true);
      } catch (err) {
        this.failure ??= err;
      } finally {
        // The writer copied the bytes into the pack (or dropped a duplicate).
        blob.release?.();
      }
      const wait = this.writer.backpressure();
      if (wait) {
        this.appendWaiting = true;
        this.wake();
        void wait.then(() => {
          this.appendWaiting = false;
          this.appendReady();
        });
        return;
      }
    }
    try {
      // Stored bytes grow here, also while the loop waits on a slow source.
      this.options.onProgress?.(this.snapshotProgress());
    } catch (err) {
      // This runs in an encode's reaction: a callback that throws fails the backup, not the process.
      this.failure ??= err;
    }
    this.wake();
  }

  /**
   * Resolves once at most `bytes` and `count` of encodes wait to be appended, or a failure
   * is recorded. With nothing left (`count` 0), also once the last append's wait is over.
   */
  private async appended(bytes: number, count = 0): Promise<void> {
    const busy = () => this.encodeBytes > bytes || this.encodes.length > count || (count === 0 && this.appendWaiting);
    while (busy() && this.failure === undefined) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  private wake(): void {
    if (this.waiters.length === 0) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }

  /** Waits for everything started, ignoring outcomes (the backup is failing anyway). */
  private async settle(): Promise<void> {
    // Every encode's reaction has run once the queue is empty (failed or not).
    while (this.encodes.length > 0 || this.appendWaiting) await new Promise<void>((resolve) => this.waiters.push(resolve));
    await this.writer.settle();
    // Nothing will seal the open pack now: drop it (and its temp file on a local store).
    await this.writer.discardOpenPack().catch(() => undefined);
    await this.snapshot.settle();
  }
}

const EMPTY = new Uint8Array(32);
/** 1,024 fingerprints a slab. */
const FINGERPRINT_SLAB_BYTES = 32 * 1024;
/** The `encoding` index only needs its keys. */
const NO_VALUE = new Uint32Array(1);
