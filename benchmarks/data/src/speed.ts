/**
 * Measures generation speed (one core: generators are single-threaded):
 *
 *   node benchmarks/data/dist/speed.js [vmGiB=2] [dumpMiB=1024] [days=8]
 *
 * Reports the first day separately because it includes JIT warm-up and the text pool;
 * benchmarks stream many days, so the later days are the steady-state figure.
 */
import { dumpSeries } from './sql-dump.js';
import type { DataSeries } from './series.js';
import { vmImageSeries } from './vm-image.js';

const MiB = 1 << 20;

async function drain(series: DataSeries, day: number): Promise<{ bytes: number; seconds: number }> {
  const t0 = process.hrtime.bigint();
  let bytes = 0;
  for await (const piece of series.day(day)) bytes += piece.length;
  return { bytes, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
}

async function report(series: DataSeries, days: number[]): Promise<void> {
  for (const d of days) {
    const { bytes, seconds } = await drain(series, d);
    console.log(
      `${series.name.padEnd(8)} day ${String(d).padStart(2)}: ${(bytes / MiB).toFixed(0).padStart(5)} MiB in ` +
        `${seconds.toFixed(2)} s = ${(bytes / seconds / 1e6).toFixed(0)} MB/s`,
    );
  }
}

async function main(): Promise<void> {
  const vmGiB = Number(process.argv[2] ?? 2);
  const dumpMiB = Number(process.argv[3] ?? 1024);
  const days = Number(process.argv[4] ?? 8);
  const last = days - 1;
  const t0 = Date.now();
  const vm = vmImageSeries({ seed: 1, imageBytes: vmGiB * 1024 * MiB, days });
  await report(vm, [0, 1, last]);
  const dump = dumpSeries({ seed: 1, approxBytes: dumpMiB * MiB, days });
  const t1 = Date.now();
  dump.dayBytes(last);
  console.log(`db-dump  dayBytes(${last}) cold: ${((Date.now() - t1) / 1000).toFixed(2)} s`);
  await report(dump, [0, 1, last]);
  console.log(`peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB, total ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

await main();
