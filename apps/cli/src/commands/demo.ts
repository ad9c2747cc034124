/**
 * `hoard demo`: what hoard does, on data it makes itself. Generates a small series of
 * VM-image-like days and database dumps, chunks each day, and prints how much of each
 * day was new, the way a backup run would report it.
 */
import { demoSeries, type DataSeries } from '@hoard/bench-data';
import { Chunker, FingerprintIndex, chunkingFor, type ChunkerSpec } from '@hoard/chunker';

const MiB = 1 << 20;

export interface DemoDay {
  series: string;
  chunker: string;
  day: number;
  logical_bytes: number;
  chunks: number;
  zero_bytes: number;
  new_bytes: number;
  cumulative_stored_bytes: number;
  cumulative_dedup_ratio: number;
  seconds: number;
}

function describe(spec: ChunkerSpec): string {
  return spec.kind === 'fixed' ? `fixed ${spec.size / MiB} MiB` : `FastCDC avg ${spec.avgSize / 1024} KiB`;
}

async function runSeries(series: DataSeries, spec: ChunkerSpec, onDay: (d: DemoDay) => void): Promise<DemoDay[]> {
  const chunker = new Chunker({ chunker: spec });
  const index = new FingerprintIndex({ valueWords: 1 });
  const location = new Uint32Array(1);
  const days: DemoDay[] = [];
  let logicalTotal = 0;
  let stored = 0;
  try {
    for (let day = 0; day < series.days; day++) {
      const started = performance.now();
      const d = { logical: 0, chunks: 0, zero: 0, fresh: 0 };
      for await (const c of chunker.chunk(series.day(day))) {
        d.logical += c.length;
        d.chunks++;
        if (c.zero) d.zero += c.length;
        else if (index.add(c.fingerprint, location)) d.fresh += c.length;
      }
      logicalTotal += d.logical;
      stored += d.fresh;
      const row: DemoDay = {
        series: series.name,
        chunker: describe(spec),
        day,
        logical_bytes: d.logical,
        chunks: d.chunks,
        zero_bytes: d.zero,
        new_bytes: d.fresh,
        cumulative_stored_bytes: stored,
        cumulative_dedup_ratio: logicalTotal / Math.max(1, stored),
        seconds: (performance.now() - started) / 1000,
      };
      days.push(row);
      onDay(row);
    }
  } finally {
    await chunker.close();
  }
  return days;
}

export async function runDemo(options: { json: boolean; out: (s: string) => void }): Promise<void> {
  const { vm, dump } = demoSeries();
  const plan: Array<[DataSeries, ChunkerSpec]> = [
    [vm, chunkingFor('vm-image')],
    [vm, { kind: 'fixed', size: 4 * MiB }],
    [dump, chunkingFor('db-dump')],
    [dump, { kind: 'fixed', size: 4 * MiB }],
  ];
  const all: DemoDay[] = [];
  if (!options.json) {
    options.out('hoard demo: chunking a generated series of VM-image and database-dump "days" (nothing is stored yet)\n');
    options.out('series    chunker               day  size MiB  chunks  zero MiB  new MiB  dedup so far');
  }
  for (const [series, spec] of plan) {
    const rows = await runSeries(series, spec, (r) => {
      if (options.json) return;
      options.out(
        [
          r.series.padEnd(8),
          r.chunker.padEnd(20),
          String(r.day).padStart(4),
          (r.logical_bytes / MiB).toFixed(0).padStart(9),
          String(r.chunks).padStart(7),
          (r.zero_bytes / MiB).toFixed(1).padStart(9),
          (r.new_bytes / MiB).toFixed(1).padStart(8),
          `${r.cumulative_dedup_ratio.toFixed(2)}x`.padStart(13),
        ].join('  '),
      );
    });
    all.push(...rows);
  }
  if (options.json) {
    options.out(JSON.stringify({ days: all }, null, 2));
    return;
  }
  const last = (series: string, chunker: string) =>
    all.filter((r) => r.series === series && r.chunker === chunker).at(-1)!;
  const vmCdc = last(vm.name, describe(chunkingFor('vm-image')));
  const dumpCdc = last(dump.name, describe(chunkingFor('db-dump')));
  const dumpFixed = last(dump.name, 'fixed 4 MiB');
  options.out(
    `\n${vm.days} days of a ${(vm.dayBytes(0) / MiB).toFixed(0)} MiB disk image would store ` +
      `${(vmCdc.cumulative_stored_bytes / MiB).toFixed(0)} MiB (${vmCdc.cumulative_dedup_ratio.toFixed(2)}x).\n` +
      `${dump.days} dumps of ~${(dump.dayBytes(0) / MiB).toFixed(0)} MiB: content-defined chunking stores ` +
      `${(dumpCdc.cumulative_stored_bytes / MiB).toFixed(0)} MiB, fixed 4 MiB blocks ${(dumpFixed.cumulative_stored_bytes / MiB).toFixed(0)} MiB ` +
      `(rows shift between dumps, so fixed blocks stop matching).`,
  );
}
