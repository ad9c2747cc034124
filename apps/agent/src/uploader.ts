/**
 * Source-side dedup: one source streamed to the media server as one backup session.
 *
 *   source -> Chunker (FastCDC + BLAKE3, the store's parameters) -> batch of references
 *     -> "which of these are missing?" -> encode only those (lz4 [+ AES-GCM]) -> PUT batch
 *   end -> the source's exit status -> commit (the server writes the manifest)
 *
 * Batches are pipelined: while batch N uploads, batch N+1 is asked about and encoded and
 * batch N+2 fills. Memory is bounded: BATCHES_IN_FLIGHT + 1 batch arenas, each at most the
 * batch size (the server's batchBytes, at most AGENT_BATCH_BYTES) plus one chunk; a batch's
 * new chunks are encoded in its arena, where they lie.
 *
 * A dropped connection is retried within the session: a batch is resent under the same
 * sequence number (the server applies it once), so a flaky link costs time, not a restart.
 */
import type { Blake3Hasher } from '@napi-rs/blake-hash';
import { Chunker, type ChunkerSpec, type FingerprintSpec } from '@hoard/chunker';
import {
  BATCH_HEADER_BYTES,
  BLOB_HEADER_BYTES,
  type HoardClient,
  ServerError,
  ServerUnreachableError,
  chunkerFromWire,
  encodeBatchHeader,
  encodeBlobHeader,
  encodeRefs,
  isMissing,
  throttled,
  type BeginSessionResponse,
  type CommitRequest,
  type CommitResponse,
  type RunProgress,
  type SourceStat,
  type TokenBucket,
  type WireRef,
} from '@hoard/protocol/agent';
import { BlobCodec, SEAL_OVERHEAD, compressionFrom, fingerprintKey, hashChunkRef, retrying, streamHasher, type EncodedBlob } from '@hoard/repository';
import { RemotePreviousSnapshot } from './previous-snapshot.js';
import { SMALL_FILE_BYTES, type DirArchiveStats } from './sources/dir.js';
import type { OpenedSource, PreviousSnapshot, SourceTarget } from './sources/source.js';

/**
 * Batches past the one filling: being asked about, encoded, or on the wire (one upload at
 * a time, in order). The chunker waits when all are taken, so the agent holds at most
 * BATCHES_IN_FLIGHT + 1 arenas (the encoded blobs live in them).
 * With one, the runs were a little slower for ~5-10 MiB less RSS (benchmarks/README.md,
 * "Token cache, shared intake buffers, 4 MiB agent batches").
 */
const BATCHES_IN_FLIGHT = 2;
/**
 * The agent's batch size when the server allows more: smaller batches keep the pipeline
 * full with less memory (4 MiB against 8: agent peak RSS 185 against 210-240 MiB for a
 * 512 MiB first backup, the same CPU per byte).
 */
const AGENT_BATCH_BYTES = 4 * 1024 * 1024;
/** The agent's chunker segments (see `run`). */
const AGENT_SEGMENT_BYTES = 2 * 1024 * 1024;
/**
 * A request to the server is tried this many times in all while it fails as retryableStatus
 * says, waiting 100-200 ms after the first failure, doubling up to 2.5-5 s (the wait is
 * half random, so agents that lost the server at once do not come back at once).
 */
const REQUEST_ATTEMPTS = 8;
const requestDelayMs = (attempt: number): number => Math.min(5_000, 100 * 2 ** attempt) * (0.5 + Math.random() / 2);

export interface UploadOptions {
  job: string;
  run?: string;
  signal?: AbortSignal;
  onProgress?: (progress: RunProgress) => void;
  /** Chunker worker threads (default: the chunker's). */
  workers?: number;
  /**
   * Read everything again (a full run). Otherwise (incremental, the default) a source
   * that can, a directory, refers to what did not change since the previous snapshot
   * instead of reading it.
   */
  full?: boolean;
  /** The snapshot's start time, in ms since the epoch (default Date.now; tests simulate months). */
  clock?: () => number;
  /** Caps the bytes sent in batch bodies (the run's bandwidth limit). */
  throttle?: TokenBucket;
  /** Caps the bytes read from the source (the agent's read limit, footprint.ts). */
  readThrottle?: TokenBucket;
}

export interface UploadResult extends CommitResponse {
  /** Request bytes the agent sent on the data path (fingerprint queries and batches). */
  wireBytes: number;
  durationMs: number;
  /** Directory archives: files read and files unchanged (referred to again, not read). */
  archive?: DirArchiveStats;
  /** Image files: whether the image was unchanged and referred to again instead of read. */
  image?: { unchanged: boolean; bytesUnchanged: number; previous?: string };
}

/** A source failed (read error, dump exited non-zero, wrong length); nothing was committed. */
export class BackupFailedError extends Error {
  override readonly name = 'BackupFailedError';
  readonly code = 'work_failed';
}

interface Totals {
  /** Bytes the source actually read (less than logicalBytes when unchanged parts were referred to again). */
  bytesRead: number;
  logicalBytes: number;
  chunks: number;
}

interface PendingBlob {
  /** fingerprintKey(fingerprint). */
  key: string;
  ref: number;
  at: number;
  length: number;
  fingerprint: Uint8Array;
}

class Batch {
  readonly refs: WireRef[] = [];
  readonly blobs: PendingBlob[] = [];
  /** First blob per fingerprint in this batch: a chunk repeated within it is sent once. */
  readonly seen = new Set<string>();
  used = 0;

  /**
   * The batch's new chunks, each followed by SEAL_OVERHEAD spare bytes: the encode worker
   * writes their stored bytes where they lie (the buffer travels to it and back), so a new
   * chunk is copied once, here, and the agent holds no second buffer of encoded blobs.
   */
  constructor(public arena: Buffer) {}

  reset(): void {
    this.refs.length = 0;
    this.blobs.length = 0;
    this.seen.clear();
    this.used = 0;
  }
}

export async function uploadSource(client: HoardClient, target: SourceTarget, options: UploadOptions): Promise<UploadResult> {
  const started = Date.now();
  const startedAt = new Date(options.clock?.() ?? started).toISOString();
  let session: BeginSessionResponse | undefined;
  // Asked for only once the parts are being read, which is after the session began.
  const previous = async (): Promise<PreviousSnapshot | undefined> => {
    const parent = session?.parentSnapshot;
    if (options.full || !parent || !parent.sameStore) return undefined;
    return new RemotePreviousSnapshot(client, options.job, parent.id, parent.kind, parent.logicalBytes, options.signal, parent.sourceStat);
  };
  const opened = await target.open(options.signal, { previous });
  try {
    session = await withRetries(
      () => client.beginSession({ job: options.job, source: { name: target.name, kind: target.kind }, chunking: target.chunking, run: options.run }),
      options.signal,
    );
    const upload = new SessionUpload(client, session, target, options);
    await upload.init();
    // An image source decides here, with the session's previous snapshot, whether to read (unchanged-image.ts).
    await opened.prepare?.();
    const totals = await upload.run(opened);
    // The producer's verdict comes before any commit: a dump that exited non-zero leaves
    // no snapshot (like `set -o pipefail`).
    try {
      await opened.done;
    } catch (err) {
      const message = (err as Error).message;
      throw new BackupFailedError(`${message.includes(target.name) ? '' : `${target.name}: `}${message}; no snapshot was committed`);
    }
    if (opened.expectedBytes !== undefined && totals.bytesRead !== opened.expectedBytes) {
      throw new BackupFailedError(
        `${target.name} ${totals.bytesRead < opened.expectedBytes ? 'ended early' : 'ran long'}: read ${totals.bytesRead} bytes, expected ${opened.expectedBytes}; no snapshot was committed`,
      );
    }
    const commit = await upload.commit(totals, startedAt, opened.sourceStat);
    return {
      ...commit,
      wireBytes: upload.wireBytes,
      durationMs: Date.now() - started,
      ...(opened.archive ? { archive: opened.archive } : {}),
      ...(opened.image ? { image: opened.image } : {}),
    };
  } catch (err) {
    if (session) await client.abortSession(session.session).catch(() => undefined);
    throw err;
  } finally {
    await opened.close();
  }
}

class SessionUpload {
  private codec!: BlobCodec;
  private readonly chunker: ChunkerSpec;
  private readonly fingerprint: FingerprintSpec;
  private readonly hasher: Blake3Hasher;
  private seq = 0;
  /** Blobs of batches in flight that the server lacked (by fingerprintKey): sent by those batches, not asked for again. */
  private readonly carried = new Set<string>();
  private queryChain: Promise<void> = Promise.resolve();
  private uploadChain: Promise<void> = Promise.resolve();
  wireBytes = 0;
  private bytesNew = 0;
  /** The source's size when known (a file, a device): progress then carries a total, for percent and ETA. */
  private bytesTotal: number | undefined;
  private readonly batchChunks: number;
  private readonly batchBytes: number;

  constructor(
    private readonly client: HoardClient,
    private readonly session: BeginSessionResponse,
    private readonly target: SourceTarget,
    private readonly options: UploadOptions,
  ) {
    const secrets = session.store.secrets;
    const fingerprintKey = secrets ? Buffer.from(secrets.fingerprintKey, 'base64') : undefined;
    this.fingerprint = fingerprintKey ? { algorithm: 'blake3', key: fingerprintKey } : { algorithm: 'blake3' };
    this.hasher = streamHasher(fingerprintKey);
    this.chunker = chunkerFromWire(session.chunker);
    this.batchChunks = Math.max(1, Math.min(session.limits.batchChunks, session.limits.queryFingerprints));
    this.batchBytes = Math.max(Math.min(session.limits.batchBytes, AGENT_BATCH_BYTES), session.maxChunk);
  }

  async init(): Promise<void> {
    const secrets = this.session.store.secrets;
    // The store's setting; a server from before the setting sends none, and its stores use lz4.
    const { compression = 'lz4' } = this.session.store;
    this.codec = await BlobCodec.create({
      dataKey: secrets ? Buffer.from(secrets.dataKey, 'base64') : undefined,
      compression: compressionFrom(compression, `the session's store ${this.session.store.name}`),
    });
  }

  async run(input: OpenedSource): Promise<Totals> {
    this.bytesTotal = input.expectedBytes;
    const arenaBytes = this.batchBytes + this.session.maxChunk + SEAL_OVERHEAD;
    const spare = Array.from({ length: BATCHES_IN_FLIGHT + 1 }, () => new Batch(Buffer.allocUnsafeSlow(arenaBytes)));
    let current = spare.pop()!;
    /** Batches handed to the pipeline, oldest first; each resolves to its arena once sent. */
    const inFlight: Promise<Batch>[] = [];
    const totals: Totals = { bytesRead: 0, logicalBytes: 0, chunks: 0 };
    const chunker = new Chunker({
      chunker: this.chunker,
      fingerprint: this.fingerprint,
      workers: this.options.workers,
      reuseBuffers: true,
      // 2 MiB segments (the embedded backup cuts 4): 4 segments are in flight with one
      // chunker worker, and on a 4 GiB image 2 MiB held the agent's peak RSS 8 MiB lower
      // for the same CPU (docs/operations.md, "Memory budget").
      pipeline: { segmentBytes: AGENT_SEGMENT_BYTES },
    });
    // Small parts (most files of a directory) are cut in-thread: a worker round trip per file costs more than it saves.
    const small = input.parts ? new Chunker({ chunker: this.chunker, fingerprint: this.fingerprint, workers: 0, reuseBuffers: true }) : undefined;
    const ship = async (): Promise<void> => {
      const full = current;
      inFlight.push(this.pipeline(full, totals.bytesRead).then(() => full));
      // Backpressure: with every arena in the pipeline, the chunker waits for the oldest batch.
      if (spare.length === 0) spare.push(await inFlight.shift()!);
      current = spare.pop()!;
      current.reset();
    };
    /** Adds a chunk to the batch; a promise only when the batch is full and was shipped (wait for it). */
    const add = (ref: WireRef, bytes?: Uint8Array): Promise<void> | undefined => {
      this.options.signal?.throwIfAborted();
      // The stream hash covers the chunk list (manifest streamHashOver "chunks"): the
      // restore checks it without a second pass over the bytes (docs/format.md).
      hashChunkRef(this.hasher, ref.length, ref.fingerprint);
      totals.logicalBytes += ref.length;
      totals.chunks++;
      current.refs.push(ref);
      if (bytes && !ref.zero) {
        const key = fingerprintKey(ref.fingerprint);
        if (!current.seen.has(key)) {
          current.seen.add(key);
          current.arena.set(bytes, current.used);
          current.blobs.push({ key, ref: current.refs.length - 1, at: current.used, length: ref.length, fingerprint: ref.fingerprint });
          current.used += ref.length + SEAL_OVERHEAD;
        }
      }
      return current.refs.length >= this.batchChunks || current.used >= this.batchBytes ? ship() : undefined;
    };
    const chunkAll = async (stream: AsyncIterable<Uint8Array>, using: Chunker): Promise<void> => {
      // A segment's chunks at a time (Chunker.chunkBatches): no promise per chunk here.
      for await (const batch of using.chunkBatches(throttled(stream, this.options.readThrottle, this.options.signal))) {
        for (const chunk of batch) {
          totals.bytesRead += chunk.length;
          const shipped = add(
            { length: chunk.length, zero: chunk.zero, fingerprint: chunk.zero ? new Uint8Array(32) : Uint8Array.from(chunk.fingerprint) },
            chunk.bytes,
          );
          if (shipped) await shipped;
        }
      }
    };
    try {
      if (input.parts) {
        for await (const part of input.parts) {
          if (part.kind === 'chunks') {
            for await (const ref of part.refs) await add({ length: ref.length, zero: ref.zero, fingerprint: Uint8Array.from(ref.fingerprint) });
          } else {
            await chunkAll(part.stream, small && (part.sizeHint ?? Infinity) < SMALL_FILE_BYTES ? small : chunker);
          }
        }
      } else if (input.stream) {
        await chunkAll(input.stream, chunker);
      }
      if (current.refs.length > 0) await ship();
      while (inFlight.length > 0) await inFlight.shift();
    } catch (err) {
      await Promise.allSettled(inFlight);
      throw err;
    } finally {
      await chunker.close();
      await small?.close();
    }
    return totals;
  }

  /**
   * One batch through the pipeline: its fingerprint query (after the previous batch's, so
   * it knows which blobs that one carries), its encodes, then its upload once the previous
   * batch's upload was answered. The query and encodes of batch N+1 run while batch N uploads.
   */
  private pipeline(batch: Batch, bytesRead: number): Promise<void> {
    const queried = this.queryChain.then(() => this.query(batch));
    this.queryChain = queried.then(
      () => undefined,
      () => undefined,
    );
    const encoded = queried.then((wanted) => encodeAll(this.codec, batch, wanted));
    // Uploads go in sequence order (the server applies batch N+1 only after batch N).
    const sent = Promise.all([encoded, this.uploadChain]).then(([blobs]) => this.upload(batch, blobs, bytesRead));
    this.uploadChain = sent;
    return sent;
  }

  /**
   * The batch's blobs the server lacks. A blob an earlier batch still in flight carries is
   * not asked for: that batch is applied first, so this one may refer to it.
   */
  private async query(batch: Batch): Promise<PendingBlob[]> {
    const candidates = batch.blobs.filter((b) => !this.carried.has(b.key));
    if (candidates.length === 0) return [];
    const query = Buffer.allocUnsafe(candidates.length * 32);
    candidates.forEach((b, i) => query.set(b.fingerprint, i * 32));
    const bitmap = await withRetries(() => this.client.missing(this.session.session, query), this.options.signal);
    this.wireBytes += query.length;
    const wanted = candidates.filter((_, i) => isMissing(bitmap, i));
    for (const w of wanted) this.carried.add(w.key);
    return wanted;
  }

  /** Sends the batch (its references and the encoded blobs the server lacked). */
  private async upload(batch: Batch, encoded: EncodedPending[], bytesRead: number): Promise<void> {
    const id = this.session.session;
    const refs = encodeRefs(batch.refs);
    const header = encodeBatchHeader({ refCount: batch.refs.length, blobCount: encoded.length });
    const seq = this.seq++;
    async function* body(): AsyncGenerator<Uint8Array> {
      yield header;
      yield refs;
      for (const e of encoded) {
        yield encodeBlobHeader({ fingerprint: e.fingerprint, codec: e.blob.codec, rawLength: e.blob.rawLength, storedLength: e.blob.stored.length });
        yield e.blob.stored;
      }
    }
    // inMemory: the encoded blobs stay referenced until the answer, the socket may queue them all.
    await withRetries(() => this.client.batch(id, seq, throttled(body(), this.options.throttle, this.options.signal), { inMemory: true }), this.options.signal);
    for (const e of encoded) this.carried.delete(e.key);
    const bodyBytes = BATCH_HEADER_BYTES + refs.length + encoded.reduce((n, e) => n + BLOB_HEADER_BYTES + e.blob.stored.length, 0);
    this.wireBytes += bodyBytes;
    this.bytesNew += encoded.reduce((n, e) => n + e.blob.rawLength, 0);
    this.options.onProgress?.({
      target: this.target.name,
      bytesRead,
      bytesSent: this.wireBytes,
      bytesNew: this.bytesNew,
      ...(this.bytesTotal !== undefined ? { bytesTotal: this.bytesTotal } : {}),
    });
  }

  async commit(totals: Totals, startedAt: string, sourceStat?: SourceStat): Promise<CommitResponse> {
    const request: CommitRequest = {
      batches: this.seq,
      chunks: totals.chunks,
      logicalBytes: totals.logicalBytes,
      bytesRead: totals.bytesRead,
      streamHash: this.hasher.digest('hex'),
      streamHashOver: 'chunks',
      startedAt,
    };
    if (sourceStat) request.sourceStat = sourceStat;
    try {
      return await withRetries(() => this.client.commit(this.session.session, request), this.options.signal);
    } catch (err) {
      // A commit whose answer was lost and is retried: the server says it is already
      // committed and names the snapshot.
      if (err instanceof ServerError && err.status === 409 && typeof err.body.committed === 'object' && err.body.committed !== null) {
        return err.body.committed as CommitResponse;
      }
      throw err;
    }
  }
}

interface EncodedPending {
  key: string;
  fingerprint: Uint8Array;
  blob: EncodedBlob;
}

/**
 * Every wanted chunk of the batch, encoded in the batch's own arena in one message to an
 * encode worker (BlobCodec.encodeInPlace); the arena comes back holding the blobs and is
 * the batch's again. The batch's size bounds what is in flight.
 */
async function encodeAll(codec: BlobCodec, batch: Batch, wanted: PendingBlob[]): Promise<EncodedPending[]> {
  if (wanted.length === 0) return [];
  // Read before the transfer: a transferred buffer's views are left 0 bytes long.
  const { byteOffset, length } = batch.arena;
  const { buffer, blobs } = await codec.encodeInPlace(
    batch.arena.buffer as ArrayBuffer,
    wanted.map((w) => ({ start: byteOffset + w.at, length: w.length, fingerprint: w.fingerprint })),
  );
  batch.arena = Buffer.from(buffer, byteOffset, length);
  return wanted.map((w, i) => ({ key: w.key, fingerprint: w.fingerprint, blob: blobs[i] }));
}

/**
 * 5xx is worth retrying (a 503 "pack lost" only twice: the session cannot recover it),
 * and so is 409 "busy": the server is still finishing the interrupted request. A 507 is
 * the server's storage refusing (disk full, read-only, bucket over quota): not in seconds.
 */
function retryableStatus(err: ServerError, attempt: number): boolean {
  if (err.status === 409) return /busy/.test(err.message);
  if (err.status === 507) return false;
  if (err.status === 503) return attempt < 3;
  return err.status >= 500 && err.status !== 501;
}

/**
 * Retries what a dropped connection or a busy session interrupted: unreachable server,
 * 5xx answers, and 409 "busy" (the server is still finishing the interrupted request).
 */
function withRetries<T>(call: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  return retrying(call, {
    attempts: REQUEST_ATTEMPTS,
    retryable: (err, attempt) => err instanceof ServerUnreachableError || (err instanceof ServerError && retryableStatus(err, attempt)),
    delayMs: requestDelayMs,
    signal,
  });
}
