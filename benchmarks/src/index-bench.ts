import { readFileSync } from 'node:fs';
import { randomFillSync } from 'node:crypto';
import { mix32 } from '@hoard/bench-data';
import { FingerprintIndex } from '@hoard/chunker';

/**
 * Fingerprint index micro-benchmark: memory per entry, insert rate, worst insert pause
 * and batched lookup rate, all at `entries` fingerprints (no capacity hint, so growth is
 * part of what is measured), and the machine's random-read floor measured in the same
 * run over a typed array of the index's size: the lookup rate is reported as a ratio to
 * it, because the absolute rate varies 2x between machines of the same kind. Method and
 * figures: docs/chunker-index.md, benchmarks/README.md ("Fingerprint index").
 */

export interface IndexBenchOptions {
  entries: number;
  /** Value words per entry: 3 is the media server's StoreIndex (pack, offset, length | codec); 2 the chunker's default. */
  valueWords?: number;
  /** Progress lines (the 50M-entry scale run takes minutes). */
  log?: (line: string) => void;
}

export interface IndexBenchResult {
  index_value_words: number;
  index_bytes_per_entry: number;
  index_lookups_per_s: number;
  index_inserts_per_s: number;
  index_max_insert_pause_ms: number;
  /** Independent random 4-byte reads per second from an array of the index's size: what overlapped cache misses allow. */
  random_read_floor_per_s: number;
  /** Dependent random reads per second (each address from the previous read): one miss at a time. */
  dependent_read_floor_per_s: number;
  /** index_lookups_per_s / random_read_floor_per_s: a lookup needs at least one random read, so at most ~1. */
  lookup_floor_ratio: number;
  /** Process RSS once the index is built (before the floor's array is allocated), and the index's own share. */
  rss_after_insert_bytes: number;
  rss_before_insert_bytes: number;
  index_memory_bytes: number;
}

const FP_BYTES = 32;
const KEY_BYTES = 16;
const LOOKUP_BATCH = 4096;
/** add() calls timed together: a single call is too short for the clock to resolve well. */
const PAUSE_GROUP = 8;
const MAX_LOOKUPS = 8_000_000;
/** Random reads per floor measurement: enough for a stable rate, a second or two at most. */
const FLOOR_READS = 16_000_000;
/**
 * Keys numbered from here on are never inserted: they are the absent half of a batch. Key
 * numbers stay below 2^30, so 4i + 3 fits 32 bits and keyNumbered() stays a bijection.
 */
const ABSENT_BASE = 2 ** 29;

export async function runIndexBench(opts: IndexBenchOptions): Promise<IndexBenchResult> {
  const entries = opts.entries;
  const valueWords = opts.valueWords ?? 2;
  const log = opts.log ?? (() => {});
  if (!Number.isSafeInteger(entries) || entries < LOOKUP_BATCH || entries >= ABSENT_BASE) {
    throw new RangeError(`entries must be an integer from ${LOOKUP_BATCH} to ${ABSENT_BASE - 1}, got ${entries}`);
  }
  const rssBefore = process.memoryUsage().rss;
  const index = new FingerprintIndex({ valueWords });
  const value = new Uint32Array(valueWords);
  const key = new Uint8Array(KEY_BYTES);
  const keyWords = new Uint32Array(key.buffer);

  // Wall time over the whole loop gives the rate; groups of PAUSE_GROUP calls bound the
  // worst single add() (a pause in one call dominates its group's time). Keys are
  // generated, not stored: 50M stored fingerprints would be 1.6 GB beside the index.
  let maxPause = 0;
  const start = performance.now();
  for (let i = 0; i < entries; ) {
    const groupEnd = Math.min(entries, i + PAUSE_GROUP);
    const t0 = performance.now();
    for (; i < groupEnd; i++) {
      keyNumbered(keyWords, 0, i);
      value[0] = i;
      index.add(key, value);
    }
    const pause = performance.now() - t0;
    if (pause > maxPause) maxPause = pause;
    if ((i & 0xfffff) === 0 && i > 0) log(`  ${i.toLocaleString('en-US')} entries, ${(index.memoryBytes / index.size).toFixed(2)} bytes each`);
  }
  const insertMs = performance.now() - start;
  if (index.size !== entries) throw new Error(`index holds ${index.size} entries, expected ${entries}`);
  const rssAfter = process.memoryUsage().rss;
  const memoryBytes = index.memoryBytes;

  log('  lookups ...');
  const lookupsPerS = measureLookups(index, entries);
  log('  random-read floor ...');
  const floor = measureFloor(memoryBytes);
  return {
    index_value_words: valueWords,
    index_bytes_per_entry: Number((memoryBytes / index.size).toFixed(2)),
    index_lookups_per_s: Math.round(lookupsPerS),
    index_inserts_per_s: Math.round((entries / insertMs) * 1000),
    index_max_insert_pause_ms: Number(maxPause.toFixed(3)),
    random_read_floor_per_s: Math.round(floor.independent),
    dependent_read_floor_per_s: Math.round(floor.dependent),
    lookup_floor_ratio: Number((lookupsPerS / floor.independent).toFixed(3)),
    rss_after_insert_bytes: rssAfter,
    rss_before_insert_bytes: rssBefore,
    index_memory_bytes: memoryBytes,
  };
}

/** Peak RSS of this process so far (VmHWM), or undefined off Linux. */
export function peakRss(): number | undefined {
  try {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Key number i as four well-mixed words at `words[o..o+3]` (uniform like BLAKE3 output).
 * Word 0 is mix32(4i), a bijection of i below 2^30, so distinct numbers are distinct keys
 * (and an absent key, numbered from ABSENT_BASE, never shares even word 0 with a present one).
 */
function keyNumbered(words: Uint32Array, o: number, i: number): void {
  words[o] = mix32(4 * i);
  words[o + 1] = mix32(4 * i + 1);
  words[o + 2] = mix32(4 * i + 2);
  words[o + 3] = mix32(4 * i + 3);
}

/**
 * lookupMany() over batches of LOOKUP_BATCH fingerprints (32-byte stride, as agents send
 * them), half present, half absent, in random order (so the CPU cannot predict hit or
 * miss). Only the calls are timed, not building the batches.
 */
function measureLookups(index: FingerprintIndex, entries: number): number {
  const batch = new Uint8Array(LOOKUP_BATCH * FP_BYTES);
  const batchWords = new Uint32Array(batch.buffer);
  const coin = new Uint8Array(LOOKUP_BATCH);
  const batches = Math.max(8, Math.floor(Math.min(MAX_LOOKUPS, 2 * entries) / LOOKUP_BATCH));
  const warmup = 4;
  let timed = 0;
  let lookups = 0;
  let absentNext = ABSENT_BASE;
  for (let b = 0; b < batches + warmup; b++) {
    randomFillSync(coin);
    let expectedMisses = 0;
    for (let j = 0; j < LOOKUP_BATCH; j++) {
      if (coin[j] & 1) {
        keyNumbered(batchWords, j * 8, Math.floor(Math.random() * entries));
      } else {
        keyNumbered(batchWords, j * 8, absentNext++);
        expectedMisses++;
      }
    }
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

/**
 * The machine's random-read floor over `bytes` of memory (the index's size): one pass of
 * independent 4-byte reads at random addresses, and one chain of dependent reads. The
 * array is written first: untouched pages would all map the kernel's one zero page.
 */
function measureFloor(bytes: number): { independent: number; dependent: number } {
  const words = Math.max(1024, Math.floor(bytes / 4));
  const a = new Int32Array(words);
  a.fill(1);
  const addresses = new Uint32Array(Math.min(FLOOR_READS, 1 << 22));
  let sink = 0;

  let independentMs = 0;
  for (let done = 0; done < FLOOR_READS; done += addresses.length) {
    for (let i = 0; i < addresses.length; i++) addresses[i] = Math.floor(Math.random() * words);
    const t0 = performance.now();
    for (let i = 0; i < addresses.length; i++) sink += a[addresses[i]];
    independentMs += performance.now() - t0;
  }

  // Each address depends on the previous read (a[j] is 1, but the CPU cannot know that).
  const chain = FLOOR_READS / 4;
  let j = 0;
  const t0 = performance.now();
  for (let i = 0; i < chain; i++) j = mix32(j + a[j] + i) % words;
  const dependentMs = performance.now() - t0;
  sink += j;
  if (sink === -1) throw new Error('unreachable');
  return { independent: (FLOOR_READS / independentMs) * 1000, dependent: (chain / dependentMs) * 1000 };
}
