/**
 * Writes packs straight into the object store as blobs arrive (ObjectStore.stageObject),
 * instead of collecting a whole pack in memory first (pack-writer.ts). The bytes and the
 * layout are the same; only where they wait differs.
 *
 * Blobs are copied into pieces of PIECE_BYTES, and each full piece is hashed and appended
 * to the staged object in order. The pack's name, the BLAKE3 of its bytes (invariant 2),
 * is hashed along the way, so sealing needs no pass over the pack. Memory is a few pieces
 * however large the pack: the one filling, at most MAX_QUEUED_PIECES being written (add()
 * callers wait in `drain` beyond that), and the free ones kept for reuse.
 */
import { Blake3Hasher } from '@napi-rs/blake-hash';
import { contentKeyFromHash } from '../content-key.js';
import type { StagedObject } from '../store/object-store.js';
import { encodeTrailer, type PackEntry } from './pack-format.js';
import { PackFill } from './pack-fill.js';

/** One write to the staged object: large enough that a pack is a few dozen writes. */
export const PIECE_BYTES = 1024 * 1024;
const MAX_QUEUED_PIECES = 2;

/** A sealed streamed pack: `stored` settles when it is durable under `key` (or failed, and then nothing of it is). */
export interface StreamedPack {
  key: string;
  entries: PackEntry[];
  /** Like putIfAbsent: true if this writer stored it, false if the key existed. */
  stored: Promise<boolean>;
}

/** The staged object of the open pack, and its appends in order (they never reject: the first failure is kept). */
interface Staging {
  object: StagedObject;
  writes: Promise<void>;
  failure?: { err: unknown };
}

export class PackStreamWriter extends PackFill {
  private hasher = new Blake3Hasher();
  private staging: Staging | undefined;
  private piece: Buffer | undefined;
  private pieceFill = 0;
  private readonly free: Buffer[] = [];
  /** Pieces handed to appends that have not finished (of any pack). */
  private queued = 0;
  /** The newest append (of any pack): drain() waits for it. */
  private lastWrite: Promise<void> = Promise.resolve();

  constructor(
    storeId: Uint8Array,
    targetBytes: number,
    private readonly stage: () => StagedObject,
  ) {
    super(storeId, targetBytes);
  }

  protected putBlobBytes(bytes: Uint8Array): void {
    this.write(bytes);
  }

  /** True while more than MAX_QUEUED_PIECES pieces wait to be written: the caller should wait for `drain()`. */
  get mustDrain(): boolean {
    return this.queued > MAX_QUEUED_PIECES;
  }

  /** Resolves once no more than MAX_QUEUED_PIECES pieces wait to be written (backpressure for add()). */
  async drain(): Promise<void> {
    while (this.queued > MAX_QUEUED_PIECES) await this.lastWrite;
  }

  /** Appends the trailer and commits the pack; the writer starts a new pack afterwards. */
  seal(): StreamedPack {
    this.write(encodeTrailer(this.storeId, this.entries, this.blobBytes));
    this.flushPiece();
    const key = contentKeyFromHash('packs', this.hasher.digestBuffer());
    const entries = this.takeEntries();
    const staging = this.staging!;
    this.staging = undefined;
    this.hasher = new Blake3Hasher();
    const stored = staging.writes.then(async () => {
      if (staging.failure) {
        await staging.object.abort();
        throw staging.failure.err;
      }
      return staging.object.commit(key);
    });
    return { key, entries, stored };
  }

  /** Drops the open pack (a failed or cancelled backup): its temp object is removed once its appends settle. */
  async discard(): Promise<void> {
    const staging = this.staging;
    this.staging = undefined;
    this.takeEntries();
    this.hasher = new Blake3Hasher();
    if (this.piece) this.free.push(this.piece);
    this.piece = undefined;
    this.pieceFill = 0;
    if (!staging) return;
    await staging.writes;
    await staging.object.abort();
  }

  private write(bytes: Uint8Array): void {
    for (let done = 0; done < bytes.length; ) {
      this.piece ??= this.free.pop() ?? Buffer.allocUnsafeSlow(PIECE_BYTES);
      const n = Math.min(bytes.length - done, PIECE_BYTES - this.pieceFill);
      // A blob that fits the piece whole (most do) needs no view made of it.
      this.piece.set(n === bytes.length ? bytes : bytes.subarray(done, done + n), this.pieceFill);
      this.pieceFill += n;
      done += n;
      if (this.pieceFill === PIECE_BYTES) this.flushPiece();
    }
  }

  private flushPiece(): void {
    const piece = this.piece;
    if (!piece || this.pieceFill === 0) return;
    const length = this.pieceFill;
    this.piece = undefined;
    this.pieceFill = 0;
    // Hashed a piece at a time, not a blob at a time: the same bytes in the same order,
    // but BLAKE3 over 1 MiB runs its SIMD lanes across many 1 KiB chunks at once, while a
    // few KiB per call (a compressed 16 KiB chunk) cost about 6x the CPU per byte.
    this.hasher.update(piece.subarray(0, length));
    const staging = (this.staging ??= { object: this.stage(), writes: Promise.resolve() });
    this.queued++;
    staging.writes = staging.writes.then(async () => {
      try {
        if (!staging.failure) await staging.object.append(piece.subarray(0, length));
      } catch (err) {
        staging.failure ??= { err };
      } finally {
        this.queued--;
        if (this.free.length <= MAX_QUEUED_PIECES) this.free.push(piece);
      }
    });
    this.lastWrite = staging.writes;
  }
}
