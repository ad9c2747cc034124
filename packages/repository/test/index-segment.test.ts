import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IndexSegmentFormatError, decodeIndexSegment, encodeIndexSegment, packKeyFromHash, segmentKey, type IndexSegment } from '../dist/index.js';

const entry = fc.record({
  fingerprint: fc.uint8Array({ minLength: 32, maxLength: 32 }),
  offset: fc.nat({ max: 0xffffffff }),
  storedLength: fc.nat({ max: 0xffffffff }),
  rawLength: fc.nat({ max: 0xffffffff }),
  codec: fc.constantFrom(0, 1, 0x80, 0x81),
  checksum: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
});
const segment: fc.Arbitrary<IndexSegment> = fc.record({
  storeId: fc.uint8Array({ minLength: 16, maxLength: 16 }),
  packs: fc.array(fc.record({ packHash: fc.uint8Array({ minLength: 32, maxLength: 32 }), entries: fc.array(entry, { maxLength: 20 }) }), { maxLength: 8 }),
});

const plain = (s: IndexSegment) =>
  JSON.parse(JSON.stringify(s, (_k, v) => (typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v)));

describe('index segments', () => {
  it('round-trip any segment; the key is the BLAKE3 of the bytes', () => {
    fc.assert(
      fc.property(segment, (s) => {
        const { key, bytes } = encodeIndexSegment(s);
        expect(key).toBe(segmentKey(bytes));
        expect(key).toMatch(/^index\/[0-9a-f]{2}\/[0-9a-f]{64}$/);
        expect(plain(decodeIndexSegment(key, bytes))).toEqual(plain(s));
      }),
      { numRuns: 100 },
    );
  });

  it('a damaged or misnamed segment is refused', () => {
    const { key, bytes } = encodeIndexSegment({ storeId: randomBytes(16), packs: [{ packHash: randomBytes(32), entries: [] }] });
    const damaged = Uint8Array.from(bytes);
    damaged[20] ^= 4;
    expect(() => decodeIndexSegment(key, damaged)).toThrow(/does not match its name/);
    expect(() => decodeIndexSegment('index/00/' + '0'.repeat(64), bytes)).toThrow(IndexSegmentFormatError);
  });

  it('structurally wrong content is refused even under its own name', () => {
    const good = encodeIndexSegment({ storeId: randomBytes(16), packs: [{ packHash: randomBytes(32), entries: [] }] }).bytes;
    const cases: Array<[Uint8Array, RegExp]> = [
      [Buffer.concat([good, Buffer.from([1])]), /bytes after the last pack/],
      [good.subarray(0, good.length - 3), /ends inside the header of pack 0/],
      [Buffer.concat([Buffer.from('NOTASEGM'), good.subarray(8)]), /no HOARDIX1 header/],
    ];
    for (const [bytes, message] of cases) expect(() => decodeIndexSegment(segmentKey(bytes), bytes)).toThrow(message);
  });

  it('names packs by their hash', () => {
    const h = Buffer.alloc(32, 0xab);
    expect(packKeyFromHash(h)).toBe(`packs/ab/${'ab'.repeat(32)}`);
  });
});
