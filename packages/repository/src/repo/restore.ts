/**
 * A snapshot (or a byte range of it) back to a byte-identical stream.
 *
 *   manifest -> pages (read one ahead) -> chunk refs in the range
 *   -> windows of up to 16 MiB of stream; per window, the stored blobs grouped by pack,
 *      sorted and merged into ranged GETs (RESTORE_READS in flight)
 *   -> each blob decoded (lz4, AES-GCM) and re-hashed against its fingerprint (invariant 4)
 *   -> written in order (zero chunks as holes where the sink can) and fed to the
 *      whole-stream hash, checked against the manifest at the end.
 *
 * Memory: WINDOWS_AHEAD + 1 windows of decoded data (16 MiB each) plus the fetched
 * ranges of one window, plus two pages of refs.
 */
import { decodePage, type ChunkRef } from '../snapshot/chunk-list.js';
import { contentKeyFromHash } from '../content-key.js';
import type { Manifest } from '../snapshot/manifest.js';
import { mapConcurrent } from './concurrency.js';
import { IntegrityError, RepositoryError } from './errors.js';
import { hashChunkRef, type FingerprintStore } from './fingerprint-store.js';
import type { Repository, SnapshotInfo } from './repository.js';
import { forZeroBlocks, type RestoreSink } from './restore-sink.js';
import type { BlobLocation, StoreIndex } from './store-index.js';

/** Ranged GETs in flight within a window. */
const RESTORE_READS = 4;
/** Windows fetched ahead of the one being written. */
const WINDOWS_AHEAD = 2;
const WINDOW_BYTES = 16 * 1024 * 1024;
const WINDOW_PIECES = 4096;
/** Blobs closer than this in one pack are fetched together (the gap is read and dropped). */
const BATCH_GAP_BYTES = 256 * 1024;
const BATCH_MAX_BYTES = 4 * 1024 * 1024;

export interface RestoreOptions {
  /** Only these bytes of the stream (partial restore). The whole-stream hash is then not checked. */
  range?: { offset: number; length: number };
  onProgress?: (progress: RestoreProgress) => void;
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

interface Piece {
  /** Logical offset of the chunk in the stream. */
  offset: number;
  ref: ChunkRef;
  location?: BlobLocation;
  /** Part of the chunk inside the requested range. */
  from: number;
  to: number;
}

interface Batch {
  pack: number;
  start: number;
  end: number;
  pieces: Piece[];
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
  const manifest = await repo.manifest(snapshot.key);
  const total = manifest.meta.logicalBytes;
  const range = options.range ?? { offset: 0, length: total };
  if (!Number.isSafeInteger(range.offset) || !Number.isSafeInteger(range.length) || range.offset < 0 || range.length < 0 || range.offset + range.length > total) {
    throw new RepositoryError(`range ${range.offset}+${range.length} is outside snapshot ${snapshot.id} (${total} bytes)`);
  }
  const whole = range.offset === 0 && range.length === total;
  const store = await repo.storeById(manifest.meta.store);
  const index = await store.index();
  const reader = new SnapshotReader(repo, store, index, snapshot, manifest);
  const hasher = whole ? store.streamHasher() : undefined;
  const byChunks = manifest.meta.streamHashOver === 'chunks';
  const progress: RestoreProgress = { bytesWritten: 0, bytesTotal: range.length, bytesFetched: 0 };
  await mapConcurrent(reader.windows(range.offset, range.offset + range.length), WINDOWS_AHEAD, (window) => reader.fetchWindow(window, progress), async (pieces) => {
    for (const piece of pieces) {
      if (hasher && byChunks) hashChunkRef(hasher, piece.ref.length, piece.ref.fingerprint);
      if (piece.data === undefined) {
        const length = piece.to - piece.from;
        if (hasher && !byChunks) await forZeroBlocks(length, (zeros) => hasher.update(zeros));
        await sink.zeros(length);
        progress.bytesWritten += length;
      } else {
        const data = piece.from === 0 && piece.to === piece.data.length ? piece.data : piece.data.subarray(piece.from, piece.to);
        if (!byChunks) hasher?.update(data);
        await sink.write(data);
        progress.bytesWritten += data.length;
      }
    }
    options.onProgress?.(progress);
  });
  if (hasher) {
    const actual = hasher.digest('hex');
    if (actual !== manifest.meta.streamHash) {
      throw new IntegrityError(snapshot.key, snapshot.key, undefined, `the restored stream hashes to ${actual}, the manifest says ${manifest.meta.streamHash}`);
    }
  }
  await sink.finish();
  return { ...progress, snapshot, streamHashChecked: whole, durationMs: Date.now() - started };
}

/**
 * The chunk references overlapping [offset, offset+length) of a snapshot, each with its
 * stream offset, at most `limit` of them. Every stored chunk returned is in the store's
 * index (else IntegrityError): an agent that refers to these chunks again, for files it
 * did not re-read, gets only chunks the store can serve.
 */
export async function* snapshotChunkRefs(repo: Repository, snapshot: SnapshotInfo, offset: number, length: number, limit: number): AsyncGenerator<{ offset: number; ref: ChunkRef }> {
  const manifest = await repo.manifest(snapshot.key);
  const store = await repo.storeById(manifest.meta.store);
  const reader = new SnapshotReader(repo, store, await store.index(), snapshot, manifest);
  let n = 0;
  for await (const piece of reader.pieces(offset, Math.min(offset + length, manifest.meta.logicalBytes))) {
    if (n++ >= limit) return;
    yield { offset: piece.offset, ref: piece.ref };
  }
}

/** Plans and performs the reads of one snapshot; shared by restore and verify. */
export class SnapshotReader {
  constructor(
    private readonly repo: Repository,
    private readonly store: FingerprintStore,
    private readonly index: StoreIndex,
    private readonly snapshot: SnapshotInfo,
    private readonly manifest: Manifest,
  ) {}

  /** The chunks overlapping [start, end), page by page, the next page read ahead. */
  async *pieces(start: number, end: number): AsyncGenerator<Piece> {
    const pages = this.manifest.pages.filter((p) => p.offset < end && p.offset + p.logicalBytes > start);
    const load = (i: number) => {
      const key = contentKeyFromHash('chunklists', pages[i].hash);
      return this.repo.objects.get(key).then((bytes) => decodePage(key, bytes));
    };
    let next = pages.length > 0 ? load(0) : undefined;
    for (let i = 0; i < pages.length; i++) {
      const refs = await next!;
      next = i + 1 < pages.length ? load(i + 1) : undefined;
      next?.catch(() => undefined);
      let offset = pages[i].offset;
      for (const ref of refs) {
        const chunkEnd = offset + ref.length;
        if (chunkEnd > start && offset < end) {
          const piece: Piece = { offset, ref, from: Math.max(start - offset, 0), to: Math.min(end, chunkEnd) - offset };
          if (!ref.zero) {
            piece.location = this.index.locate(ref.fingerprint);
            if (!piece.location) {
              throw new IntegrityError(this.snapshot.key, contentKeyFromHash('chunklists', pages[i].hash), offset, `chunk ${hex(ref.fingerprint)} is in no index segment of store ${this.store.name} (its pack is missing or unindexed: run \`hoard verify\`)`);
            }
          }
          yield piece;
        }
        offset = chunkEnd;
        if (offset >= end) return;
      }
    }
  }

  /** Consecutive pieces, up to WINDOW_BYTES of stream or WINDOW_PIECES chunks at a time. */
  async *windows(start: number, end: number): AsyncGenerator<Piece[]> {
    let window: Piece[] = [];
    let bytes = 0;
    for await (const piece of this.pieces(start, end)) {
      window.push(piece);
      bytes += piece.to - piece.from;
      if (bytes >= WINDOW_BYTES || window.length >= WINDOW_PIECES) {
        yield window;
        window = [];
        bytes = 0;
      }
    }
    if (window.length > 0) yield window;
  }

  /**
   * The reads for one window: its stored pieces grouped by pack, sorted by offset, and
   * merged into ranges (gaps up to BATCH_GAP_BYTES, ranges up to BATCH_MAX_BYTES). A
   * later snapshot interleaves blobs of many packs (unchanged chunks from old packs,
   * changed ones from new), so grouping by pack across the window, not just between
   * neighbours, is what keeps the number of GETs small.
   */
  planReads(window: readonly Piece[]): Batch[] {
    const byPack = new Map<number, Piece[]>();
    for (const piece of window) {
      if (!piece.location) continue;
      let list = byPack.get(piece.location.pack);
      if (!list) byPack.set(piece.location.pack, (list = []));
      list.push(piece);
    }
    const batches: Batch[] = [];
    for (const [pack, pieces] of byPack) {
      pieces.sort((x, y) => x.location!.offset - y.location!.offset);
      let batch: Batch | undefined;
      for (const piece of pieces) {
        const loc = piece.location!;
        const blobEnd = loc.offset + loc.storedLength;
        if (batch && loc.offset <= batch.end + BATCH_GAP_BYTES && Math.max(batch.end, blobEnd) - batch.start <= BATCH_MAX_BYTES) {
          batch.end = Math.max(batch.end, blobEnd);
          batch.pieces.push(piece);
        } else {
          if (batch) batches.push(batch);
          batch = { pack, start: loc.offset, end: blobEnd, pieces: [piece] };
        }
      }
      if (batch) batches.push(batch);
    }
    return batches;
  }

  /** Every piece of the window, fetched, decoded and checked; in window order. */
  async fetchWindow(window: readonly Piece[], progress?: { bytesFetched: number }): Promise<{ from: number; to: number; ref: ChunkRef; data?: Uint8Array }[]> {
    const decoded = new Map<Piece, Uint8Array>();
    await mapConcurrent(this.planReads(window), RESTORE_READS, (batch) => this.fetch(batch, progress), (results, batch) => {
      batch.pieces.forEach((piece, i) => decoded.set(piece, results[i]));
    });
    return window.map((piece) => ({ from: piece.from, to: piece.to, ref: piece.ref, data: decoded.get(piece) }));
  }

  /** One ranged GET, then every blob of the batch decoded and checked, in parallel. */
  async fetch(batch: Batch, progress?: { bytesFetched: number }): Promise<Uint8Array[]> {
    const packKey = this.index.packKey(batch.pack);
    let bytes: Uint8Array;
    try {
      bytes = await this.repo.objects.get(packKey, { offset: batch.start, length: batch.end - batch.start });
    } catch (err) {
      throw new IntegrityError(this.snapshot.key, packKey, batch.pieces[0].offset, `cannot read bytes ${batch.start}+${batch.end - batch.start}: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (progress) progress.bytesFetched += bytes.length;
    const check = this.store.fingerprinter.digest;
    return Promise.all(
      batch.pieces.map(async (p) => {
        const loc = p.location!;
        const stored = bytes.subarray(loc.offset - batch.start, loc.offset - batch.start + loc.storedLength);
        try {
          return await this.store.codec.decode(stored, { codec: loc.codec, rawLength: p.ref.length }, p.ref.fingerprint, check);
        } catch (err) {
          throw new IntegrityError(this.snapshot.key, packKey, p.offset, `blob at pack offset ${loc.offset} (${loc.storedLength} bytes): ${err instanceof Error ? err.message : String(err)}`);
        }
      }),
    );
  }
}

const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
