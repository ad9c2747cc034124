import { randomBytes } from 'node:crypto';
import { blake3 } from '@napi-rs/blake-hash';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { BlobCodec, PACK_FOOTER_BYTES, PackFormatError, PackWriter, decodeTrailer, loadPackHashing } from '../dist/index.js';

const MiB = 1 << 20;
const storeId = randomBytes(16);
let codec: BlobCodec;

beforeAll(async () => {
  await loadPackHashing();
  codec = await BlobCodec.create();
});

async function buildPack(chunks: Uint8Array[]) {
  const writer = new PackWriter(storeId, 4 * MiB);
  for (const c of chunks) writer.add(blake3(c), await codec.encode(c, blake3(c)));
  return writer.seal();
}

const chunkList = fc.array(
  fc
    .record({ length: fc.integer({ min: 0, max: 40_000 }), text: fc.boolean(), seed: fc.integer() })
    .map(({ length, text, seed }) => (text ? Buffer.from(`row ${seed};`.repeat(Math.ceil(length / 10)).slice(0, length)) : randomBytes(length))),
  { minLength: 0, maxLength: 30 },
);

describe('packs', () => {
  it('a sealed pack lists every blob; each decodes back to its chunk', async () => {
    await fc.assert(
      fc.asyncProperty(chunkList, async (chunks) => {
        const pack = await buildPack(chunks);
        expect(pack.key).toBe(`packs/${blake3(pack.bytes).toString('hex').slice(0, 2)}/${blake3(pack.bytes).toString('hex')}`);
        const trailer = decodeTrailer(
          pack.key,
          pack.bytes.subarray(pack.entries.at(-1) ? pack.entries.at(-1)!.offset + pack.entries.at(-1)!.storedLength : 0),
          pack.bytes.length,
        );
        expect(Buffer.from(trailer.storeId)).toEqual(storeId);
        expect(trailer.entries).toEqual(pack.entries);
        for (const [i, e] of trailer.entries.entries()) {
          const stored = pack.bytes.subarray(e.offset, e.offset + e.storedLength);
          const raw = await codec.decode(stored, e, e.fingerprint, (b) => blake3(b));
          expect(Buffer.from(raw).equals(Buffer.from(chunks[i]))).toBe(true);
        }
      }),
      { numRuns: 40 },
    );
  });

  it('any damaged byte in the trailer or footer is reported as a damaged pack', async () => {
    const pack = await buildPack([randomBytes(1000), Buffer.from('x'.repeat(5000)), randomBytes(3)]);
    const blobEnd = pack.entries.at(-1)!.offset + pack.entries.at(-1)!.storedLength;
    fc.assert(
      fc.property(fc.integer({ min: blobEnd, max: pack.bytes.length - 1 }), fc.integer({ min: 0, max: 7 }), (at, bit) => {
        const damaged = Uint8Array.from(pack.bytes);
        damaged[at] ^= 1 << bit;
        expect(() => decodeTrailer(pack.key, damaged.subarray(blobEnd), damaged.length)).toThrow(PackFormatError);
      }),
      { numRuns: 200 },
    );
  });

  it('truncated packs and non-packs are named and refused', async () => {
    const pack = await buildPack([randomBytes(100)]);
    const tail = pack.bytes.subarray(100);
    expect(() => decodeTrailer('packs/ab/x', tail.subarray(1), pack.bytes.length - 1)).toThrow(/packs\/ab\/x is damaged/);
    expect(() => decodeTrailer('k', new Uint8Array(PACK_FOOTER_BYTES), PACK_FOOTER_BYTES)).toThrow(/no HOARDPK1 footer/);
    const wrongVersion = Uint8Array.from(tail);
    wrongVersion[tail.length - PACK_FOOTER_BYTES + 8] = 9;
    expect(() => decodeTrailer('k', wrongVersion, pack.bytes.length)).toThrow(/format version 9/);
  });

  it('the writer fills to its target size and rejects bad parameters', async () => {
    const writer = new PackWriter(storeId, 4 * MiB);
    const c = randomBytes(256 * 1024);
    const blob = await codec.encode(c, blake3(c));
    while (!writer.full) writer.add(blake3(c), blob);
    expect(writer.size).toBeGreaterThanOrEqual(4 * MiB);
    expect(writer.size).toBeLessThan(4 * MiB + 256 * 1024 + 4096);
    const sealed = writer.seal();
    expect(sealed.bytes.length).toBe(sealed.entries.length * (blob.stored.length + 53) + PACK_FOOTER_BYTES);
    expect(writer.count).toBe(0);
    expect(() => new PackWriter(storeId, MiB)).toThrow(/4 MiB to 128 MiB/);
    expect(() => new PackWriter(new Uint8Array(8))).toThrow(/16 bytes/);
  });
});
