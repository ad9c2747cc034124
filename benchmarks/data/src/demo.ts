import { MiB } from './series.js';
import { dumpSeries, type DumpSeries } from './sql-dump.js';
import { vmImageSeries, type VmImageSeries } from './vm-image.js';

/**
 * Small series for `npm run demo`: big enough that chunking and dedup show their effect,
 * small enough to generate and back up in seconds. Fixed seeds so every run shows the same
 * numbers.
 */
export function demoSeries(): { vm: VmImageSeries; dump: DumpSeries } {
  return {
    vm: vmImageSeries({ seed: 0x484f4152, imageBytes: 64 * MiB, days: 4 }),
    dump: dumpSeries({ seed: 0x44554d50, approxBytes: 16 * MiB, days: 4 }),
  };
}
