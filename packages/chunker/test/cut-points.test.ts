import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createCutter, findCutPoints, type FastCdcSpec } from '../dist/index.js';
import { cryptoRandom, randomBytes } from './helpers.js';

/** Small chunk sizes so a few hundred KiB exercise hundreds of cuts. */
const fastCdcSpec = fc
  .record({
    avgBits: fc.integer({ min: 12, max: 15 }),
    minDiv: fc.constantFrom(2, 4, 8),
    maxMul: fc.constantFrom(2, 4, 8),
    normalization: fc.integer({ min: 0, max: 3 }),
    seed: fc.option(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), { nil: undefined }),
  })
  .map(
    ({ avgBits, minDiv, maxMul, normalization, seed }): FastCdcSpec => ({
      kind: 'fastcdc',
      avgSize: 1 << avgBits,
      minSize: (1 << avgBits) / minDiv,
      maxSize: (1 << avgBits) * maxMul,
      normalization,
      seed,
    }),
  );

const data = fc.record({ length: fc.integer({ min: 0, max: 300_000 }), seed: fc.integer() }).map(({ length, seed }) => randomBytes(length, seed));

describe('FastCDC cut points', () => {
  it('the 2016 and 2020 variants cut at identical points (JS reference)', () => {
    fc.assert(
      fc.property(fastCdcSpec, data, (spec, bytes) => {
        const a = findCutPoints(bytes, createCutter({ ...spec, variant: '2016' }, 'js'));
        const b = findCutPoints(bytes, createCutter({ ...spec, variant: '2020' }, 'js'));
        expect(b).toEqual(a);
      }),
      { numRuns: 60 },
    );
  });

  it('the WebAssembly kernels cut exactly where the JS reference does, both variants', () => {
    fc.assert(
      fc.property(fastCdcSpec, data, fc.constantFrom('2016' as const, '2020' as const), (spec, bytes, variant) => {
        const ref = findCutPoints(bytes, createCutter({ ...spec, variant }, 'js'));
        const wasm = findCutPoints(bytes, createCutter({ ...spec, variant }, 'wasm'));
        expect(wasm).toEqual(ref);
      }),
      { numRuns: 80 },
    );
  });

  it('the kernels agree on data larger than their copy window (8 MiB) with large chunks', () => {
    const bytes = cryptoRandom(40 << 20);
    bytes.fill(0, 5 << 20, 13 << 20); // a long zero run: the hash never matches, chunks hit maxSize
    const spec: FastCdcSpec = { kind: 'fastcdc', avgSize: 1 << 20 };
    const ref = findCutPoints(bytes, createCutter(spec, 'js'));
    expect(findCutPoints(bytes, createCutter(spec, 'wasm'))).toEqual(ref);
    expect(findCutPoints(bytes, createCutter({ ...spec, variant: '2016' }, 'wasm'))).toEqual(ref);
  });

  it('every chunk is between minSize and maxSize, except the last one which may be shorter', () => {
    fc.assert(
      fc.property(fastCdcSpec, data, (spec, bytes) => {
        const ends = findCutPoints(bytes, spec);
        let start = 0;
        ends.forEach((end, i) => {
          const len = end - start;
          expect(len).toBeLessThanOrEqual(spec.maxSize!);
          if (i < ends.length - 1) expect(len).toBeGreaterThanOrEqual(spec.minSize!);
          start = end;
        });
        expect(start).toBe(bytes.length);
      }),
      { numRuns: 60 },
    );
  });

  it('cuts are content-defined: an insertion at the front shifts the later cut points', () => {
    const spec: FastCdcSpec = { kind: 'fastcdc', avgSize: 8192 };
    const bytes = randomBytes(2 << 20, 7);
    const inserted = new Uint8Array(bytes.length + 100);
    inserted.set(randomBytes(100, 8), 0);
    inserted.set(bytes, 100);
    const before = new Set(findCutPoints(bytes, spec).map((e) => e + 100));
    const after = findCutPoints(inserted, spec);
    const shared = after.filter((e) => before.has(e)).length;
    expect(shared / after.length).toBeGreaterThan(0.95);
  });

  it('average chunk size lands near avgSize on random data', () => {
    const bytes = cryptoRandom(32 << 20);
    for (const avgSize of [16384, 65536, 1 << 20]) {
      const n = findCutPoints(bytes, { kind: 'fastcdc', avgSize }).length;
      const mean = bytes.length / n;
      expect(mean).toBeGreaterThan(avgSize * 0.7);
      expect(mean).toBeLessThan(avgSize * 1.5);
    }
  });

  it('a seed moves the boundaries; without the seed they cannot be reproduced', () => {
    const bytes = randomBytes(1 << 20, 11);
    const plain = findCutPoints(bytes, { kind: 'fastcdc', avgSize: 8192 });
    const keyed = findCutPoints(bytes, { kind: 'fastcdc', avgSize: 8192, seed: 0x1234_5678_9abc_def0n });
    const again = findCutPoints(bytes, { kind: 'fastcdc', avgSize: 8192, seed: 0x1234_5678_9abc_def0n });
    expect(again).toEqual(keyed);
    const common = keyed.filter((e) => plain.includes(e)).length;
    expect(common / keyed.length).toBeLessThan(0.2);
  });

  it('fixed-size splitting cuts at every multiple of the size', () => {
    const ends = findCutPoints(new Uint8Array(10 * 4096 + 123), { kind: 'fixed', size: 4096 });
    expect(ends).toEqual([...Array.from({ length: 10 }, (_, i) => (i + 1) * 4096), 10 * 4096 + 123]);
    expect(findCutPoints(new Uint8Array(0), { kind: 'fixed', size: 4096 })).toEqual([]);
  });
});
