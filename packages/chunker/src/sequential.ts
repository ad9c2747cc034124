/**
 * The in-thread chunking loop: the reference the parallel path must match byte for byte,
 * and the path used when there is one core or the caller asks for no workers.
 */
import type { Cutter } from './cutter.js';
import { FINGERPRINT_BYTES, type ChunkHasher } from './fingerprint.js';
import { readPieces } from './source.js';
import type { Chunk, ChunkSource } from './types.js';
import { MiB } from './params.js';
import type { BufferSource } from './buffers.js';

/**
 * Window size for a given max chunk size. At least 2x max so a refill always leaves room
 * for new data after the carried-over tail; at least 8 MiB so per-window overhead (one
 * allocation, one tail copy) stays small for small chunk sizes.
 */
export function windowBytes(maxSize: number): number {
  return Math.max(4 * maxSize, 8 * MiB);
}

export async function* chunkSequential(source: ChunkSource, cutter: Cutter, hasher: ChunkHasher, buffers: BufferSource): AsyncGenerator<Chunk> {
  const max = cutter.maxSize;
  const size = windowBytes(max);
  // A fresh window each time (never reused): chunks handed out are views into it.
  let win = buffers.take(size);
  let base = 0; // stream offset of win[0]
  let start = 0; // start of the first unchunked byte in win
  let end = 0; // end of buffered bytes in win

  const ends: number[] = [];
  function* cutReady(atEof: boolean): Generator<Chunk> {
    // Without the end of the stream, only chunks with maxSize bytes after their start
    // are decided.
    const limit = atEof ? end : end - max + 1;
    if (limit <= start) return;
    ends.length = 0;
    cutter.cutAll(win, start, limit, end, ends);
    for (const stop of ends) {
      const fingerprint = new Uint8Array(FINGERPRINT_BYTES);
      const bytes = win.subarray(start, stop);
      const zero = hasher.hashInto(bytes, fingerprint, 0);
      yield { offset: base + start, length: stop - start, bytes, fingerprint, zero };
      start = stop;
    }
  }

  for await (const piece of readPieces(source)) {
    let p = 0;
    while (p < piece.length) {
      if (end === size) {
        yield* cutReady(false);
        const next = buffers.take(size);
        next.set(win.subarray(start, end));
        // Every chunk in `win` has been yielded and the consumer asked for the next one.
        buffers.give(win);
        base += start;
        end -= start;
        start = 0;
        win = next;
      }
      const n = Math.min(piece.length - p, size - end);
      win.set(piece.subarray(p, p + n), end);
      end += n;
      p += n;
    }
  }
  yield* cutReady(true);
}
