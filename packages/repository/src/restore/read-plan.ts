/**
 * Which bytes of which packs a restore reads: the chunks of a stretch of the stream
 * (a window), grouped by pack, sorted, and merged into ranged reads.
 */
import type { ChunkRef } from '../snapshot/chunk-list.js';
import type { BlobLocation } from '../repo/store-index.js';

/** A chunk of the stream (or the part of it inside the requested range). */
export interface Piece {
  /** Logical offset of the chunk in the stream. */
  offset: number;
  ref: ChunkRef;
  /** Where its blob is; undefined for a zero chunk (never stored). */
  location?: BlobLocation;
  /** Part of the chunk inside the requested range. */
  from: number;
  to: number;
}

/** One ranged read of a pack and the blobs in it. */
export interface Batch {
  pack: number;
  start: number;
  end: number;
  /** The distinct blobs read (one piece standing for each). */
  blobs: Piece[];
  /** Every piece served by this read, with the index of its blob in `blobs`. */
  pieces: { piece: Piece; blob: number }[];
}

/** Blobs closer than this in one pack are fetched together (the gap is read and dropped). */
export const BATCH_GAP_BYTES = 256 * 1024;
/** Largest ranged read. */
export const BATCH_MAX_BYTES = 4 * 1024 * 1024;

/**
 * The reads for one window: its stored pieces grouped by pack, sorted by offset, and
 * merged into ranges (gaps up to BATCH_GAP_BYTES, ranges up to BATCH_MAX_BYTES). A
 * later snapshot interleaves blobs of many packs (unchanged chunks from old packs,
 * changed ones from new), so grouping by pack across the window, not just between
 * neighbours, is what keeps the number of reads small. A blob that several pieces of
 * the window refer to (repeated content) is read and decoded once.
 */
export function planReads(window: readonly Piece[]): Batch[] {
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
      const last = batch?.blobs[batch.blobs.length - 1];
      if (batch && last!.location!.offset === loc.offset) {
        batch.pieces.push({ piece, blob: batch.blobs.length - 1 });
      } else if (batch && loc.offset <= batch.end + BATCH_GAP_BYTES && Math.max(batch.end, blobEnd) - batch.start <= BATCH_MAX_BYTES) {
        batch.end = Math.max(batch.end, blobEnd);
        batch.blobs.push(piece);
        batch.pieces.push({ piece, blob: batch.blobs.length - 1 });
      } else {
        if (batch) batches.push(batch);
        batch = { pack, start: loc.offset, end: blobEnd, blobs: [piece], pieces: [{ piece, blob: 0 }] };
      }
    }
    if (batch) batches.push(batch);
  }
  return batches;
}
