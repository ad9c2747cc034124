/**
 * One planned read, end to end: the ranged read (bounded by the store's read
 * concurrency, shared by every window in flight), then decode, fingerprint check and,
 * for positional targets, the writes, in a decode worker. Failures come back named:
 * the snapshot, the pack and the stream offset of the blob (invariant 4).
 */
import type { LimitFunction } from 'p-limit';
import { IntegrityError } from '../repo/errors.js';
import type { StoreIndex } from '../repo/store-index.js';
import type { RangeReader } from '../store/object-store.js';
import { DecodePool } from './decode-pool.js';
import { BLOB_FIELDS, WRITE_FIELDS, type DecodeKeys, type DecodeReply } from './decode-protocol.js';
import { BATCH_MAX_BYTES, type Batch } from './read-plan.js';

/** What the workers do with decoded blobs. */
export type DecodeOutput =
  /** Write each piece at (stream offset + from - base) into fd. */
  | { kind: 'positional'; fd: number; base: number }
  /** Send the bytes back, for an ordered sink or the whole-stream hash. */
  | { kind: 'return' }
  /** Check only (verify-only restores). */
  | { kind: 'check' };

/** A restore failed writing its target (disk full, I/O error): not damaged data. */
export class RestoreWriteError extends Error {
  override readonly name = 'RestoreWriteError';
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

export interface BatchDecoderOptions {
  snapshotKey: string;
  index: StoreIndex;
  reader: RangeReader;
  reads: LimitFunction;
  pool: DecodePool;
  keys: DecodeKeys;
  output: DecodeOutput;
  /** Counts bytes read from the object store. */
  onFetched(bytes: number): void;
}

/** Read buffers kept for reuse: enough for the reads and decodes in flight of a typical restore. */
const SPARE_BUFFERS = 8;

export class BatchDecoder {
  /** Buffers the workers gave back; reads go into them instead of fresh memory. */
  private readonly spare: ArrayBuffer[] = [];
  /** Output buffers whose bytes the sink has written (ordered targets). */
  private readonly outputs: ArrayBuffer[] = [];

  constructor(private readonly o: BatchDecoderOptions) {}

  /**
   * Runs one batch; for 'return' output, the decoded bytes of each of its pieces (in
   * batch.pieces order), all views of `buffer`, which the caller may hand back with
   * recycleOutput() once nothing refers to them any more.
   */
  async run(batch: Batch): Promise<{ views: Uint8Array[]; buffer: ArrayBuffer } | undefined> {
    const { o } = this;
    const packKey = o.index.packKey(batch.pack);
    const length = batch.end - batch.start;
    // A spare buffer, or a new one of full size so that it can serve later reads too.
    const spare = length <= BATCH_MAX_BYTES ? this.spare.pop() : undefined;
    const into = spare ?? new ArrayBuffer(Math.max(length, BATCH_MAX_BYTES));
    let bytes: Uint8Array;
    try {
      bytes = await o.reads(() => o.reader.read(packKey, { offset: batch.start, length }, new Uint8Array(into)));
      if (bytes.buffer !== into) this.recycle(into);
    } catch (err) {
      this.recycle(into);
      throw new IntegrityError(o.snapshotKey, packKey, batch.pieces[0].piece.offset, `cannot read bytes ${batch.start}+${length}: ${describe(err)}`);
    }
    o.onFetched(bytes.length);
    // The reader's own buffer (S3) may share its memory: copy unless it is ours or its own.
    if (bytes.buffer !== into) bytes = owned(bytes);

    const blobs = new Int32Array(batch.blobs.length * BLOB_FIELDS);
    const fingerprints = new Uint8Array(batch.blobs.length * 32);
    batch.blobs.forEach((piece, i) => {
      const loc = piece.location!;
      blobs.set([loc.offset - batch.start, loc.storedLength, loc.codec, piece.ref.length], i * BLOB_FIELDS);
      fingerprints.set(piece.ref.fingerprint, i * 32);
    });
    const out = o.output;
    let writes = new Float64Array(0);
    if (out.kind === 'positional') {
      writes = new Float64Array(batch.pieces.length * WRITE_FIELDS);
      batch.pieces.forEach(({ piece, blob }, i) => writes.set([blob, piece.from, piece.to, piece.offset + piece.from - out.base], i * WRITE_FIELDS));
    }
    const offered = out.kind === 'return' ? this.outputs.pop() : undefined;
    const reply: DecodeReply = await o.pool.run(
      {
        keys: o.keys,
        buffer: bytes.buffer as ArrayBuffer,
        byteOffset: bytes.byteOffset,
        byteLength: bytes.byteLength,
        blobs,
        fingerprints,
        fd: out.kind === 'positional' ? out.fd : undefined,
        writes,
        returnData: out.kind === 'return',
        output: offered,
      },
      offered ? [bytes.buffer as ArrayBuffer, offered] : [bytes.buffer as ArrayBuffer],
    );
    if (reply.input) this.recycle(reply.input);
    if ('unused' in reply && reply.unused) this.recycleOutput(reply.unused);
    if ('error' in reply) {
      const { error } = reply;
      if (error.blob === undefined) {
        if (error.code !== undefined) throw new RestoreWriteError(`cannot write the restored data: ${error.message}`, error.code);
        throw new Error(`restore decode worker: ${error.message}`);
      }
      const piece = batch.blobs[error.blob];
      const loc = piece.location!;
      throw new IntegrityError(o.snapshotKey, packKey, piece.offset, `blob at pack offset ${loc.offset} (${loc.storedLength} bytes): ${error.message}`);
    }
    if (out.kind !== 'return') return undefined;
    const data = reply.data!;
    const starts = reply.starts!;
    return { views: batch.pieces.map(({ piece, blob }) => new Uint8Array(data, starts[blob] + piece.from, piece.to - piece.from)), buffer: data };
  }

  /** An output buffer of run() whose bytes are all written: the next job may fill it. */
  recycleOutput(buffer: ArrayBuffer): void {
    if (buffer.byteLength > 0 && this.outputs.length < SPARE_BUFFERS) this.outputs.push(buffer);
  }

  private recycle(buffer: ArrayBuffer): void {
    // Only full-size buffers: a small one would rarely fit the next read.
    if (buffer.byteLength >= BATCH_MAX_BYTES && this.spare.length < SPARE_BUFFERS) this.spare.push(buffer);
  }
}

/**
 * A view that owns its whole ArrayBuffer, so transferring it to a worker detaches
 * nothing else (small Buffers share Node's 8 KiB pool slab; a body may be a subarray).
 */
function owned(bytes: Uint8Array): Uint8Array {
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && !(bytes.buffer instanceof SharedArrayBuffer)) return bytes;
  return Uint8Array.prototype.slice.call(bytes);
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
