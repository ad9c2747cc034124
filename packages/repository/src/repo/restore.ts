/**
 * A snapshot (or a byte range of it) back to a byte-identical stream: the restore
 * pipeline (docs/repository.md, "Restore").
 *
 *   manifest -> pages (read one ahead) -> chunk refs in the range -> windows of the stream
 *   -> per window, reads planned by pack and merged (read-plan.ts)
 *   -> ranged reads, READS in flight across all windows in flight (the store's
 *      readConcurrency: 4 local, 12 on S3), on files kept open (fs)
 *   -> decode workers (decode-worker.ts): AES-GCM, lz4 or zstd, BLAKE3 re-hash of every chunk
 *      against its fingerprint (invariant 4), and for a file or device the writes
 *      themselves, at each piece's position, in whatever order pieces arrive
 *   -> ordered sinks (stdout, a database, an HTTP response) get the bytes back and are
 *      written in stream order, window by window: the windows in flight are the reorder
 *      buffer.
 *
 * The whole-stream check: a manifest with `streamHashOver: "chunks"` (every snapshot
 * written since the pipeline exists) hashes the chunk list, which the main thread does
 * as windows complete: 40 bytes per chunk instead of every byte. Older manifests hash
 * the bytes; those restores take the ordered path so the bytes pass the main thread in
 * order (docs/format.md says why both checks are as strong).
 *
 * Memory: at most 3 (local) or 6 (S3) windows of WINDOW_BYTES stream bytes (fetched and,
 * on ordered paths, decoded), plus two pages of chunk refs; never the stream's length.
 */
import pLimit from 'p-limit';
import { decodePage, type ChunkRef } from '../snapshot/chunk-list.js';
import { contentKeyFromHash } from '../content-key.js';
import type { Manifest } from '../snapshot/manifest.js';
import { openRangeReader, DEFAULT_READ_CONCURRENCY } from '../store/object-store.js';
import { BatchDecoder, type DecodeOutput } from '../restore/batch-decoder.js';
import { DecodePool } from '../restore/decode-pool.js';
import { BATCH_GAP_BYTES, BATCH_MAX_BYTES, planReads, type Piece } from '../restore/read-plan.js';
import { mapConcurrent } from './concurrency.js';
import { IntegrityError, RepositoryError } from './errors.js';
import { hashChunkRef, type FingerprintStore } from './fingerprint-store.js';
import type { Repository, SnapshotInfo } from './repository.js';
import { forZeroBlocks, type PositionalTarget, type RestoreSink } from './restore-sink.js';
import type { StoreIndex } from './store-index.js';

/** Stream bytes per window (and at most WINDOW_PIECES chunks). */
const WINDOW_BYTES = 8 * 1024 * 1024;
const WINDOW_PIECES = 4096;
/**
 * Windows being fetched and decoded at once; the oldest is consumed first. A local store
 * answers in microseconds, and more windows only hold more memory (measured: 2-4 as fast
 * as 8); S3 answers in milliseconds, so more windows keep its 12 GETs in flight.
 */
const WINDOWS_IN_FLIGHT_LOCAL = 3;
const WINDOWS_IN_FLIGHT_REMOTE = 6;

/** The constants that bound a restore's memory (docs/repository.md). */
export const RESTORE_MEMORY = {
  windowBytes: WINDOW_BYTES,
  windowsInFlight: WINDOWS_IN_FLIGHT_REMOTE,
  batchMaxBytes: BATCH_MAX_BYTES,
  batchGapBytes: BATCH_GAP_BYTES,
} as const;

export interface RestoreOptions {
  /** Only these bytes of the stream (partial restore). The whole-stream hash is then not checked. */
  range?: { offset: number; length: number };
  onProgress?: (progress: RestoreProgress) => void;
  /** Decode workers (default: the process-wide pool). */
  decodePool?: DecodePool;
}

export interface RestoreProgress {
  bytesWritten: number;
  bytesTotal: number;
  /** Bytes fetched from the object store. */
  bytesFetched: number;
}

export interface RestoreResult extends RestoreProgress {
  snapshot: SnapshotInfo;
  /** True when the whole stream was restored and its hash matched the manifest. */
  streamHashChecked: boolean;
  durationMs: number;
}

export async function restore(repo: Repository, snapshot: SnapshotInfo, sink: RestoreSink, options: RestoreOptions = {}): Promise<RestoreResult> {
  try {
    return await restoreInto(repo, snapshot, sink, options);
  } catch (err) {
    // Any failure, also before the first byte (a bad range, a missing passphrase): the
    // sink holds a file or a stream the caller handed over.
    await sink.abort();
    throw err;
  }
}

async function restoreInto(repo: Repository, snapshot: SnapshotInfo, sink: RestoreSink, options: RestoreOptions): Promise<RestoreResult> {
  const started = Date.now();
  // First: the workers start (load their modules) while the manifest and index load.
  const pool = options.decodePool ?? DecodePool.shared();
  const manifest = await repo.manifest(snapshot.key);
  const total = manifest.meta.logicalBytes;
  const range = options.range ?? { offset: 0, length: total };
  if (
    !Number.isSafeInteger(range.offset) ||
    !Number.isSafeInteger(range.length) ||
    range.offset < 0 ||
    range.length < 0 ||
    range.offset + range.length > total
  ) {
    throw new RepositoryError(`range ${range.offset}+${range.length} is outside snapshot ${snapshot.id} (${total} bytes)`);
  }
  const whole = range.offset === 0 && range.length === total;
  const store = await repo.storeById(manifest.meta.store);
  const index = await store.index();
  const plan = new SnapshotReader(repo, store, index, snapshot, manifest);
  const hasher = whole ? store.streamHasher() : undefined;
  const byChunks = manifest.meta.streamHashOver === 'chunks';
  // Bytes must pass the main thread in order only for a byte-hashed manifest or an ordered sink.
  const needBytesInOrder = hasher !== undefined && !byChunks;
  const target: PositionalTarget | undefined = needBytesInOrder ? undefined : sink.positional?.();
  const output: DecodeOutput = target
    ? { kind: 'positional', fd: target.fd, base: range.offset }
    : sink.discards && !needBytesInOrder
      ? { kind: 'check' }
      : { kind: 'return' };

  const progress: RestoreProgress = { bytesWritten: 0, bytesTotal: range.length, bytesFetched: 0 };
  const reader = openRangeReader(repo.objects);
  const readConcurrency = repo.objects.readConcurrency ?? DEFAULT_READ_CONCURRENCY;
  const windowsInFlight = readConcurrency > DEFAULT_READ_CONCURRENCY ? WINDOWS_IN_FLIGHT_REMOTE : WINDOWS_IN_FLIGHT_LOCAL;
  const decoder = new BatchDecoder({
    snapshotKey: snapshot.key,
    index,
    reader,
    reads: pLimit(readConcurrency),
    pool,
    keys: store.decodeKeys(),
    output,
    onFetched: (n) => (progress.bytesFetched += n),
  });

  /** A window fetched, checked, and (positional targets) written; for ordered sinks its bytes per piece and the buffers they are in. */
  const runWindow = async (window: Piece[]): Promise<{ datas: (Uint8Array | undefined)[]; buffers: ArrayBuffer[] } | undefined> => {
    const batches = planReads(window);
    const zeroWrites =
      target && !target.sparse ? window.filter((p) => !p.location).map((p) => target.zerosAt(p.offset + p.from - range.offset, p.to - p.from)) : [];
    // Settled, not Promise.all: no write of this window may still be under way once the
    // restore has failed and the caller closes the target (see mapConcurrent).
    const settled = await Promise.allSettled([...batches.map((b) => decoder.run(b)), ...zeroWrites]);
    const failed = settled.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    if (output.kind !== 'return') return undefined;
    const data = new Map<Piece, Uint8Array>();
    const buffers: ArrayBuffer[] = [];
    batches.forEach((batch, i) => {
      const { views, buffer } = (settled[i] as PromiseFulfilledResult<{ views: Uint8Array[]; buffer: ArrayBuffer }>).value;
      buffers.push(buffer);
      batch.pieces.forEach(({ piece }, j) => data.set(piece, views[j]));
    });
    return { datas: window.map((piece) => data.get(piece)), buffers };
  };

  try {
    await mapConcurrent(plan.windows(range.offset, range.offset + range.length), windowsInFlight, runWindow, async (fetched, window) => {
      for (let i = 0; i < window.length; i++) {
        const piece = window[i];
        if (hasher && byChunks) hashChunkRef(hasher, piece.ref.length, piece.ref.fingerprint);
        const length = piece.to - piece.from;
        if (fetched !== undefined) {
          const data = fetched.datas[i];
          if (data === undefined) {
            if (needBytesInOrder) await forZeroBlocks(length, (zeros) => hasher!.update(zeros));
            await sink.zeros(length);
          } else {
            if (needBytesInOrder) hasher!.update(data);
            await sink.write(data);
          }
        }
        progress.bytesWritten += length;
      }
      // The window's buffers serve later windows once the sink no longer holds them.
      if (fetched && sink.drained)
        void sink.drained().then(
          () => fetched.buffers.forEach((b) => decoder.recycleOutput(b)),
          () => undefined,
        );
      if (target) target.wrote(window.reduce((n, p) => n + (p.location ? p.to - p.from : 0), 0));
      options.onProgress?.(progress);
    });
  } finally {
    await reader.close();
  }
  if (hasher) {
    const actual = hasher.digest('hex');
    if (actual !== manifest.meta.streamHash) {
      throw new IntegrityError(snapshot.key, snapshot.key, undefined, `the restored stream hashes to ${actual}, the manifest says ${manifest.meta.streamHash}`);
    }
  }
  target?.setLength(range.length);
  await sink.finish();
  return { ...progress, snapshot, streamHashChecked: whole, durationMs: Date.now() - started };
}

/**
 * The chunk references overlapping [offset, offset+length) of a snapshot, each with its
 * stream offset, at most `limit` of them. Every stored chunk returned is in the store's
 * index (else IntegrityError): an agent that refers to these chunks again, for files it
 * did not re-read, gets only chunks the store can serve.
 */
export async function* snapshotChunkRefs(
  repo: Repository,
  snapshot: SnapshotInfo,
  offset: number,
  length: number,
  limit: number,
): AsyncGenerator<{ offset: number; ref: ChunkRef }> {
  const manifest = await repo.manifest(snapshot.key);
  const store = await repo.storeById(manifest.meta.store);
  const reader = new SnapshotReader(repo, store, await store.index(), snapshot, manifest);
  let n = 0;
  for await (const window of reader.windows(offset, Math.min(offset + length, manifest.meta.logicalBytes))) {
    for (const piece of window) {
      if (n++ >= limit) return;
      yield { offset: piece.offset, ref: piece.ref };
    }
  }
}

/** The chunks of a snapshot's stretch, located in the store's index. */
export class SnapshotReader {
  constructor(
    private readonly repo: Repository,
    private readonly store: FingerprintStore,
    private readonly index: StoreIndex,
    private readonly snapshot: SnapshotInfo,
    private readonly manifest: Manifest,
  ) {}

  /**
   * The chunks overlapping [start, end), in windows of up to WINDOW_BYTES of stream or
   * WINDOW_PIECES chunks; pages are read one ahead. Built page by page without a yield
   * per chunk: a 16 KiB-chunk dump has 30,000 chunks per 512 MiB.
   */
  async *windows(start: number, end: number): AsyncGenerator<Piece[]> {
    const pages = this.manifest.pages.filter((p) => p.offset < end && p.offset + p.logicalBytes > start);
    const load = (i: number) => {
      const key = contentKeyFromHash('chunklists', pages[i].hash);
      return this.repo.objects.get(key).then((bytes) => decodePage(key, bytes));
    };
    let window: Piece[] = [];
    let bytes = 0;
    let next = pages.length > 0 ? load(0) : undefined;
    for (let i = 0; i < pages.length; i++) {
      const refs = await next!;
      next = i + 1 < pages.length ? load(i + 1) : undefined;
      next?.catch(() => undefined);
      const ready: Piece[][] = [];
      let offset = pages[i].offset;
      for (const ref of refs) {
        const chunkEnd = offset + ref.length;
        if (chunkEnd > start && offset < end) {
          const piece: Piece = { offset, ref, from: Math.max(start - offset, 0), to: Math.min(end, chunkEnd) - offset };
          if (!ref.zero) {
            piece.location = this.index.locate(ref.fingerprint);
            if (!piece.location) {
              throw new IntegrityError(
                this.snapshot.key,
                contentKeyFromHash('chunklists', pages[i].hash),
                offset,
                `chunk ${hex(ref.fingerprint)} is in no index segment of store ${this.store.name} (its pack is missing or unindexed: run \`hoard verify\`)`,
              );
            }
          }
          window.push(piece);
          bytes += piece.to - piece.from;
          if (bytes >= WINDOW_BYTES || window.length >= WINDOW_PIECES) {
            ready.push(window);
            window = [];
            bytes = 0;
          }
        }
        offset = chunkEnd;
        if (offset >= end) break;
      }
      yield* ready;
      if (offset >= end) break;
    }
    if (window.length > 0) yield window;
  }
}

const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
