/**
 * @hoard/bench-data: deterministic, streaming generators of the data hoard is benchmarked
 * and demoed on. See docs/bench-data.md for what each generator models and why.
 */
export type { DataSeries } from './series.js';
export { vmImageSeries } from './vm-image.js';
export type { VmImageSeriesOptions, VmImageSeries, VmRegion, VmContentKind } from './vm-image.js';
export { dumpSeries } from './sql-dump.js';
export type { DumpSeriesOptions, DumpSeries, DumpTableStats } from './sql-dump.js';
export { demoSeries } from './demo.js';
export { mix32 } from './prng.js';
