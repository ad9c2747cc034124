import { describe, expect, it } from 'vitest';
import { Chunker, ChunkerParameterError, createFingerprinter, resolveChunker, gearTable, type ChunkerSpec } from '../dist/index.js';

function parameterOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ChunkerParameterError);
    return (err as ChunkerParameterError).parameter;
  }
  throw new Error('expected a ChunkerParameterError');
}

describe('parameter validation', () => {
  const bad: Array<[string, ChunkerSpec, string, RegExp]> = [
    ['min > avg', { kind: 'fastcdc', avgSize: 65536, minSize: 131072 }, 'minSize', /at most avgSize \(64 KiB\)/],
    ['max > 16 MiB', { kind: 'fastcdc', avgSize: 1 << 20, maxSize: 32 << 20 }, 'maxSize', /at most 16 MiB/],
    ['max < avg', { kind: 'fastcdc', avgSize: 1 << 20, maxSize: 1 << 19 }, 'maxSize', /at least avgSize/],
    ['avg not a power of two', { kind: 'fastcdc', avgSize: 100_000 }, 'avgSize', /power of two/],
    ['avg too small', { kind: 'fastcdc', avgSize: 2048 }, 'avgSize', /4 KiB to 8 MiB/],
    ['avg too large', { kind: 'fastcdc', avgSize: 16 << 20 }, 'avgSize', /4 KiB to 8 MiB/],
    ['min below the window', { kind: 'fastcdc', avgSize: 4096, minSize: 16 }, 'minSize', /at least 64/],
    ['fractional size', { kind: 'fastcdc', avgSize: 4096.5 }, 'avgSize', /positive integer/],
    ['normalization 4', { kind: 'fastcdc', avgSize: 65536, normalization: 4 }, 'normalization', /0 to 3/],
    ['unknown variant', { kind: 'fastcdc', avgSize: 65536, variant: '2018' as never }, 'variant', /'2016' or '2020'/],
    ['fixed too large', { kind: 'fixed', size: 32 << 20 }, 'size', /4 KiB to 16 MiB/],
    ['unknown kind', { kind: 'rabin' } as never, 'kind', /'fastcdc' or 'fixed'/],
  ];
  for (const [what, spec, parameter, message] of bad) {
    it(`rejects ${what}, naming ${parameter}`, () => {
      expect(parameterOf(() => resolveChunker(spec))).toBe(parameter);
      expect(() => resolveChunker(spec)).toThrow(message);
    });
  }

  it('rejects seeds that are not 64-bit', () => {
    expect(parameterOf(() => resolveChunker({ kind: 'fastcdc', avgSize: 65536, seed: -1n }))).toBe('seed');
    expect(parameterOf(() => resolveChunker({ kind: 'fastcdc', avgSize: 65536, seed: 1n << 64n }))).toBe('seed');
    expect(() => resolveChunker({ kind: 'fastcdc', avgSize: 65536, seed: new Uint8Array(7) })).toThrow(/got 7 bytes, expected exactly 8 bytes/);
  });

  it('rejects keys that are not 32 bytes', () => {
    expect(parameterOf(() => createFingerprinter({ algorithm: 'blake3', key: new Uint8Array(16) }))).toBe('key');
    expect(parameterOf(() => createFingerprinter({ algorithm: 'md5' } as never))).toBe('algorithm');
  });

  it('rejects a bad worker count', () => {
    expect(parameterOf(() => new Chunker({ chunker: { kind: 'fixed', size: 4096 }, workers: -1 }))).toBe('workers');
    expect(parameterOf(() => new Chunker({ chunker: { kind: 'fixed', size: 4096 }, workers: 1.5 }))).toBe('workers');
  });

  it('fills in defaults: min = avg/4, max = 4 x avg capped at 16 MiB, normalization 2', () => {
    const p = resolveChunker({ kind: 'fastcdc', avgSize: 1 << 20 });
    expect(p).toMatchObject({ minSize: 1 << 18, maxSize: 1 << 22, normalization: 2, variant: '2020' });
    expect(resolveChunker({ kind: 'fastcdc', avgSize: 8 << 20 }).maxSize).toBe(16 << 20);
  });

  it('derives masks with log2(avg) +/- normalization bits, below bit 31', () => {
    const p = resolveChunker({ kind: 'fastcdc', avgSize: 1 << 16, normalization: 2 });
    if (p.kind !== 'fastcdc') throw new Error('unreachable');
    const ones = (m: number) =>
      m
        .toString(2)
        .split('')
        .filter((c) => c === '1').length;
    expect(ones(p.maskS)).toBe(18);
    expect(ones(p.maskL)).toBe(14);
    expect(p.maskS >>> 31).toBe(0);
    expect(p.maskS & p.maskL).toBe(p.maskL); // the loose mask is a subset of the strict one
  });

  it('a seed permutes the gear table; the same seed gives the same table', () => {
    const base = Array.from(gearTable()).sort();
    const a = gearTable(42n);
    expect(Array.from(a).sort()).toEqual(base);
    expect(Array.from(a)).not.toEqual(Array.from(gearTable()));
    expect(Array.from(gearTable(42n))).toEqual(Array.from(a));
    const bytes = new Uint8Array(8);
    bytes[0] = 42;
    expect(Array.from(gearTable(bytes))).toEqual(Array.from(a));
  });
});
