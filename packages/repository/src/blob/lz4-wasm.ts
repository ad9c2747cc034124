/**
 * lz4 block decoding into one reused arena (lz4.wat), for the restore's decode workers.
 * lz4-napi's uncompressSync allocates a fresh buffer per chunk; on these VMs the first
 * touch of fresh memory costs more than decompressing into it, and V8 frees those
 * buffers only at its next GC, so a restore kept touching new pages. Here a batch's
 * chunks decode one after another into the same memory, which stays mapped.
 *
 * Views returned by decode() stay valid until the next begin().
 */
import { instantiateWasm, type WasmMemory } from '@hoard/chunker';
import { LZ4_WASM_BASE64 } from './lz4-binary.js';

type DecodeBlock = (src: number, srcEnd: number, dst: number, dstEnd: number) => number;

const PAGE = 65536;
/** The decoder may read and write this far past the ends it is given (lz4.wat). */
const SLACK = 16;

export class Lz4ArenaDecoder {
  private readonly memory: WasmMemory;
  private readonly decodeBlock: DecodeBlock;
  private bytes: Uint8Array;
  /** Input area: [0, inputSize); output arena after it. */
  private inputSize = 0;
  private outputAt = 0;
  private outputEnd = 0;

  constructor() {
    const { exports, memory } = instantiateWasm(LZ4_WASM_BASE64);
    this.memory = memory;
    this.decodeBlock = exports.decode as DecodeBlock;
    this.bytes = new Uint8Array(memory.buffer);
  }

  /**
   * Starts a batch whose compressed payloads are each at most `maxInput` bytes and whose
   * decoded chunks add up to at most `totalOutput`: grows the memory once, up front, so
   * no view handed out during the batch is detached by a later growth.
   */
  begin(maxInput: number, totalOutput: number): void {
    this.inputSize = align(maxInput + SLACK);
    const need = this.inputSize + totalOutput + SLACK;
    const have = this.memory.buffer.byteLength;
    if (need > have) {
      this.memory.grow(Math.ceil((need - have) / PAGE));
      this.bytes = new Uint8Array(this.memory.buffer);
    }
    this.outputAt = this.inputSize;
    this.outputEnd = this.inputSize + totalOutput;
  }

  /** Decodes one block of exactly `rawLength` bytes; undefined if it is malformed or decodes to another length. */
  decode(payload: Uint8Array, rawLength: number): Uint8Array | undefined {
    if (payload.length > this.inputSize - SLACK || this.outputAt + rawLength > this.outputEnd)
      throw new RangeError('lz4 arena: begin() was given smaller sizes than this batch needs');
    this.bytes.set(payload, 0);
    const at = this.outputAt;
    const n = this.decodeBlock(0, payload.length, at, at + rawLength);
    if (n !== rawLength) return undefined;
    this.outputAt += rawLength;
    return this.bytes.subarray(at, at + rawLength);
  }
}

const align = (n: number) => Math.ceil(n / 64) * 64;
