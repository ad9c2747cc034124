/**
 * Encode worker: zstd-compresses (and seals) new chunks off the main thread, which a
 * backup needs for index lookups, packing and uploads. zstd-napi is synchronous, so on the
 * main thread it would stall all of that for every chunk; lz4 stays on the libuv pool.
 */
import { parentPort } from 'node:worker_threads';
import { BlobCodec } from './codec.js';
import { formatCompression } from './compression.js';
import type { EncodeDone, EncodeFailed, EncodeJob } from './encode-pool.js';

const port = parentPort!;
/** Codecs by key and setting: one worker serves every backup of the process. */
const codecs = new Map<string, Promise<BlobCodec>>();

function codecFor(job: EncodeJob): Promise<BlobCodec> {
  const id = `${job.dataKey ? Buffer.from(job.dataKey).toString('hex') : '-'}:${formatCompression(job.compression)}`;
  let codec = codecs.get(id);
  if (!codec) {
    codec = BlobCodec.create({ dataKey: job.dataKey, compression: job.compression });
    codecs.set(id, codec);
  }
  return codec;
}

/**
 * Jobs one after another: with `transient` a zstd frame lives in the codec's scratch buffer
 * until it is copied out, so the next job must not encode before that (jobs that arrive
 * while the codec is still loading would otherwise all encode first, then copy).
 */
let queue: Promise<void> = Promise.resolve();

port.on('message', (job: EncodeJob) => {
  queue = queue.then(() => encodeJob(job));
});

function encodeJob(job: EncodeJob): Promise<void> {
  return codecFor(job)
    .then((codec) => codec.encode(new Uint8Array(job.raw, 0, job.length), job.fingerprint, { borrow: true, transient: true }))
    .then(
      (blob) => {
        // The raw bytes are encoded: their buffer carries the stored bytes back (the pool
        // reuses it for a later chunk), unless they do not fit (a sealed blob that did not
        // compress), which then travel in a buffer of their own.
        let out = job.raw;
        let offset = 0;
        if (blob.stored.buffer === job.raw) offset = blob.stored.byteOffset;
        else if (blob.stored.length <= job.raw.byteLength) new Uint8Array(job.raw).set(blob.stored);
        else out = blob.stored.slice().buffer as ArrayBuffer;
        const reply: EncodeDone = { id: job.id, stored: out, offset, length: blob.stored.length, codec: blob.codec, checksum: blob.checksum };
        port.postMessage(reply, [out]);
      },
      (err: unknown) => port.postMessage({ id: job.id, error: err instanceof Error ? err.message : String(err) } satisfies EncodeFailed),
    );
}
