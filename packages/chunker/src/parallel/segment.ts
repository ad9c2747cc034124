/**
 * Cutting and fingerprinting one segment: the work unit of the parallel pipeline, run
 * by segment workers and, when they are all busy, by the main thread itself.
 */
import type { Cutter } from '../cutter.js';
import { FINGERPRINT_BYTES, type ChunkHasher } from '../fingerprint.js';
import type { SegmentResult } from './protocol.js';

/** Chunks `data[0, total)` from 0 while a chunk starts before `own` (see SegmentJob). */
export function processSegment(id: number, buffer: ArrayBuffer, own: number, total: number, cutter: Cutter, hasher: ChunkHasher): SegmentResult {
  const data = new Uint8Array(buffer, 0, total);
  const endList: number[] = [];
  cutter.cutAll(data, 0, own, total, endList);
  const ends = Uint32Array.from(endList);
  const fingerprints = new Uint8Array(ends.length * FINGERPRINT_BYTES);
  const zero = new Uint8Array(ends.length);
  let start = 0;
  for (let j = 0; j < ends.length; j++) {
    zero[j] = hasher.hashInto(data.subarray(start, ends[j]), fingerprints, j * FINGERPRINT_BYTES) ? 1 : 0;
    start = ends[j];
  }
  return { id, buffer, ends, fingerprints, zero };
}
