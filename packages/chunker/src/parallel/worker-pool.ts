import { Worker } from 'node:worker_threads';
import type { SegmentJob, SegmentReply, SegmentResult, SegmentWorkerConfig } from './protocol.js';
import { WorkerHold } from './worker-hold.js';

interface Pending {
  resolve: (r: SegmentResult) => void;
  reject: (e: Error) => void;
}

/**
 * A segment worker allocates little on its heap (chunk ends, fingerprints: segments come
 * and go as transferred buffers), so its young generation is capped at 4 MiB (two 2 MiB
 * semi-spaces); V8 grows an uncapped one to 32 MiB under a high allocation rate. Below 4,
 * a synthetic allocation churn cost 2-10x the CPU.
 */
const WORKER_LIMITS = { maxYoungGenerationSizeMb: 4 } as const;

/** A fixed set of segment workers; jobs go to the least busy one. */
export class SegmentWorkerPool {
  private readonly workers: Worker[] = [];
  private readonly holds: WorkerHold[] = [];
  private readonly pending = new Map<number, Pending>();
  private readonly load: number[] = [];
  private readonly owner = new Map<number, number>();
  private nextId = 1;
  private failure: Error | undefined;
  /** Settles once every worker has started (see Chunker.start). */
  readonly online: Promise<void>;

  constructor(config: SegmentWorkerConfig, count: number) {
    const url = new URL('./segment-worker.js', import.meta.url);
    for (let i = 0; i < count; i++) {
      const worker = new Worker(url, { workerData: config, resourceLimits: WORKER_LIMITS });
      worker.on('message', (reply: SegmentReply) => this.settle(reply));
      worker.on('error', (err) => this.fail(err));
      worker.on('exit', (code) => {
        if (code !== 0) this.fail(new Error(`chunker worker exited with code ${code}`));
      });
      this.workers.push(worker);
      // Idle workers must not keep a CLI process alive if a caller forgets close().
      this.holds.push(new WorkerHold(worker));
      this.load.push(0);
    }
    this.online = Promise.all(this.holds.map((h) => h.online)).then(() => undefined);
  }

  get size(): number {
    return this.workers.length;
  }

  /** Jobs sent to the least busy worker and not yet answered. */
  get minLoad(): number {
    return this.load.length === 0 ? Infinity : Math.min(...this.load);
  }

  run(job: Omit<SegmentJob, 'id'>): Promise<SegmentResult> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    let w = 0;
    for (let i = 1; i < this.workers.length; i++) if (this.load[i] < this.load[w]) w = i;
    this.holds[w].jobs(++this.load[w]);
    this.owner.set(id, w);
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.workers[w].postMessage({ ...job, id } satisfies SegmentJob, [job.buffer]);
    });
  }

  private settle(reply: SegmentReply): void {
    const p = this.pending.get(reply.id);
    if (!p) return;
    this.pending.delete(reply.id);
    const w = this.owner.get(reply.id)!;
    this.owner.delete(reply.id);
    this.holds[w].jobs(--this.load[w]);
    if ('error' in reply) p.reject(new Error(`chunker worker failed: ${reply.error}`));
    else p.resolve(reply);
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  async close(): Promise<void> {
    this.failure ??= new Error('chunker pool is closed');
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
  }
}
