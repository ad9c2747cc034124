/**
 * The physical floors of a restore on this machine, measured in the same run as the
 * restores: what one core decodes with lz4 and hashes with BLAKE3, and how fast the page
 * cache takes a file's writes. A restore of one stream cannot beat the page-cache write
 * rate, and on one core it cannot beat 1 / (1/lz4 + 1/BLAKE3 + 1/write).
 *
 * And the floor of a first backup: every byte is cut (FastCDC), every non-zero byte hashed
 * (BLAKE3), every compressible one compressed (zstd at the level new repositories get); on
 * all cores at once, with nothing else (reading, packing, writing, starting) counted, a
 * first backup of B bytes cannot take less than
 * B x (1/cut + nonzero/BLAKE3 + nonzero x compressible/zstd) / cores; nor less than
 * what it stores divided by the durable write rate (1 GiB written and fsynced).
 *
 * - lz4 decode: the generated file of a series cut into 64 KiB blocks (sampled evenly up
 *   to `sampleBytes`; all-zero blocks left out, as hoard never stores them), each
 *   compressed with lz4-napi `compressSync` beforehand, then `uncompressSync` on every
 *   block that got smaller (the others are stored raw), timed; raw MB/s, one warm-up pass
 *   then the best of 5 passes of at least 128 MiB each. The lz4-napi loaded is the one
 *   `@hoard/repository` uses.
 * - BLAKE3: `@napi-rs/blake-hash` over the same raw 64 KiB blocks, 1 core, timed the same way.
 * - FastCDC: the cut points of the series' chunking preset (@hoard/chunker's WebAssembly
 *   cutter) over the same blocks, 1 core.
 * - zstd: zstd-napi (what @hoard/repository loads) at level 3 over the same blocks cut
 *   into pieces of the preset's average chunk size, counting only the blocks zstd makes
 *   smaller (`zstd_share` of them; hoard stores the others raw after a cheap probe).
 * - page-cache write: 1 GiB written to a new file in the work directory with 4 MiB
 *   writes, no fsync, timed from open to close; then the file is deleted.
 */
import { createRequire } from 'node:module';
import { closeSync, fsyncSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { randomFillSync } from 'node:crypto';
import { join } from 'node:path';
import { chunkingFor, createCutter, type SourceKind } from '@hoard/chunker';
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

interface ZstdBinding {
  CCtx: new () => { compress(out: Uint8Array, raw: Uint8Array, level: number): number };
  compressBound(n: number): number;
}
/** zstd-napi's binding as @hoard/repository resolves it. */
function loadZstd(): ZstdBinding {
  return createRequire(join(REPO_ROOT, 'packages/repository/package.json'))('zstd-napi/binding.js') as ZstdBinding;
}

/** The zstd level of new repositories (the floor is hoard's own setting). */
export const FLOOR_ZSTD_LEVEL = 3;

export interface SeriesFloors {
  /** Raw bytes of the sampled non-zero blocks. */
  sample_bytes: number;
  /** Share of them lz4 made smaller (decoded in the lz4 figure). */
  compressed_share: number;
  lz4_decode_mb_s: number;
  blake3_mb_s: number;
  /** FastCDC cut points of the series' preset, 1 core. */
  cdc_mb_s?: number;
  /** zstd level 3 in pieces of the preset's average chunk size, over the blocks it makes smaller, 1 core. */
  zstd_compress_mb_s?: number;
  /** Share of the non-zero blocks zstd makes smaller. */
  zstd_share?: number;
  /** Share of the sampled blocks that are not all zeros (hoard neither hashes nor stores zero chunks). */
  nonzero_share?: number;
  /** The preset's average chunk size. */
  chunk_bytes?: number;
}

export interface Floors {
  /** Slowest series. */
  lz4_decode_mb_s: number | null;
  blake3_mb_s: number | null;
  page_cache_write_mb_s: number | null;
  block_bytes: number;
  page_cache_write_bytes: number;
  /** 1 GiB in 4 MiB writes then fsync, MB/s to the end of the fsync (the same file as the page-cache figure). */
  durable_write_mb_s?: number | null;
  /** Cores the first-backup floor divides by. */
  cores?: number;
  by_series: Record<string, SeriesFloors>;
}

/**
 * The first-backup floor of a series, in seconds: the larger of cutting, hashing and
 * compressing `bytes` on all cores at once, and writing `storedBytes` (what the backup
 * stored) durably at the measured rate; nothing else. Null when the series has no cut or
 * zstd figure.
 */
export function firstBackupFloorSeconds(
  f: SeriesFloors,
  bytes: number,
  cores: number,
  stored?: { bytes: number; durableMbS: number | null | undefined },
): number | null {
  if (!f.cdc_mb_s || !f.zstd_compress_mb_s || !f.blake3_mb_s) return null;
  const nonzero = f.nonzero_share ?? 1;
  const perMb = 1 / f.cdc_mb_s + nonzero / f.blake3_mb_s + (nonzero * (f.zstd_share ?? 1)) / f.zstd_compress_mb_s;
  const cpu = ((bytes / 1e6) * perMb) / cores;
  const io = stored?.durableMbS ? stored.bytes / 1e6 / stored.durableMbS : 0;
  return Math.max(cpu, io);
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

/** Every `stride`-th 64 KiB block of `path` that is not all zeros, until `sampleBytes`; and how many were zeros. */
async function sampleBlocks(path: string, sampleBytes: number): Promise<{ blocks: Buffer[]; zeros: number }> {
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    const total = Math.floor(size / FLOOR_BLOCK);
    const stride = Math.max(1, Math.floor(total / Math.max(1, Math.floor(sampleBytes / FLOOR_BLOCK))));
    const blocks: Buffer[] = [];
    let zeros = 0;
    let bytes = 0;
    for (let i = 0; i < total && bytes < sampleBytes; i += stride) {
      const b = Buffer.allocUnsafe(FLOOR_BLOCK);
      const { bytesRead } = await fh.read(b, 0, FLOOR_BLOCK, i * FLOOR_BLOCK);
      if (bytesRead < FLOOR_BLOCK) continue;
      if (b.equals(ZERO_BLOCK)) {
        zeros++;
        continue;
      }
      blocks.push(b);
      bytes += FLOOR_BLOCK;
    }
    return { blocks, zeros };
  } finally {
    await fh.close();
  }
}

/** lz4 decode, BLAKE3, FastCDC and zstd rates on the blocks of one series' file (`chunking`: its preset). */
export async function measureSeriesFloors(path: string, sampleBytes: number, chunking?: SourceKind): Promise<SeriesFloors> {
  const { compressSync, uncompressSync } = loadLz4();
  const { blocks: raw, zeros } = await sampleBlocks(path, sampleBytes);
  const packed = raw.map((b) => compressSync(b)).filter((p) => p.length < FLOOR_BLOCK);
  const floors: SeriesFloors = {
    sample_bytes: raw.length * FLOOR_BLOCK,
    compressed_share: raw.length === 0 ? 0 : Number((packed.length / raw.length).toFixed(3)),
    lz4_decode_mb_s: bestRate(packed, FLOOR_BLOCK, (p) => uncompressSync(p)),
    blake3_mb_s: bestRate(raw, FLOOR_BLOCK, (b) => blake3(b)),
  };
  if (!chunking) return floors;
  floors.nonzero_share = Number((raw.length / Math.max(1, raw.length + zeros)).toFixed(3));
  const spec = chunkingFor(chunking);
  const cutter = createCutter(spec);
  // Cut as a stream is cut: over the blocks back to back (up to 64 MiB), not block by block,
  // which would skip a minimum chunk size at every block start.
  const stream = Buffer.concat(raw.slice(0, (64 * MiB) / FLOOR_BLOCK));
  const ends: number[] = [];
  floors.cdc_mb_s = bestRate([stream], stream.length, (b) => {
    ends.length = 0;
    cutter.cutAll(b, 0, b.length, b.length, ends);
  });
  const piece = spec.kind === 'fastcdc' ? spec.avgSize : FLOOR_BLOCK;
  const zstd = loadZstd();
  const cctx = new zstd.CCtx();
  const out = Buffer.allocUnsafe(zstd.compressBound(FLOOR_BLOCK));
  const compress = (b: Buffer): number => {
    let n = 0;
    for (let at = 0; at < b.length; at += piece) n += cctx.compress(out, b.subarray(at, at + piece), FLOOR_ZSTD_LEVEL);
    return n;
  };
  const compressible = raw.filter((b) => compress(b) < b.length);
  floors.zstd_share = raw.length === 0 ? 0 : Number((compressible.length / raw.length).toFixed(3));
  floors.zstd_compress_mb_s = bestRate(compressible, FLOOR_BLOCK, compress);
  floors.chunk_bytes = piece;
  return floors;
}

/**
 * Writes `bytes` to a new file in `dir` in 4 MiB writes, then fsyncs it; deletes it. The
 * page-cache rate is timed from open to the last write, the durable rate to the end of
 * the fsync (what a backup that makes its packs durable pays for every byte it stores).
 */
export function measureWrites(dir: string, bytes = GiB): { pageCacheMbS: number; durableMbS: number } {
  const path = join(dir, 'page-cache-floor.bin');
  const buf = randomFillSync(Buffer.allocUnsafe(4 * MiB));
  const t0 = process.hrtime.bigint();
  const fd = openSync(path, 'w');
  let written: bigint;
  try {
    for (let done = 0; done < bytes; done += buf.length) writeSync(fd, buf, 0, Math.min(buf.length, bytes - done));
    written = process.hrtime.bigint();
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  const synced = process.hrtime.bigint();
  unlinkSync(path);
  return { pageCacheMbS: mbps(bytes, Number(written - t0) / 1e9), durableMbS: mbps(bytes, Number(synced - t0) / 1e9) };
}

/** Puts the per-series figures and the page-cache figure together (slowest series first). */
export function combineFloors(
  bySeries: Record<string, SeriesFloors>,
  pageCacheWriteMbS: number | null,
  extra: { pageCacheBytes?: number; durableWriteMbS?: number | null; cores?: number } = {},
): Floors {
  const { pageCacheBytes = GiB, durableWriteMbS, cores } = extra;
  const values = Object.values(bySeries);
  const min = (k: 'lz4_decode_mb_s' | 'blake3_mb_s') => (values.length === 0 ? null : Math.min(...values.map((v) => v[k])));
  return {
    lz4_decode_mb_s: min('lz4_decode_mb_s'),
    blake3_mb_s: min('blake3_mb_s'),
    page_cache_write_mb_s: pageCacheWriteMbS,
    block_bytes: FLOOR_BLOCK,
    page_cache_write_bytes: pageCacheBytes,
    ...(durableWriteMbS === undefined ? {} : { durable_write_mb_s: durableWriteMbS }),
    ...(cores === undefined ? {} : { cores }),
    by_series: bySeries,
  };
}
