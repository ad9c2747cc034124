import { randomBytes } from 'node:crypto';
import { blake3 } from '@napi-rs/blake-hash';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { BlobCodec, PACK_FOOTER_BYTES, PIECE_BYTES, PackFormatError, PackStreamWriter, PackWriter, decodeTrailer, loadPackHashing } from '../dist/index.js';

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

describe('streamed packs (PackStreamWriter)', () => {
  /** A staged object in memory that records how it was written. */
  function memoryStage() {
    const staged = { pieces: [] as Buffer[], committed: undefined as string | undefined, aborted: false, maxPiece: 0 };
    const stage = () => ({
      append: async (bytes: Uint8Array) => {
        staged.maxPiece = Math.max(staged.maxPiece, bytes.length);
        staged.pieces.push(Buffer.from(bytes)); // the writer reuses its pieces
      },
      commit: async (key: string) => {
        staged.committed = key;
        return true;
      },
      abort: async () => {
        staged.aborted = true;
      },
    });
    return { staged, stage };
  }

  it('writes the same bytes under the same key as PackWriter, in pieces no larger than PIECE_BYTES', async () => {
    const chunks = Array.from({ length: 150 }, (_, i) => (i % 2 === 0 ? randomBytes(70_000) : Buffer.from(`row ${i};`.repeat(7000))));
    const blobs = await Promise.all(chunks.map((c) => codec.encode(c, blake3(c))));
    const whole = new PackWriter(storeId, 4 * MiB);
    const { staged, stage } = memoryStage();
    const streamed = new PackStreamWriter(storeId, 4 * MiB, stage);
    let sealedWhole;
    let sealedStreamed;
    for (let i = 0; i < chunks.length; i++) {
      whole.add(blake3(chunks[i]), blobs[i]);
      streamed.add(blake3(chunks[i]), blobs[i]);
      await streamed.drain();
      expect(streamed.full).toBe(whole.full);
      if (whole.full) {
        sealedWhole = whole.seal();
        sealedStreamed = streamed.seal();
        break;
      }
    }
    expect(sealedWhole).toBeDefined();
    expect(await sealedStreamed!.stored).toBe(true);
    expect(sealedStreamed!.key).toBe(sealedWhole!.key);
    expect(staged.committed).toBe(sealedWhole!.key);
    expect(Buffer.concat(staged.pieces).equals(Buffer.from(sealedWhole!.bytes))).toBe(true);
    expect(staged.pieces.length).toBeGreaterThan(1);
    expect(staged.maxPiece).toBeLessThanOrEqual(PIECE_BYTES);
    expect(sealedStreamed!.entries).toEqual(sealedWhole!.entries);
  });

  it('a failed append fails the pack: nothing is committed and the staged object is aborted', async () => {
    let appends = 0;
    let committed = false;
    let aborted = false;
    const writer = new PackStreamWriter(storeId, 4 * MiB, () => ({
      append: async () => {
        if (++appends === 2) throw new Error('disk full');
      },
      commit: async () => (committed = true),
      abort: async () => {
        aborted = true;
      },
    }));
    const chunk = randomBytes(3 * MiB);
    writer.add(blake3(chunk), await codec.encode(chunk, blake3(chunk)));
    await expect(writer.seal().stored).rejects.toThrow(/disk full/);
    expect(committed).toBe(false);
    expect(aborted).toBe(true);
  });
});
