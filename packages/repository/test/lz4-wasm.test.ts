/**
 * The restore workers' lz4 block decoder (lz4.wat) against lz4-napi, the codec that
 * writes the blocks: identical output for any input, a clean refusal (never a crash or
 * a write outside its arena) for malformed blocks, and the committed binary compiled from
 * the committed .wat.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { compressSync } from 'lz4-napi';
import { describe, expect, it } from 'vitest';
import { Lz4ArenaDecoder } from '../dist/blob/lz4-wasm.js';

/** Bytes that compress: runs, repeats at many distances, some noise. */
const compressible = fc
  .array(
    fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 64 }),
      fc.record({ byte: fc.integer({ min: 0, max: 255 }), n: fc.integer({ min: 1, max: 3000 }) }).map(({ byte, n }) => new Uint8Array(n).fill(byte)),
      fc
        .record({ unit: fc.uint8Array({ minLength: 1, maxLength: 40 }), n: fc.integer({ min: 1, max: 200 }) })
        .map(({ unit, n }) => Uint8Array.from({ length: unit.length * n }, (_, i) => unit[i % unit.length])),
    ),
    { maxLength: 40 },
  )
  .map((parts) => Buffer.concat(parts));

describe('lz4 block decoder (WebAssembly)', () => {
  it('decodes whatever lz4-napi encodes, byte for byte, many blocks into one arena', () => {
    const decoder = new Lz4ArenaDecoder();
    fc.assert(
      fc.property(fc.array(fc.oneof(compressible, fc.uint8Array({ maxLength: 5000 })), { minLength: 1, maxLength: 8 }), (inputs) => {
        const blocks = inputs.map((raw) => compressSync(Buffer.from(raw)).subarray(4));
        decoder.begin(
          Math.max(...blocks.map((b) => b.length)),
          inputs.reduce((n, r) => n + r.length, 0),
        );
        const outs = inputs.map((raw, i) => decoder.decode(blocks[i], raw.length));
        // Every view is still intact after the later blocks decoded behind it.
        outs.forEach((out, i) => expect(out && Buffer.from(out).equals(Buffer.from(inputs[i]))).toBe(true));
      }),
      { numRuns: 300 },
    );
  });

  it('refuses truncated, corrupted and wrong-length blocks without writing outside the output it was given', () => {
    const decoder = new Lz4ArenaDecoder();
    fc.assert(
      fc.property(
        compressible.filter((b) => b.length > 16),
        fc.integer({ min: 0, max: 1 << 30 }),
        fc.integer({ min: 0, max: 255 }),
        (raw, at, value) => {
          const block = Buffer.from(compressSync(raw).subarray(4));
          const damaged = Buffer.from(block);
          damaged[at % damaged.length] ^= value | 1;
          const cut = block.subarray(0, at % block.length);
          const sentinel = Buffer.alloc(64, 0xa5);
          const sentinelBlock = compressSync(sentinel).subarray(4);
          for (const [input, length] of [
            [damaged, raw.length],
            [cut, raw.length],
            [block, raw.length - 1],
            [block, raw.length + 1],
          ] as const) {
            decoder.begin(Math.max(input.length, sentinelBlock.length), sentinel.length + length);
            const before = decoder.decode(sentinelBlock, sentinel.length)!;
            const out = decoder.decode(input, length);
            expect(Buffer.from(before).equals(sentinel)).toBe(true);
            // Either refused, or (a flipped literal byte) decoded to the right length: the
            // fingerprint check then catches it. Never more bytes than asked for.
            if (out !== undefined) expect(out.length).toBe(length);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('the committed binary is what lz4.wat compiles to', async () => {
    const script = fileURLToPath(new URL('../scripts/build-wasm.mjs', import.meta.url));
    const { stdout } = await promisify(execFile)(process.execPath, [script, '--check']);
    expect(stdout).toMatch(/matches/);
  });
});
