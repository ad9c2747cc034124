/** Messages between the main thread and segment workers. */
import type { FingerprintSpec } from '../fingerprint.js';
import type { ResolvedChunker } from '../params.js';

export interface SegmentWorkerConfig {
  params: ResolvedChunker;
  fingerprint: FingerprintSpec;
}

/**
 * Chunk the segment held in `buffer[0, total)`, starting a chunk at 0 and continuing while
 * a chunk starts before `own`. `total - own` is the overlap: the next segment's first
 * maxSize bytes, there so the chunk crossing `own` can be finished (or `total === own` at
 * the end of the stream).
 */
export interface SegmentJob {
  id: number;
  /**
   * Transferred to the worker and back with the result, not shared: a worker isolate
   * allocates little and so rarely collects garbage, and buffers it merely referenced
   * (SharedArrayBuffers) stayed alive there, growing memory with stream length.
   */
  buffer: ArrayBuffer;
  own: number;
  total: number;
}

export interface SegmentResult {
  id: number;
  /** The job's buffer, handed back. */
  buffer: ArrayBuffer;
  /** Chunk end offsets relative to the segment start, ascending; chunk j starts at ends[j-1] (or 0). */
  ends: Uint32Array;
  /** 32 bytes per chunk. */
  fingerprints: Uint8Array;
  /** 1 where the chunk is all zero. */
  zero: Uint8Array;
}

export type SegmentReply = SegmentResult | { id: number; error: string };
