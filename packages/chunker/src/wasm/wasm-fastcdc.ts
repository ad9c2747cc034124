/**
 * FastCDC on WebAssembly. V8's optimizer settles the JS loop at ~1.05 GB/s here and its
 * speed varies with how the function was tiered up; the same loop compiled from
 * fastcdc.wat runs at ~3 GB/s, steadily. The JS versions in fastcdc.ts remain the
 * reference the kernels are tested against.
 *
 * WebAssembly reads only its own memory, so bytes are copied into a window there first.
 * A copy runs at memcpy speed (>10 GB/s), a small price next to the cut loop.
 */
import type { ResolvedFastCdc } from '../params.js';
import { MiB } from '../params.js';
import { FASTCDC_WASM_BASE64 } from './fastcdc-binary.js';

const DATA_OFFSET = 4096;
const PAGE = 65536;

interface FastCdcExports {
  memory: WebAssembly.Memory;
  configure(min: number, avg: number, max: number, maskS: number, maskL: number): void;
  cut2016(start: number, end: number): number;
  cut2020(start: number, end: number): number;
}

let compiled: WebAssembly.Module | undefined;

function wasmModule(): WebAssembly.Module {
  compiled ??= new WebAssembly.Module(Buffer.from(FASTCDC_WASM_BASE64, 'base64'));
  return compiled;
}

export class WasmFastCdc {
  private readonly exports: FastCdcExports;
  private readonly memory: Uint8Array;
  private readonly window: number;
  private readonly kernel: (start: number, end: number) => number;

  constructor(private readonly params: ResolvedFastCdc) {
    this.exports = new WebAssembly.Instance(wasmModule(), {}).exports as unknown as FastCdcExports;
    // At least 2x maxSize so every refill makes progress of at least one max-size chunk.
    // Every byte of the window is touched, so it is resident for the cutter's lifetime (one
    // per chunker worker, one on the main thread). 1 MiB cuts as fast as 8 did: the copy
    // is a memcpy and a call into the kernel costs nothing next to cutting 1 MiB.
    this.window = Math.max(1 * MiB, 2 * params.maxSize);
    const bytes = DATA_OFFSET + this.window;
    const have = this.exports.memory.buffer.byteLength;
    if (bytes > have) this.exports.memory.grow(Math.ceil((bytes - have) / PAGE));
    this.memory = new Uint8Array(this.exports.memory.buffer);
    const tables = new Int32Array(this.exports.memory.buffer, 0, 512);
    for (let b = 0; b < 256; b++) {
      tables[b] = params.gear[b];
      tables[256 + b] = params.gear[b] << 1;
    }
    this.exports.configure(params.minSize, params.avgSize, params.maxSize, params.maskS, params.maskL);
    this.kernel = params.variant === '2016' ? this.exports.cut2016 : this.exports.cut2020;
  }

  /**
   * The one chunk starting at `start` (see Cutter.cut). Copies 2 x avgSize first, which
   * holds most chunks, and more only when needed: a cut found before the copied end is
   * final, because each cut decision reads only bytes up to the cut. Cutting a whole
   * window here would copy 1 MiB or more for one chunk.
   */
  cutOne(data: Uint8Array, start: number, end: number): number {
    const { maxSize, avgSize } = this.params;
    const last = Math.min(end, start + maxSize); // the furthest this chunk can reach
    let blockEnd = Math.min(last, start + 2 * avgSize);
    for (;;) {
      this.memory.set(data.subarray(start, blockEnd), DATA_OFFSET);
      const stop = this.kernel(DATA_OFFSET, DATA_OFFSET + (blockEnd - start)) - DATA_OFFSET + start;
      if (stop < blockEnd || blockEnd === last) return stop;
      blockEnd = Math.min(last, start + 4 * (blockEnd - start));
    }
  }

  /** See Cutter.cutAll. */
  cutAll(data: Uint8Array, start: number, limit: number, end: number, ends: number[]): number {
    const max = this.params.maxSize;
    let pos = start;
    while (pos < limit) {
      const blockEnd = Math.min(end, pos + this.window);
      this.memory.set(data.subarray(pos, blockEnd), DATA_OFFSET);
      const shift = DATA_OFFSET - pos;
      // A chunk is decided inside the block when the block holds maxSize bytes after its
      // start, or holds everything up to `end`.
      while (pos < limit && (blockEnd === end || blockEnd - pos >= max)) {
        pos = this.kernel(pos + shift, blockEnd + shift) - shift;
        ends.push(pos);
      }
    }
    return pos;
  }
}
