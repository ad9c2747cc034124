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
  /** The chunk's bytes, transferred: the worker owns them. */
  raw: ArrayBuffer;
  fingerprint: Uint8Array;
  dataKey?: Uint8Array;
  compression: BlobCompression;
}
export interface EncodeDone {
  id: number;
  stored: ArrayBuffer;
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

/** HOARD_ENCODE_WORKERS, else one per core up to 4. */
export function defaultEncodeWorkers(): number {
  const configured = Number(process.env.HOARD_ENCODE_WORKERS);
  if (Number.isInteger(configured) && configured >= 1 && configured <= 64) return configured;
  return Math.max(1, Math.min(4, availableParallelism()));
}

let shared: EncodePool | undefined;

export class EncodePool {
  private readonly slots: Slot[] = [];
  private nextId = 1;

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
    const copy = Uint8Array.prototype.slice.call(raw) as Uint8Array;
    let slot = this.slots[0];
    for (const s of this.slots) if (s.queuedBytes < slot.queuedBytes) slot = s;
    return new Promise((resolve, reject) => {
      slot.pending.set(id, { resolve, reject, bytes: raw.length, rawLength: raw.length });
      slot.queuedBytes += raw.length;
      if (slot.pending.size === 1) slot.worker.ref();
      const job: EncodeJob = { id, raw: copy.buffer as ArrayBuffer, fingerprint, dataKey: settings.dataKey, compression: settings.compression };
      slot.worker.postMessage(job, [job.raw]);
    });
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
      else p.resolve({ stored: new Uint8Array(reply.stored), codec: reply.codec, rawLength: p.rawLength, checksum: reply.checksum });
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
