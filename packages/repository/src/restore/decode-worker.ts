/**
 * Decode worker: decodes (AES-GCM, lz4 or zstd) and re-hashes every blob of a fetched pack range
 * against its fingerprint (invariant 4), then writes the pieces the restore wants straight
 * into the target file at their stream positions, or sends the decoded bytes back.
 *
 * Writing here, not on the main thread, is what lets a restore use both cores: the main
 * thread only plans reads and moves buffers; each decoded byte is touched once more, by
 * the kernel's copy into the page cache.
 */
import { writeSync, writevSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { createFingerprinter, type Fingerprinter } from '@hoard/chunker';
import { BlobCodec } from '../blob/codec.js';
import { BlobCorruptError } from '../blob/errors.js';
import { Lz4ArenaDecoder } from '../blob/lz4-wasm.js';
import { BLOB_FIELDS, WRITE_FIELDS, type DecodeDone, type DecodeFailed, type DecodeJob, type DecodeKeys } from './decode-protocol.js';

interface Decoder {
  codec: BlobCodec;
  fingerprinter: Fingerprinter;
}

const port = parentPort!;
/** Decoders by key set: a worker serves every store (and every restore) of the process. */
const decoders = new Map<string, Promise<Decoder>>();

function decoderFor(keys: DecodeKeys): Promise<Decoder> {
  const id = `${hex(keys.dataKey)}:${hex(keys.fingerprintKey)}`;
  let decoder = decoders.get(id);
  if (!decoder) {
    decoder = BlobCodec.create({ dataKey: keys.dataKey }).then((codec) => ({
      codec,
      fingerprinter: createFingerprinter(keys.fingerprintKey ? { algorithm: 'blake3', key: keys.fingerprintKey } : { algorithm: 'blake3' }),
    }));
    decoders.set(id, decoder);
  }
  return decoder;
}

port.on('message', (job: DecodeJob) => {
  decoderFor(job.keys).then(
    (decoder) => run(job, decoder),
    (err: unknown) => port.postMessage({ id: job.id, error: { message: describe(err) } } satisfies DecodeFailed),
  );
});

/** Output buffers are made in multiples of this, so that one fits later jobs of about the same size. */
const OUTPUT_GRAIN = 256 * 1024;

/** One per worker: every job's lz4 blocks decode into the same memory (zstd frames, into their own buffers: BlobCodec.decodeSync). */
const lz4 = new Lz4ArenaDecoder();
const uncompress = (payload: Uint8Array, rawLength: number) => lz4.decode(payload, rawLength);

function run(job: DecodeJob, { codec, fingerprinter }: Decoder): void {
  const view = new Uint8Array(job.buffer, job.byteOffset, job.byteLength);
  const count = job.blobs.length / BLOB_FIELDS;
  const decoded: Uint8Array[] = new Array(count);
  let maxStored = 0;
  let totalRaw = 0;
  for (let i = 0; i < count; i++) {
    maxStored = Math.max(maxStored, job.blobs[i * BLOB_FIELDS + 1]);
    totalRaw += job.blobs[i * BLOB_FIELDS + 3];
  }
  lz4.begin(maxStored, totalRaw);
  for (let i = 0; i < count; i++) {
    const b = i * BLOB_FIELDS;
    const offset = job.blobs[b];
    const storedLength = job.blobs[b + 1];
    const fingerprint = job.fingerprints.subarray(i * 32, i * 32 + 32);
    try {
      decoded[i] = codec.decodeSync(
        view.subarray(offset, offset + storedLength),
        { codec: job.blobs[b + 2], rawLength: job.blobs[b + 3] },
        fingerprint,
        fingerprinter.digest,
        uncompress,
      );
    } catch (err) {
      port.postMessage({
        id: job.id,
        error: { blob: i, check: err instanceof BlobCorruptError ? err.check : undefined, message: describe(err) },
      } satisfies DecodeFailed);
      return;
    }
  }
  let written = 0;
  if (job.fd !== undefined && job.writes.length > 0) {
    try {
      written = writeRuns(job.fd, job.writes, decoded);
    } catch (err) {
      port.postMessage({ id: job.id, error: { code: (err as NodeJS.ErrnoException).code, message: describe(err) } } satisfies DecodeFailed);
      return;
    }
  }
  if (!job.returnData) {
    port.postMessage(
      { id: job.id, written, input: job.buffer, ...(job.output ? { unused: job.output } : {}) } satisfies DecodeDone,
      job.output ? [job.buffer, job.output] : [job.buffer],
    );
    return;
  }
  // One buffer for all blobs, transferred back: one message, no per-blob structured clone.
  let total = 0;
  for (const d of decoded) total += d.length;
  // The buffer the main thread gave back from an earlier job if it fits (fresh memory
  // costs page faults and, once transferred, V8 garbage collections), else a new one.
  const data =
    job.output && job.output.byteLength >= total
      ? new Uint8Array(job.output, 0, total)
      : new Uint8Array(Buffer.allocUnsafeSlow(Math.ceil(Math.max(total, 1) / OUTPUT_GRAIN) * OUTPUT_GRAIN).buffer, 0, total);
  const starts = new Float64Array(count);
  let at = 0;
  for (let i = 0; i < count; i++) {
    starts[i] = at;
    data.set(decoded[i], at);
    at += decoded[i].length;
  }
  const transfer = [data.buffer as ArrayBuffer, starts.buffer as ArrayBuffer, job.buffer];
  // An output buffer offered but too small goes back too, or it would be lost.
  if (job.output && job.output !== data.buffer) transfer.push(job.output);
  port.postMessage(
    {
      id: job.id,
      data: data.buffer as ArrayBuffer,
      starts,
      written,
      input: job.buffer,
      ...(job.output && job.output !== data.buffer ? { unused: job.output } : {}),
    } satisfies DecodeDone,
    transfer,
  );
}

/**
 * The writes sorted by position and merged into runs of adjacent pieces, each run one
 * writev: a first backup appends new blobs to packs in stream order, so most ranges
 * restore as a few large writes.
 */
function writeRuns(fd: number, writes: Float64Array, decoded: Uint8Array[]): number {
  const n = writes.length / WRITE_FIELDS;
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => writes[x * WRITE_FIELDS + 3] - writes[y * WRITE_FIELDS + 3]);
  let written = 0;
  let run: Uint8Array[] = [];
  let runAt = 0;
  let runEnd = 0;
  const flush = () => {
    if (run.length > 0) written += writeFully(fd, run, runAt);
    run = [];
  };
  for (const i of order) {
    const w = i * WRITE_FIELDS;
    const piece = decoded[writes[w]].subarray(writes[w + 1], writes[w + 2]);
    const position = writes[w + 3];
    if (run.length === 0 || position !== runEnd || run.length >= 1024) {
      flush();
      runAt = position;
      runEnd = position;
    }
    run.push(piece);
    runEnd += piece.length;
  }
  flush();
  return written;
}

/** writev until every byte is out (a write may be short). */
function writeFully(fd: number, buffers: Uint8Array[], position: number): number {
  let total = 0;
  for (const b of buffers) total += b.length;
  let done = buffers.length === 1 ? writeSync(fd, buffers[0], 0, buffers[0].length, position) : writevSync(fd, buffers, position);
  while (done < total) {
    // Rare: continue from the first byte not written, one buffer at a time.
    let skip = done;
    let i = 0;
    while (skip >= buffers[i].length) skip -= buffers[i++].length;
    const rest = buffers[i].subarray(skip);
    done += writeSync(fd, rest, 0, rest.length, position + done);
  }
  return total;
}

function hex(b: Uint8Array | undefined): string {
  return b ? Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex') : '-';
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
