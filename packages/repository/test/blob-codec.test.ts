import { randomBytes } from 'node:crypto';
import { blake3 } from '@napi-rs/blake-hash';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BlobCodec,
  BlobCodecConfigError,
  type BlobCompression,
  BlobCorruptError,
  CODEC_ENCRYPTED,
  compressionFrom,
  DEFAULT_COMPRESSION,
  formatCompression,
  PAYLOAD_LZ4,
  PAYLOAD_RAW,
  PAYLOAD_ZSTD,
  parseCompression,
  SEAL_OVERHEAD,
} from '../dist/index.js';

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
const ZSTD3: BlobCompression = { kind: 'zstd', level: 3 };
const settings: BlobCompression[] = [ZSTD3, { kind: 'zstd', level: 1 }, { kind: 'zstd', level: 19 }, { kind: 'lz4' }, { kind: 'none' }];
const kindOf = (codec: number) => codec & ~CODEC_ENCRYPTED;
const text = (bytes: number) => Buffer.from('INSERT INTO orders VALUES (1, 42, now());\n'.repeat(Math.ceil(bytes / 42))).subarray(0, bytes);

describe('BlobCodec compression settings', () => {
  it('round-trips any chunk under every setting, encrypted or not, async and sync', async () => {
    const key = randomBytes(32);
    const codecs = await Promise.all(settings.flatMap((compression) => [BlobCodec.create({ compression }), BlobCodec.create({ compression, dataKey: key })]));
    await fc.assert(
      fc.asyncProperty(chunkBytes, fc.nat({ max: codecs.length - 1 }), async (raw, which) => {
        const codec = codecs[which];
        const fp = blake3(raw);
        const blob = await codec.encode(raw, fp);
        const expected = { zstd: PAYLOAD_ZSTD, lz4: PAYLOAD_LZ4, none: PAYLOAD_RAW }[codec.compression.kind];
        expect([PAYLOAD_RAW, expected]).toContain(kindOf(blob.codec));
        if (kindOf(blob.codec) !== PAYLOAD_RAW) expect(blob.stored.length).toBeLessThan(raw.length + (codec.encrypted ? 28 : 0));
        expect(Buffer.from(await codec.decode(blob.stored, blob, fp, verify)).equals(Buffer.from(raw))).toBe(true);
        expect(Buffer.from(codec.decodeSync(blob.stored, blob, fp, verify)).equals(Buffer.from(raw))).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('zstd beats lz4 on text, and every codec reads blobs written under any other setting', async () => {
    const raw = Buffer.concat([text(300_000), Buffer.from(readableNoise(200_000))]);
    const fp = blake3(raw);
    const codecs = await Promise.all(settings.map((compression) => BlobCodec.create({ compression })));
    const blobs = await Promise.all(codecs.map((c) => c.encode(raw, fp)));
    const [zstd3, , , lz4, none] = blobs;
    expect(zstd3.codec).toBe(PAYLOAD_ZSTD);
    expect(lz4.codec).toBe(PAYLOAD_LZ4);
    expect(none.codec).toBe(PAYLOAD_RAW);
    expect(zstd3.stored.length).toBeLessThan(lz4.stored.length * 0.8);
    for (const reader of codecs) {
      for (const blob of blobs) {
        expect(Buffer.from(await reader.decode(blob.stored, blob, fp, verify)).equals(raw)).toBe(true);
        expect(Buffer.from(reader.decodeSync(blob.stored, blob, fp, verify)).equals(raw)).toBe(true);
      }
    }
  });

  it('stores incompressible chunks raw, and the probe decides without a full attempt', async () => {
    const codec = await BlobCodec.create({ compression: ZSTD3 });
    const noise = randomBytes(1 << 20);
    const n = await codec.encode(noise, blake3(noise));
    expect(n.codec).toBe(PAYLOAD_RAW);
    expect(Buffer.from(n.stored).equals(noise)).toBe(true);
    // Random where the probe samples (4 KiB at the start, the end and two evenly spaced
    // points between), zeros everywhere else: a full zstd attempt would shrink this to
    // almost nothing, so storing it raw shows the probe made the decision.
    const length = 1 << 20;
    const sampled = new Uint8Array(length);
    const stride = (length - 4096) / 3;
    for (let i = 0; i < 4; i++) sampled.set(randomBytes(4096), Math.floor(i * stride));
    expect((await codec.encode(sampled, blake3(sampled))).codec).toBe(PAYLOAD_RAW);
    // Small chunks are not probed, they are tried: a compressible one is compressed.
    const small = text(10_000);
    expect((await codec.encode(small, blake3(small))).codec).toBe(PAYLOAD_ZSTD);
  });

  it('skips the probe while chunks keep compressing, and probes again after one does not', async () => {
    const codec = await BlobCodec.create({ compression: ZSTD3 });
    // Random where the probe samples, zeros elsewhere: a full attempt compresses it, the probe refuses it.
    const length = 1 << 20;
    const sampled = new Uint8Array(length);
    const stride = (length - 4096) / 3;
    for (let i = 0; i < 4; i++) sampled.set(randomBytes(4096), Math.floor(i * stride));
    const encodeKind = async (raw: Uint8Array) => kindOf((await codec.encode(raw, blake3(raw))).codec);
    expect(await encodeKind(sampled)).toBe(PAYLOAD_RAW); // probed
    expect(await encodeKind(text(100_000))).toBe(PAYLOAD_ZSTD); // probed, then compressed
    expect(await encodeKind(sampled)).toBe(PAYLOAD_ZSTD); // not probed: a full attempt, which saves
    const noise = randomBytes(200_000);
    expect(await encodeKind(noise)).toBe(PAYLOAD_RAW); // not probed: the full attempt saves nothing
    expect(await encodeKind(sampled)).toBe(PAYLOAD_RAW); // probed again
  });

  it('a forged raw length is refused from the frame header, before decompressing', async () => {
    const codec = await BlobCodec.create({ compression: ZSTD3 });
    const raw = text(100_000);
    const fp = blake3(raw);
    const blob = await codec.encode(raw, fp);
    for (const rawLength of [99_999, 100_001, 2 ** 31]) {
      const meta = { ...blob, rawLength };
      expect(() => codec.decodeSync(blob.stored, meta, fp)).toThrow(/zstd frame holds 100000 bytes, the trailer says/);
      await expect(codec.decode(blob.stored, meta, fp)).rejects.toMatchObject({ check: 'length' });
    }
  });

  it('a damaged zstd frame is a BlobCorruptError naming decompression (or, if it still decodes, the fingerprint)', async () => {
    const codec = await BlobCodec.create({ compression: ZSTD3 });
    const raw = text(100_000);
    const fp = blake3(raw);
    const blob = await codec.encode(raw, fp);
    const variants: [string, Uint8Array][] = [
      ['bad magic', Uint8Array.from(blob.stored, (b, i) => (i === 0 ? b ^ 0xff : b))],
      ['truncated', blob.stored.subarray(0, blob.stored.length - 3)],
      ['trailing bytes', Buffer.concat([blob.stored, Buffer.from([1, 2, 3])])],
      ['empty', new Uint8Array(0)],
    ];
    for (const [what, stored] of variants) {
      const meta = { ...blob, checksum: codec.checksum(stored) };
      const error = await codec.decode(stored, meta, fp, verify).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error, what).toBeInstanceOf(BlobCorruptError);
      expect((error as BlobCorruptError).check, what).toBe('decompression');
      expect(() => codec.decodeSync(stored, meta, fp, verify), what).toThrow(/decompression/);
    }
    // Damage anywhere, checksum recomputed by the forger: refused by some check, never wrong bytes.
    await fc.assert(
      fc.asyncProperty(fc.nat(), fc.integer({ min: 0, max: 7 }), async (at, bit) => {
        const damaged = Uint8Array.from(blob.stored);
        damaged[at % damaged.length] ^= 1 << bit;
        const meta = { ...blob, checksum: codec.checksum(damaged) };
        const outcome = await codec.decode(damaged, meta, fp, verify).then(
          (bytes) => ({ bytes }),
          (error: unknown) => ({ error }),
        );
        if ('error' in outcome) expect(outcome.error).toBeInstanceOf(BlobCorruptError);
        else expect(Buffer.from(outcome.bytes).equals(raw)).toBe(true);
      }),
      { numRuns: 150 },
    );
  });

  it('parses zstd[:LEVEL] | lz4 | none, and names the accepted forms otherwise', () => {
    expect(parseCompression('zstd')).toEqual({ kind: 'zstd', level: 3 });
    expect(parseCompression('zstd:19')).toEqual({ kind: 'zstd', level: 19 });
    expect(parseCompression('lz4')).toEqual({ kind: 'lz4' });
    expect(parseCompression('none')).toEqual({ kind: 'none' });
    for (const bad of ['zstd:0', 'zstd:20', 'zstd:', 'zstd:-1', 'zstd:3.5', 'ZSTD', 'gzip', '']) expect(parseCompression(bad), bad).toBeUndefined();
    expect(DEFAULT_COMPRESSION).toEqual({ kind: 'zstd', level: 3 });
    for (const c of settings) expect(parseCompression(formatCompression(c))).toEqual(c);
    expect(() => compressionFrom('gzip', 'store config')).toThrow(
      'store config: compression must be zstd[:LEVEL] (LEVEL 1-19, default 3), lz4 or none; got "gzip"',
    );
  });
});

/** Printable bytes with a skewed distribution and few repeats: entropy coding pays, match finding barely. */
function readableNoise(length: number): Uint8Array {
  const out = randomBytes(length);
  for (let i = 0; i < length; i++) out[i] = 0x41 + (out[i] % 16);
  return out;
}

describe('BlobCodec.encodeOffThread (the encode workers)', () => {
  it('gives what encode gives: same codec, decodable, raw for noise, and the caller may reuse its buffer at once', async () => {
    const key = randomBytes(32);
    for (const dataKey of [undefined, key]) {
      const codec = await BlobCodec.create({ compression: ZSTD3, dataKey });
      const inputs = [text(300_000), randomBytes(1 << 20), text(5_000)];
      const originals = inputs.map((b) => Buffer.from(b));
      const pending = inputs.map((raw, i) => codec.encodeOffThread(raw, blake3(originals[i])));
      for (const raw of inputs) raw.fill(0); // the pool copied them
      const blobs = await Promise.all(pending);
      expect(blobs.map((b) => kindOf(b.codec))).toEqual([PAYLOAD_ZSTD, PAYLOAD_RAW, PAYLOAD_ZSTD]);
      blobs.forEach((blob, i) => {
        expect(Boolean(blob.codec & CODEC_ENCRYPTED)).toBe(dataKey !== undefined);
        expect(blob.rawLength).toBe(originals[i].length);
        expect(blob.checksum).toBe(codec.checksum(blob.stored));
        expect(Buffer.from(codec.decodeSync(blob.stored, blob, blake3(originals[i]), verify)).equals(originals[i])).toBe(true);
      });
    }
  });

  it('any sequence of chunks, in groups of any size, comes back decodable, each under its own fingerprint', async () => {
    const key = randomBytes(32);
    const settings: { compression: BlobCompression; dataKey?: Uint8Array }[] = [
      { compression: ZSTD3 },
      { compression: ZSTD3, dataKey: key },
      { compression: { kind: 'lz4' } },
      { compression: { kind: 'lz4' }, dataKey: key },
      { compression: { kind: 'none' }, dataKey: key },
    ];
    const codecs = await Promise.all(settings.map((s) => BlobCodec.create(s)));
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ bytes: chunkBytes, codec: fc.integer({ min: 0, max: codecs.length - 1 }), release: fc.boolean() }), {
          minLength: 1,
          maxLength: 40,
        }),
        async (chunks) => {
          // One buffer reused for every input, as the chunker's reuseBuffers does; chunks of
          // different settings interleave, so groups close early.
          const scratch = new Uint8Array(200_000);
          const pending = chunks.map(({ bytes, codec }) => {
            scratch.set(bytes);
            const done = codecs[codec].encodeOffThread(scratch.subarray(0, bytes.length), blake3(bytes));
            scratch.fill(0xa5);
            return done;
          });
          const blobs = await Promise.all(pending);
          // Released blobs hand their group back for reuse: encode more, then check the
          // blobs not released are intact.
          blobs.forEach((blob, i) => chunks[i].release && blob.release?.());
          await Promise.all(chunks.slice(0, 8).map(({ bytes, codec }) => codecs[codec].encodeOffThread(randomBytes(bytes.length), blake3(bytes))));
          blobs.forEach((blob, i) => {
            if (chunks[i].release) return;
            const { bytes, codec } = chunks[i];
            const c = codecs[codec];
            expect(blob.rawLength).toBe(bytes.length);
            expect(Boolean(blob.codec & CODEC_ENCRYPTED)).toBe(settings[codec].dataKey !== undefined);
            expect(blob.checksum).toBe(c.checksum(blob.stored));
            expect(Buffer.from(c.decodeSync(blob.stored, blob, blake3(bytes), verify)).equals(bytes)).toBe(true);
          });
        },
      ),
      { numRuns: 40 },
    );
  });

  it('groups past 1 MiB and 256 chunks: incompressible sealed chunks grow in place without overwriting the next', async () => {
    const codec = await BlobCodec.create({ compression: ZSTD3, dataKey: randomBytes(32) });
    const inputs = Array.from({ length: 600 }, (_, i) => (i % 3 === 0 ? text(3_000 + i) : randomBytes(4_000 + i)));
    const blobs = await Promise.all(inputs.map((raw) => codec.encodeOffThread(raw, blake3(raw))));
    blobs.forEach((blob, i) => {
      expect(kindOf(blob.codec)).toBe(i % 3 === 0 ? PAYLOAD_ZSTD : PAYLOAD_RAW);
      expect(Buffer.from(codec.decodeSync(blob.stored, blob, blake3(inputs[i]), verify)).equals(inputs[i])).toBe(true);
    });
  });

  it("encodeInPlace: any chunks of a caller's buffer, any of them skipped, come back decodable in the same buffer", async () => {
    const key = randomBytes(32);
    const settings: { compression: BlobCompression; dataKey?: Uint8Array }[] = [
      { compression: ZSTD3 },
      { compression: ZSTD3, dataKey: key },
      { compression: { kind: 'lz4' }, dataKey: key },
      { compression: { kind: 'none' }, dataKey: key },
      { compression: { kind: 'none' } },
    ];
    const codecs = await Promise.all(settings.map((s) => BlobCodec.create(s)));
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ bytes: chunkBytes, wanted: fc.boolean() }), { minLength: 1, maxLength: 24 }),
        fc.integer({ min: 0, max: codecs.length - 1 }),
        fc.integer({ min: 0, max: 64 }),
        async (chunks, which, lead) => {
          // Laid out as the agent's batch arena is: each chunk followed by SEAL_OVERHEAD
          // spare bytes, some chunks not wanted (the server has them), after `lead` bytes.
          const size = lead + chunks.reduce((n, c) => n + c.bytes.length + SEAL_OVERHEAD, 0);
          const arena = Buffer.allocUnsafeSlow(size);
          let at = lead;
          const placed = chunks.map((c) => {
            arena.set(c.bytes, at);
            const start = at;
            at += c.bytes.length + SEAL_OVERHEAD;
            return { start, length: c.bytes.length, fingerprint: blake3(c.bytes), bytes: c.bytes, wanted: c.wanted };
          });
          const wanted = placed.filter((c) => c.wanted);
          const codec = codecs[which];
          const { buffer, blobs } = await codec.encodeInPlace(arena.buffer as ArrayBuffer, wanted);
          expect(buffer.byteLength).toBe(size);
          expect(blobs).toHaveLength(wanted.length);
          blobs.forEach((blob, i) => {
            expect(blob.stored.buffer).toBe(buffer);
            expect(blob.rawLength).toBe(wanted[i].length);
            expect(Boolean(blob.codec & CODEC_ENCRYPTED)).toBe(settings[which].dataKey !== undefined);
            expect(blob.checksum).toBe(codec.checksum(blob.stored));
          });
          // Decoded only after every blob is known: a later chunk's output must not have overwritten an earlier one's.
          blobs.forEach((blob, i) => {
            expect(Buffer.from(codec.decodeSync(blob.stored, blob, wanted[i].fingerprint, verify)).equals(wanted[i].bytes)).toBe(true);
          });
        },
      ),
      { numRuns: 40 },
    );
  });

  it("encodeInPlace refuses chunks that overlap the previous one's spare bytes or run past the buffer", async () => {
    const codec = await BlobCodec.create({ compression: ZSTD3 });
    const fingerprint = new Uint8Array(32);
    const buffer = new ArrayBuffer(1000);
    expect(() =>
      codec.encodeInPlace(buffer, [
        { start: 0, length: 100, fingerprint },
        { start: 100 + SEAL_OVERHEAD - 1, length: 10, fingerprint },
      ]),
    ).toThrow(/overlaps/);
    expect(() => codec.encodeInPlace(buffer, [{ start: 900, length: 100 - SEAL_OVERHEAD + 1, fingerprint }])).toThrow(/overlaps/);
    // Nothing was sent: the buffer is still the caller's.
    expect(buffer.byteLength).toBe(1000);
  });
});
