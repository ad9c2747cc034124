/**
 * The physical floors of a restore on this machine, measured in the same run as the
 * restores: what one core decodes with lz4 and hashes with BLAKE3, and how fast the page
 * cache takes a file's writes. A restore of one stream cannot beat the page-cache write
 * rate, and on one core it cannot beat 1 / (1/lz4 + 1/BLAKE3 + 1/write).
 *
 * - lz4 decode: the generated file of a series cut into 64 KiB blocks (sampled evenly up
 *   to `sampleBytes`; all-zero blocks left out, as hoard never stores them), each
 *   compressed with lz4-napi `compressSync` beforehand, then `uncompressSync` on every
 *   block that got smaller (the others are stored raw), timed; raw MB/s, one warm-up pass
 *   then the best of 5 passes of at least 128 MiB each. The lz4-napi loaded is the one
 *   `@hoard/repository` uses.
 * - BLAKE3: `@napi-rs/blake-hash` over the same raw 64 KiB blocks, 1 core, timed the same way.
 * - page-cache write: 1 GiB written to a new file in the work directory with 4 MiB
 *   writes, no fsync, timed from open to close; then the file is deleted.
 */
import { createRequire } from 'node:module';
import { closeSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { randomFillSync } from 'node:crypto';
import { join } from 'node:path';
import { blake3 } from '@napi-rs/blake-hash';
import { REPO_ROOT } from './peers.js';

const MiB = 1 << 20;
const GiB = 1 << 30;
export const FLOOR_BLOCK = 64 * 1024;
const ZERO_BLOCK = Buffer.alloc(FLOOR_BLOCK);

interface Lz4 {
  compressSync(data: Buffer): Buffer;
  uncompressSync(data: Buffer): Buffer;
}

let lz4: Lz4 | undefined;
/** lz4-napi as @hoard/repository resolves it (same version as restores use). */
function loadLz4(): Lz4 {
  lz4 ??= createRequire(join(REPO_ROOT, 'packages/repository/package.json'))('lz4-napi') as Lz4;
  return lz4;
}

export interface SeriesFloors {
  /** Raw bytes of the sampled non-zero blocks. */
  sample_bytes: number;
  /** Share of them lz4 made smaller (decoded in the lz4 figure). */
  compressed_share: number;
  lz4_decode_mb_s: number;
  blake3_mb_s: number;
}

export interface Floors {
  /** Slowest series. */
  lz4_decode_mb_s: number | null;
  blake3_mb_s: number | null;
  page_cache_write_mb_s: number | null;
  block_bytes: number;
  page_cache_write_bytes: number;
  by_series: Record<string, SeriesFloors>;
}

const mbps = (bytes: number, s: number) => Number((bytes / s / 1e6).toFixed(1));

/** Each timed pass covers at least this many bytes (a small sample is gone over again). */
const MIN_PASS_BYTES = 128 * MiB;

/**
 * Bytes per second of `fn` over `items` (`bytesEach` each): one untimed warm-up pass (first
 * touches of fresh output memory are slow on this VM), then the best of 5 timed passes,
 * each going over the items as often as needed to cover MIN_PASS_BYTES.
 */
function bestRate<T>(items: T[], bytesEach: number, fn: (item: T) => void): number {
  if (items.length === 0) return 0;
  const rounds = Math.max(1, Math.ceil(MIN_PASS_BYTES / (items.length * bytesEach)));
  for (const item of items) fn(item);
  let best = Infinity;
  for (let i = 0; i < 5; i++) {
    const t0 = process.hrtime.bigint();
    for (let r = 0; r < rounds; r++) for (const item of items) fn(item);
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return Number(((rounds * items.length * bytesEach) / best / 1e6).toFixed(1));
}

/** Every `stride`-th 64 KiB block of `path` that is not all zeros, until `sampleBytes`. */
async function sampleBlocks(path: string, sampleBytes: number): Promise<Buffer[]> {
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    const total = Math.floor(size / FLOOR_BLOCK);
    const stride = Math.max(1, Math.floor(total / Math.max(1, Math.floor(sampleBytes / FLOOR_BLOCK))));
    const out: Buffer[] = [];
    let bytes = 0;
    for (let i = 0; i < total && bytes < sampleBytes; i += stride) {
      const b = Buffer.allocUnsafe(FLOOR_BLOCK);
      const { bytesRead } = await fh.read(b, 0, FLOOR_BLOCK, i * FLOOR_BLOCK);
      if (bytesRead < FLOOR_BLOCK || b.equals(ZERO_BLOCK)) continue;
      out.push(b);
      bytes += FLOOR_BLOCK;
    }
    return out;
  } finally {
    await fh.close();
  }
}

/** lz4 decode and BLAKE3 rates on the blocks of one series' file. */
export async function measureSeriesFloors(path: string, sampleBytes: number): Promise<SeriesFloors> {
  const { compressSync, uncompressSync } = loadLz4();
  const raw = await sampleBlocks(path, sampleBytes);
  const packed = raw.map((b) => compressSync(b)).filter((p) => p.length < FLOOR_BLOCK);
  return {
    sample_bytes: raw.length * FLOOR_BLOCK,
    compressed_share: raw.length === 0 ? 0 : Number((packed.length / raw.length).toFixed(3)),
    lz4_decode_mb_s: bestRate(packed, FLOOR_BLOCK, (p) => uncompressSync(p)),
    blake3_mb_s: bestRate(raw, FLOOR_BLOCK, (b) => blake3(b)),
  };
}

/** Writes `bytes` to a new file in `dir` in 4 MiB writes (no fsync), timed to close; deletes it. */
export function measurePageCacheWrite(dir: string, bytes = GiB): number {
  const path = join(dir, 'page-cache-floor.bin');
  const buf = randomFillSync(Buffer.allocUnsafe(4 * MiB));
  const t0 = process.hrtime.bigint();
  const fd = openSync(path, 'w');
  try {
    for (let done = 0; done < bytes; done += buf.length) writeSync(fd, buf, 0, Math.min(buf.length, bytes - done));
  } finally {
    closeSync(fd);
  }
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  unlinkSync(path);
  return mbps(bytes, s);
}

/** Puts the per-series figures and the page-cache figure together (slowest series first). */
export function combineFloors(bySeries: Record<string, SeriesFloors>, pageCacheWriteMbS: number | null, pageCacheBytes = GiB): Floors {
  const values = Object.values(bySeries);
  const min = (k: 'lz4_decode_mb_s' | 'blake3_mb_s') => (values.length === 0 ? null : Math.min(...values.map((v) => v[k])));
  return {
    lz4_decode_mb_s: min('lz4_decode_mb_s'),
    blake3_mb_s: min('blake3_mb_s'),
    page_cache_write_mb_s: pageCacheWriteMbS,
    block_bytes: FLOOR_BLOCK,
    page_cache_write_bytes: pageCacheBytes,
    by_series: bySeries,
  };
}
