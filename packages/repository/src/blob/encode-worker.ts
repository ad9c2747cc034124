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

port.on('message', (job: EncodeJob) => {
  codecFor(job)
    .then((codec) => codec.encode(new Uint8Array(job.raw), job.fingerprint, { borrow: true }))
    .then(
      (blob) => {
        // `borrow`: a raw blob may be `job.raw` itself, which is ours to send back.
        const stored = blob.stored.byteOffset === 0 && blob.stored.byteLength === blob.stored.buffer.byteLength ? blob.stored : blob.stored.slice();
        port.postMessage({ id: job.id, stored: stored.buffer as ArrayBuffer, codec: blob.codec, checksum: blob.checksum } satisfies EncodeDone, [
          stored.buffer as ArrayBuffer,
        ]);
      },
      (err: unknown) => port.postMessage({ id: job.id, error: err instanceof Error ? err.message : String(err) } satisfies EncodeFailed),
    );
});
