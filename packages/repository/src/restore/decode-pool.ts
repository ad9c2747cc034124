/**
 * The decode workers of restores (decode-worker.ts). One pool serves the whole process
 * (the media server runs many restores at once; each would otherwise start its own
 * threads). Jobs go to the worker with the fewest bytes queued. A worker that dies fails
 * only the jobs it held, with a DecodeWorkerError, and is replaced.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { WorkerHold } from '@hoard/chunker/worker-hold';
import type { ErrorCode } from '@hoard/errors';
import type { DecodeJob, DecodeReply } from './decode-protocol.js';

export class DecodeWorkerError extends Error {
  override readonly name = 'DecodeWorkerError';
  readonly code: ErrorCode = 'work_failed';
}

interface Pending {
  resolve: (reply: DecodeReply) => void;
  reject: (err: Error) => void;
  bytes: number;
}

interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
  queuedBytes: number;
  /** Held while it starts and while jobs are pending (a CLI restore awaits nothing else); idle, it lets the process go. */
  hold: WorkerHold;
}

/** Workers of the shared pool: HOARD_RESTORE_WORKERS, else one per core up to 4. */
export function defaultDecodeWorkers(): number {
  const configured = Number(process.env.HOARD_RESTORE_WORKERS);
  if (Number.isInteger(configured) && configured >= 1 && configured <= 64) return configured;
  return Math.max(1, Math.min(4, availableParallelism()));
}

let shared: DecodePool | undefined;

export class DecodePool {
  private readonly slots: Slot[] = [];
  private nextId = 1;
  private closed = false;

  constructor(readonly size: number = defaultDecodeWorkers()) {
    for (let i = 0; i < size; i++) this.slots.push(this.start());
  }

  /** The process-wide pool, started on first use. */
  static shared(): DecodePool {
    shared ??= new DecodePool();
    return shared;
  }

  run(job: Omit<DecodeJob, 'id'>, transfer: ArrayBuffer[]): Promise<DecodeReply> {
    if (this.closed) return Promise.reject(new DecodeWorkerError('the restore decode pool is closed'));
    const id = this.nextId++;
    let slot = this.slots[0];
    for (const s of this.slots) if (s.queuedBytes < slot.queuedBytes) slot = s;
    return new Promise((resolve, reject) => {
      const bytes = job.byteLength;
      slot.pending.set(id, { resolve, reject, bytes });
      slot.queuedBytes += bytes;
      slot.hold.jobs(slot.pending.size);
      slot.worker.postMessage({ ...job, id } satisfies DecodeJob, transfer);
    });
  }

  /** Stops every worker; their pending jobs fail. Also what a test uses to kill workers mid-restore. */
  async terminate(options: { restart?: boolean } = {}): Promise<void> {
    if (!options.restart) this.closed = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private start(): Slot {
    // Decoded blobs live in ArrayBuffers, not on the heap: a 4 MiB young generation (V8
    // grows it to 32 MiB under load) is enough, as for the chunker's workers.
    const worker = new Worker(new URL('./decode-worker.js', import.meta.url), { resourceLimits: { maxYoungGenerationSizeMb: 4 } });
    worker.on('message', (reply: DecodeReply) => {
      const p = slot.pending.get(reply.id);
      if (!p) return;
      slot.pending.delete(reply.id);
      slot.queuedBytes -= p.bytes;
      slot.hold.jobs(slot.pending.size);
      p.resolve(reply);
    });
    // The hold after the 'message' listener (see WorkerHold).
    const slot: Slot = { worker, pending: new Map(), queuedBytes: 0, hold: new WorkerHold(worker) };
    const fail = (err: Error) => {
      const index = this.slots.indexOf(slot);
      if (index < 0) return; // already replaced
      for (const p of slot.pending.values()) p.reject(err);
      slot.pending.clear();
      if (this.closed) return;
      this.slots[index] = this.start();
    };
    worker.on('error', (err) => fail(new DecodeWorkerError(`a restore decode worker failed: ${err.message}`)));
    worker.on('exit', (code) => fail(new DecodeWorkerError(`a restore decode worker exited (code ${code})`)));
    return slot;
  }
}
