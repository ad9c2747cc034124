/**
 * Chunking a stream on several cores with exactly the cut points of the sequential loop.
 *
 * The stream is split into segments of `segmentBytes` ("own" bytes) plus an overlap of
 * maxSize bytes copied from the next segment. Each segment goes to a worker that cuts and
 * fingerprints it as if a chunk started at the segment start.
 *
 * That guess is usually wrong for the first chunk or two, so the main thread reconciles:
 * it carries `truePos`, the end of the last chunk of the true chain. Entering a segment,
 * it cuts sequentially from `truePos` until it lands on a boundary the worker also found.
 * From there on both chains are identical, because a FastCDC (or fixed) cut depends only
 * on the bytes from the chunk start: same start, same bytes, same cut. The worker's
 * remaining chunks are taken as they are. Typically one or two chunks per segment are
 * re-cut and re-hashed on the main thread; everything else runs in the workers.
 *
 * If the chains never meet inside a segment, the sequential cut simply runs on through
 * it (into the overlap), so correctness never depends on convergence, only speed does.
 */
import type { Cutter } from '../cutter.js';
import { FINGERPRINT_BYTES, type ChunkHasher } from '../fingerprint.js';
import { MiB } from '../params.js';
import type { BufferSource } from '../buffers.js';
import { readPieces } from '../source.js';
import { type Chunk, type ChunkSource, isReadIntoSource } from '../types.js';
import type { SegmentResult } from './protocol.js';
import { processSegment } from './segment.js';
import type { SegmentWorkerPool } from './worker-pool.js';

export interface SegmentPipelineOptions {
  /** Own bytes per segment; rounded up to a multiple of maxSize. Default max(16 MiB, 4 x maxSize). */
  segmentBytes?: number;
  /** Segments in flight at once. Default 2 per worker + 1. */
  inFlight?: number;
}

interface Segment {
  base: number;
  data: Uint8Array;
  own: number;
  total: number;
}

/** Jobs a worker may have waiting before the main thread takes segments itself. */
const QUEUED_PER_WORKER = 2;

export function defaultSegmentBytes(maxSize: number): number {
  return Math.max(16 * MiB, 4 * maxSize);
}

/** The chunks of `chunkParallelBatches`, one at a time. */
export async function* chunkParallel(...args: Parameters<typeof chunkParallelBatches>): AsyncGenerator<Chunk> {
  for await (const batch of chunkParallelBatches(...args)) yield* batch;
}

/**
 * `chunkParallel` one segment's chunks at a time: an array per segment instead of an
 * async-generator step per chunk (a 512 MiB dump is ~27k chunks, and three nested
 * generator steps per chunk were a third of a backup's main-thread garbage). A batch's
 * chunk views stay valid until the next batch is asked for.
 */
export async function* chunkParallelBatches(
  source: ChunkSource,
  cutter: Cutter,
  hasher: ChunkHasher,
  pool: SegmentWorkerPool,
  buffers: BufferSource,
  options: SegmentPipelineOptions = {},
): AsyncGenerator<Chunk[]> {
  const max = cutter.maxSize;
  // A multiple of maxSize keeps fixed-size blocks aligned to segment starts, so for
  // fixed chunking every worker guess is already right.
  const own = Math.ceil((options.segmentBytes ?? defaultSegmentBytes(max)) / max) * max;
  const capacity = own + max;
  const inFlight = Math.max(1, options.inFlight ?? pool.size * 2 + 1);
  const queue: Array<{ segment: Segment; result: Promise<SegmentResult> }> = [];
  let truePos = 0;

  const newSegment = (base: number): Segment => ({
    base,
    data: buffers.take(capacity),
    own: 0,
    total: 0,
  });

  const dispatch = (segment: Segment): void => {
    const buffer = segment.data.buffer as ArrayBuffer;
    if (pool.minLoad >= QUEUED_PER_WORKER) {
      // Every worker has work queued: cut this segment here rather than wait. On a
      // 2-core machine the main thread would otherwise sit between two busy workers and
      // be descheduled while they starve for input.
      const local = processSegment(0, buffer, segment.own, segment.total, cutter, hasher);
      queue.push({ segment, result: Promise.resolve(local) });
      return;
    }
    const result = pool.run({ buffer, own: segment.own, total: segment.total });
    // Consumed in order below; mark handled now so an early failure is not "unhandled".
    result.catch(() => undefined);
    queue.push({ segment, result });
  };

  function* reconcile(segment: Segment, r: SegmentResult): Generator<Chunk> {
    const { base, total } = segment;
    const data = new Uint8Array(r.buffer); // ours again (the send detached segment.data)
    const { ends, fingerprints, zero } = r;
    const n = ends.length;
    let rel = truePos - base;
    let j = -1; // worker boundary index: -1 is the segment start (0), j >= 0 is ends[j]
    const boundary = (k: number): number => (k < 0 ? 0 : ends[k]);
    while (rel < segment.own) {
      while (j < n - 1 && boundary(j) < rel) j++;
      if (boundary(j) === rel) {
        // Chains met: the worker's chunks from here on are the true ones.
        for (let k = j + 1; k < n; k++) {
          const start = boundary(k - 1);
          yield {
            offset: base + start,
            length: ends[k] - start,
            bytes: data.subarray(start, ends[k]),
            fingerprint: fingerprints.subarray(k * FINGERPRINT_BYTES, (k + 1) * FINGERPRINT_BYTES),
            zero: zero[k] === 1,
          };
        }
        rel = n > 0 ? ends[n - 1] : rel;
        break;
      }
      const stop = cutter.cut(data, rel, total);
      const fingerprint = new Uint8Array(FINGERPRINT_BYTES);
      const bytes = data.subarray(rel, stop);
      const isZero = hasher.hashInto(bytes, fingerprint, 0);
      yield { offset: base + rel, length: stop - rel, bytes, fingerprint, zero: isZero };
      rel = stop;
    }
    truePos = base + rel;
  }

  async function* drain(keep: number): AsyncGenerator<Chunk[]> {
    while (queue.length > keep) {
      const { segment, result } = queue.shift()!;
      const r = await result;
      const batch: Chunk[] = [];
      for (const chunk of reconcile(segment, r)) batch.push(chunk);
      yield batch;
      // The consumer has asked for the batch after this segment's.
      buffers.give(new Uint8Array(r.buffer));
    }
  }

  let current = newSegment(0);
  /** The current segment is full: send it, start the next with its overlap. */
  async function* segmentFull(): AsyncGenerator<Chunk[]> {
    const next = newSegment(current.base + own);
    next.data.set(current.data.subarray(own, capacity));
    next.total = max;
    current.own = own;
    dispatch(current);
    current = next;
    yield* drain(inFlight - 1);
  }
  try {
    if (isReadIntoSource(source)) {
      // Straight into the segment: no read buffer to copy from.
      try {
        for (;;) {
          const n = await source.readInto(current.data, current.total, capacity - current.total);
          if (n === 0) break;
          current.total += n;
          if (current.total === capacity) yield* segmentFull();
        }
      } finally {
        await source.close();
      }
    } else {
      for await (const piece of readPieces(source)) {
        let p = 0;
        while (p < piece.length) {
          const n = Math.min(piece.length - p, capacity - current.total);
          current.data.set(piece.subarray(p, p + n), current.total);
          current.total += n;
          p += n;
          if (current.total === capacity) yield* segmentFull();
        }
      }
    }
    if (current.total > 0) {
      current.own = current.total; // end of stream: no overlap, chunk to the very end
      dispatch(current);
    }
    yield* drain(0);
  } finally {
    queue.length = 0;
  }
}
