/**
 * A Cutter finds chunk boundaries.
 *
 * Contract: a chunk starting at `pos` is cut with the bytes [pos, end) available, where
 * `end - pos >= maxSize` unless `end` is the end of the stream. The cut then depends only
 * on the chunk's own bytes, never on where reads happened to split the input: that is
 * what makes cut points independent of read sizes and lets segments be cut in parallel.
 */
import { fastCdc2016, fastCdc2020 } from './fastcdc.js';
import { resolveChunker, type ChunkerSpec, type ResolvedChunker } from './params.js';
import { WasmFastCdc } from './wasm/wasm-fastcdc.js';

export interface Cutter {
  readonly params: ResolvedChunker;
  readonly minSize: number;
  readonly maxSize: number;
  /**
   * Cuts successive chunks starting at `start` for as long as a chunk starts before
   * `limit`, with data available up to `end` (see the contract above for every chunk
   * start before `limit`). Appends each chunk's exclusive end to `ends`; returns the last
   * end (or `start` if `limit <= start`).
   */
  cutAll(data: Uint8Array, start: number, limit: number, end: number, ends: number[]): number;
  /** The end of the one chunk that starts at `start`. */
  cut(data: Uint8Array, start: number, end: number): number;
}

/** `wasm` (default) for speed; `js` is the readable reference, used to test the kernels. */
export type CutterEngine = 'wasm' | 'js';

export function createCutter(spec: ChunkerSpec, engine: CutterEngine = 'wasm'): Cutter {
  return cutterFor(resolveChunker(spec), engine);
}

/** A cutter for parameters that were already validated (e.g. inside a worker). */
export function cutterFor(params: ResolvedChunker, engine: CutterEngine = 'wasm'): Cutter {
  let cutAll: Cutter['cutAll'];
  let cutOne: Cutter['cut'] | undefined;
  if (params.kind === 'fixed') {
    const size = params.size;
    // Chunks start at multiples of `size` (every chunk but the last is full), so blocks
    // line up with what the block layer and qcow2 clusters see.
    cutAll = (_data, start, limit, end, ends) => {
      let pos = start;
      while (pos < limit) {
        pos = end - pos > size ? pos + size : end;
        ends.push(pos);
      }
      return pos;
    };
  } else if (engine === 'wasm') {
    const kernel = new WasmFastCdc(params);
    cutAll = (data, start, limit, end, ends) => kernel.cutAll(data, start, limit, end, ends);
    cutOne = (data, start, end) => kernel.cutOne(data, start, end);
  } else {
    const fn = params.variant === '2016' ? fastCdc2016 : fastCdc2020;
    cutAll = (data, start, limit, end, ends) => {
      let pos = start;
      while (pos < limit) {
        pos = fn(params, data, pos, end);
        ends.push(pos);
      }
      return pos;
    };
  }
  const one: number[] = [];
  return {
    params,
    minSize: params.minSize,
    maxSize: params.maxSize,
    cutAll,
    cut:
      cutOne ??
      ((data, start, end) => {
        one.length = 0;
        return cutAll(data, start, start + 1, end, one);
      }),
  };
}

/** All chunk end offsets of an in-memory buffer (for benchmarks and tests). */
export function findCutPoints(data: Uint8Array, spec: ChunkerSpec | Cutter): number[] {
  const cutter = 'cutAll' in spec ? spec : createCutter(spec);
  const ends: number[] = [];
  cutter.cutAll(data, 0, data.length, data.length, ends);
  return ends;
}
