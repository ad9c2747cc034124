import { randomBytes } from 'node:crypto';
import { blake3 } from '@napi-rs/blake-hash';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BlobCodec, BlobCodecConfigError, BlobCorruptError, CODEC_ENCRYPTED, PAYLOAD_LZ4, PAYLOAD_RAW } from '../dist/index.js';

const verify = (raw: Uint8Array) => blake3(raw);

/** Bytes with a tunable share of repetition, so both codecs get exercised. */
const chunkBytes = fc
  .record({ length: fc.integer({ min: 0, max: 200_000 }), repeat: fc.integer({ min: 0, max: 4 }), seed: fc.integer() })
  .map(({ length, repeat, seed }) => {
    const out = new Uint8Array(length);
    let x = seed >>> 0 || 1;
    for (let i = 0; i < length; i++) {
      if (repeat > 0 && i >= 16 && (x & 7) < repeat * 2) out[i] = out[i - 16];
      else {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        out[i] = x & 0xff;
      }
    }
    return out;
  });

describe('BlobCodec', () => {
  it('round-trips any chunk, encrypted or not, and verifies its fingerprint', async () => {
    const plain = await BlobCodec.create();
    const sealed = await BlobCodec.create({ dataKey: randomBytes(32) });
    await fc.assert(
      fc.asyncProperty(chunkBytes, fc.boolean(), async (raw, encrypted) => {
        const codec = encrypted ? sealed : plain;
        const fp = blake3(raw);
        const blob = await codec.encode(raw, fp);
        expect(blob.rawLength).toBe(raw.length);
        expect(Boolean(blob.codec & CODEC_ENCRYPTED)).toBe(encrypted);
        expect(blob.checksum).toBe(codec.checksum(blob.stored));
        const back = await codec.decode(blob.stored, blob, fp, verify);
        expect(Buffer.from(back).equals(Buffer.from(raw))).toBe(true);
      }),
      { numRuns: 80 },
    );
  });

  it('compresses with lz4 only when that makes the blob smaller', async () => {
    const codec = await BlobCodec.create();
    const text = Buffer.from('INSERT INTO orders VALUES (1, 42, now());\n'.repeat(2000));
    const noise = randomBytes(100_000);
    const t = await codec.encode(text, blake3(text));
    const n = await codec.encode(noise, blake3(noise));
    expect(t.codec).toBe(PAYLOAD_LZ4);
    expect(t.stored.length).toBeLessThan(text.length / 5);
    expect(n.codec).toBe(PAYLOAD_RAW);
    expect(n.stored.length).toBe(noise.length);
  });

  it('keeps its own copy of raw input (callers may reuse their buffers)', async () => {
    const codec = await BlobCodec.create();
    const raw = randomBytes(4096);
    const fp = blake3(raw);
    const blob = await codec.encode(raw, fp);
    const original = Buffer.from(raw);
    raw.fill(0);
    expect(Buffer.from(await codec.decode(blob.stored, blob, fp, verify)).equals(original)).toBe(true);
  });

  it('damaged stored bytes are caught; nothing but the original chunk is ever returned', async () => {
    const plain = await BlobCodec.create();
    const sealed = await BlobCodec.create({ dataKey: randomBytes(32) });
    await fc.assert(
      fc.asyncProperty(
        chunkBytes.filter((b) => b.length > 0),
        fc.boolean(),
        fc.nat(),
        fc.integer({ min: 0, max: 7 }),
        fc.boolean(),
        async (raw, encrypted, at, bit, fixChecksum) => {
          const codec = encrypted ? sealed : plain;
          const fp = blake3(raw);
          const blob = await codec.encode(raw, fp);
          const damaged = Uint8Array.from(blob.stored);
          damaged[at % damaged.length] ^= 1 << bit;
          // Either the checksum sees it, or (if an attacker also fixed the checksum) a later check does.
          const meta = { ...blob, checksum: fixChecksum ? codec.checksum(damaged) : blob.checksum };
          const outcome = await codec.decode(damaged, meta, fp, verify).then(
            (bytes) => ({ bytes }),
            (error: unknown) => ({ error }),
          );
          if ('error' in outcome) {
            expect(outcome.error).toBeInstanceOf(BlobCorruptError);
            if (!fixChecksum) expect((outcome.error as BlobCorruptError).check).toBe('checksum');
            else if (encrypted) expect((outcome.error as BlobCorruptError).check).toBe('authentication');
          } else {
            // Only possible when the damage did not matter (e.g. the LZ4 size prefix is a
            // capacity hint): the bytes returned are then verified to be the original ones.
            expect(fixChecksum && !encrypted).toBe(true);
            expect(Buffer.from(outcome.bytes).equals(Buffer.from(raw))).toBe(true);
          }
        },
      ),
      { numRuns: 120 },
    );
  });

  it('an encrypted blob moved under another fingerprint, or read with another key, fails authentication', async () => {
    const key = randomBytes(32);
    const codec = await BlobCodec.create({ dataKey: key });
    const raw = randomBytes(10_000);
    const fp = blake3(raw);
    const blob = await codec.encode(raw, fp);
    await expect(codec.decode(blob.stored, blob, blake3(Buffer.from('other')))).rejects.toMatchObject({ check: 'authentication' });
    const other = await BlobCodec.create({ dataKey: randomBytes(32) });
    await expect(other.decode(blob.stored, blob, fp)).rejects.toMatchObject({ check: 'authentication' });
    const plain = await BlobCodec.create();
    await expect(plain.decode(blob.stored, blob, fp)).rejects.toThrow(BlobCodecConfigError);
    const unencrypted = await plain.encode(raw, fp);
    await expect(codec.decode(unencrypted.stored, unencrypted, fp)).rejects.toMatchObject({ check: 'authentication' });
  });

  it('a wrong raw length in the trailer is caught', async () => {
    const codec = await BlobCodec.create();
    const raw = Buffer.from('x'.repeat(5000));
    const blob = await codec.encode(raw, blake3(raw));
    await expect(codec.decode(blob.stored, { ...blob, rawLength: 4999 }, blake3(raw))).rejects.toMatchObject({ check: 'length' });
  });

  it('rejects a data key of the wrong length', async () => {
    await expect(BlobCodec.create({ dataKey: new Uint8Array(16) })).rejects.toThrow(/32 bytes, got 16/);
  });
});
