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
import type { DecodePool } from './decode-pool.js';
import { BLOB_FIELDS, WRITE_FIELDS, type DecodeKeys, type DecodeReply } from './decode-protocol.js';
import { BATCH_GAP_BYTES, BATCH_MAX_BYTES, type Batch } from './read-plan.js';

/** What the workers do with decoded blobs. */
export type DecodeOutput =
  /** Write each piece at (stream offset + from - base) into fd. */
  | { kind: 'positional'; fd: number; base: number }
  /** Send the bytes back, for an ordered sink or the whole-stream hash. */
  | { kind: 'return' }
  /** Check only (verify-only restores). */
  | { kind: 'check' };

/**
 * A restore failed writing its target (disk full, I/O error): not damaged data. Like
 * EnvironmentError, its `code` is the errno (ENOSPC, EIO, ...), not a code of the error
 * table: the CLI reports ENOSPC, EDQUOT, EACCES, EPERM and EROFS as what the environment
 * refused and any other errno as a failed work (exit 1).
 */
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

/** Buffers kept for reuse per pool (reads; decoded output): enough for what is in flight. */
const SPARE_BUFFERS = 16;
/** Buffers are made in multiples of this, so that one fits later ranges of about the same size. */
const SPARE_GRAIN = 256 * 1024;

/**
 * Buffers handed back for reuse. Fresh memory costs page faults, and every buffer moved
 * between threads counts as new external memory to V8, which then collects garbage more
 * often; a later snapshot reads many small ranges (unchanged chunks here and there in old
 * packs), so buffers are sized to the range and taken best-fit.
 */
class BufferPool {
  private readonly free: ArrayBuffer[] = [];

  constructor(private readonly largest: number) {}

  /** The smallest free buffer that holds `length` bytes, else a new one (not zero-filled). */
  take(length: number): ArrayBuffer {
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      if (this.free[i].byteLength >= length && (best < 0 || this.free[i].byteLength < this.free[best].byteLength)) best = i;
    }
    if (best >= 0) return this.free.splice(best, 1)[0];
    return Buffer.allocUnsafeSlow(Math.ceil(Math.max(length, 1) / SPARE_GRAIN) * SPARE_GRAIN).buffer as ArrayBuffer;
  }

  /** The smallest free buffer that holds `length` bytes, if there is one. */
  takeIfFits(length: number): ArrayBuffer | undefined {
    const fits = this.free.some((b) => b.byteLength >= length);
    return fits ? this.take(length) : undefined;
  }

  give(buffer: ArrayBuffer): void {
    if (buffer.byteLength === 0 || buffer.byteLength > this.largest) return; // a rare giant: let it go
    if (this.free.length >= SPARE_BUFFERS) {
      // Keep the larger ones: they fit more ranges.
      let smallest = 0;
      for (let i = 1; i < this.free.length; i++) if (this.free[i].byteLength < this.free[smallest].byteLength) smallest = i;
      if (this.free[smallest].byteLength >= buffer.byteLength) return;
      this.free.splice(smallest, 1);
    }
    this.free.push(buffer);
  }
}

export class BatchDecoder {
  /** Buffers the workers gave back; reads go into them instead of fresh memory. */
  private readonly spare = new BufferPool(BATCH_MAX_BYTES + BATCH_GAP_BYTES);
  /** Output buffers whose bytes the sink has written (ordered targets). */
  private readonly outputs = new BufferPool(4 * BATCH_MAX_BYTES);

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
    const into = this.spare.take(length);
    let bytes: Uint8Array;
    try {
      bytes = await o.reads(() => o.reader.read(packKey, { offset: batch.start, length }, new Uint8Array(into)));
      if (bytes.buffer !== into) this.spare.give(into);
    } catch (err) {
      this.spare.give(into);
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
    const offered = out.kind === 'return' ? this.outputs.takeIfFits(batch.blobs.reduce((n, p) => n + p.ref.length, 0)) : undefined;
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
    this.spare.give(reply.input);
    if (reply.unused) this.recycleOutput(reply.unused);
    if (out.kind !== 'return') return undefined;
    const data = reply.data!;
    const starts = reply.starts!;
    return { views: batch.pieces.map(({ piece, blob }) => new Uint8Array(data, starts[blob] + piece.from, piece.to - piece.from)), buffer: data };
  }

  /** An output buffer of run() whose bytes are all written: the next job may fill it. */
  recycleOutput(buffer: ArrayBuffer): void {
    this.outputs.give(buffer);
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
