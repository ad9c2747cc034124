/**
 * `pnpm bench chunker`: chunker throughput, hash throughput, fingerprint index figures, and
 * dedup ratios on the generated VM-image and database-dump series.
 *
 * Throughput runs on an in-memory random buffer so the generators' own speed is not
 * measured; dedup runs stream the generated series through the real Chunker.
 */
import { createHash, randomFillSync } from 'node:crypto';
import { blake3 } from '@napi-rs/blake-hash';
import { dumpSeries, vmImageSeries, type DataSeries } from '@hoard/bench-data';
import { Chunker, FingerprintIndex, createCutter, findCutPoints, defaultWorkerCount, type ChunkerSpec } from '@hoard/chunker';
import { runIndexBench } from './index-bench.js';
import { fmt, renderTable } from './table.js';
import { tee } from './tee.js';

const MiB = 1 << 20;
const GiB = 1 << 30;

export interface ChunkerBenchOptions {
  /** Bytes of random data for throughput runs. */
  throughputBytes: number;
  vmImageBytes: number;
  dumpBytes: number;
  days: number;
  indexEntries: number;
  seed: number;
  log: (line: string) => void;
}

export const fullRun: Omit<ChunkerBenchOptions, 'log'> = {
  throughputBytes: 1 * GiB,
  vmImageBytes: 2 * GiB,
  dumpBytes: 1 * GiB,
  days: 5,
  indexEntries: 10_000_000,
  seed: 1,
};

export const quickRun: Omit<ChunkerBenchOptions, 'log'> = {
  throughputBytes: 256 * MiB,
  vmImageBytes: 256 * MiB,
  dumpBytes: 128 * MiB,
  days: 3,
  indexEntries: 1_000_000,
  seed: 1,
};

export const dedupConfigs: Array<{ name: string; spec: ChunkerSpec }> = [
  { name: 'fastcdc-16k', spec: { kind: 'fastcdc', avgSize: 16 * 1024 } },
  { name: 'fastcdc-64k', spec: { kind: 'fastcdc', avgSize: 64 * 1024 } },
  { name: 'fastcdc-256k', spec: { kind: 'fastcdc', avgSize: 256 * 1024 } },
  { name: 'fastcdc-1m', spec: { kind: 'fastcdc', avgSize: 1 * MiB } },
  { name: 'fastcdc-4m', spec: { kind: 'fastcdc', avgSize: 4 * MiB } },
  { name: 'fixed-4m', spec: { kind: 'fixed', size: 4 * MiB } },
];

/** Best of `runs` timings, in MB/s (10^6 bytes per second, as disk and network figures are). */
function bestRate(bytes: number, runs: number, fn: () => void): number {
  let best = Infinity;
  for (let r = 0; r < runs; r++) {
    const t = process.hrtime.bigint();
    fn();
    best = Math.min(best, Number(process.hrtime.bigint() - t) / 1e9);
  }
  return bytes / best / 1e6;
}

async function bestRateAsync(bytes: number, runs: number, fn: () => Promise<void>): Promise<number> {
  let best = Infinity;
  for (let r = 0; r < runs; r++) {
    const t = process.hrtime.bigint();
    await fn();
    best = Math.min(best, Number(process.hrtime.bigint() - t) / 1e9);
  }
  return bytes / best / 1e6;
}

function hashRate(data: Uint8Array, piece: number, hash: (b: Uint8Array) => unknown): number {
  return bestRate(data.length, 3, () => {
    for (let i = 0; i < data.length; i += piece) hash(data.subarray(i, i + piece));
  });
}

async function* pieces(data: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, Math.min(data.length, i + size));
}

/**
 * The stream -> fingerprinted chunks pipeline. `reuseBuffers` is how the backup path runs
 * it (each chunk is compressed/copied before the next is taken); `stable` is the
 * library default, where chunk views stay valid indefinitely.
 */
async function pipelineRate(data: Uint8Array, spec: ChunkerSpec, workers: number, mode: 'reuse' | 'stable' = 'reuse'): Promise<number> {
  const chunker = new Chunker({ chunker: spec, workers, reuseBuffers: mode === 'reuse' });
  try {
    return await bestRateAsync(data.length, 3, async () => {
      let n = 0;
      for await (const c of chunker.chunk(pieces(data, 4 * MiB))) n += c.length;
      if (n !== data.length) throw new Error(`pipeline lost bytes: ${n} of ${data.length}`);
    });
  } finally {
    await chunker.close();
  }
}

export interface DedupFigures {
  logical_bytes: number;
  stored_bytes: number;
  dedup_ratio: number;
  chunks: number;
  mean_chunk_bytes: number;
  /** Mean bytes that were new per day after the first: what an incremental run uploads. */
  new_bytes_per_day: number;
}

/** Chunks every day of a series with every config at once (one generator pass per day). */
async function dedupSeries(series: DataSeries, log: (l: string) => void): Promise<Record<string, DedupFigures>> {
  const state = dedupConfigs.map(({ name, spec }) => ({
    name,
    chunker: new Chunker({ chunker: spec, workers: 1, reuseBuffers: true }),
    index: new FingerprintIndex({ valueWords: 1 }),
    logical: 0,
    stored: 0,
    chunks: 0,
    newAfterFirst: 0,
  }));
  const location = new Uint32Array(1);
  for (let day = 0; day < series.days; day++) {
    const started = Date.now();
    const streams = tee(series.day(day, 4 * MiB), state.length);
    await Promise.all(
      state.map(async (s, i) => {
        for await (const c of s.chunker.chunk(streams[i])) {
          s.logical += c.length;
          s.chunks++;
          if (c.zero) continue; // sparse: never stored
          if (s.index.add(c.fingerprint, location)) {
            s.stored += c.length;
            if (day > 0) s.newAfterFirst += c.length;
          }
        }
      }),
    );
    log(
      `  ${series.name} day ${day}: ${(series.dayBytes(day) / MiB).toFixed(0)} MiB chunked ${state.length} ways in ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
  }
  await Promise.all(state.map((s) => s.chunker.close()));
  return Object.fromEntries(
    state.map((s) => [
      s.name,
      {
        logical_bytes: s.logical,
        stored_bytes: s.stored,
        dedup_ratio: s.logical / Math.max(1, s.stored),
        chunks: s.chunks,
        mean_chunk_bytes: Math.round(s.logical / Math.max(1, s.chunks)),
        new_bytes_per_day: Math.round(s.newAfterFirst / Math.max(1, series.days - 1)),
      },
    ]),
  );
}

export async function runChunkerBench(o: ChunkerBenchOptions): Promise<Record<string, unknown>> {
  const data = new Uint8Array(o.throughputBytes);
  for (let i = 0; i < data.length; i += 65536) randomFillSync(data, i, Math.min(65536, data.length - i));
  const avg1m: ChunkerSpec = { kind: 'fastcdc', avgSize: MiB };
  const workers = defaultWorkerCount();

  o.log(`throughput on ${(o.throughputBytes / MiB).toFixed(0)} MiB of random data ...`);
  const cut = (spec: ChunkerSpec, engine: 'wasm' | 'js' = 'wasm') => {
    const cutter = createCutter(spec, engine);
    return bestRate(data.length, 3, () => void findCutPoints(data, cutter));
  };
  const r: Record<string, number> = {
    cdc_mb_s: cut({ ...avg1m, variant: '2016' }),
    cdc2020_mb_s: cut({ ...avg1m, variant: '2020' }),
    cdc_64k_mb_s: cut({ kind: 'fastcdc', avgSize: 65536, variant: '2016' }),
    cdc2020_64k_mb_s: cut({ kind: 'fastcdc', avgSize: 65536, variant: '2020' }),
    cdc_js_mb_s: cut({ ...avg1m, variant: '2016' }, 'js'),
    cdc2020_js_mb_s: cut({ ...avg1m, variant: '2020' }, 'js'),
    blake3_mb_s: hashRate(data, MiB, blake3),
    blake3_64k_mb_s: hashRate(data, 65536, blake3),
    sha256_mb_s: hashRate(data, MiB, (b) => createHash('sha256').update(b).digest()),
    sha256_64k_mb_s: hashRate(data, 65536, (b) => createHash('sha256').update(b).digest()),
  };
  o.log('full pipeline (stream -> chunks with fingerprints) ...');
  r.cdc_blake3_mb_s = await pipelineRate(data, avg1m, workers);
  r.cdc_blake3_stable_mb_s = await pipelineRate(data, avg1m, workers, 'stable');
  r.cdc_blake3_0w_mb_s = await pipelineRate(data, avg1m, 0);
  r.cdc_blake3_2w_mb_s = await pipelineRate(data, avg1m, 2);
  r.cdc_blake3_64k_mb_s = await pipelineRate(data, { kind: 'fastcdc', avgSize: 65536 }, workers);
  r.fixed_mb_s = await pipelineRate(data, { kind: 'fixed', size: 4 * MiB }, workers);
  r.fixed_0w_mb_s = await pipelineRate(data, { kind: 'fixed', size: 4 * MiB }, 0);

  o.log(`fingerprint index at ${o.indexEntries.toLocaleString('en-US')} entries ...`);
  const index = await runIndexBench({ entries: o.indexEntries });

  o.log('dedup on the generated series ...');
  const vm = await dedupSeries(vmImageSeries({ seed: o.seed, imageBytes: o.vmImageBytes, days: o.days }), o.log);
  const dump = await dedupSeries(dumpSeries({ seed: o.seed, approxBytes: o.dumpBytes, days: o.days }), o.log);

  return {
    ...Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Math.round(v)])),
    workers,
    ...index,
    index_entries: o.indexEntries,
    dedup: { vm_image: vm, db_dump: dump },
    dedup_ratio: {
      vm_image: Object.fromEntries(Object.entries(vm).map(([k, v]) => [k, Number(v.dedup_ratio.toFixed(3))])),
      db_dump: Object.fromEntries(Object.entries(dump).map(([k, v]) => [k, Number(v.dedup_ratio.toFixed(3))])),
    },
    series: {
      vm_image_bytes_per_day: o.vmImageBytes,
      db_dump_bytes_day0: o.dumpBytes,
      days: o.days,
      seed: o.seed,
      throughput_bytes: o.throughputBytes,
    },
  };
}

export function renderChunkerReport(res: Record<string, unknown>): string {
  const n = (k: string) => res[k] as number;
  const throughput = renderTable(
    ['measure', 'MB/s', 'what'],
    [
      ['cdc_mb_s', fmt.mbps(n('cdc_mb_s')), 'FastCDC 2016, cut points only, avg 1 MiB, 1 core (wasm)'],
      ['cdc2020_mb_s', fmt.mbps(n('cdc2020_mb_s')), 'FastCDC 2020 (two bytes per step), same'],
      ['cdc_64k_mb_s', fmt.mbps(n('cdc_64k_mb_s')), 'FastCDC 2016, avg 64 KiB'],
      ['cdc2020_64k_mb_s', fmt.mbps(n('cdc2020_64k_mb_s')), 'FastCDC 2020, avg 64 KiB'],
      ['cdc_js_mb_s', fmt.mbps(n('cdc_js_mb_s')), 'FastCDC 2016 in plain JS (reference engine)'],
      ['cdc2020_js_mb_s', fmt.mbps(n('cdc2020_js_mb_s')), 'FastCDC 2020 in plain JS'],
      ['blake3_mb_s', fmt.mbps(n('blake3_mb_s')), 'BLAKE3-256, 1 MiB pieces, 1 core'],
      ['blake3_64k_mb_s', fmt.mbps(n('blake3_64k_mb_s')), 'BLAKE3-256, 64 KiB pieces'],
      ['sha256_mb_s', fmt.mbps(n('sha256_mb_s')), 'node:crypto SHA-256, 1 MiB pieces'],
      ['sha256_64k_mb_s', fmt.mbps(n('sha256_64k_mb_s')), 'node:crypto SHA-256, 64 KiB pieces'],
      ['cdc_blake3_mb_s', fmt.mbps(n('cdc_blake3_mb_s')), `stream -> FastCDC 1 MiB + BLAKE3, ${n('workers')} worker(s) + main (default), reuseBuffers`],
      ['cdc_blake3_stable_mb_s', fmt.mbps(n('cdc_blake3_stable_mb_s')), 'same, fresh buffers (library default: chunk views stay valid)'],
      ['cdc_blake3_0w_mb_s', fmt.mbps(n('cdc_blake3_0w_mb_s')), 'same as cdc_blake3_mb_s, in-thread (0 workers)'],
      ['cdc_blake3_2w_mb_s', fmt.mbps(n('cdc_blake3_2w_mb_s')), 'same, 2 workers + main'],
      ['cdc_blake3_64k_mb_s', fmt.mbps(n('cdc_blake3_64k_mb_s')), 'same pipeline, avg 64 KiB, default workers, reuseBuffers'],
      ['fixed_mb_s', fmt.mbps(n('fixed_mb_s')), 'stream -> fixed 4 MiB + BLAKE3, default workers, reuseBuffers'],
      ['fixed_0w_mb_s', fmt.mbps(n('fixed_0w_mb_s')), 'same, in-thread'],
    ],
  );
  const index = renderTable(
    ['index measure', 'value'],
    [
      ['index_entries', fmt.int(n('index_entries'))],
      ['index_bytes_per_entry', n('index_bytes_per_entry').toFixed(1)],
      ['index_lookups_per_s', fmt.int(n('index_lookups_per_s'))],
      ['index_inserts_per_s', fmt.int(n('index_inserts_per_s'))],
      ['index_max_insert_pause_ms', n('index_max_insert_pause_ms').toFixed(1)],
    ],
  );
  const dedup = res.dedup as Record<string, Record<string, DedupFigures>>;
  const rows: Array<Array<string | number>> = [];
  for (const [series, configs] of Object.entries(dedup)) {
    for (const [name, f] of Object.entries(configs)) {
      rows.push([
        `${series} ${name}`,
        fmt.ratio(f.dedup_ratio),
        (f.logical_bytes / MiB).toFixed(0),
        (f.stored_bytes / MiB).toFixed(0),
        (f.new_bytes_per_day / MiB).toFixed(1),
        fmt.int(f.chunks),
        (f.mean_chunk_bytes / 1024).toFixed(0),
      ]);
    }
  }
  const dedupTable = renderTable(['series / chunker', 'dedup', 'logical MiB', 'stored MiB', 'new MiB/day', 'chunks', 'mean KiB'], rows);
  return [throughput, '', index, '', dedupTable].join('\n');
}
