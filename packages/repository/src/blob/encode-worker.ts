/**
 * Encode worker: compresses (and seals) groups of new chunks off the main thread, which a
 * backup needs for chunking, index lookups, packing and uploads. zstd-napi and lz4's sync
 * call would stall all of that for every chunk there.
 *
 * Stored bytes go back in the group's own buffer, written in place from its start: a
 * chunk's stored bytes are never longer than the chunk plus SEAL_OVERHEAD, which the pool
 * reserved after it, so writing chunk i's output never reaches chunk i+1's input.
 */
import { parentPort } from 'node:worker_threads';
import { BlobCodec } from './codec.js';
import { formatCompression } from './compression.js';
import { type EncodeGroup, type EncodeGroupDone, type EncodeGroupFailed, SEAL_OVERHEAD } from './encode-pool.js';

const port = parentPort!;
/** Codecs by key and setting: one worker serves every backup of the process. */
const codecs = new Map<string, Promise<BlobCodec>>();

function codecFor(group: EncodeGroup): Promise<BlobCodec> {
  const id = `${group.dataKey ? Buffer.from(group.dataKey).toString('hex') : '-'}:${formatCompression(group.compression)}`;
  let codec = codecs.get(id);
  if (!codec) {
    codec = BlobCodec.create({ dataKey: group.dataKey, compression: group.compression });
    codecs.set(id, codec);
  }
  return codec;
}

/** Groups one after another, in the order they came (a codec may still be loading for the first). */
let queue: Promise<void> = Promise.resolve();

port.on('message', (group: EncodeGroup) => {
  // Every group gets an answer, whatever fails: the pool's callers wait for it.
  queue = queue.then(async () => {
    let answer: [EncodeGroupDone | EncodeGroupFailed, ArrayBuffer[]?];
    try {
      answer = encodeGroup(await codecFor(group), group);
    } catch (err) {
      answer = [failed(group, err)];
    }
    try {
      port.postMessage(...answer);
    } catch (err) {
      port.postMessage(failed(group, err));
    }
  });
});

function encodeGroup(codec: BlobCodec, group: EncodeGroup): [EncodeGroupDone | EncodeGroupFailed, ArrayBuffer[]?] {
  const n = group.starts.length;
  const bytes = new Uint8Array(group.buffer);
  const done: EncodeGroupDone = {
    id: group.id,
    buffer: group.buffer,
    offsets: new Uint32Array(n),
    lengths: new Uint32Array(n),
    codecs: new Uint8Array(n),
    checksums: new BigUint64Array(n),
  };
  let out = 0;
  try {
    for (let i = 0; i < n; i++) {
      const start = group.starts[i];
      const raw = bytes.subarray(start, start + group.lengths[i]);
      const fingerprint = group.fingerprints?.subarray(32 * i, 32 * i + 32) ?? NO_FINGERPRINT;
      // `transient`: a zstd frame may stay in the codec's scratch buffer; it is copied below
      // before the next chunk is encoded.
      const blob = codec.encodeSync(raw, fingerprint, { borrow: true, transient: true });
      const stored = blob.stored;
      if (stored.length > raw.length + SEAL_OVERHEAD) throw new Error(`chunk ${i} grew to ${stored.length} bytes from ${raw.length}`);
      if (stored.buffer === group.buffer) {
        // Stored as is: move it down (copyWithin is a memmove, and allocates nothing).
        if (stored.byteOffset !== out) bytes.copyWithin(out, stored.byteOffset, stored.byteOffset + stored.length);
      } else bytes.set(stored, out);
      done.offsets[i] = out;
      done.lengths[i] = stored.length;
      done.codecs[i] = blob.codec;
      done.checksums[i] = blob.checksum;
      out += stored.length;
    }
  } catch (err) {
    return [failed(group, err)];
  }
  return [done, [group.buffer]];
}

const NO_FINGERPRINT = new Uint8Array(32);

function failed(group: EncodeGroup, err: unknown): EncodeGroupFailed {
  return { id: group.id, error: err instanceof Error ? err.message : String(err) };
}
