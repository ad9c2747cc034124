/**
 * The encode workers of backups (encode-worker.ts): one pool per process, started on first
 * use, idle workers do not keep the process alive. Jobs go to the worker with the fewest
 * bytes queued; a worker that dies fails the jobs it held and is replaced.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { ErrorCode } from '@hoard/errors';
import type { EncodedBlob } from './codec.js';
import type { BlobCompression } from './compression.js';

export interface EncodeJob {
  id: number;
  /** The chunk's bytes (the first `length` of `raw`), transferred: the worker owns them. */
  raw: ArrayBuffer;
  length: number;
  fingerprint: Uint8Array;
  dataKey?: Uint8Array;
  compression: BlobCompression;
}
export interface EncodeDone {
  id: number;
  /** The job's `raw` buffer with the stored bytes in it (or, if they did not fit, a buffer of their own). */
  stored: ArrayBuffer;
  offset: number;
  length: number;
  codec: number;
  checksum: bigint;
}
export interface EncodeFailed {
  id: number;
  error: string;
}

export class EncodeWorkerError extends Error {
  override readonly name = 'EncodeWorkerError';
  readonly code: ErrorCode = 'work_failed';
}

interface Pending {
  resolve: (blob: EncodedBlob) => void;
  reject: (err: Error) => void;
  bytes: number;
  rawLength: number;
}

interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
  queuedBytes: number;
}

/**
 * HOARD_ENCODE_WORKERS, else one per core but one (the chunker's worker and the main thread
 * need the other), at least 1, at most 4. Each worker is an isolate of ~12 MiB: on two
 * cores a second one bought no speed (the cores were busy already) and cost that memory.
 */
export function defaultEncodeWorkers(): number {
  const configured = Number(process.env.HOARD_ENCODE_WORKERS);
  if (Number.isInteger(configured) && configured >= 1 && configured <= 64) return configured;
  return Math.max(1, Math.min(4, availableParallelism() - 1));
}

let shared: EncodePool | undefined;

/** Job buffers come in powers of two from this size, so a released one fits most later chunks. */
const MIN_JOB_BUFFER = 64 * 1024;
/** Released job buffers kept for reuse (about the jobs a backup keeps in flight, 8, plus the workers' queues). */
const KEEP_JOB_BUFFERS = 16;

export class EncodePool {
  private readonly slots: Slot[] = [];
  private nextId = 1;
  /**
   * Job buffers back from the workers, by size: each chunk's bytes travel to a worker and
   * its stored bytes back in one buffer, reused for later chunks, so a backup does not
   * leave a trail of garbage buffers behind (V8 only collects them after tens of MiB).
   */
  private readonly free = new Map<number, ArrayBuffer[]>();
  private freeCount = 0;

  constructor(readonly size: number = defaultEncodeWorkers()) {
    for (let i = 0; i < size; i++) this.slots.push(this.start());
  }

  static shared(): EncodePool {
    shared ??= new EncodePool();
    return shared;
  }

  /** Encodes a copy of `raw` (the caller may reuse `raw` as soon as this returns). */
  encode(raw: Uint8Array, fingerprint: Uint8Array, settings: { dataKey?: Uint8Array; compression: BlobCompression }): Promise<EncodedBlob> {
    const id = this.nextId++;
    const buffer = this.takeBuffer(raw.length);
    new Uint8Array(buffer).set(raw);
    let slot = this.slots[0];
    for (const s of this.slots) if (s.queuedBytes < slot.queuedBytes) slot = s;
    return new Promise((resolve, reject) => {
      slot.pending.set(id, { resolve, reject, bytes: raw.length, rawLength: raw.length });
      slot.queuedBytes += raw.length;
      if (slot.pending.size === 1) slot.worker.ref();
      const job: EncodeJob = { id, raw: buffer, length: raw.length, fingerprint, dataKey: settings.dataKey, compression: settings.compression };
      slot.worker.postMessage(job, [job.raw]);
    });
  }

  private takeBuffer(length: number): ArrayBuffer {
    const size = Math.max(MIN_JOB_BUFFER, 2 ** Math.ceil(Math.log2(Math.max(1, length))));
    const reused = this.free.get(size)?.pop();
    if (reused) {
      this.freeCount--;
      return reused;
    }
    return Buffer.allocUnsafeSlow(size).buffer as ArrayBuffer;
  }

  private giveBuffer(buffer: ArrayBuffer): void {
    const size = buffer.byteLength;
    if (this.freeCount >= KEEP_JOB_BUFFERS || size < MIN_JOB_BUFFER || (size & (size - 1)) !== 0) return;
    const list = this.free.get(size) ?? [];
    list.push(buffer);
    this.free.set(size, list);
    this.freeCount++;
  }

  private start(): Slot {
    const worker = new Worker(new URL('./encode-worker.js', import.meta.url));
    worker.unref();
    const slot: Slot = { worker, pending: new Map(), queuedBytes: 0 };
    worker.on('message', (reply: EncodeDone | EncodeFailed) => {
      const p = slot.pending.get(reply.id);
      if (!p) return;
      slot.pending.delete(reply.id);
      slot.queuedBytes -= p.bytes;
      if (slot.pending.size === 0) worker.unref();
      if ('error' in reply) p.reject(new EncodeWorkerError(`encoding a chunk failed: ${reply.error}`));
      else {
        const stored = new Uint8Array(reply.stored, reply.offset, reply.length);
        let released = false;
        const release = (): void => {
          if (!released) this.giveBuffer(reply.stored);
          released = true;
        };
        p.resolve({ stored, codec: reply.codec, rawLength: p.rawLength, checksum: reply.checksum, release });
      }
    });
    const fail = (err: Error) => {
      const index = this.slots.indexOf(slot);
      if (index < 0) return;
      for (const p of slot.pending.values()) p.reject(err);
      slot.pending.clear();
      this.slots[index] = this.start();
    };
    worker.on('error', (err) => fail(new EncodeWorkerError(`a backup encode worker failed: ${err.message}`)));
    worker.on('exit', (code) => fail(new EncodeWorkerError(`a backup encode worker exited (code ${code})`)));
    return slot;
  }
}
