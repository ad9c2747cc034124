import { randomFillSync } from 'node:crypto';
import { FingerprintIndex } from '@hoard/chunker';

/**
 * Fingerprint index micro-benchmark: memory per entry, insert rate, worst insert pause
 * and batched lookup rate, all at `entries` random fingerprints (no capacity hint, so
 * growth is part of what is measured). Method and figures: docs/chunker-index.md.
 */

export interface IndexBenchResult {
  index_bytes_per_entry: number;
  index_lookups_per_s: number;
  index_inserts_per_s: number;
  index_max_insert_pause_ms: number;
}

const FP_BYTES = 32;
const LOOKUP_BATCH = 4096;
/** add() calls timed together: a single call is too short for the clock to resolve well. */
const PAUSE_GROUP = 8;
const MAX_LOOKUPS = 8_000_000;

export async function runIndexBench(opts: { entries: number }): Promise<IndexBenchResult> {
  const entries = opts.entries;
  if (!Number.isSafeInteger(entries) || entries < LOOKUP_BATCH) {
    throw new RangeError(`entries must be an integer >= ${LOOKUP_BATCH}, got ${entries}`);
  }
  const fingerprints = randomFingerprints(entries);
  const index = new FingerprintIndex();
  const value = new Uint32Array(index.valueWords);

  // Wall time over the whole loop gives the rate; groups of PAUSE_GROUP calls bound the
  // worst single add() (a pause in one call dominates its group's time).
  let maxPause = 0;
  const start = performance.now();
  for (let i = 0; i < entries; ) {
    const groupEnd = Math.min(entries, i + PAUSE_GROUP);
    const t0 = performance.now();
    for (; i < groupEnd; i++) {
      value[0] = i;
      index.add(fingerprints, value, i * FP_BYTES);
    }
    const pause = performance.now() - t0;
    if (pause > maxPause) maxPause = pause;
  }
  const insertMs = performance.now() - start;
  if (index.size !== entries) throw new Error(`index holds ${index.size} entries, expected ${entries}`);

  const lookupsPerS = measureLookups(index, fingerprints, entries);
  const result: IndexBenchResult = {
    index_bytes_per_entry: Number((index.memoryBytes / index.size).toFixed(2)),
    index_lookups_per_s: Math.round(lookupsPerS),
    index_inserts_per_s: Math.round((entries / insertMs) * 1000),
    index_max_insert_pause_ms: Number(maxPause.toFixed(3)),
  };
  return result;
}

/**
 * lookupMany() over batches of LOOKUP_BATCH fingerprints, half present, half absent, in
 * random order (so the CPU cannot predict hit or miss). Only the calls are timed, not
 * building the batches.
 */
function measureLookups(index: FingerprintIndex, fingerprints: Uint8Array, entries: number): number {
  const batch = new Uint8Array(LOOKUP_BATCH * FP_BYTES);
  const batchWords = new Int32Array(batch.buffer);
  const fpWords = new Int32Array(fingerprints.buffer, fingerprints.byteOffset, fingerprints.length / 4);
  const present = new Uint8Array(LOOKUP_BATCH);
  const batches = Math.max(8, Math.floor(Math.min(MAX_LOOKUPS, 2 * entries) / LOOKUP_BATCH));
  const warmup = 4;
  let timed = 0;
  let lookups = 0;
  for (let b = 0; b < batches + warmup; b++) {
    randomFillSync(batch);
    randomFillSync(present);
    const expectedMisses = copyPresent(batchWords, fpWords, present, entries);
    const t0 = performance.now();
    const misses = index.lookupMany(batch);
    const dt = performance.now() - t0;
    if (misses.length !== expectedMisses) {
      throw new Error(`lookupMany reported ${misses.length} misses, expected ${expectedMisses}`);
    }
    if (b >= warmup) {
      timed += dt;
      lookups += LOOKUP_BATCH;
    }
  }
  return (lookups / timed) * 1000;
}

/** Overwrites the batch slots flagged in `present` with random inserted fingerprints; returns the rest's count. */
function copyPresent(batchWords: Int32Array, fpWords: Int32Array, present: Uint8Array, entries: number): number {
  let absent = 0;
  for (let j = 0; j < present.length; j++) {
    if ((present[j] & 1) === 0) {
      absent++;
      continue;
    }
    const src = Math.floor(Math.random() * entries) * 8;
    for (let w = 0; w < 8; w++) batchWords[j * 8 + w] = fpWords[src + w];
  }
  return absent;
}

/** `entries` random 32-byte fingerprints, back to back (BLAKE3 output is uniformly random too). */
function randomFingerprints(entries: number): Uint8Array {
  const bytes = new Uint8Array(entries * FP_BYTES);
  const step = 1 << 24;
  for (let o = 0; o < bytes.length; o += step) randomFillSync(bytes, o, Math.min(step, bytes.length - o));
  return bytes;
}
