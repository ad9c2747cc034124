import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ChunkListFormatError,
  InvalidJobNameError,
  ManifestFormatError,
  PAGE_CHUNKS,
  compactTime,
  decodeManifest,
  decodePage,
  encodeManifest,
  encodePage,
  PageBuilder,
  type ChunkRef,
  type Manifest,
} from '../dist/index.js';

const chunkRef: fc.Arbitrary<ChunkRef> = fc.oneof(
  fc.record({ length: fc.integer({ min: 1, max: 16 << 20 }), zero: fc.constant(false), fingerprint: fc.uint8Array({ minLength: 32, maxLength: 32 }) }),
  fc.record({ length: fc.integer({ min: 1, max: 16 << 20 }), zero: fc.constant(true), fingerprint: fc.constant(new Uint8Array(32)) }),
);

function manifestFor(pages: ChunkRef[][], finishedAt = '2026-11-20T03:00:00.000Z'): Manifest {
  let offset = 0;
  let chunks = 0;
  const refs = pages.map((p) => {
    const { key, logicalBytes } = encodePage(p);
    const ref = { offset, logicalBytes, chunks: p.length, hash: Buffer.from(key.split('/')[2], 'hex') };
    offset += logicalBytes;
    chunks += p.length;
    return ref;
  });
  return {
    meta: {
      job: 'db-nightly',
      source: { name: 'postgres://prod/app', kind: 'stream' },
      startedAt: '2026-11-20T02:59:00.000Z',
      finishedAt,
      logicalBytes: offset,
      streamHash: 'ab'.repeat(32),
      parent: null,
      store: '00'.repeat(16),
      chunker: { kind: 'fastcdc', avgSize: 16384 },
      chunkCount: chunks,
    },
    pages: refs,
  };
}

describe('chunk-list pages', () => {
  it('round-trip any list of chunk references', () => {
    fc.assert(
      fc.property(fc.array(chunkRef, { maxLength: 300 }), (chunks) => {
        const { key, bytes, logicalBytes } = encodePage(chunks);
        expect(key).toMatch(/^chunklists\/[0-9a-f]{2}\/[0-9a-f]{64}$/);
        expect(logicalBytes).toBe(chunks.reduce((n, c) => n + c.length, 0));
        const back = decodePage(key, bytes);
        expect(back.map((c) => [c.length, c.zero, Buffer.from(c.fingerprint).toString('hex')])).toEqual(
          chunks.map((c) => [c.length, c.zero, Buffer.from(c.fingerprint).toString('hex')]),
        );
      }),
      { numRuns: 60 },
    );
  });

  it('PageBuilder writes the bytes encodePage gives, page after page, as the buffer grows', () => {
    fc.assert(
      fc.property(fc.array(fc.array(chunkRef, { maxLength: 2500 }), { minLength: 1, maxLength: 3 }), (pages) => {
        const builder = new PageBuilder();
        for (const chunks of pages) {
          // A reused scratch for the fingerprint, as the chunker's views: the builder copies.
          const scratch = new Uint8Array(64);
          for (const c of chunks) {
            scratch.set(c.fingerprint, 16);
            builder.add(c.length, c.zero, scratch.subarray(16, 48));
            scratch.fill(0xee);
          }
          const built = builder.finish();
          const expected = encodePage(chunks);
          expect(built.key).toBe(expected.key);
          expect(Buffer.from(built.bytes).equals(Buffer.from(expected.bytes))).toBe(true);
          expect(built.logicalBytes).toBe(expected.logicalBytes);
          expect(built.chunks).toBe(chunks.length);
        }
      }),
      { numRuns: 30 },
    );
    const builder = new PageBuilder();
    for (let i = 0; i < PAGE_CHUNKS; i++) builder.add(1, true, new Uint8Array(32));
    expect(builder.full).toBe(true);
    expect(() => builder.add(1, true, new Uint8Array(32))).toThrow(/at most 65536/);
  });

  it('refuses damage, a wrong name, and more than a page holds', () => {
    const { key, bytes } = encodePage([{ length: 10, zero: false, fingerprint: randomBytes(32) }]);
    const damaged = Uint8Array.from(bytes);
    damaged[20] ^= 1;
    expect(() => decodePage(key, damaged)).toThrow(ChunkListFormatError);
    expect(() => encodePage(new Array(PAGE_CHUNKS + 1).fill({ length: 1, zero: true, fingerprint: new Uint8Array(32) }))).toThrow(/at most 65536/);
  });
});

describe('snapshot manifests', () => {
  it('round-trip; the key holds job, finish time and a content hash', () => {
    fc.assert(
      fc.property(fc.array(fc.array(chunkRef, { minLength: 1, maxLength: 20 }), { maxLength: 6 }), (pages) => {
        const m = manifestFor(pages);
        const { key, bytes } = encodeManifest(m);
        expect(key).toMatch(/^snapshots\/db-nightly\/20261120T030000Z-[0-9a-f]{16}$/);
        const back = decodeManifest(key, bytes);
        expect(back.meta).toEqual(m.meta);
        expect(back.pages.map((p) => [p.offset, p.logicalBytes, p.chunks, Buffer.from(p.hash).toString('hex')])).toEqual(
          m.pages.map((p) => [p.offset, p.logicalBytes, p.chunks, Buffer.from(p.hash).toString('hex')]),
        );
      }),
      { numRuns: 40 },
    );
  });

  it('snapshots of one job list in time order by key', () => {
    const times = ['2026-11-20T03:00:00.000Z', '2026-11-19T23:59:59.000Z', '2026-12-01T00:00:00.000Z'];
    const keys = times.map((t) => encodeManifest(manifestFor([], t)).key);
    expect([...keys].sort()).toEqual([keys[1], keys[0], keys[2]]);
    expect(compactTime('2026-11-20T03:00:00.000Z')).toBe('20261120T030000Z');
  });

  it('refuses damage, inconsistent totals and bad job names', () => {
    const m = manifestFor([[{ length: 100, zero: false, fingerprint: randomBytes(32) }]]);
    const { key, bytes } = encodeManifest(m);
    const damaged = Uint8Array.from(bytes);
    damaged[30] ^= 1;
    expect(() => decodeManifest(key, damaged)).toThrow(/does not match its name/);
    const lying = encodeManifest({ ...m, meta: { ...m.meta, logicalBytes: 99 } });
    expect(() => decodeManifest(lying.key, lying.bytes)).toThrow(/pages cover 100 bytes in 1 chunks, the metadata says 99/);
    for (const job of ['', '../etc', 'a/b', ' x', 'x'.repeat(129)]) {
      expect(() => encodeManifest({ ...m, meta: { ...m.meta, job } })).toThrow(InvalidJobNameError);
    }
    expect(() => decodeManifest('snapshots/x/y-zz', bytes)).toThrow(ManifestFormatError);
  });
});
