/**
 * Copies one snapshot from a source repository into a target repository (`hoard sync`,
 * docs/sync.md). The data path is the restore pipeline's read side and the backup's write
 * side:
 *
 *   source manifest -> pages -> windows of chunk refs (restore's SnapshotReader)
 *   -> the blobs the target lacks, read by pack range (read-plan.ts) and decoded in the
 *      decode workers, each checked against its source fingerprint (invariant 4)
 *   -> re-fingerprinted for the target when its fingerprint key differs, re-encoded with
 *      the target store's codec (its compression and keys)
 *   -> the target's StoreWriter (packs, then index segments) and SnapshotWriter (pages)
 *   -> flush, then the manifest, last (invariant 1), under the target's commit check
 *
 * Which blobs are read: when both stores fingerprint alike (both unencrypted, or the same
 * fingerprint key) only those the target's index lacks; otherwise every stored chunk of
 * the snapshot (its target fingerprint is known only from its bytes), of which only those
 * the target lacks are written.
 *
 * Memory: WINDOWS_IN_FLIGHT windows of at most 8 MiB of stream, decoded and re-encoded,
 * one open pack and one uploading, one page of refs: never the snapshot's size.
 */
import pLimit from 'p-limit';
import type { Blake3Hasher } from '@napi-rs/blake-hash';
import type { EncodedBlob } from '../blob/codec.js';
import { BatchDecoder } from '../restore/batch-decoder.js';
import { DecodePool } from '../restore/decode-pool.js';
import { planReads, type Piece } from '../restore/read-plan.js';
import { mapConcurrent } from '../repo/concurrency.js';
import { IntegrityError } from '../repo/errors.js';
import { hashChunkRef, type FingerprintStore } from '../repo/fingerprint-store.js';
import type { Repository, SnapshotInfo } from '../repo/repository.js';
import { SnapshotReader } from '../repo/restore.js';
import { forZeroBlocks } from '../repo/restore-sink.js';
import { SnapshotWriter } from '../repo/snapshot-writer.js';
import type { StoreIndex } from '../repo/store-index.js';
import { StoreWriter } from '../repo/store-writer.js';
import type { SnapshotMeta, SnapshotOrigin } from '../snapshot/manifest.js';
import { DEFAULT_READ_CONCURRENCY, openRangeReader } from '../store/object-store.js';

/** Windows read, decoded and re-encoded at once; consumed (written) in stream order. */
const WINDOWS_IN_FLIGHT = 4;
/** As the embedded backup: a crash loses at most this many packs' worth of copied blobs (docs/sync.md). */
const PACKS_PER_SEGMENT = 16;

export interface CopyProgress {
  /** Stream bytes of the snapshot gone through so far. */
  bytesDone: number;
  bytesTotal: number;
  /** Bytes read from the source's packs. */
  bytesFetched: number;
  /** Blobs written to the target, their raw bytes and their stored (packed) bytes. */
  blobsWritten: number;
  bytesNew: number;
  bytesStored: number;
}

export interface CopiedSnapshot extends CopyProgress {
  source: SnapshotInfo;
  target: SnapshotInfo;
  /** Target store name. */
  store: string;
  /** The two stores fingerprint alike: only missing blobs were read. */
  sameFingerprints: boolean;
}

export interface CopyOptions {
  /** The target's fingerprint store the copy goes into (see targetStoreFor). */
  targetStore: FingerprintStore;
  /** The target key of the source snapshot's parent, when that was copied: recorded as the copy's parent. */
  parent: string | null;
  onProgress?: (progress: CopyProgress) => void;
  decodePool?: DecodePool;
}

interface FetchedBlob {
  targetFingerprint: Uint8Array;
  /** Undefined when the target had the blob already. */
  blob?: EncodedBlob;
  /** The decoded chunk, kept only when the source's stream hash is over bytes. */
  raw?: Uint8Array;
}

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
const ZERO_FINGERPRINT = new Uint8Array(32);

export async function copySnapshot(source: Repository, target: Repository, snapshot: SnapshotInfo, options: CopyOptions): Promise<CopiedSnapshot> {
  const manifest = await source.manifest(snapshot.key);
  const sourceStore = await source.storeById(manifest.meta.store);
  const sourceIndex = await sourceStore.index();
  const targetStore = options.targetStore;
  const targetIndex = await targetStore.index();
  const sameFingerprints = sameFingerprintKey(sourceStore, targetStore);
  const run = new SnapshotCopy(source, target, snapshot, sourceStore, sourceIndex, targetStore, targetIndex, sameFingerprints, options);
  return run.run(manifest.meta, manifest.meta.logicalBytes, new SnapshotReader(source, sourceStore, sourceIndex, snapshot, manifest));
}

/** Both unencrypted, or both keyed with the same fingerprint key: a chunk has one fingerprint in both. */
export function sameFingerprintKey(a: FingerprintStore, b: FingerprintStore): boolean {
  const ka = a.decodeKeys().fingerprintKey;
  const kb = b.decodeKeys().fingerprintKey;
  if (ka === undefined || kb === undefined) return ka === kb;
  return Buffer.from(ka).equals(Buffer.from(kb));
}

class SnapshotCopy {
  private readonly writer: StoreWriter;
  private readonly pages: SnapshotWriter;
  private readonly progress: CopyProgress;
  /** Ordinals of target packs the copy refers to without writing them: the commit check needs them. */
  private readonly reusedPacks = new Set<number>();
  /** Source stream hash, recomputed to check the source manifest. */
  private readonly sourceHash: Blake3Hasher;
  /** Target stream hash (list form), when the fingerprints change. */
  private readonly targetHash: Blake3Hasher | undefined;
  private byteHashed = false;

  constructor(
    private readonly source: Repository,
    target: Repository,
    private readonly snapshot: SnapshotInfo,
    private readonly sourceStore: FingerprintStore,
    private readonly sourceIndex: StoreIndex,
    private readonly targetStore: FingerprintStore,
    private readonly targetIndex: StoreIndex,
    private readonly sameFingerprints: boolean,
    private readonly options: CopyOptions,
  ) {
    this.writer = new StoreWriter(target.objects, targetStore, targetIndex, {
      packBytes: target.config.packBytes,
      uploadsInFlight: 1,
      packsPerSegment: PACKS_PER_SEGMENT,
      recordPacks: true,
    });
    this.pages = new SnapshotWriter(target.objects);
    this.progress = { bytesDone: 0, bytesTotal: 0, bytesFetched: 0, blobsWritten: 0, bytesNew: 0, bytesStored: 0 };
    this.sourceHash = sourceStore.streamHasher();
    this.targetHash = sameFingerprints ? undefined : targetStore.streamHasher();
  }

  async run(meta: SnapshotMeta, total: number, reader: SnapshotReader): Promise<CopiedSnapshot> {
    this.progress.bytesTotal = total;
    // A byte-hashed source can be checked only when every chunk is read anyway.
    this.byteHashed = meta.streamHashOver !== 'chunks';
    const checkBytes = this.byteHashed && !this.sameFingerprints;
    const pool = this.options.decodePool ?? DecodePool.shared();
    const rangeReader = openRangeReader(this.source.objects);
    const decoder = new BatchDecoder({
      snapshotKey: this.snapshot.key,
      index: this.sourceIndex,
      reader: rangeReader,
      reads: pLimit(this.source.objects.readConcurrency ?? DEFAULT_READ_CONCURRENCY),
      pool,
      keys: this.sourceStore.decodeKeys(),
      output: { kind: 'return' },
      onFetched: (n) => (this.progress.bytesFetched += n),
    });
    try {
      await mapConcurrent(
        reader.windows(0, total),
        WINDOWS_IN_FLIGHT,
        (window) => this.fetchWindow(window, decoder, checkBytes),
        (fetched, window) => this.writeWindow(window, fetched.blobs, checkBytes).finally(() => fetched.release()),
      );
      await this.writer.flush();
    } catch (err) {
      await this.writer.settle();
      await this.pages.settle();
      throw err;
    } finally {
      await rangeReader.close();
    }
    if (!this.byteHashed || checkBytes) {
      const actual = this.sourceHash.digest('hex');
      if (actual !== meta.streamHash) {
        throw new IntegrityError(
          this.snapshot.key,
          this.snapshot.key,
          undefined,
          `the source stream hashes to ${actual}, its manifest says ${meta.streamHash}`,
        );
      }
    }
    const { chunkCount: _c, logicalBytes: _l, streamHashOver: _o, ...kept } = meta;
    const origin: SnapshotOrigin = meta.origin ?? { repository: this.source.config.id, snapshot: this.snapshot.key };
    const copied = await this.pages.commit(
      {
        ...kept,
        store: this.targetStore.id,
        parent: this.options.parent,
        // Same fingerprints: the same chunk list and the same hash key, so the same hash.
        ...(this.targetHash
          ? { streamHash: this.targetHash.digest('hex'), streamHashOver: 'chunks' as const }
          : meta.streamHashOver
            ? { streamHashOver: meta.streamHashOver }
            : {}),
        origin,
      },
      { packs: () => this.referencedPacks() },
    );
    if (copied.meta.logicalBytes !== meta.logicalBytes || copied.meta.chunkCount !== meta.chunkCount) {
      throw new IntegrityError(
        this.snapshot.key,
        copied.key,
        undefined,
        `the copy holds ${copied.meta.logicalBytes} bytes in ${copied.meta.chunkCount} chunks, the source ${meta.logicalBytes} in ${meta.chunkCount}`,
      );
    }
    return { ...this.progress, source: this.snapshot, target: copied, store: this.targetStore.name, sameFingerprints: this.sameFingerprints };
  }

  /**
   * Reads and re-encodes the window's blobs the target needs. Runs for several windows at
   * once, so a blob two windows need may be encoded twice; the writer stores it once.
   */
  private async fetchWindow(window: Piece[], decoder: BatchDecoder, keepRaw: boolean): Promise<{ blobs: Map<string, FetchedBlob>; release: () => void }> {
    const wanted = new Map<string, Piece>();
    for (const piece of window) {
      if (piece.ref.zero) continue;
      if (this.sameFingerprints && this.writer.has(piece.ref.fingerprint)) continue;
      const key = hex(piece.ref.fingerprint);
      if (!wanted.has(key)) wanted.set(key, piece);
    }
    const blobs = new Map<string, FetchedBlob>();
    const buffers: ArrayBuffer[] = [];
    const release = () => {
      for (const b of buffers.splice(0)) decoder.recycleOutput(b);
    };
    if (wanted.size === 0) return { blobs, release };
    const pieces = [...wanted.values()];
    const settled = await Promise.allSettled(planReads(pieces).map((batch) => decoder.run(batch).then((out) => ({ batch, out: out! }))));
    const failed = settled.find((r) => r.status === 'rejected');
    if (failed) {
      for (const r of settled) if (r.status === 'fulfilled') decoder.recycleOutput(r.value.out.buffer);
      throw (failed as PromiseRejectedResult).reason;
    }
    try {
      const encodes: Promise<void>[] = [];
      for (const r of settled) {
        const { batch, out } = (r as PromiseFulfilledResult<{ batch: ReturnType<typeof planReads>[number]; out: { views: Uint8Array[]; buffer: ArrayBuffer } }>)
          .value;
        buffers.push(out.buffer);
        batch.pieces.forEach(({ piece }, i) => {
          const key = hex(piece.ref.fingerprint);
          if (blobs.has(key)) return;
          const raw = out.views[i];
          const targetFingerprint = this.sameFingerprints ? piece.ref.fingerprint : this.targetStore.fingerprinter.digest(raw);
          const entry: FetchedBlob = { targetFingerprint: Uint8Array.from(targetFingerprint), raw: keepRaw ? raw : undefined };
          blobs.set(key, entry);
          if (!this.sameFingerprints && this.writer.has(entry.targetFingerprint)) return;
          encodes.push(
            this.targetStore.codec.encode(raw, entry.targetFingerprint).then((blob) => {
              entry.blob = blob;
            }),
          );
        });
      }
      await Promise.all(encodes);
    } catch (err) {
      release();
      throw err;
    }
    // The encoded blobs are copies; the decoded bytes are needed later only for a byte hash.
    if (!keepRaw) release();
    return { blobs, release };
  }

  /** In stream order: the blobs into the target's packs, the refs into its pages, the hashes. */
  private async writeWindow(window: Piece[], blobs: Map<string, FetchedBlob>, checkBytes: boolean): Promise<void> {
    for (const piece of window) {
      const { ref } = piece;
      if (ref.zero) {
        this.pages.add(ref.length, true, ZERO_FINGERPRINT);
        if (!this.byteHashed) hashChunkRef(this.sourceHash, ref.length, ZERO_FINGERPRINT);
        else if (checkBytes) await forZeroBlocks(ref.length, (zeros) => this.sourceHash.update(zeros));
        if (this.targetHash) hashChunkRef(this.targetHash, ref.length, ZERO_FINGERPRINT);
      } else {
        const fetched = blobs.get(hex(ref.fingerprint));
        const targetFingerprint = fetched?.targetFingerprint ?? ref.fingerprint;
        if (fetched?.blob && (await this.writer.add(targetFingerprint, fetched.blob))) {
          this.progress.blobsWritten++;
          this.progress.bytesNew += ref.length;
          this.progress.bytesStored += fetched.blob.stored.length;
          fetched.blob = undefined; // written: a repeat in this window is a duplicate
        } else {
          const ordinal = this.targetIndex.packOf(targetFingerprint);
          if (ordinal !== undefined) this.reusedPacks.add(ordinal);
          else if (!this.writer.has(targetFingerprint)) {
            // Neither indexed nor being written: it was not fetched because a window in
            // flight was writing it, and that write failed (flush reports why).
            await this.writer.flush();
            throw new IntegrityError(this.snapshot.key, this.snapshot.key, piece.offset, `chunk ${hex(targetFingerprint)} did not reach the target`);
          }
        }
        this.pages.add(ref.length, false, targetFingerprint);
        if (!this.byteHashed) hashChunkRef(this.sourceHash, ref.length, ref.fingerprint);
        else if (checkBytes) this.sourceHash.update(fetched!.raw!);
        if (this.targetHash) hashChunkRef(this.targetHash, ref.length, targetFingerprint);
      }
      this.progress.bytesDone += ref.length;
    }
    this.options.onProgress?.(this.progress);
  }

  /** Every target pack the copy's blobs are in: those it reused and those it wrote (gc/commit-guard.ts). */
  private *referencedPacks(): Generator<Uint8Array> {
    for (const ordinal of this.reusedPacks) yield this.targetIndex.packHash(ordinal);
    yield* this.writer.writtenPacks;
  }
}
