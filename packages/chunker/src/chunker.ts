/**
 * The chunker's front door: turns a byte stream into fingerprinted chunks, in order.
 *
 *   const chunker = new Chunker({ chunker: { kind: 'fastcdc', avgSize: 1 << 20 } });
 *   for await (const chunk of chunker.chunk(fs.createReadStream(path))) { ... }
 *   await chunker.close();
 *
 * With workers (the default on machines with 2+ cores) segments are cut and hashed in
 * worker threads; the output is identical to the in-thread path either way.
 */
import { availableParallelism } from 'node:os';
import { BufferSource } from './buffers.js';
import { ChunkerParameterError } from './errors.js';
import { cutterFor, type Cutter } from './cutter.js';
import { ChunkHasher, createFingerprinter, type FingerprintSpec } from './fingerprint.js';
import { chunkParallel, chunkParallelBatches, type SegmentPipelineOptions } from './parallel/segment-pipeline.js';
import { SegmentWorkerPool } from './parallel/worker-pool.js';
import { resolveChunker, type ChunkerSpec } from './params.js';
import { chunkSequential } from './sequential.js';
import type { Chunk, ChunkSource } from './types.js';

export interface ChunkerOptions {
  chunker: ChunkerSpec;
  /** Default BLAKE3-256, unkeyed. */
  fingerprint?: FingerprintSpec;
  /**
   * Worker threads that cut and hash segments. 0 runs everything on the calling thread.
   * The calling thread cuts segments too whenever every worker is busy, so the default is
   * one less than the number of cores, at most 4 (0 on a single core).
   */
  workers?: number;
  /**
   * Reuse input buffers instead of allocating new ones. Faster (fresh memory costs page
   * faults: ~0.26 ns/byte here, a quarter of the in-thread cost), but then `chunk.bytes`
   * is valid only until the next chunk is requested: copy it, or finish with it (e.g.
   * compress it), before advancing the iterator. Default false: bytes stay valid.
   */
  reuseBuffers?: boolean;
  /** Segment size and queue depth for the worker path (tuning and tests). */
  pipeline?: SegmentPipelineOptions;
}

export function defaultWorkerCount(): number {
  const cores = availableParallelism();
  return cores < 2 ? 0 : Math.min(cores - 1, 4);
}

export class Chunker {
  readonly cutter: Cutter;
  readonly fingerprint: FingerprintSpec;
  readonly workers: number;
  private readonly hasher: ChunkHasher;
  private pool: SegmentWorkerPool | undefined;

  constructor(private readonly options: ChunkerOptions) {
    if (options === null || typeof options !== 'object') {
      throw new ChunkerParameterError('options', options, 'an object with a `chunker` spec');
    }
    this.cutter = cutterFor(resolveChunker(options.chunker));
    this.hasher = new ChunkHasher(createFingerprinter(options.fingerprint));
    this.fingerprint = this.hasher.fingerprinter.spec;
    const workers = options.workers ?? defaultWorkerCount();
    if (!Number.isInteger(workers) || workers < 0 || workers > 64) {
      throw new ChunkerParameterError('workers', workers, 'an integer from 0 (in-thread) to 64');
    }
    this.workers = workers;
  }

  /**
   * Starts the worker threads now instead of at the first stream: a worker takes tens of
   * milliseconds to start, which then overlaps what the caller does before it has a stream
   * (opening a repository). Idle workers do not keep the process alive; close() ends them.
   * The promise settles when they have started (at once without workers); a failed start
   * shows at the first stream.
   */
  start(): Promise<void> {
    if (this.workers === 0) return Promise.resolve();
    this.pool ??= new SegmentWorkerPool({ params: this.cutter.params, fingerprint: this.fingerprint }, this.workers);
    return this.pool.online;
  }

  /** Chunks one stream. May be called again (also concurrently); workers are shared. */
  chunk(source: ChunkSource): AsyncGenerator<Chunk> {
    const buffers = new BufferSource(this.options.reuseBuffers === true);
    if (this.workers === 0) return chunkSequential(source, this.cutter, this.hasher, buffers);
    void this.start();
    return chunkParallel(source, this.cutter, this.hasher, this.pool!, buffers, this.options.pipeline);
  }

  /**
   * `chunk`, a batch of chunks at a time (with workers, one segment's: a few dozen to a few
   * hundred chunks), for a consumer that handles every chunk: an async-generator step per
   * chunk costs a promise and an iterator result each. With `reuseBuffers`, a batch's
   * chunk bytes stay valid until the next batch is asked for. In-thread (0 workers) the
   * batches hold one chunk each.
   */
  async *chunkBatches(source: ChunkSource): AsyncGenerator<Chunk[]> {
    const buffers = new BufferSource(this.options.reuseBuffers === true);
    if (this.workers === 0) {
      for await (const chunk of chunkSequential(source, this.cutter, this.hasher, buffers)) yield [chunk];
      return;
    }
    void this.start();
    yield* chunkParallelBatches(source, this.cutter, this.hasher, this.pool!, buffers, this.options.pipeline);
  }

  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    await pool?.close();
  }
}

/** One-shot convenience: chunk a single stream and release the workers afterwards. */
export async function* chunkStream(source: ChunkSource, options: ChunkerOptions): AsyncGenerator<Chunk> {
  const chunker = new Chunker(options);
  try {
    yield* chunker.chunk(source);
  } finally {
    await chunker.close();
  }
}
